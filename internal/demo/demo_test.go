package demo

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/go-ldap/ldap/v3"
	"github.com/usersync/usersync/internal/rules"
)

// index is a test-side view of a demo's entries.
type index struct {
	users  map[string]*ldap.AddRequest // by DN
	groups map[string][]string         // lower-case DN -> lower-case member DNs
}

func indexOf(d Demo) index {
	ix := index{users: map[string]*ldap.AddRequest{}, groups: map[string][]string{}}
	for _, e := range d.Entries {
		switch {
		case strings.HasPrefix(e.DN, "uid="):
			ix.users[e.DN] = e
		case strings.HasPrefix(e.DN, "cn=") && strings.HasSuffix(e.DN, GroupsDN):
			var ms []string
			for _, m := range values(e, "member") {
				ms = append(ms, strings.ToLower(m))
			}
			ix.groups[strings.ToLower(e.DN)] = ms
		}
	}
	return ix
}

func values(e *ldap.AddRequest, name string) []string {
	for _, a := range e.Attributes {
		if strings.EqualFold(a.Type, name) {
			return a.Vals
		}
	}
	return nil
}

func value(e *ldap.AddRequest, name string) string {
	if v := values(e, name); len(v) > 0 {
		return v[0]
	}
	return ""
}

// members is the transitive user membership of group (lower-case DNs), and the depth of
// the deepest user.
func (ix index) members(group string) (map[string]bool, int) {
	out, seen, deepest := map[string]bool{}, map[string]bool{group: true}, 0
	var walk func(g string, depth int)
	walk = func(g string, depth int) {
		for _, m := range ix.groups[g] {
			if _, isGroup := ix.groups[m]; isGroup {
				if !seen[m] {
					seen[m] = true
					walk(m, depth+1)
				}
				continue
			}
			out[m] = true
			deepest = max(deepest, depth)
		}
	}
	walk(group, 1)
	return out, deepest
}

func TestOrgIsDeterministic(t *testing.T) {
	if !reflect.DeepEqual(Org(), Org()) {
		t.Error("Org() differs between calls")
	}
}

func TestOrgHasTheAdvertisedCases(t *testing.T) {
	d := Org()
	ix := indexOf(d)
	if n := len(ix.users); n < 250 || n > 350 {
		t.Errorf("%d users, want about 300", n)
	}
	uids, mails := map[string]bool{}, map[string]int{}
	disabled, partners, noMail, badMail := 0, 0, 0, 0
	for dn, e := range ix.users {
		uid := value(e, "uid")
		if uids[uid] {
			t.Errorf("uid %s twice", uid)
		}
		uids[uid] = true
		for _, a := range []string{"cn", "sn", "givenName", "displayName", "employeeNumber", "departmentNumber"} {
			if value(e, a) == "" {
				t.Errorf("%s has no %s", dn, a)
			}
		}
		mail := value(e, "mail")
		mails[mail]++
		switch {
		case mail == "":
			noMail++
		case !strings.Contains(mail, "@"):
			badMail++
		case strings.HasSuffix(mail, "@"+PartnerDomain):
			partners++
		case !strings.HasSuffix(mail, "@"+Domain):
			t.Errorf("%s: mail %s in an unexpected domain", dn, mail)
		}
		if value(e, "employeeType") == "disabled" {
			disabled++
		}
	}
	if disabled < 2 || disabled > 6 {
		t.Errorf("%d disabled users, want a few", disabled)
	}
	if partners != 10 {
		t.Errorf("%d users in %s, want 10", partners, PartnerDomain)
	}
	if noMail+badMail < 1 || noMail+badMail > 2 {
		t.Errorf("%d users without mail and %d with a malformed one, want 1-2 in all", noMail, badMail)
	}
	if len(d.PreExisting) != 5 {
		t.Errorf("PreExisting = %v, want 5 userNames", d.PreExisting)
	}
	for _, u := range d.PreExisting {
		if mails[u] != 1 || !strings.HasSuffix(u, "@"+Domain) {
			t.Errorf("PreExisting %s is not the validated mail of exactly one user", u)
		}
	}
	if !slices.Equal(d.ValidatedDomains, []string{Domain}) {
		t.Errorf("ValidatedDomains = %v", d.ValidatedDomains)
	}

	// Nesting three deep, and a cycle.
	if _, depth := ix.members(GroupDN("Engineering")); depth < 3 {
		t.Errorf("Engineering nests %d deep, want >= 3", depth)
	}
	alpha, _ := ix.members(GroupDN("Project-Alpha"))
	beta, _ := ix.members(GroupDN("Project-Beta"))
	if len(alpha) == 0 || !reflect.DeepEqual(alpha, beta) {
		t.Errorf("Project-Alpha and Project-Beta should contain each other: %d and %d users", len(alpha), len(beta))
	}
	if !slices.Contains(ix.groups[GroupDN("Project-Alpha")], GroupDN("Project-Beta")) ||
		!slices.Contains(ix.groups[GroupDN("Project-Beta")], GroupDN("Project-Alpha")) {
		t.Error("no group cycle between Project-Alpha and Project-Beta")
	}
}

