package demo

import (
	"strings"
	"testing"

	"github.com/usersync/usersync/internal/rules"
)

// The demo on an AD DC: the same users and groups, as AD classes, under the DNs the rules
// name, with disabled users flagged in userAccountControl and members pointing at the
// users' AD DNs.
func TestADEntriesAreTheDemoAsADHoldsIt(t *testing.T) {
	d := Org()
	adds, members, err := d.ADEntries()
	if err != nil {
		t.Fatal(err)
	}
	users, disabled, noUPN := 0, 0, 0
	dns := map[string]bool{}
	groups := map[string]bool{}
	for _, a := range adds {
		dns[strings.ToLower(a.DN)] = true
		switch first(a, "objectClass") {
		case "user":
			users++
			if !strings.HasPrefix(a.DN, "CN=") || len(first(a, "sAMAccountName")) > 20 {
				t.Errorf("user %s: want CN=<uid> and a sAMAccountName of at most 20 characters", a.DN)
			}
			if first(a, "userAccountControl") == adDisabled {
				disabled++
			}
			if first(a, "userPrincipalName") == "" {
				noUPN++
			}
		case "group":
			groups[rules.NormalizeDN(a.DN)] = true
			if len(attrValues(a, "member")) > 0 {
				t.Errorf("group %s: members go in afterwards (they must exist first)", a.DN)
			}
		}
	}
	if users != 300 || disabled != 4 || noUPN != 2 {
		t.Fatalf("users %d, disabled %d, without userPrincipalName %d: want 300, 4 and 2 (no mail; malformed mail)", users, disabled, noUPN)
	}
	for _, r := range d.Rules {
		if !groups[r.GroupDN] {
			t.Errorf("rule on %s: no such group on the DC", r.GroupDN)
		}
	}
	n := 0
	for _, m := range members {
		for _, v := range m.Changes[0].Modification.Vals {
			n++
			if !dns[strings.ToLower(v)] {
				t.Errorf("group %s: member %s is no entry on the DC", m.DN, v)
			}
		}
	}
	if n == 0 {
		t.Fatal("no memberships")
	}
}
