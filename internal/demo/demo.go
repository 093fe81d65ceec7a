// Package demo builds deterministic demo and benchmark organizations for an OpenLDAP
// directory: the entries to load, and the rules, catalog, seats, validated domains and
// attribute mappings that go with them. It is pure data: no I/O.
package demo

import (
	"fmt"
	"strings"

	"github.com/go-ldap/ldap/v3"
	"github.com/usersync/usersync/internal/plan"
	"github.com/usersync/usersync/internal/rules"
)

// Suffix is the directory suffix of every demo organization.
const Suffix = "dc=example,dc=com"

// Products, roles and templates of the demo target.
const (
	Meeting = "Meeting"
	Webinar = "Webinar"
	Connect = "Connect"

	Member  = "Member"
	Admin   = "Admin"
	Manager = "Manager"

	Standard   = "Standard"
	Restricted = "Restricted"
	Executive  = "Executive"
)

// Demo is one organization: directory content plus the usersync configuration for it.
type Demo struct {
	Suffix           string
	Entries          []*ldap.AddRequest // parents before children
	Rules            []rules.Rule       // priorities 1..n, GroupDN normalized
	Catalog          rules.Catalog
	Seats            map[string]int
	ValidatedDomains []string
	PreExisting      []string // userNames that already exist in the target, unlinked
	Mappings         []plan.Mapping
}

// Catalog is what the demo target knows.
func Catalog() rules.Catalog {
	return rules.Catalog{
		Products:  []string{Meeting, Webinar, Connect},
		Roles:     []string{Member, Admin, Manager},
		Templates: []string{Standard, Restricted, Executive},
	}
}

// PeopleDN and GroupsDN are the containers of users and groups.
var (
	PeopleDN = "ou=People," + Suffix
	GroupsDN = "ou=Groups," + Suffix
)

// GroupDN is the normalized DN of the demo group cn=<name>.
func GroupDN(name string) string { return rules.NormalizeDN("cn=" + name + "," + GroupsDN) }

// UserDN is the DN of the demo user uid=<uid>.
func UserDN(uid string) string { return "uid=" + uid + "," + PeopleDN }

// skeleton is the suffix entry and the two containers.
func skeleton() []*ldap.AddRequest {
	base := ldap.NewAddRequest(Suffix, nil)
	base.Attribute("objectClass", []string{"top", "dcObject", "organization"})
	base.Attribute("dc", []string{"example"})
	base.Attribute("o", []string{"Example Corp"})
	return concat([]*ldap.AddRequest{base}, tree{base: Suffix}.containers())
}

// tree is where an organization's entries go: its base, its users' and its groups' containers.
type tree struct{ base, people, groups string }

// containers are the People and Groups organizational units below the base.
func (t tree) containers() []*ldap.AddRequest {
	var out []*ldap.AddRequest
	for _, ou := range []string{"People", "Groups"} {
		e := ldap.NewAddRequest("ou="+ou+","+t.base, nil)
		e.Attribute("objectClass", []string{"top", "organizationalUnit"})
		e.Attribute("ou", []string{ou})
		out = append(out, e)
	}
	return out
}

func (t tree) userDN(uid string) string         { return "uid=" + uid + "," + t.people }
func (t tree) groupMemberDN(name string) string { return "cn=" + name + "," + t.groups }
func (t tree) groupDN(name string) string       { return rules.NormalizeDN(t.groupMemberDN(name)) }

// person is one inetOrgPerson to create.
type person struct {
	uid, given, family, mail, employeeNumber, department, team, office string
	disabled                                                           bool
}

func (p person) entry() *ldap.AddRequest { return p.entryAt(UserDN(p.uid)) }

// entryAt is the person's entry at dn.
func (p person) entryAt(dn string) *ldap.AddRequest {
	e := ldap.NewAddRequest(dn, nil)
	display := p.given + " " + p.family
	e.Attribute("objectClass", []string{"top", "person", "organizationalPerson", "inetOrgPerson"})
	e.Attribute("uid", []string{p.uid})
	e.Attribute("cn", []string{display})
	e.Attribute("sn", []string{p.family})
	e.Attribute("givenName", []string{p.given})
	e.Attribute("displayName", []string{display})
	if p.mail != "" {
		e.Attribute("mail", []string{p.mail})
	}
	e.Attribute("employeeNumber", []string{p.employeeNumber})
	e.Attribute("departmentNumber", []string{p.department})
	if p.team != "" {
		e.Attribute("ou", []string{p.team})
	}
	if p.office != "" {
		e.Attribute("l", []string{p.office})
	}
	if p.disabled {
		e.Attribute("employeeType", []string{"disabled"})
	}
	return e
}

// groupEntry is a groupOfNames. groupOfNames requires a member, so an empty group lists
// itself, which readers treat as a (harmless) self-cycle.
func groupEntry(name, description string, members []string) *ldap.AddRequest {
	return tree{groups: GroupsDN}.groupEntry(name, description, members)
}

// groupEntry is groupEntry in t's groups container.
func (t tree) groupEntry(name, description string, members []string) *ldap.AddRequest {
	dn := t.groupMemberDN(name)
	if len(members) == 0 {
		members = []string{dn}
	}
	e := ldap.NewAddRequest(dn, nil)
	e.Attribute("objectClass", []string{"top", "groupOfNames"})
	e.Attribute("cn", []string{name})
	if description != "" {
		e.Attribute("description", []string{description})
	}
	e.Attribute("member", members)
	return e
}

func groupMemberDN(name string) string { return "cn=" + name + "," + GroupsDN }

func employeeNumber(i int) string { return fmt.Sprintf("E%05d", i) }

var firstNames = []string{"Anna", "Ben", "Carla", "David", "Elena", "Felix", "Grace", "Hugo", "Ines",
	"Jonas", "Kira", "Liam", "Maria", "Noah", "Olivia", "Paul", "Quinn", "Rosa", "Sam", "Tara",
	"Umar", "Vera", "Will", "Xenia", "Yusuf", "Zoe", "Aiko", "Bruno", "Chen", "Dara", "Emil",
	"Fatima", "Goran", "Hana", "Ivan", "Julia", "Kofi", "Lena", "Mateo", "Nora"}

var lastNames = []string{"Schmidt", "Garcia", "Nguyen", "Smith", "Rossi", "Kowalski", "Okafor",
	"Tanaka", "Silva", "Johansson", "Dubois", "Müller", "Kim", "Patel", "Novak", "Cohen", "Brown",
	"Fischer", "Lopez", "Ivanova", "Moreau", "Jensen", "Haddad", "Costa", "Sato", "Weber",
	"Khan", "Murphy", "Larsen", "Bianchi"}

// uidOf builds an ASCII uid from a name, unique within taken.
func uidOf(given, family string, taken map[string]bool) string {
	base := asciiLower(given) + "." + asciiLower(family)
	uid := base
	for n := 2; taken[uid]; n++ {
		uid = fmt.Sprintf("%s%d", base, n)
	}
	taken[uid] = true
	return uid
}

func asciiLower(s string) string {
	r := strings.NewReplacer("ü", "ue", "ö", "oe", "ä", "ae", "é", "e")
	return strings.ToLower(r.Replace(s))
}

// TargetSeats are the seat limits the demo's SCIM sandbox enforces: the vendor's side, ten
// times the seats usersync starts with, so that `starter licenses set` (buying seats) is all
// the admin needs before a retry, and a usersync bug that over-allocated would still be
// refused by the target.
func (d Demo) TargetSeats() map[string]int {
	out := make(map[string]int, len(d.Seats))
	for p, n := range d.Seats {
		out[p] = 10 * n
	}
	return out
}
