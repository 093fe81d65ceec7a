// Package plantest helps test planning: random organizations, and a plan.Store in memory so
// that plan.Stream can be checked against plan.Plan without a database.
package plantest

import (
	"fmt"
	"math/rand"
	"slices"
	"strings"

	"github.com/usersync/usersync/internal/directory"
	"github.com/usersync/usersync/internal/plan"
	"github.com/usersync/usersync/internal/rules"
	"github.com/usersync/usersync/internal/vocab"
)

// Groups of the random organizations.
const (
	Admins = "cn=admins,ou=groups,dc=example,dc=com"
	Staff  = "cn=staff,ou=groups,dc=example,dc=com"
	Sales  = "cn=sales,ou=groups,dc=example,dc=com"
	Guests = "cn=guests,ou=groups,dc=example,dc=com" // no rule
)

// Rules and Mappings of the random organizations.
var (
	Rules = []rules.Rule{
		{ID: 1, Priority: 1, GroupDN: Admins, Role: "Admin", Products: []string{"Meeting", "Webinar"}},
		{ID: 2, Priority: 2, GroupDN: Staff, Role: "Member", Products: []string{"Meeting"}, UserGroup: "Staff", DeviceGroups: []string{"Laptops"}},
		{ID: 3, Priority: 3, GroupDN: Sales, Products: []string{"Webinar"}, SettingsTemplate: "Sales"},
	}
	Mappings = []plan.Mapping{{Source: "department", Target: "enterprise:department"}}
)

// RandomOrg generates a small organization, its directory and what an earlier sync left:
// seat shortages, leavers, held suspensions, suspicious reads, retries, failures to clear.
// names is the userName of every externalId it mentions (directory users, linked accounts
// gone from the directory, failed users never linked).
func RandomOrg(r *rand.Rand) (in plan.Input, names map[string]string) {
	in = plan.Input{Rules: Rules, Mappings: Mappings,
		ValidatedDomains: map[string]bool{"example.com": true},
		Applied:          map[string]plan.Applied{}, Failed: map[string]vocab.Failure{},
		Seats:                   map[string]int{"Meeting": r.Intn(25), "Webinar": r.Intn(8)},
		Held:                    map[string]map[string]bool{},
		SuspendThresholdPercent: []int{10, 50}[r.Intn(2)], SuspendThresholdMax: []int{2, 500}[r.Intn(2)]}
	names = map[string]string{}
	n := r.Intn(40)
	for i := range n {
		name := []string{"ann", "Bob", "cid", "Dan", "eve", "FAY"}[r.Intn(6)] + fmt.Sprint(i)
		email := strings.ToLower(name) + "@example.com"
		var problems []string
		switch r.Intn(20) {
		case 0:
			email = strings.ToLower(name) + "@other.org"
		case 1:
			email = "not-an-email"
		case 2: // a bad value in the directory entry (see directory.User.Problems)
			problems = []string{`attribute "displayName": contains a NUL character`}
		}
		u := directory.User{ExternalID: fmt.Sprintf("%08x", r.Uint32()), UserName: email, Email: email,
			GivenName: name, Disabled: r.Intn(10) == 0, Problems: problems}
		for _, g := range []string{Admins, Staff, Sales, Guests} {
			if r.Intn(3) == 0 {
				u.Groups = append(u.Groups, g)
			}
		}
		if r.Intn(2) == 0 {
			u.Attributes = map[string]string{"department": []string{"R&D", "Sales"}[r.Intn(2)]}
		}
		in.Users = append(in.Users, u)
		names[u.ExternalID] = u.UserName
		if r.Intn(2) == 0 {
			in.Applied[u.ExternalID] = appliedFor(r, u)
		}
	}
	for range r.Intn(6) { // linked accounts the directory no longer returns
		id := fmt.Sprintf("%08x", r.Uint32())
		names[id] = "gone-" + id + "@example.com"
		in.Applied[id] = plan.Applied{ExternalID: id, ScimID: "scim-" + id,
			State: plan.Desired{ExternalID: id, UserName: names[id], Email: names[id], Active: r.Intn(4) > 0, Products: []string{"Meeting"}}}
	}
	for range r.Intn(3) { // failed users never linked, gone from the directory
		id := fmt.Sprintf("%08x", r.Uint32())
		names[id] = "never-" + id + "@example.com"
		in.Failed[id] = vocab.Failure{Type: vocab.ExistingAccount, Message: "exists"}
	}
	for _, id := range sortedKeys(names) {
		if _, failed := in.Failed[id]; !failed && r.Intn(5) == 0 {
			typ := vocab.FailureTypes[r.Intn(len(vocab.FailureTypes))]
			in.Failed[id] = vocab.Failure{Type: typ, Product: map[bool]string{true: "Webinar"}[typ == vocab.OutOfLicenses], Message: "earlier"}
		}
		if r.Intn(8) == 0 { // a write whose outcome is unknown
			if in.Reconcile == nil {
				in.Reconcile = map[string]string{}
			}
			in.Reconcile[id] = names[id]
		}
		ap, linked := in.Applied[id]
		// Seats held, within what was bought: the products of the account, and seats that
		// disagree with it; without an account: reserved for a write, sent or not.
		if _, reconcile := in.Reconcile[id]; linked || reconcile || r.Intn(3) == 0 {
			for _, p := range []string{"Meeting", "Webinar"} {
				if (slices.Contains(ap.State.Products, p) || r.Intn(map[bool]int{true: 8, false: 2}[linked]) == 0) && len(in.Held[p]) < in.Seats[p] {
					if in.Held[p] == nil {
						in.Held[p] = map[string]bool{}
					}
					in.Held[p][id] = true
				}
			}
		}
	}
	switch r.Intn(5) {
	case 0:
		in.PreviousSnapshotSize = 3*n + 1 // this read looks too small
	case 1:
		in.PreviousSnapshotSize = n
	}
	if r.Intn(4) == 0 {
		in.Retry = &vocab.Filter{Type: []string{"", vocab.OutOfLicenses, vocab.TargetUnavailable}[r.Intn(3)]}
		if ids := sortedKeys(in.Failed); len(ids) > 0 && r.Intn(2) == 0 { // one user, by name or ID
			id := ids[r.Intn(len(ids))]
			in.Retry = &vocab.Filter{User: []string{id, strings.ToUpper(names[id])}[r.Intn(2)]}
		}
	}
	in.ApproveSuspensions = r.Intn(5) == 0
	return in, names
}

