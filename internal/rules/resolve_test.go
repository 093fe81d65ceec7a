package rules

import (
	"math/rand"
	"reflect"
	"testing"
)

const (
	groupA = "cn=a,ou=groups,dc=example,dc=com"
	groupB = "cn=b,ou=groups,dc=example,dc=com"
	groupC = "cn=c,ou=groups,dc=example,dc=com"
	groupD = "cn=d,ou=groups,dc=example,dc=com"
)

// Spec section 3, worked example 1.
func TestSpecExample1_UserGroupFromHighestPriority(t *testing.T) {
	rs := []Rule{
		{ID: 1, Priority: 1, GroupDN: groupA, UserGroup: "Sales"},
		{ID: 2, Priority: 2, GroupDN: groupB, UserGroup: "Support"},
	}
	a, ok := Resolve(rs, []string{groupA, groupB})
	if !ok {
		t.Fatal("user in A and B: no rule matched")
	}
	if a.UserGroup != "Sales" {
		t.Errorf("user group = %q, want %q", a.UserGroup, "Sales")
	}
}

// Spec section 3, worked example 2.
func TestSpecExample2_DeviceGroupsUnion(t *testing.T) {
	rs := []Rule{
		{ID: 1, Priority: 1, GroupDN: groupA, DeviceGroups: []string{"DG-A"}},
		{ID: 2, Priority: 2, GroupDN: groupB, DeviceGroups: []string{"DG-B"}},
	}
	a, _ := Resolve(rs, []string{groupA, groupB})
	if want := []string{"DG-A", "DG-B"}; !reflect.DeepEqual(a.DeviceGroups, want) {
		t.Errorf("device groups = %v, want %v", a.DeviceGroups, want)
	}
}

// Spec section 3, worked example 3.
func TestSpecExample3_ThreeGroups(t *testing.T) {
	rs := []Rule{
		{ID: 1, Priority: 1, GroupDN: groupA, Role: "Member", Products: []string{"Meeting"}},
		{ID: 2, Priority: 2, GroupDN: groupB, Role: "Admin", Products: []string{"Webinar"}, UserGroup: "Ops"},
		{ID: 3, Priority: 3, GroupDN: groupC, Products: []string{"Meeting", "Connect"}, SettingsTemplate: "T3"},
	}
	a, ok := Resolve(rs, []string{groupA, groupB, groupC})
	if !ok {
		t.Fatal("no rule matched")
	}
	if a.Role != "Member" {
		t.Errorf("role = %q, want Member", a.Role)
	}
	if want := []string{"Connect", "Meeting", "Webinar"}; !reflect.DeepEqual(a.Products, want) {
		t.Errorf("products = %v, want %v", a.Products, want)
	}
	if a.UserGroup != "Ops" {
		t.Errorf("user group = %q, want Ops", a.UserGroup)
	}
	if a.SettingsTemplate != "T3" {
		t.Errorf("template = %q, want T3", a.SettingsTemplate)
	}
	if want := []int64{1, 2, 3}; !reflect.DeepEqual(a.MatchedRules, want) {
		t.Errorf("matched rules = %v, want %v", a.MatchedRules, want)
	}
	if want := map[string]int{"Meeting": 1, "Webinar": 2, "Connect": 3}; !reflect.DeepEqual(a.ProductPriority, want) {
		t.Errorf("product priority = %v, want %v", a.ProductPriority, want)
	}
	if want := map[string]int64{"role": 1, "userGroup": 2, "settingsTemplate": 3}; !reflect.DeepEqual(a.Sources, want) {
		t.Errorf("sources = %v, want %v", a.Sources, want)
	}
}

// Spec section 3, worked example 4: reordering rules 1 and 2 of example 1.
func TestSpecExample4_ReorderChangesUserGroup(t *testing.T) {
	rs := []Rule{
		{ID: 1, Priority: 1, GroupDN: groupA, UserGroup: "Sales"},
		{ID: 2, Priority: 2, GroupDN: groupB, UserGroup: "Support"},
	}
	reordered, err := Move(rs, 2, 1)
	if err != nil {
		t.Fatalf("Move: %v", err)
	}
	a, _ := Resolve(reordered, []string{groupA, groupB})
	if a.UserGroup != "Support" {
		t.Errorf("after reorder user group = %q, want Support", a.UserGroup)
	}
	if a.Sources["userGroup"] != 2 {
		t.Errorf("after reorder user group source = rule %d, want rule 2", a.Sources["userGroup"])
	}
}

