package activities

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/usersync/usersync/internal/devstack"
	"github.com/usersync/usersync/internal/directory"
	"github.com/usersync/usersync/internal/plan"
	"github.com/usersync/usersync/internal/rules"
	"github.com/usersync/usersync/internal/store"
)

const (
	admins = "cn=admins,ou=groups,dc=example,dc=com"
	staff  = "cn=staff,ou=groups,dc=example,dc=com"
	sales  = "cn=sales,ou=groups,dc=example,dc=com"
	guests = "cn=guests,ou=groups,dc=example,dc=com" // no rule
)

var testRules = []rules.Rule{
	{ID: 1, Priority: 1, GroupDN: admins, Role: "Admin", Products: []string{"Meeting", "Webinar"}},
	{ID: 2, Priority: 2, GroupDN: staff, Role: "Member", Products: []string{"Meeting"}, UserGroup: "Staff", DeviceGroups: []string{"Laptops"}},
	{ID: 3, Priority: 3, GroupDN: sales, Products: []string{"Webinar"}, SettingsTemplate: "Sales"},
}

var testMappings = []plan.Mapping{{Source: "department", Target: "enterprise:department"}}

// The streaming PlanRun (snapshot and per-user state read from PostgreSQL, items written as
// decided, seats handed out from the work table) decides exactly what the in-memory plan.Plan
// decides, over random organizations: seat shortages, leavers, held suspensions, suspicious
// reads, retries, failures cleared.
func TestPlanRunDecidesExactlyWhatPlanDecides(t *testing.T) {
	url := devstack.TestDatabase(t)
	ctx := context.Background()
	st, err := store.Open(ctx, url)
	require.NoError(t, err)
	t.Cleanup(st.Close)
	seen := map[string]bool{} // make sure the cases cover what they claim to
	for seed := int64(1); seed <= 60; seed++ {
		r := rand.New(rand.NewSource(seed))
		org, runID := fmt.Sprintf("org-%d", seed), fmt.Sprintf("org-%d/run/1", seed)
		in, names := randomOrg(r)
		loadOrg(t, ctx, st, org, runID, in, names)
		acts := &Activities{Store: st, SuspendThresholdPercent: in.SuspendThresholdPercent, SuspendThresholdMax: in.SuspendThresholdMax}
		got, err := acts.PlanRun(ctx, PlanInput{RunRef: RunRef{Org: org, RunID: runID}, Retry: in.Retry, ApproveSuspensions: in.ApproveSuspensions})
		require.NoError(t, err, "seed %d", seed)
		want := plan.Plan(in)

		items, err := st.WorkItems(ctx, runID, 1000)
		require.NoError(t, err)
		require.Equal(t, normalized(t, want.Items), items, "seed %d: items", seed)
		require.Equal(t, summarize(want), got, "seed %d: counts", seed)

		failed, err := st.FailedUsers(ctx, org)
		require.NoError(t, err)
		var left []string
		for id := range in.Failed {
			if !slices.Contains(want.Resolved, id) {
				left = append(left, id)
			}
		}
		require.ElementsMatch(t, left, keys(failed), "seed %d: failures after clearing the resolved", seed)

		for _, it := range want.Items {
			seen[string(it.Action)] = true
			if it.Failure != nil {
				seen[it.Failure.Type] = true
			}
		}
		seen["resolved"] = seen["resolved"] || len(want.Resolved) > 0
		seen["suspicious"] = seen["suspicious"] || slices.ContainsFunc(want.Warnings, func(w string) bool { return strings.Contains(w, "suspicious") })
		seen["unchanged"] = seen["unchanged"] || want.Unchanged > 0
		if in.Retry != nil && in.Retry.User != "" && len(want.Items)+len(want.Resolved) > 0 {
			seen["retry by user"] = true
		}
	}
	for _, c := range []string{"create", "update", "suspend", "fail", plan.OutOfLicenses, plan.SuspensionHeld,
		plan.DomainNotValidated, plan.InvalidUserData, "resolved", "suspicious", "unchanged", "retry by user"} {
		require.True(t, seen[c], "no case covered %q: change the generator", c)
	}
}

