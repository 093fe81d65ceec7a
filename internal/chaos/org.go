package chaos

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"

	"github.com/go-ldap/ldap/v3"

	"github.com/usersync/usersync/internal/demo"
	"github.com/usersync/usersync/internal/rules"
)

// Org is the organization a fault run syncs: demo.Generate's users in teams of about 100,
// one rule per team (so that moving a user changes products), fewer Webinar seats than
// users entitled to it (out_of_licenses), and a few userNames already taken in the target by
// unlinked accounts (existing_account).
func Org(users int, seed uint64) demo.Demo {
	d := demo.Generate(users, int64(seed%1_000_000))
	var rs []rules.Rule
	webinar := 0
	for i, team := range teams(d) {
		products := []string{demo.Meeting}
		if i%2 == 0 {
			products = append(products, demo.Webinar)
			webinar += len(members(d, team))
		}
		if i%3 == 0 {
			products = append(products, demo.Connect)
		}
		rs = append(rs, rules.Rule{ID: int64(i + 1), Priority: i + 1, GroupDN: rules.NormalizeDN(team),
			Role: demo.Member, Products: products, UserGroup: "Group-" + fmt.Sprint(i%5), SettingsTemplate: demo.Standard})
	}
	d.Rules = rs
	// Seats: everyone gets Meeting and Connect; Webinar runs short, and moves between teams
	// take and free Webinar seats in the resync.
	d.Seats = map[string]int{demo.Meeting: users + users/10, demo.Connect: users + users/10, demo.Webinar: webinar * 3 / 4}
	rng := rand.New(rand.NewPCG(seed, 1))
	for range 3 {
		d.PreExisting = append(d.PreExisting, fmt.Sprintf("user%07d@%s", 1+rng.IntN(users), demo.Domain))
	}
	slices.Sort(d.PreExisting)
	d.PreExisting = slices.Compact(d.PreExisting)
	return d
}

// teams are the DNs of the generated teams (groups whose members are users).
func teams(d demo.Demo) []string {
	var out []string
	for _, e := range d.Entries {
		if strings.HasPrefix(e.DN, "cn=Team-") {
			out = append(out, e.DN)
		}
	}
	return out
}

func members(d demo.Demo, groupDN string) []string {
	for _, e := range d.Entries {
		if e.DN == groupDN {
			return attrValues(e, "member")
		}
	}
	return nil
}

func attrValues(e *ldap.AddRequest, name string) []string {
	for _, a := range e.Attributes {
		if a.Type == name {
			return a.Vals
		}
	}
	return nil
}

// Changes is what the resync finds changed in the directory.
type Changes struct {
	Renamed, Moved, Disabled, Added int
}

// ChangeDirectory applies, through conn, the changes of a resync: 2% of the users renamed
// (a PATCH of a linked account), 2% moved to another team (products and seats change), 1%
// disabled (leavers: suspended), and 1% new users. The choice is drawn from rng.
func ChangeDirectory(ctx context.Context, conn *ldap.Conn, d demo.Demo, rng *rand.Rand) (Changes, error) {
	var c Changes
	ts := teams(d)
	n := 0
	for _, e := range d.Entries {
		if len(attrValues(e, "uid")) > 0 {
			n++
		}
	}
	pick := func(k int) []int { return rng.Perm(n)[:max(1, k)] }
	userDN := func(i int) string { return demo.UserDN(fmt.Sprintf("user%07d", i+1)) }
	for _, i := range pick(n / 50) {
		m := ldap.NewModifyRequest(userDN(i), nil)
		m.Replace("displayName", []string{fmt.Sprintf("Renamed %d", i+1)})
		if err := conn.Modify(m); err != nil {
			return c, fmt.Errorf("rename %s: %w", userDN(i), err)
		}
		c.Renamed++
	}
	if len(ts) > 1 {
		for _, i := range pick(n / 50) {
			dn := userDN(i)
			from := ""
			for _, t := range ts {
				if slices.Contains(members(d, t), dn) {
					from = t
				}
			}
			to := ts[rng.IntN(len(ts))]
			if from == "" || to == from || len(members(d, from)) < 2 {
				continue
			}
			rm := ldap.NewModifyRequest(from, nil)
			rm.Delete("member", []string{dn})
			add := ldap.NewModifyRequest(to, nil)
			add.Add("member", []string{dn})
			if err := conn.Modify(rm); err != nil {
				return c, fmt.Errorf("move %s out of %s: %w", dn, from, err)
			}
			if err := conn.Modify(add); err != nil {
				return c, fmt.Errorf("move %s to %s: %w", dn, to, err)
			}
			c.Moved++
		}
	}
	for _, i := range pick(n / 100) {
		m := ldap.NewModifyRequest(userDN(i), nil)
		m.Replace("employeeType", []string{"disabled"})
		if err := conn.Modify(m); err != nil {
			return c, fmt.Errorf("disable %s: %w", userDN(i), err)
		}
		c.Disabled++
	}
	for k := range max(1, n/100) {
		uid := fmt.Sprintf("new%07d", k+1)
		e := ldap.NewAddRequest(demo.UserDN(uid), nil)
		e.Attribute("objectClass", []string{"top", "person", "organizationalPerson", "inetOrgPerson"})
		e.Attribute("uid", []string{uid})
		e.Attribute("cn", []string{"New " + uid})
		e.Attribute("sn", []string{uid})
		e.Attribute("givenName", []string{"New"})
		e.Attribute("displayName", []string{"New " + uid})
		e.Attribute("mail", []string{uid + "@" + demo.Domain})
		e.Attribute("employeeNumber", []string{fmt.Sprintf("N%05d", k+1)})
		if err := conn.Add(e); err != nil {
			return c, fmt.Errorf("add %s: %w", uid, err)
		}
		m := ldap.NewModifyRequest(ts[rng.IntN(len(ts))], nil)
		m.Add("member", []string{demo.UserDN(uid)})
		if err := conn.Modify(m); err != nil {
			return c, fmt.Errorf("add %s to a team: %w", uid, err)
		}
		c.Added++
	}
	return c, nil
}