func TestResolve(t *testing.T) {
	rs := []Rule{
		{ID: 10, Priority: 1, GroupDN: groupA, Role: "Admin", CustomFields: map[string]string{"site": "HQ", "tier": ""}},
		{ID: 20, Priority: 2, GroupDN: groupB, Role: "Member", UserGroup: "Support", Products: []string{"Webinar", "Meeting"},
			CustomFields: map[string]string{"site": "Branch", "tier": "gold"}},
		{ID: 30, Priority: 3, GroupDN: groupC, Products: []string{"Meeting"}, DeviceGroups: []string{"DG-2", "DG-1"}, SettingsTemplate: "Std"},
		{ID: 40, Priority: 4, GroupDN: groupB, UserGroup: "Ignored", SettingsTemplate: "Late"},
	}
	tests := []struct {
		name   string
		groups []string
		ok     bool
		want   Assignment
	}{
		{name: "no group", groups: nil, ok: false},
		{name: "unruled group only", groups: []string{groupD}, ok: false},
		{
			name: "unset role in lower rules does not matter; unset custom does not override", groups: []string{groupA, groupB},
			ok: true,
			want: Assignment{Role: "Admin", UserGroup: "Support", Products: []string{"Meeting", "Webinar"},
				SettingsTemplate: "Late",
				CustomFields:     map[string]string{"site": "HQ", "tier": "gold"},
				MatchedRules:     []int64{10, 20, 40},
				ProductPriority:  map[string]int{"Meeting": 2, "Webinar": 2},
				Sources:          map[string]int64{"role": 10, "userGroup": 20, "settingsTemplate": 40, "custom:site": 10, "custom:tier": 20}},
		},
		{
			name: "higher rule without a value does not override a lower one", groups: []string{groupB, groupC},
			ok: true,
			want: Assignment{Role: "Member", UserGroup: "Support", Products: []string{"Meeting", "Webinar"},
				DeviceGroups: []string{"DG-1", "DG-2"}, SettingsTemplate: "Std",
				CustomFields:    map[string]string{"site": "Branch", "tier": "gold"},
				MatchedRules:    []int64{20, 30, 40},
				ProductPriority: map[string]int{"Meeting": 2, "Webinar": 2},
				Sources:         map[string]int64{"role": 20, "userGroup": 20, "settingsTemplate": 30, "custom:site": 20, "custom:tier": 20}},
		},
		{
			name: "only the lowest rule", groups: []string{groupC},
			ok: true,
			want: Assignment{Products: []string{"Meeting"}, DeviceGroups: []string{"DG-1", "DG-2"}, SettingsTemplate: "Std",
				MatchedRules: []int64{30}, ProductPriority: map[string]int{"Meeting": 3},
				Sources: map[string]int64{"settingsTemplate": 30}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := Resolve(rs, tt.groups)
			if ok != tt.ok {
				t.Fatalf("matched = %v, want %v", ok, tt.ok)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestResolveRuleOrderDoesNotMatter(t *testing.T) {
	rs := []Rule{
		{ID: 1, Priority: 1, GroupDN: groupA, Role: "Admin", Products: []string{"Meeting"}},
		{ID: 2, Priority: 2, GroupDN: groupB, Role: "Member", Products: []string{"Webinar"}, UserGroup: "B"},
		{ID: 3, Priority: 3, GroupDN: groupC, UserGroup: "C", Products: []string{"Meeting"}},
	}
	want, _ := Resolve(rs, []string{groupA, groupB, groupC})
	rng := rand.New(rand.NewSource(1))
	for i := 0; i < 20; i++ {
		shuffled := append([]Rule(nil), rs...)
		rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		groups := []string{groupC, groupA, groupB}
		rng.Shuffle(len(groups), func(i, j int) { groups[i], groups[j] = groups[j], groups[i] })
		got, _ := Resolve(shuffled, groups)
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("order %v: got %+v, want %+v", shuffled, got, want)
		}
	}
	if want.Role != "Admin" || want.UserGroup != "B" || want.ProductPriority["Meeting"] != 1 {
		t.Errorf("unexpected resolution %+v", want)
	}
}

func TestResolveSameGroupInSeveralRules(t *testing.T) {
	rs := []Rule{
		{ID: 7, Priority: 2, GroupDN: groupA, Role: "Member", Products: []string{"Meeting"}},
		{ID: 8, Priority: 1, GroupDN: groupA, Role: "Admin"},
	}
	a, _ := Resolve(rs, []string{groupA})
	if a.Role != "Admin" || !reflect.DeepEqual(a.Products, []string{"Meeting"}) || !reflect.DeepEqual(a.MatchedRules, []int64{8, 7}) {
		t.Errorf("got %+v, want role Admin, products [Meeting], matched [8 7]", a)
	}
}

func TestResolveDoesNotModifyInput(t *testing.T) {
	rs := []Rule{
		{ID: 2, Priority: 2, GroupDN: groupB, Products: []string{"Z", "A"}},
		{ID: 1, Priority: 1, GroupDN: groupA, Products: []string{"M"}},
	}
	Resolve(rs, []string{groupA, groupB})
	if rs[0].ID != 2 || rs[0].Products[0] != "Z" {
		t.Errorf("Resolve reordered its input: %+v", rs)
	}
}
