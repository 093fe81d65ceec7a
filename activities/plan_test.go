package activities

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/usersync/usersync/internal/devstack/devstacktest"
	"github.com/usersync/usersync/internal/plan"
	"github.com/usersync/usersync/internal/plan/plantest"
	"github.com/usersync/usersync/internal/steps"
	"github.com/usersync/usersync/internal/store"
	"github.com/usersync/usersync/internal/vocab"
)

// The streaming PlanRun (plan.Stream over PostgreSQL: snapshot and per-user state read from
// the store, items written as decided, seats handed out from the work table) decides exactly
// what the in-memory plan.Plan decides, over random organizations: seat shortages, leavers,
// held suspensions, suspicious reads, retries, failures cleared. plan.Stream's own decisions
// are checked in memory over many more organizations (internal/plan, stream_test.go); what
// fails only here is the store's SQL.
func TestPlanRunDecidesExactlyWhatPlanDecides(t *testing.T) {
	url := devstacktest.Database(t)
	ctx := context.Background()
	st, err := store.Open(ctx, url)
	require.NoError(t, err)
	t.Cleanup(st.Close)
	seen := map[string]bool{} // make sure the cases cover what they claim to
	for seed := int64(1); seed <= 60; seed++ {
		r := rand.New(rand.NewSource(seed))
		org, runID := fmt.Sprintf("org-%d", seed), fmt.Sprintf("org-%d/run/1", seed)
		in, names := plantest.RandomOrg(r)
		loadOrg(t, ctx, st, org, runID, in, names)
		acts := &Activities{Store: st, Orgs: Single(org, Org{SuspendThresholdPercent: in.SuspendThresholdPercent, SuspendThresholdMax: in.SuspendThresholdMax})}
		got, err := acts.PlanRun(ctx, steps.PlanInput{RunRef: steps.RunRef{Org: org, RunID: runID}, Retry: in.Retry, ApproveSuspensions: in.ApproveSuspensions})
		require.NoError(t, err, "seed %d", seed)
		want := plan.Plan(in)

		items, err := st.WorkItems(ctx, runID, 1000)
		require.NoError(t, err)
		require.Equal(t, normalized(t, want.Items), items, "seed %d: items", seed)
		require.Equal(t, summarize(want), got, "seed %d: counts", seed)
		checkColumns(t, ctx, st, runID)

		failed, err := st.FailedUsers(ctx, org)
		require.NoError(t, err)
		var left []string
		for id := range in.Failed {
			if !slices.Contains(want.Resolved, id) {
				left = append(left, id)
			}
		}
		require.ElementsMatch(t, left, keys(failed), "seed %d: failures after clearing the resolved", seed)

		for _, c := range plantest.Covered(in, want) {
			seen[c] = true
		}
	}
	for _, c := range plantest.MustCover {
		require.True(t, seen[c], "no case covered %q: change the generator", c)
	}
}

// checkColumns checks that the work table's columns are what Go computed from each item: the
// action and failure, the seat order (a planned seat candidate's only) and the item order.
func checkColumns(t *testing.T, ctx context.Context, st *store.Store, runID string) {
	t.Helper()
	rows, err := st.Pool().Query(ctx, `SELECT item, action, failure_type, failure_product, failure_message,
		seat_key, order_key FROM work_items WHERE run_id=$1`, runID)
	require.NoError(t, err)
	defer rows.Close()
	for rows.Next() {
		var it plan.Item
		var action, ftype, fproduct, fmessage string
		var seatKey, orderKey []byte
		require.NoError(t, rows.Scan(&it, &action, &ftype, &fproduct, &fmessage, &seatKey, &orderKey))
		require.Equal(t, string(it.Action), action)
		var f vocab.Failure
		if it.Failure != nil {
			f = *it.Failure
		}
		require.Equal(t, f, vocab.Failure{Type: ftype, Product: fproduct, Message: fmessage}, "%s", it.ExternalID)
		require.Equal(t, len(it.NewSeats) > 0, seatKey != nil, "%s: a seat order exactly for items taking new seats", it.ExternalID)
		require.Equal(t, plan.ItemOrder(it), orderKey)
	}
	require.NoError(t, rows.Err())
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
		require.NoError(t, st.SaveProvisioned(ctx, org, ap.ScimID, ap.State, "", ""))
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
	for id, name := range in.Reconcile {
		require.NoError(t, st.OpenIntent(ctx, org, id, name, "earlier", string(plan.Create)))
	}
	if in.PreviousSnapshotSize > 0 {
		_, err := db.Exec(ctx, `INSERT INTO runs (run_id, org, kind, status, started_at, in_scope)
			VALUES ($1, $2, 'scheduled', $3, now() - interval '1 hour', $4)`,
			org+"/run/0", org, vocab.RunSucceeded, in.PreviousSnapshotSize)
		require.NoError(t, err)
	}
	attempt, err := st.BeginRun(ctx, org, runID, "scheduled", false)
	require.NoError(t, err)
	if len(in.Users) > 0 {
		require.NoError(t, st.WriteSnapshot(ctx, runID, attempt, in.Users))
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

func summarize(res plan.Result) steps.PlanResult {
	out := steps.PlanResult{Items: len(res.Items), Unchanged: res.Unchanged, InScope: res.InScope,
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
