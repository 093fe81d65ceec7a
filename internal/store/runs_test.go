package store_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/usersync/usersync/internal/directory"
	"github.com/usersync/usersync/internal/plan"
	"github.com/usersync/usersync/internal/store"
	"github.com/usersync/usersync/internal/vocab"
)

func snapshotSize(t *testing.T, ctx context.Context, st *store.Store, runID string) int {
	t.Helper()
	n := 0
	require.NoError(t, st.PlanRows(ctx, org, runID, func(store.PlanRow) error { n++; return nil }))
	return n
}

func TestBeginRunIsIdempotentAndFinishRunDropsTheSnapshot(t *testing.T) {
	st, ctx := openStore(t)
	const run = "usersync/acme/run/1"
	require.NoError(t, st.BeginRun(ctx, org, run, "scheduled", false))
	users := []directory.User{
		{ExternalID: "u1", UserName: "ann@acme.test", Groups: []string{"cn=eng"}},
		{ExternalID: "u2", UserName: "bob@acme.test", Groups: []string{"cn=eng"}},
	}
	require.NoError(t, st.WriteSnapshot(ctx, run, users[:1]))

	// The activity is retried after a crash: the half-written snapshot goes, the start stays.
	require.NoError(t, st.BeginRun(ctx, org, run, "scheduled", false))
	require.Zero(t, snapshotSize(t, ctx, st, run))
	require.NoError(t, st.WriteSnapshot(ctx, run, users))
	require.Equal(t, 2, snapshotSize(t, ctx, st, run))
	w := st.NewWorkWriter(run)
	require.NoError(t, w.Add(ctx, plan.Item{ExternalID: "u1", UserName: "ann@acme.test", Action: plan.Create}, plan.SeatKey{}))
	require.NoError(t, w.Flush(ctx))

	// The discovery of the target, after the plan, records the run too: the work stays.
	require.NoError(t, st.RecordRun(ctx, org, run, "scheduled", false))
	_, err := st.WorkItem(ctx, run, 0)
	require.NoError(t, err, "RecordRun leaves the plan's work")

	started, err := st.History(ctx, org, store.HistoryFilter{Type: vocab.EventSync})
	require.NoError(t, err)
	require.Len(t, started, 1, "one start event for two calls")
	require.Equal(t, "sync started", started[0].Action)
	require.Equal(t, run, started[0].Details["run"])

	// A worker died while reading groups: its attempt's membership rows were never dropped.
	idx := st.MembershipIndex(run + "#1")
	require.NoError(t, idx.AddGroups(ctx, []directory.GroupMembers{{DN: "cn=eng", Members: []string{"uid=ann"}}}))

	require.NoError(t, st.FinishRun(ctx, run, vocab.RunSucceeded, vocab.Failure{}, 2, map[string]int{"inScope": 2}))
	require.Zero(t, snapshotSize(t, ctx, st, run), "a finished run's snapshot is dropped")
	var left int
	require.NoError(t, st.Pool().QueryRow(ctx, `SELECT count(*) FROM snapshot_group_members WHERE run_id LIKE $1`, run+"%").Scan(&left))
	require.Zero(t, left, "and so are the membership rows of its attempts")
	item, err := st.WorkItem(ctx, run, 0)
	require.NoError(t, err, "the work of recent runs stays for inspection")
	require.Equal(t, "u1", item.ExternalID)

	runs, err := st.Runs(ctx, org, 10)
	require.NoError(t, err)
	require.Len(t, runs, 1)
	require.Equal(t, vocab.RunSucceeded, runs[0].Status)
	require.NotNil(t, runs[0].FinishedAt)
	n, err := st.LastGoodSnapshotSize(ctx, org)
	require.NoError(t, err)
	require.Equal(t, 2, n)

	require.Error(t, st.FinishRun(ctx, "usersync/acme/run/unknown", vocab.RunSucceeded, vocab.Failure{}, 0, nil))
}

func TestDryRunStartIsNamedAsSuch(t *testing.T) {
	st, ctx := openStore(t)
	require.NoError(t, st.BeginRun(ctx, org, "dry-1", "manual", true))
	es, err := st.History(ctx, org, store.HistoryFilter{Type: vocab.EventSync})
	require.NoError(t, err)
	require.Len(t, es, 1)
	require.Equal(t, "dry-run started", es[0].Action)
}
