package demo

import (
	"fmt"
	"math/rand/v2"

	"github.com/go-ldap/ldap/v3"
	"github.com/usersync/usersync/internal/rules"
)

// Generate builds a benchmark organization of n users (all enabled, all in the validated
// domain) spread at random (seeded) over teams of about 100. Groups nest three deep:
// Division-XX > Dept-XXX > Team-XXXX > users, ten children per parent. There is one rule
// per division, and seats for everyone.
func Generate(n int, seed int64) Demo {
	rng := rand.New(rand.NewPCG(uint64(seed), 0x5eed))
	teams := max(1, (n+99)/100)
	depts := max(1, (teams+9)/10)
	divisions := max(1, (depts+9)/10)

	teamMembers := make([][]string, teams)
	people := make([]*ldap.AddRequest, 0, n)
	for i := range n {
		given := firstNames[rng.IntN(len(firstNames))]
		family := lastNames[rng.IntN(len(lastNames))]
		t := rng.IntN(teams)
		p := person{
			uid: fmt.Sprintf("user%07d", i+1), given: given, family: family,
			employeeNumber: employeeNumber(i + 1), department: deptName(t / 10), team: teamName(t),
		}
		p.mail = p.uid + "@" + Domain
		people = append(people, p.entry())
		teamMembers[t] = append(teamMembers[t], UserDN(p.uid))
	}

	groupEntries := make([]*ldap.AddRequest, 0, teams+depts+divisions)
	for t := range teams {
		groupEntries = append(groupEntries, groupEntry(teamName(t), "", teamMembers[t]))
	}
	for d := range depts {
		var m []string
		for t := d * 10; t < min(teams, d*10+10); t++ {
			m = append(m, groupMemberDN(teamName(t)))
		}
		groupEntries = append(groupEntries, groupEntry(deptName(d), "", m))
	}
	var rs []rules.Rule
	for v := range divisions {
		var m []string
		for d := v * 10; d < min(depts, v*10+10); d++ {
			m = append(m, groupMemberDN(deptName(d)))
		}
		groupEntries = append(groupEntries, groupEntry(divisionName(v), "", m))
		products := []string{Meeting}
		if v%2 == 0 {
			products = append(products, Webinar)
		}
		if v%3 == 0 {
			products = append(products, Connect)
		}
		rs = append(rs, rules.Rule{ID: int64(v + 1), Priority: v + 1, GroupDN: GroupDN(divisionName(v)),
			Role: Member, Products: products, UserGroup: divisionName(v), SettingsTemplate: Standard})
	}

	return Demo{
		Suffix:           Suffix,
		Entries:          concat(skeleton(), people, groupEntries),
		Rules:            rs,
		Catalog:          Catalog(),
		Seats:            map[string]int{Meeting: n, Webinar: n, Connect: n},
		ValidatedDomains: []string{Domain},
		Mappings:         orgMappings(),
	}
}

func teamName(i int) string     { return fmt.Sprintf("Team-%04d", i+1) }
func deptName(i int) string     { return fmt.Sprintf("Dept-%03d", i+1) }
func divisionName(i int) string { return fmt.Sprintf("Division-%02d", i+1) }
