package plantest

import (
	"context"
	"fmt"
	"maps"
	"math/rand"
	"slices"

	"github.com/usersync/usersync/internal/directory"
	"github.com/usersync/usersync/internal/plan"
	"github.com/usersync/usersync/internal/rules"
)

// Delta runs: a directory as a mirror holds it, a clean run over it, and a random change
// recorded as an incremental read records it (directory.Changes), so that a test can check
// that a delta run plans what a full run plans.

// Nested groups of the random directories (no rule names them).
var Nested = []string{"cn=n1,ou=groups,dc=example,dc=com", "cn=n2,ou=groups,dc=example,dc=com", "cn=n3,ou=groups,dc=example,dc=com"}

// Dir is a directory: user entries (Groups unset) by externalId, and groups with their direct
// members (DNs of users or groups, normalized).
type Dir struct {
	Users  map[string]directory.User
	Groups map[string][]string
}

func (d Dir) clone() Dir {
	c := Dir{Users: maps.Clone(d.Users), Groups: map[string][]string{}}
	for g, ms := range d.Groups {
		c.Groups[g] = slices.Clone(ms)
	}
	return c
}

// Read is d's snapshot: the users the ruled groups hold, directly or through nested groups
// (cycles included), each with the ruled groups that hold it.
func (d Dir) Read() []directory.User {
	var requested []string
	for _, r := range Rules {
		requested = append(requested, rules.NormalizeDN(r.GroupDN))
	}
	slices.Sort(requested)
	requested = slices.Compact(requested)
	held := map[string][]string{} // user DN -> ruled groups
	for _, root := range requested {
		if _, ok := d.Groups[root]; !ok {
			continue
		}
		seen := map[string]bool{root: true}
		stack := []string{root}
		for len(stack) > 0 {
			g := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			for _, m := range d.Groups[g] {
				if _, isGroup := d.Groups[m]; isGroup {
					if !seen[m] {
						seen[m] = true
						stack = append(stack, m)
					}
				} else if !slices.Contains(held[m], root) {
					held[m] = append(held[m], root)
				}
			}
		}
	}
	var out []directory.User
	for _, id := range slices.Sorted(maps.Keys(d.Users)) {
		u := d.Users[id]
		if gs := held[u.DN]; len(gs) > 0 {
			u.Groups = gs
			out = append(out, u)
		}
	}
	return out
}

// Touched is what a delta snapshot of d finds touched by ch (directory.Touched).
func (d Dir) Touched(ch *directory.Changes) map[string]bool {
	groups := func(page func([]directory.GroupMembers) error) error {
		var gs []directory.GroupMembers
		for _, g := range slices.Sorted(maps.Keys(d.Groups)) {
			gs = append(gs, directory.GroupMembers{DN: g, Members: d.Groups[g]})
		}
		return page(gs)
	}
	users := func(page func([]directory.MirrorEntry) error) error {
		var es []directory.MirrorEntry
		for _, id := range slices.Sorted(maps.Keys(d.Users)) {
			es = append(es, directory.MirrorEntry{UUID: id, DN: d.Users[id].DN})
		}
		return page(es)
	}
	ids, _, err := directory.Touched(context.Background(), ch, groups, users, 1<<30)
	if err != nil {
		panic(err)
	}
	out := map[string]bool{}
	for _, id := range ids {
		out[id] = true
	}
	return out
}

func userDN(id string) string { return "uid=" + id + ",ou=people,dc=example,dc=com" }

// CleanOrg generates a directory and the state a clean run over it left (every user
// settled, no failure, no held suspension), and the input of the next run with the same
// settings, but for its Users. ok is false when the clean run was not clean (a read that
// looks wrong): take another.
func CleanOrg(r *rand.Rand) (in plan.Input, d Dir, ok bool) {
	d = Dir{Users: map[string]directory.User{}, Groups: map[string][]string{}}
	all := append([]string{Admins, Staff, Sales, Guests}, Nested...)
	for _, g := range all {
		d.Groups[g] = []string{}
	}
	for i := range 1 + r.Intn(30) {
		id := fmt.Sprintf("%08x", r.Uint32())
		d.Users[id] = randomUser(r, id, i)
		for _, g := range all {
			if r.Intn(4) == 0 {
				d.Groups[g] = append(d.Groups[g], userDN(id))
			}
		}
	}
	for _, n := range Nested {
		for _, g := range all {
			if g != n && r.Intn(4) == 0 {
				d.Groups[g] = append(d.Groups[g], n)
			}
		}
	}
	in = plan.Input{Users: d.Read(), Rules: Rules, Mappings: Mappings,
		ValidatedDomains: map[string]bool{"example.com": true}, Applied: map[string]plan.Applied{},
		Seats: map[string]int{"Meeting": 1000, "Webinar": 1000}, Held: map[string]map[string]bool{}, ApproveSuspensions: true}
	for range r.Intn(3) { // accounts linked by an earlier sync, gone from the directory
		id := fmt.Sprintf("%08x", r.Uint32())
		in.Applied[id] = plan.Applied{ExternalID: id, ScimID: "scim-" + id, State: plan.Desired{ExternalID: id,
			UserName: "gone-" + id + "@example.com", Email: "gone-" + id + "@example.com", Active: true}}
	}
	res := plan.Plan(in)
	if len(res.Warnings) > 0 {
		return in, d, false
	}
	for _, it := range res.Items {
		if it.Action == plan.Fail {
			return in, d, false
		}
		in.Applied[it.ExternalID] = plan.Applied{ExternalID: it.ExternalID, ScimID: "scim-" + it.ExternalID, State: it.Desired}
	}
	// The seats the accounts hold, and a few more (or none) to buy.
	in.Seats = map[string]int{}
	for _, p := range []string{"Meeting", "Webinar"} {
		in.Held[p] = map[string]bool{}
		for id, ap := range in.Applied {
			if ap.State.Active && slices.Contains(ap.State.Products, p) {
				in.Held[p][id] = true
			}
		}
		in.Seats[p] = len(in.Held[p]) + r.Intn(3)
	}
	in.Users, in.ApproveSuspensions = nil, false
	in.PreviousSnapshotSize = res.InScope
	in.SuspendThresholdPercent, in.SuspendThresholdMax = []int{10, 50}[r.Intn(2)], []int{2, 500}[r.Intn(2)]
	return in, d, true
}