func TestOrgRulesAreValidAndPriorityMatters(t *testing.T) {
	d := Org()
	ix := indexOf(d)
	cat := d.Catalog
	empty := 0
	for i, r := range d.Rules {
		if r.Priority != i+1 || r.ID == 0 {
			t.Errorf("rule %d: priority %d, id %d; want dense priorities 1..n and IDs", i, r.Priority, r.ID)
		}
		if r.GroupDN != rules.NormalizeDN(r.GroupDN) {
			t.Errorf("rule %d: GroupDN %q is not normalized", r.Priority, r.GroupDN)
		}
		if _, ok := ix.groups[r.GroupDN]; !ok {
			t.Errorf("rule %d: group %s is not in the entries", r.Priority, r.GroupDN)
		}
		if m, _ := ix.members(r.GroupDN); len(m) == 0 {
			empty++
		}
		if r.Role != "" && !slices.Contains(cat.Roles, r.Role) {
			t.Errorf("rule %d: role %s not in the catalog", r.Priority, r.Role)
		}
		if r.SettingsTemplate != "" && !slices.Contains(cat.Templates, r.SettingsTemplate) {
			t.Errorf("rule %d: template %s not in the catalog", r.Priority, r.SettingsTemplate)
		}
		for _, p := range r.Products {
			if !slices.Contains(cat.Products, p) {
				t.Errorf("rule %d: product %s not in the catalog", r.Priority, p)
			}
		}
	}
	if empty != 1 {
		t.Errorf("%d ruled groups are empty, want exactly one", empty)
	}

	// Users in groups of rules that set different user groups: priority decides.
	userGroups := map[string]map[string]bool{}
	webinar := map[string]bool{}
	for _, r := range d.Rules {
		m, _ := ix.members(r.GroupDN)
		for u := range m {
			if r.UserGroup != "" {
				if userGroups[u] == nil {
					userGroups[u] = map[string]bool{}
				}
				userGroups[u][r.UserGroup] = true
			}
			if slices.Contains(r.Products, Webinar) {
				webinar[u] = true
			}
		}
	}
	overlaps := 0
	for _, gs := range userGroups {
		if len(gs) > 1 {
			overlaps++
		}
	}
	if overlaps == 0 {
		t.Error("no user is in two ruled groups with different user groups")
	}
	if len(webinar) <= d.Seats[Webinar] {
		t.Errorf("%d users entitled to Webinar, %d seats: want more users than seats", len(webinar), d.Seats[Webinar])
	}
	for _, p := range cat.Products {
		if d.Seats[p] <= 0 {
			t.Errorf("no seats for %s", p)
		}
	}
	if len(d.Mappings) == 0 {
		t.Error("no attribute mappings")
	}
	for _, m := range d.Mappings {
		if !strings.HasPrefix(m.Target, "enterprise:") && !strings.HasPrefix(m.Target, "custom:") {
			t.Errorf("mapping %+v: target must be enterprise:<name> or custom:<name>", m)
		}
	}
}

func TestGenerateSpreadsUsersOverNestedGroups(t *testing.T) {
	const n = 2500
	d := Generate(n, 42)
	ix := indexOf(d)
	if len(ix.users) != n {
		t.Fatalf("%d users, want %d", len(ix.users), n)
	}
	if len(ix.groups) < n/100 {
		t.Errorf("%d groups, want at least %d", len(ix.groups), n/100)
	}
	covered := map[string]int{}
	for _, r := range d.Rules {
		m, depth := ix.members(r.GroupDN)
		if depth != 3 {
			t.Errorf("rule %d: group %s nests %d deep, want 3", r.Priority, r.GroupDN, depth)
		}
		for u := range m {
			covered[u]++
		}
	}
	for dn, e := range ix.users {
		if covered[strings.ToLower(dn)] != 1 {
			t.Errorf("%s is in %d ruled groups, want 1", dn, covered[strings.ToLower(dn)])
		}
		if !strings.HasSuffix(value(e, "mail"), "@"+Domain) {
			t.Errorf("%s: mail %q not in %s", dn, value(e, "mail"), Domain)
		}
	}
	for _, p := range d.Catalog.Products {
		if d.Seats[p] < n {
			t.Errorf("%s has %d seats for %d users", p, d.Seats[p], n)
		}
	}
	if !reflect.DeepEqual(d, Generate(n, 42)) {
		t.Error("Generate is not deterministic for a fixed seed")
	}
	if reflect.DeepEqual(d.Entries, Generate(n, 43).Entries) {
		t.Error("Generate ignores the seed")
	}
}
