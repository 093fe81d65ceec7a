package plan

import (
	"reflect"
	"strings"
	"testing"

	"github.com/usersync/usersync/internal/directory"
	"github.com/usersync/usersync/internal/rules"
)

func TestBuild(t *testing.T) {
	u := directory.User{
		ExternalID: "guid-1", UserName: "ann@example.com", Email: "ann@example.com",
		GivenName: "Ann", FamilyName: "Lee", DisplayName: "Ann Lee",
		Attributes: map[string]string{"department": "R&D", "employeeID": "42", "physicalDeliveryOfficeName": "Lyon",
			"costCenter": "  ", "extensionAttribute1": "from-directory"},
	}
	a := rules.Assignment{Role: "Admin", Products: []string{"Meeting", "Webinar"}, UserGroup: "Ops",
		DeviceGroups: []string{"DG-1"}, SettingsTemplate: "T1",
		CustomFields: map[string]string{"badge": "from-rule", "empty": ""}}
	ms := []Mapping{
		{Source: "department", Target: "enterprise:department"},
		{Source: "EMPLOYEEID", Target: "enterprise:employeeNumber"}, // LDAP names are case-insensitive
		{Source: "costCenter", Target: "enterprise:costCenter"},     // blank: omitted
		{Source: "division", Target: "enterprise:division"},         // missing: omitted
		{Source: "physicalDeliveryOfficeName", Target: "custom:office"},
		{Source: "extensionAttribute1", Target: "custom:badge"}, // the rule constant wins
		{Source: "department", Target: "scim:ignored"},
	}
	got := Build(u, a, ms)
	want := Desired{
		ExternalID: "guid-1", UserName: "ann@example.com", Email: "ann@example.com",
		GivenName: "Ann", FamilyName: "Lee", DisplayName: "Ann Lee", Active: true,
		Role: "Admin", Products: []string{"Meeting", "Webinar"}, UserGroup: "Ops",
		DeviceGroups: []string{"DG-1"}, SettingsTemplate: "T1",
		Enterprise: map[string]string{"department": "R&D", "employeeNumber": "42"},
		Custom:     map[string]string{"office": "Lyon", "badge": "from-rule"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Build:\n got  %+v\n want %+v", got, want)
	}
}

func TestBuildOmitsEmptyCollections(t *testing.T) {
	got := Build(directory.User{ExternalID: "x", UserName: "x@example.com", Email: "x@example.com"}, rules.Assignment{}, nil)
	if got.Enterprise != nil || got.Custom != nil || got.Products != nil || got.DeviceGroups != nil {
		t.Errorf("empty collections must be omitted, got %+v", got)
	}
	if !got.Active {
		t.Error("an in-scope user must be active")
	}
}

func TestValidateMapping(t *testing.T) {
	tests := []struct {
		m   Mapping
		err string
	}{
		{Mapping{Source: "department", Target: "enterprise:department"}, ""},
		{Mapping{Source: "x", Target: "custom:office"}, ""},
		{Mapping{Source: "", Target: "custom:office"}, `mapping source: empty (target "custom:office")`},
		{Mapping{Source: "x", Target: "enterprise:manager"}, `unknown enterprise attribute "manager"`},
		{Mapping{Source: "x", Target: "custom:"}, "empty custom field name"},
		{Mapping{Source: "x", Target: "title"}, `mapping target "title": must start with`},
	}
	for _, tt := range tests {
		err := ValidateMapping(tt.m)
		if tt.err == "" && err != nil {
			t.Errorf("%+v: unexpected error %v", tt.m, err)
		}
		if tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)) {
			t.Errorf("%+v: err = %v, want %q", tt.m, err, tt.err)
		}
	}
}

func fullDesired() Desired {
	return Desired{ExternalID: "g", UserName: "u@example.com", Email: "u@example.com", GivenName: "G",
		FamilyName: "F", DisplayName: "D", Active: true, Role: "Admin", Products: []string{"A", "B"},
		UserGroup: "UG", DeviceGroups: []string{"D1", "D2"}, SettingsTemplate: "T",
		Enterprise: map[string]string{"department": "X", "division": "Y"}, Custom: map[string]string{"a": "1", "b": "2"}}
}

func TestHashStableAcrossOrderAndEmptiness(t *testing.T) {
	d := fullDesired()
	shuffled := d
	shuffled.Products = []string{"B", "A", "B"}
	shuffled.DeviceGroups = []string{"D2", "D1"}
	shuffled.Enterprise = map[string]string{"division": "Y", "department": "X"}
	if d.Hash() != shuffled.Hash() {
		t.Error("hash depends on slice order or duplicates")
	}
	if len(d.Hash()) != 64 {
		t.Errorf("hash %q is not sha256 hex", d.Hash())
	}
	empty := Desired{ExternalID: "g"}
	emptied := Desired{ExternalID: "g", Products: []string{}, DeviceGroups: []string{}, Enterprise: map[string]string{}, Custom: map[string]string{}}
	if empty.Hash() != emptied.Hash() {
		t.Error("nil and empty collections hash differently")
	}
	if len(Diff(empty, emptied)) != 0 {
		t.Errorf("nil and empty collections differ: %v", Diff(empty, emptied))
	}
}

// Each field change must change the hash and be named by Diff, and only that field.
func TestDiffAndHashSeeEveryField(t *testing.T) {
	changes := map[string]func(d *Desired){
		"externalId":       func(d *Desired) { d.ExternalID = "h" },
		"userName":         func(d *Desired) { d.UserName = "v@example.com" },
		"email":            func(d *Desired) { d.Email = "v@example.com" },
		"givenName":        func(d *Desired) { d.GivenName = "" },
		"familyName":       func(d *Desired) { d.FamilyName = "f" },
		"displayName":      func(d *Desired) { d.DisplayName = "d" },
		"active":           func(d *Desired) { d.Active = false },
		"role":             func(d *Desired) { d.Role = "Member" },
		"products":         func(d *Desired) { d.Products = []string{"A"} },
		"userGroup":        func(d *Desired) { d.UserGroup = "" },
		"deviceGroups":     func(d *Desired) { d.DeviceGroups = []string{"D1", "D3"} },
		"settingsTemplate": func(d *Desired) { d.SettingsTemplate = "T2" },
		"enterprise":       func(d *Desired) { d.Enterprise = map[string]string{"department": "X"} },
		"custom":           func(d *Desired) { d.Custom = map[string]string{"a": "1", "b": "3"} },
	}
	base := fullDesired()
	for name, change := range changes {
		t.Run(name, func(t *testing.T) {
			d := fullDesired()
			change(&d)
			if d.Hash() == base.Hash() {
				t.Errorf("hash unchanged when %s changed", name)
			}
			if got := Diff(base, d); !reflect.DeepEqual(got, []string{name}) {
				t.Errorf("Diff = %v, want [%s]", got, name)
			}
		})
	}
}

func TestDiffSorted(t *testing.T) {
	old := fullDesired()
	d := fullDesired()
	d.Role, d.Active, d.Custom = "Member", false, nil
	if got, want := Diff(old, d), []string{"active", "custom", "role"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Diff = %v, want %v", got, want)
	}
	if got := Diff(old, fullDesired()); len(got) != 0 {
		t.Errorf("equal states differ: %v", got)
	}
}