// randomOrg generates a small organization, its directory and what an earlier sync left.
func randomOrg(r *rand.Rand) (plan.Input, map[string]string) {
	in := plan.Input{Rules: testRules, Mappings: testMappings,
		ValidatedDomains: map[string]bool{"example.com": true},
		Applied:          map[string]plan.Applied{}, Failed: map[string]plan.Failure{},
		Seats:                   map[string]int{"Meeting": r.Intn(25), "Webinar": r.Intn(8)},
		Held:                    map[string]map[string]bool{},
		SuspendThresholdPercent: []int{10, 50}[r.Intn(2)], SuspendThresholdMax: []int{2, 500}[r.Intn(2)]}
	names := map[string]string{}
	n := r.Intn(40)
	for i := range n {
		name := []string{"ann", "Bob", "cid", "Dan", "eve", "FAY"}[r.Intn(6)] + fmt.Sprint(i)
		email := strings.ToLower(name) + "@example.com"
		switch r.Intn(20) {
		case 0:
			email = strings.ToLower(name) + "@other.org"
		case 1:
			email = "not-an-email"
		}
		u := directory.User{ExternalID: fmt.Sprintf("%08x", r.Uint32()), UserName: email, Email: email,
			GivenName: name, Disabled: r.Intn(10) == 0}
		for _, g := range []string{admins, staff, sales, guests} {
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
		in.Failed[id] = plan.Failure{Type: plan.ExistingAccount, Message: "exists"}
	}
	for _, id := range sortedKeys(names) {
		if _, failed := in.Failed[id]; !failed && r.Intn(5) == 0 {
			typ := plan.FailureTypes[r.Intn(len(plan.FailureTypes))]
			in.Failed[id] = plan.Failure{Type: typ, Product: map[bool]string{true: "Webinar"}[typ == plan.OutOfLicenses], Message: "earlier"}
		}
		if ap, linked := in.Applied[id]; linked { // seats held, within what was bought
			for _, p := range []string{"Meeting", "Webinar"} {
				if (slices.Contains(ap.State.Products, p) || r.Intn(8) == 0) && len(in.Held[p]) < in.Seats[p] {
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
		in.Retry = &plan.Filter{Type: []string{"", plan.OutOfLicenses, plan.TargetUnavailable}[r.Intn(3)]}
		if ids := sortedKeys(in.Failed); len(ids) > 0 && r.Intn(2) == 0 { // one user, by name or ID
			id := ids[r.Intn(len(ids))]
			in.Retry = &plan.Filter{User: []string{id, strings.ToUpper(names[id])}[r.Intn(2)]}
		}
	}
	in.ApproveSuspensions = r.Intn(5) == 0
	return in, names
}

// appliedFor is what an earlier sync wrote for u: its current desired state, or something
// that has since changed.
func appliedFor(r *rand.Rand, u directory.User) plan.Applied {
	d := plan.Desired{ExternalID: u.ExternalID, UserName: u.UserName, Email: u.Email, Active: true}
	if a, ok := rules.Resolve(testRules, u.Groups); ok {
		d = plan.Build(u, a, testMappings)
	}
	switch r.Intn(4) {
	case 0:
		d.DisplayName = "Old Name"
	case 1:
		d.Active = r.Intn(2) == 0
	}
	return plan.Applied{ExternalID: u.ExternalID, ScimID: "scim-" + u.ExternalID, State: d}
}

// loadOrg writes the organization into the store as a sync would find it.
func loadOrg(t *testing.T, ctx context.Context, st *store.Store, org, runID string, in plan.Input, names map[string]string) {
	t.Helper()
	db := st.Pool()
	for _, r := range in.Rules {
		_, err := db.Exec(ctx, `INSERT INTO rules (org, id, priority, group_dn, role, products, user_group, device_groups, settings_template)
			VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9)`, org, r.ID, r.Priority, r.GroupDN, r.Role, nonNil(r.Products), r.UserGroup, nonNil(r.DeviceGroups), r.SettingsTemplate)
		require.NoError(t, err)
	}
	for _, m := range in.Mappings {
		require.NoError(t, st.SetMapping(ctx, org, "test", m.Source, m.Target))
	}
	require.NoError(t, st.SetDomain(ctx, org, "test", "example.com", true))
	require.NoError(t, st.SetDomain(ctx, org, "test", "other.org", false))
	for p, n := range in.Seats {
		require.NoError(t, st.SetLicense(ctx, org, "test", p, n))
	}
	for _, ap := range in.Applied {
		require.NoError(t, st.SaveApplied(ctx, org, ap.ScimID, ap.State))
	}
	for p, holders := range in.Held {
		for id := range holders {
			_, err := db.Exec(ctx, `INSERT INTO seats (org, product, external_id) VALUES ($1,$2,$3)`, org, p, id)
			require.NoError(t, err)
		}
	}
	for id, f := range in.Failed {
		require.NoError(t, st.RecordFailure(ctx, org, "earlier", id, names[id], f))
	}
	if in.PreviousSnapshotSize > 0 {
		_, err := db.Exec(ctx, `INSERT INTO runs (run_id, org, kind, status, started_at, summary)
			VALUES ($1, $2, 'scheduled', $3, now() - interval '1 hour', jsonb_build_object('inScope', $4::int))`,
			org+"/run/0", org, store.RunSucceeded, in.PreviousSnapshotSize)
		require.NoError(t, err)
	}
	require.NoError(t, st.BeginRun(ctx, org, runID, "scheduled", false))
	if len(in.Users) > 0 {
		require.NoError(t, st.WriteSnapshot(ctx, runID, in.Users))
	}
}

// normalized passes items through JSON, as the work table stores them.
func normalized(t *testing.T, items []plan.Item) []plan.Item {
	b, err := json.Marshal(items)
	require.NoError(t, err)
	var out []plan.Item
	require.NoError(t, json.Unmarshal(b, &out))
	if out == nil {
		out = []plan.Item{} // as the store lists no items
	}
	return out
}

func summarize(res plan.Result) PlanResult {
	out := PlanResult{Items: len(res.Items), Unchanged: res.Unchanged, InScope: res.InScope,
		SuspensionsHeld: res.SuspensionsHeld, Warnings: res.Warnings}
	for _, it := range res.Items {
		switch it.Action {
		case plan.Create:
			out.Creates++
		case plan.Update:
			out.Updates++
		case plan.Suspend:
			out.Suspends++
		case plan.Fail:
			out.Fails++
		}
	}
	return out
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func keys[V any](m map[string]V) []string {
	return sortedKeys(m)
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
