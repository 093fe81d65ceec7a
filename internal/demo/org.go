package demo

import (
	"math/rand/v2"

	"github.com/go-ldap/ldap/v3"
	"github.com/usersync/usersync/internal/plan"
	"github.com/usersync/usersync/internal/rules"
)

// Domains of the demo organization.
const (
	Domain        = "example.com"          // validated
	PartnerDomain = "partners.example.net" // not validated: its users fail domain_not_validated
)

// team is a leaf group: users are its direct members.
type team struct {
	name, department, office string
	size                     int
}

// orgTeams are the leaf groups of Org, 300 users in all.
var orgTeams = []team{
	{"Backend", "Engineering", "Berlin", 40},
	{"Frontend", "Engineering", "Berlin", 30},
	{"Platform", "Engineering", "Austin", 10},
	{"SRE", "Engineering", "Austin", 10},
	{"Sales-EMEA", "Sales", "London", 25},
	{"Sales-Americas", "Sales", "New York", 30},
	{"Sales-APAC", "Sales", "Singapore", 15},
	{"Support-Tier1", "Support", "Lisbon", 30},
	{"Support-Tier2", "Support", "Lisbon", 15},
	{"Marketing", "Marketing", "New York", 40},
	{"Finance", "Finance", "London", 20},
	{"HR", "HR", "Berlin", 15},
	{"Executives", "Executive", "New York", 8},
	{"IT", "IT", "Austin", 12},
}

// slot names one user: the k-th member of a team.
type slot struct {
	team string
	k    int
}

// Special users of Org, chosen so that each plan outcome shows up.
var (
	orgDisabled = []slot{{"Backend", 5}, {"Sales-EMEA", 3}, {"Support-Tier1", 7}, {"Marketing", 9}}
	orgPartners = []slot{{"Sales-EMEA", 20}, {"Sales-EMEA", 21}, {"Sales-EMEA", 22}, {"Sales-EMEA", 23},
		{"Sales-EMEA", 24}, {"Sales-APAC", 10}, {"Sales-APAC", 11}, {"Sales-APAC", 12},
		{"Support-Tier1", 25}, {"Support-Tier1", 26}}
	orgPreExisting = []slot{{"Backend", 10}, {"Frontend", 4}, {"SRE", 2}, {"Support-Tier1", 12}, {"IT", 3}}
	orgNoMail      = slot{"Support-Tier2", 6}
	orgBadMail     = slot{"Frontend", 12}
)