// appliedFor is what an earlier sync wrote for u: its current desired state, or something
// that has since changed.
func appliedFor(r *rand.Rand, u directory.User) plan.Applied {
	d := plan.Desired{ExternalID: u.ExternalID, UserName: u.UserName, Email: u.Email, Active: true}
	if a, ok := rules.Resolve(Rules, u.Groups); ok {
		d = plan.Build(u, a, Mappings)
	}
	switch r.Intn(4) {
	case 0:
		d.DisplayName = "Old Name"
	case 1:
		d.Active = r.Intn(2) == 0
	}
	return plan.Applied{ExternalID: u.ExternalID, ScimID: "scim-" + u.ExternalID, State: d}
}

// Covered names what a plan result exercises, so that a randomized test can check that its
// cases cover what they claim to: actions, failure types, "directory problem" (a failure
// for a bad directory value), "resolved", "suspicious", "unchanged", "retry by user",
// "suspend unlinked" (a write whose outcome is unknown, the user out of scope), "seats
// without account resolved".
func Covered(in plan.Input, res plan.Result) []string {
	var out []string
	for _, it := range res.Items {
		out = append(out, string(it.Action))
		if _, linked := in.Applied[it.ExternalID]; !linked && it.Action == plan.Suspend {
			out = append(out, "suspend unlinked")
		}
		if it.Failure != nil {
			out = append(out, it.Failure.Type)
			if strings.HasPrefix(it.Failure.Message, "directory entry has values") { // plan.CheckDirectoryUser
				out = append(out, "directory problem")
			}
		}
	}
	if len(res.Resolved) > 0 {
		out = append(out, "resolved")
	}
	for _, id := range res.Resolved {
		if _, linked := in.Applied[id]; !linked && in.Failed[id].Type == "" {
			out = append(out, "seats without account resolved")
		}
	}
	if slices.ContainsFunc(res.Warnings, func(w string) bool { return strings.Contains(w, "suspicious") }) {
		out = append(out, "suspicious")
	}
	if res.Unchanged > 0 {
		out = append(out, "unchanged")
	}
	if in.Retry != nil && in.Retry.User != "" && len(res.Items)+len(res.Resolved) > 0 {
		out = append(out, "retry by user")
	}
	return out
}

// MustCover is what Covered should have named over a randomized test's cases.
var MustCover = []string{"create", "update", "suspend", "fail", vocab.OutOfLicenses, vocab.SuspensionHeld,
	vocab.DomainNotValidated, vocab.InvalidUserData, "directory problem", "resolved", "suspicious", "unchanged", "retry by user",
	"suspend unlinked", "seats without account resolved"}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