func randomUser(r *rand.Rand, id string, i int) directory.User {
	name := []string{"ann", "Bob", "cid", "Dan", "eve", "FAY"}[r.Intn(6)] + fmt.Sprint(i)
	email := fmt.Sprintf("%s-%s@example.com", name, id)
	u := directory.User{ExternalID: id, DN: userDN(id), UserName: email, Email: email, GivenName: name, Disabled: r.Intn(10) == 0}
	if r.Intn(2) == 0 {
		u.Attributes = map[string]string{"department": []string{"R&D", "Sales"}[r.Intn(2)]}
	}
	return u
}

// Change changes d at random (users changed, renamed, added, deleted; members added to and
// removed from groups; a nested group deleted) and returns the directory after and the
// changes as an incremental read records them.
func Change(r *rand.Rand, before Dir) (Dir, *directory.Changes) {
	d := before.clone()
	ch := &directory.Changes{}
	ids := func() []string { return slices.Sorted(maps.Keys(d.Users)) }
	groups := func() []string { return slices.Sorted(maps.Keys(d.Groups)) }
	for range 1 + r.Intn(4) {
		switch r.Intn(7) {
		case 0: // an attribute, the email (maybe of a domain not validated), disabled
			if us := ids(); len(us) > 0 {
				id := us[r.Intn(len(us))]
				u := d.Users[id]
				switch r.Intn(4) {
				case 0:
					u.DisplayName = "Changed " + id
				case 1:
					u.Attributes = map[string]string{"department": "Changed"}
				case 2:
					u.Email = []string{"x-" + id + "@example.com", "x-" + id + "@other.org", "not-an-email"}[r.Intn(3)]
					u.UserName = u.Email
				case 3:
					u.Disabled = !u.Disabled
				}
				d.Users[id] = u
				ch.Users = append(ch.Users, id)
			}
		case 1: // renamed: the groups still name the old DN
			if us := ids(); len(us) > 0 {
				id := us[r.Intn(len(us))]
				u := d.Users[id]
				u.DN = userDN(id + "-renamed")
				d.Users[id] = u
				ch.Users = append(ch.Users, id)
			}
		case 2: // deleted: the groups still name it
			if us := ids(); len(us) > 0 {
				id := us[r.Intn(len(us))]
				delete(d.Users, id)
				ch.Deleted = append(ch.Deleted, id)
			}
		case 3: // added, maybe to a group
			id := fmt.Sprintf("%08x", r.Uint32())
			d.Users[id] = randomUser(r, id, 100+r.Intn(100))
			ch.Users = append(ch.Users, id)
			if gs := groups(); r.Intn(2) == 0 {
				g := gs[r.Intn(len(gs))]
				d.Groups[g] = append(d.Groups[g], userDN(id))
			}
		case 4: // a member added: a user or a nested group
			gs := groups()
			g := gs[r.Intn(len(gs))]
			m := Nested[r.Intn(len(Nested))]
			if us := ids(); len(us) > 0 && r.Intn(2) == 0 {
				m = d.Users[us[r.Intn(len(us))]].DN
			}
			d.Groups[g] = append(d.Groups[g], m)
		case 5: // a member removed
			gs := groups()
			g := gs[r.Intn(len(gs))]
			if ms := d.Groups[g]; len(ms) > 0 {
				i := r.Intn(len(ms))
				d.Groups[g] = slices.Delete(ms, i, i+1)
			}
		case 6: // a nested group deleted
			if g := Nested[r.Intn(len(Nested))]; d.Groups[g] != nil { // not deleted yet
				delete(d.Groups, g)
			}
		}
	}
	// The groups' changes, as the read that applies them records them.
	for _, g := range slices.Sorted(maps.Keys(before.Groups)) {
		b := &directory.GroupMembers{DN: g, Members: before.Groups[g]}
		if ms, ok := d.Groups[g]; ok {
			ch.Group(b, &directory.GroupMembers{DN: g, Members: ms})
		} else {
			ch.Group(b, nil)
		}
	}
	return d, ch
}
