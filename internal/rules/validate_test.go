package rules

import (
	"strings"
	"testing"
)

var testCatalog = Catalog{
	Products:  []string{"Webinar", "Meeting"},
	Roles:     []string{"Member", "Admin"},
	Templates: []string{"T1"},
}

func TestValidate(t *testing.T) {
	long := strings.Repeat("x", 257)
	ok := Rule{GroupDN: "CN=Sales,DC=example,DC=com", Role: "Admin", Products: []string{"Meeting", "Webinar"},
		UserGroup: "Sales", DeviceGroups: []string{"DG-1"}, SettingsTemplate: "T1",
		CustomFields: map[string]string{"site": "HQ"}, Note: "sales team"}
	with := func(f func(r *Rule)) Rule {
		r := ok
		f(&r)
		return r
	}
	tests := []struct {
		name string
		rule Rule
		want []string // substrings of the error; none = valid
	}{
		{"valid", ok, nil},
		{"minimal rule: only a group", Rule{GroupDN: "cn=x,dc=y"}, nil},
		{"value of exactly 256 characters", with(func(r *Rule) { r.UserGroup = strings.Repeat("u", 256) }), nil},
		{"empty group", with(func(r *Rule) { r.GroupDN = " " }), []string{"rule groupDn: empty"}},
		{"group without =", with(func(r *Rule) { r.GroupDN = "Sales" }), []string{`rule groupDn "Sales": not a DN`}},
		{"group with a bad component", with(func(r *Rule) { r.GroupDN = "cn=Sales,example" }), []string{`component "example"`}},
		{"unknown product", with(func(r *Rule) { r.Products = []string{"Webnar"} }),
			[]string{`rule products: unknown product "Webnar" (known: Meeting, Webinar)`}},
		{"duplicate product", with(func(r *Rule) { r.Products = []string{"Meeting", "Meeting"} }),
			[]string{`rule products: duplicate product "Meeting"`}},
		{"empty product", with(func(r *Rule) { r.Products = []string{""} }), []string{"rule products: empty product name"}},
		{"unknown role", with(func(r *Rule) { r.Role = "Owner" }), []string{`rule role: unknown role "Owner" (known: Admin, Member)`}},
		{"role is case-sensitive", with(func(r *Rule) { r.Role = "admin" }), []string{`unknown role "admin"`}},
		{"unknown template", with(func(r *Rule) { r.SettingsTemplate = "T9" }),
			[]string{`rule settingsTemplate: unknown template "T9" (known: T1)`}},
		{"duplicate device group", with(func(r *Rule) { r.DeviceGroups = []string{"DG", "DG"} }),
			[]string{`rule deviceGroups: duplicate device group "DG"`}},
		{"empty device group", with(func(r *Rule) { r.DeviceGroups = []string{" "} }), []string{"rule deviceGroups: empty device group name"}},
		{"empty custom field name", with(func(r *Rule) { r.CustomFields = map[string]string{"": "x"} }),
			[]string{"rule customFields: empty field name"}},
		{"long custom value", with(func(r *Rule) { r.CustomFields = map[string]string{"site": long} }),
			[]string{`rule customFields["site"]`, "257 characters (max 256)"}},
		{"long user group", with(func(r *Rule) { r.UserGroup = long }), []string{"rule userGroup", "257 characters (max 256)"}},
		{"long device group", with(func(r *Rule) { r.DeviceGroups = []string{long} }), []string{"rule deviceGroups", "257 characters"}},
		{"long note", with(func(r *Rule) { r.Note = strings.Repeat("n", 1025) }), []string{"rule note", "1025 characters (max 1024)"}},
		{"negative priority", with(func(r *Rule) { r.Priority = -1 }), []string{"rule priority -1"}},
		{"several problems reported together", with(func(r *Rule) { r.Role = "Owner"; r.Products = []string{"Webnar"} }),
			[]string{`unknown role "Owner"`, `unknown product "Webnar"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Validate(tt.rule, testCatalog)
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("valid rule rejected: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("invalid rule accepted, want error containing %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestValidateEmptyCatalog(t *testing.T) {
	err := Validate(Rule{GroupDN: "cn=x", Products: []string{"Meeting"}}, Catalog{})
	if err == nil || !strings.Contains(err.Error(), `unknown product "Meeting" (known: none)`) {
		t.Fatalf("err = %v, want unknown product with known: none", err)
	}
}

// A group DN that does not parse (RFC 4514) is refused on save, with the parser's reason:
// it would match nobody and suspend the rule's users.
func TestValidateRefusesDNsThatDoNotParse(t *testing.T) {
	for _, dn := range []string{`cn=abc\`, `cn=a\zz,dc=x`, `cn=#zz,dc=x`} {
		err := Validate(Rule{Priority: 1, GroupDN: dn}, Catalog{})
		if err == nil || !strings.Contains(err.Error(), "not a DN") {
			t.Errorf("Validate(%q) = %v, want a 'not a DN' error", dn, err)
		}
	}
	if err := Validate(Rule{Priority: 1, GroupDN: `cn=Sales\2C EMEA,ou=Groups,dc=x`}, Catalog{}); err != nil {
		t.Errorf("a hex-escaped DN is valid: %v", err)
	}
}