// Org is the demo organization: 300 users in nested department groups, a group cycle
// (Project-Alpha and Project-Beta contain each other), an empty ruled group (Interns),
// 4 disabled users, 10 users in a non-validated domain, 5 userNames that already exist in
// the target, 2 users with invalid data (no mail; malformed mail), users in several ruled
// groups, and about twice as many users entitled to Webinar as it has seats.
// Finance and HR are named by no rule: their users are out of scope.
func Org() Demo {
	rng := rand.New(rand.NewPCG(2024, 7))
	taken := map[string]bool{}
	is := func(list []slot, s slot) bool {
		for _, x := range list {
			if x == s {
				return true
			}
		}
		return false
	}

	var people []*ldap.AddRequest
	members := map[string][]string{} // team -> user DNs
	var preExisting []string
	n := 0
	for _, t := range orgTeams {
		for k := range t.size {
			n++
			s := slot{t.name, k}
			given := firstNames[rng.IntN(len(firstNames))]
			family := lastNames[rng.IntN(len(lastNames))]
			p := person{
				uid: uidOf(given, family, taken), given: given, family: family,
				employeeNumber: employeeNumber(n), department: t.department, team: t.name,
				office: t.office, disabled: is(orgDisabled, s),
			}
			switch {
			case s == orgNoMail:
			case s == orgBadMail:
				p.mail = p.uid + "." + Domain // no '@'
			case is(orgPartners, s):
				p.mail = p.uid + "@" + PartnerDomain
			default:
				p.mail = p.uid + "@" + Domain
			}
			if is(orgPreExisting, s) {
				preExisting = append(preExisting, p.mail)
			}
			people = append(people, p.entry())
			members[t.name] = append(members[t.name], UserDN(p.uid))
		}
	}
	pick := func(team string, ks ...int) []string {
		var out []string
		for _, k := range ks {
			out = append(out, members[team][k])
		}
		return out
	}
	var leads []string // the first member of each team
	for _, t := range orgTeams {
		leads = append(leads, members[t.name][0])
	}
	groups := func(names ...string) []string {
		var out []string
		for _, n := range names {
			out = append(out, groupMemberDN(n))
		}
		return out
	}

	var groupEntries []*ldap.AddRequest
	for _, t := range orgTeams {
		m := members[t.name]
		if t.name == "Platform" {
			m = concat(m, groups("SRE")) // Engineering > Platform > SRE: depth 3
		}
		if t.name == "Marketing" {
			m = concat(m, pick("Sales-EMEA", 10, 11, 12, 13, 14)) // also in Sales
		}
		groupEntries = append(groupEntries, groupEntry(t.name, t.department+" team", m))
	}
	groupEntries = append(groupEntries,
		groupEntry("Engineering", "Engineering department", groups("Backend", "Frontend", "Platform")),
		groupEntry("Sales", "Sales department", groups("Sales-EMEA", "Sales-Americas", "Sales-APAC")),
		groupEntry("Support", "Support department", groups("Support-Tier1", "Support-Tier2")),
		groupEntry("All-Staff", "Everyone", groups("Engineering", "Sales", "Support", "Marketing",
			"Finance", "HR", "Executives", "IT")),
		groupEntry("Managers", "Team leads", leads),
		groupEntry("Project-Alpha", "Cross-team project (contains Project-Beta, which contains it)",
			concat(pick("Backend", 1, 2, 3, 4, 5, 6), groups("Project-Beta"))),
		groupEntry("Project-Beta", "Cross-team project (contains Project-Alpha)",
			concat(pick("Marketing", 1, 2, 3, 4), pick("Sales-Americas", 1, 2), groups("Project-Alpha"))),
		groupEntry("Interns", "No interns this season", nil),
	)

	entries := concat(skeleton(), people, groupEntries)
	return Demo{
		Suffix:           Suffix,
		Entries:          entries,
		Rules:            orgRules(),
		Catalog:          Catalog(),
		Seats:            map[string]int{Meeting: 300, Webinar: 60, Connect: 200},
		ValidatedDomains: []string{Domain},
		PreExisting:      preExisting,
		Mappings:         orgMappings(),
	}
}

func orgRules() []rules.Rule {
	rs := []rules.Rule{
		{GroupDN: GroupDN("Executives"), Role: Admin, Products: []string{Meeting, Webinar, Connect},
			UserGroup: "Leadership", DeviceGroups: []string{"DG-Executive"}, SettingsTemplate: Executive,
			Note: "Executives get everything"},
		{GroupDN: GroupDN("Managers"), Role: Manager, Products: []string{Meeting},
			Note: "Team leads manage their team; below Executives so executives stay Admin"},
		{GroupDN: GroupDN("IT"), Role: Admin, Products: []string{Meeting, Connect}, UserGroup: "IT",
			SettingsTemplate: Standard},
		{GroupDN: GroupDN("Marketing"), Role: Member, Products: []string{Meeting, Webinar},
			UserGroup: "Marketing", SettingsTemplate: Standard,
			Note: "Above Sales: sales people in Marketing land in the Marketing user group"},
		{GroupDN: GroupDN("Sales"), Role: Member, Products: []string{Meeting, Webinar, Connect},
			UserGroup: "Sales", DeviceGroups: []string{"DG-Sales"}, SettingsTemplate: Standard},
		{GroupDN: GroupDN("Engineering"), Role: Member, Products: []string{Meeting},
			UserGroup: "Engineering", DeviceGroups: []string{"DG-Engineering"}, SettingsTemplate: Standard},
		{GroupDN: GroupDN("Support"), Role: Member, Products: []string{Meeting, Connect},
			UserGroup: "Support", SettingsTemplate: Restricted},
		{GroupDN: GroupDN("Project-Alpha"), Products: []string{Connect}, DeviceGroups: []string{"DG-Projects"},
			CustomFields: map[string]string{"project": "alpha"}},
		{GroupDN: GroupDN("Interns"), Role: Member, Products: []string{Meeting}, SettingsTemplate: Restricted,
			Note: "Empty group: matches nobody"},
	}
	for i := range rs {
		rs[i].ID = int64(i + 1)
		rs[i].Priority = i + 1
	}
	return rs
}

func orgMappings() []plan.Mapping {
	return []plan.Mapping{
		{Source: "employeeNumber", Target: "enterprise:employeeNumber"},
		{Source: "departmentNumber", Target: "enterprise:department"},
		{Source: "l", Target: "custom:office"},
	}
}

func concat[T any](parts ...[]T) []T {
	var out []T
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}
