package demo

import (
	"fmt"
	"math/rand/v2"
	"strings"

	"github.com/go-ldap/ldap/v3"
	"github.com/usersync/usersync/internal/rules"
)

// Generate builds a benchmark organization of n users (all enabled, all in the validated
// domain) spread at random (seeded) over teams of about 100. Groups nest three deep:
// Division-XX > Dept-XXX > Team-XXXX > users, ten children per parent. There is one rule
// per division, and seats for everyone.
func Generate(n int, seed int64) Demo {
	return generate(n, seed, tree{base: Suffix, people: PeopleDN, groups: GroupsDN}, skeleton())
}

// GenerateUnder builds the same organization as Generate, under base (an ou=<name> DN below
// Suffix, such as "ou=org0001,dc=example,dc=com") instead of the suffix: its entries are base
// itself, its own People and Groups containers and everything in them, and its rules name its
// own groups, so that many organizations can share one directory, each with its own subtree
// (the benchmark of a fleet). The suffix entry is not included: load it once (SuffixEntry).
func GenerateUnder(n int, seed int64, base string) Demo {
	t := tree{base: base, people: "ou=People," + base, groups: "ou=Groups," + base}
	rdn, _, _ := strings.Cut(base, ",")
	name := strings.TrimPrefix(rdn, "ou=")
	top := ldap.NewAddRequest(base, nil)
	top.Attribute("objectClass", []string{"top", "organizationalUnit"})
	top.Attribute("ou", []string{name})
	return generate(n, seed, t, concat([]*ldap.AddRequest{top}, t.containers()))
}

// SuffixEntry is the entry of Suffix alone (GenerateUnder's entries go below it).
func SuffixEntry() *ldap.AddRequest { return skeleton()[0] }

// generate builds Generate's organization in tree t, after the entries head.
func generate(n int, seed int64, tr tree, head []*ldap.AddRequest) Demo {
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
		people = append(people, p.entryAt(tr.userDN(p.uid)))
		teamMembers[t] = append(teamMembers[t], tr.userDN(p.uid))
	}

	groupEntries := make([]*ldap.AddRequest, 0, teams+depts+divisions)
	for t := range teams {
		groupEntries = append(groupEntries, tr.groupEntry(teamName(t), "", teamMembers[t]))
	}
	for d := range depts {
		var m []string
		for t := d * 10; t < min(teams, d*10+10); t++ {
			m = append(m, tr.groupMemberDN(teamName(t)))
		}
		groupEntries = append(groupEntries, tr.groupEntry(deptName(d), "", m))
	}
	var rs []rules.Rule
	for v := range divisions {
		var m []string
		for d := v * 10; d < min(depts, v*10+10); d++ {
			m = append(m, tr.groupMemberDN(deptName(d)))
		}
		groupEntries = append(groupEntries, tr.groupEntry(divisionName(v), "", m))
		products := []string{Meeting}
		if v%2 == 0 {
			products = append(products, Webinar)
		}
		if v%3 == 0 {
			products = append(products, Connect)
		}
		rs = append(rs, rules.Rule{ID: int64(v + 1), Priority: v + 1, GroupDN: tr.groupDN(divisionName(v)),
			Role: Member, Products: products, UserGroup: divisionName(v), SettingsTemplate: Standard})
	}

	return Demo{
		Suffix:           tr.base,
		Entries:          concat(head, people, groupEntries),
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

// Joiner is a new person i of Generate's organization and the change that adds them to its
// first team (in scope of a rule through the team's division): "a user added to a ruled
// group", as the watch-mode test and benchmark make it. Add the entry, then apply the change.
func Joiner(i int) (entry *ldap.AddRequest, join *ldap.ModifyRequest, mail string) {
	p := person{uid: fmt.Sprintf("joiner%05d", i), given: "Jo", family: fmt.Sprintf("Iner%d", i),
		employeeNumber: employeeNumber(9_000_000 + i), department: deptName(0), team: teamName(0)}
	p.mail = p.uid + "@" + Domain
	join = ldap.NewModifyRequest(groupMemberDN(teamName(0)), nil)
	join.Add("member", []string{UserDN(p.uid)})
	return p.entry(), join, p.mail
}
