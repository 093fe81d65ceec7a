package store_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
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
	attempt := beginRun(t, ctx, st, run, "scheduled", false)
	users := []directory.User{
		{ExternalID: "u1", UserName: "ann@acme.test", Groups: []string{"cn=eng"}},
		{ExternalID: "u2", UserName: "bob@acme.test", Groups: []string{"cn=eng"}},
	}
	require.NoError(t, st.WriteSnapshot(ctx, run, attempt, users[:1]))

	// The activity is retried after a crash: the half-written snapshot goes, the start stays.
	attempt = beginRun(t, ctx, st, run, "scheduled", false)
	require.Zero(t, snapshotSize(t, ctx, st, run))
	require.NoError(t, st.WriteSnapshot(ctx, run, attempt, users))
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

// An organization's finished run drops what its ended runs left (a run terminated two days ago
// included, and what a run's attempt wrote after its run finished) and the work of its runs
// beyond the 20 newest: nothing of another organization's run or of another run's attempts,
// and an hour after a run finished it is marked, so that later finishes no longer look at it.
func TestFinishRunDropsItsOrganizationsEndedScratchAndOldWork(t *testing.T) {
	st, ctx := openStore(t)
	user := []directory.User{{ExternalID: "u1", UserName: "ann@acme.test", Groups: []string{"cn=eng"}}}
	attempts := map[string]int64{}
	scratch := func(key string) { // the membership rows and group deltas of an attempt
		idx := st.MembershipIndex(key)
		require.NoError(t, idx.AddGroups(ctx, []directory.GroupMembers{{DN: "cn=eng", Members: []string{"uid=ann"}}}))
		_, err := st.Pool().Exec(ctx, `INSERT INTO group_deltas (run_id, seq, name, scim_user, add) VALUES ($1, 1, 'eng', 's1', true)`, key)
		require.NoError(t, err)
	}
	scratchLeft := func(key string) int {
		var n int
		require.NoError(t, st.Pool().QueryRow(ctx, `SELECT (SELECT count(*) FROM snapshot_group_members WHERE run_id=$1)
			+ (SELECT count(*) FROM group_deltas WHERE run_id=$1)`, key).Scan(&n))
		return n
	}
	start := func(o, run string, ago time.Duration) {
		attempt, err := st.BeginRun(ctx, o, run, "scheduled", false)
		require.NoError(t, err)
		attempts[run] = attempt
		require.NoError(t, st.WriteSnapshot(ctx, run, attempt, user))
		w := st.NewWorkWriter(run)
		require.NoError(t, w.Add(ctx, plan.Item{ExternalID: "u1", UserName: "ann@acme.test", Action: plan.Create}, plan.SeatKey{}))
		require.NoError(t, w.Flush(ctx))
		_, err = st.Pool().Exec(ctx, `UPDATE runs SET started_at = now() - $2::interval WHERE run_id = $1`, run, ago.String())
		require.NoError(t, err)
	}
	finish := func(run string) {
		require.NoError(t, st.FinishRun(ctx, run, vocab.RunSucceeded, vocab.Failure{}, 1, nil))
	}
	hasWork := func(run string) bool {
		_, err := st.WorkItem(ctx, run, 0)
		return err == nil
	}

	start("globex", "usersync/globex/run/1", 72*time.Hour) // under way, for days
	scratch("usersync/globex/run/1#1")
	start(org, "usersync/acme/run/terminated", 48*time.Hour)
	scratch("usersync/acme/run/terminated#1")
	scratch("usersync/acme/run/terminated#12")
	scratch("usersync/acme/run/terminated2#1")              // another run's attempt, under way
	start(org, "usersync/acme/run/yesterday", 26*time.Hour) // not finished, over a day old
	start(org, "usersync/acme/run/recent", time.Hour)       // not finished, younger than a day
	var runs []string
	for i := range 18 {
		run := fmt.Sprintf("usersync/acme/run/%02d", i)
		start(org, run, time.Duration(40-i)*time.Minute)
		runs = append(runs, run)
	}
	for _, run := range runs[:17] {
		finish(run)
	}
	for _, run := range []string{"usersync/acme/run/terminated", "usersync/acme/run/yesterday"} {
		require.Zero(t, snapshotSize(t, ctx, st, run), "%s: a run ended without finishing loses its snapshot after a day", run)
	}
	require.Zero(t, scratchLeft("usersync/acme/run/terminated#1"), "and its attempts' memberships and group deltas")
	require.Zero(t, scratchLeft("usersync/acme/run/terminated#12"))
	require.Equal(t, 2, scratchLeft("usersync/acme/run/terminated2#1"), "another run's attempt keeps its rows")
	require.Equal(t, 1, snapshotSize(t, ctx, st, "usersync/acme/run/recent"), "a run younger than a day keeps its snapshot")
	require.Equal(t, 1, snapshotSize(t, ctx, st, runs[17]), "so does a run under way")
	require.False(t, hasWork("usersync/acme/run/terminated"), "the 21st newest run: no work kept")
	for _, run := range append(runs, "usersync/acme/run/recent", "usersync/acme/run/yesterday") {
		require.True(t, hasWork(run), "%s: one of the 20 newest runs keeps its work", run)
	}

	// An attempt of a finished run was still reading (cancelled, its heartbeat not sent yet)
	// and wrote after its run's finish: the next finish drops it.
	require.NoError(t, st.WriteSnapshot(ctx, runs[3], attempts[runs[3]], user))
	scratch(runs[3] + "#2")
	start(org, "usersync/acme/run/18", 0)
	finish(runs[17])
	require.Zero(t, snapshotSize(t, ctx, st, runs[3]), "a late write to a finished run's snapshot is dropped")
	require.Zero(t, scratchLeft(runs[3]+"#2"))
	require.False(t, hasWork("usersync/acme/run/yesterday"), "22 runs: the 21st newest loses its work")
	require.True(t, hasWork("usersync/acme/run/recent"))
	finish("usersync/acme/run/18")

	// An hour after their finish, runs are marked: the finishes after do not look at them.
	_, err := st.Pool().Exec(ctx, `UPDATE runs SET finished_at = now() - interval '2 hours' WHERE run_id = ANY($1)`, runs[:10])
	require.NoError(t, err)
	start(org, "usersync/acme/run/19", 0)
	finish("usersync/acme/run/19")
	require.False(t, hasWork("usersync/acme/run/recent"))
	require.True(t, hasWork(runs[0]))
	require.Equal(t, 1, snapshotSize(t, ctx, st, "usersync/globex/run/1"), "another organization's run keeps its snapshot")
	require.Equal(t, 2, scratchLeft("usersync/globex/run/1#1"))
	require.True(t, hasWork("usersync/globex/run/1"))
	var unmarked []string
	rows, err := st.Pool().Query(ctx, `SELECT run_id FROM runs WHERE org=$1 AND NOT scratch_dropped`, org)
	require.NoError(t, err)
	unmarked, err = pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	slices.Sort(unmarked)
	want := append(slices.Clone(runs[10:]), "usersync/acme/run/18", "usersync/acme/run/19", "usersync/acme/run/recent",
		"usersync/acme/run/terminated", "usersync/acme/run/yesterday")
	slices.Sort(want)
	require.Equal(t, want, unmarked, "runs finished within the hour, and those that never finished, are looked at again")
}

func TestDryRunStartIsNamedAsSuch(t *testing.T) {
	st, ctx := openStore(t)
	beginRun(t, ctx, st, "dry-1", "manual", true)
	es, err := st.History(ctx, org, store.HistoryFilter{Type: vocab.EventSync})
	require.NoError(t, err)
	require.Len(t, es, 1)
	require.Equal(t, "dry-run started", es[0].Action)
}

// An attempt of a run's snapshot that the server timed out and retried may still run: once
// the retry began, none of its writes lands in the run (snapshot rows, delta mark, basis, a
// reset), and the retry's snapshot stays exactly as the retry wrote it.
func TestSupersededSnapshotAttemptWritesNothing(t *testing.T) {
	st, ctx := openStore(t)
	const run = "usersync/acme/run/7"
	first := beginRun(t, ctx, st, run, "scheduled", false)
	require.NoError(t, st.WriteSnapshot(ctx, run, first, []directory.User{{ExternalID: "u-early", UserName: "early@acme.test"}}))

	second := beginRun(t, ctx, st, run, "scheduled", false)
	require.Equal(t, first+1, second)
	require.NoError(t, st.WriteSnapshot(ctx, run, second, []directory.User{
		{ExternalID: "u1", UserName: "ann@acme.test"}, {ExternalID: "u2", UserName: "bob@acme.test"}}))
	require.NoError(t, st.MarkDelta(ctx, run, second, []string{"u1", "u2"}))
	require.NoError(t, st.SetRunBasis(ctx, run, second, "inputs-2", nil, "usersync/acme/run/6"))

	for name, write := range map[string]func() error{
		"snapshot rows": func() error {
			return st.WriteSnapshot(ctx, run, first, []directory.User{{ExternalID: "u-stale", UserName: "stale@acme.test"}})
		},
		"delta mark": func() error { return st.MarkDelta(ctx, run, first, []string{"u-stale"}) },
		"basis":      func() error { return st.SetRunBasis(ctx, run, first, "inputs-1", nil, run) },
		"reset":      func() error { return st.ResetSnapshot(ctx, run, first) },
	} {
		err := write()
		require.ErrorIs(t, err, store.ErrSuperseded, name)
		require.ErrorContains(t, err, "run usersync/acme/run/7: snapshot attempt 1 was superseded by attempt 2", name)
	}
	require.ErrorIs(t, st.CheckAttempt(ctx, run, first), store.ErrSuperseded)
	require.NoError(t, st.CheckAttempt(ctx, run, second))

	var ids []string
	require.NoError(t, st.PlanRows(ctx, org, run, func(r store.PlanRow) error { ids = append(ids, r.User.ExternalID); return nil }))
	require.ElementsMatch(t, []string{"u1", "u2"}, ids, "the retry's snapshot, nothing of the first attempt")
	delta, err := st.DeltaSnapshot(ctx, run)
	require.NoError(t, err)
	require.True(t, delta)
	rows, err := st.Pool().Query(ctx, `SELECT external_id FROM snapshot_touched WHERE run_id=$1 ORDER BY 1`, run)
	require.NoError(t, err)
	touched, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	require.Equal(t, []string{"u1", "u2"}, touched)
	beginRun(t, ctx, st, "usersync/acme/run/8", "scheduled", false)
	basis, ok, err := st.PreviousRun(ctx, org, "usersync/acme/run/8")
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, run, basis.RunID)
	require.Equal(t, "inputs-2", basis.Inputs)
	require.Equal(t, "usersync/acme/run/6", basis.Basis)

	// A run never begun has no attempt to write as.
	require.ErrorContains(t, st.MarkDelta(ctx, "usersync/acme/run/none", 1, []string{"u1"}), "run usersync/acme/run/none is not recorded")
}

// A read of an organization's mirror waits for the one holding it, heartbeating, and gives
// up, with an error that says why, once it waited mirrorLockWait; another organization's
// read does not wait, and the holder's release lets the next in.
func TestMirrorLockWaitsForTheHolderAndGivesUpWithAReason(t *testing.T) {
	st, ctx := openStore(t)
	defer store.SetMirrorLockWait(500 * time.Millisecond)()
	_, release, err := st.LockMirror(ctx, org, func() {})
	require.NoError(t, err)

	_, other, err := st.LockMirror(ctx, "other-org", func() { t.Error("another organization's read waited") })
	require.NoError(t, err)
	other()

	waits := 0
	_, _, err = st.LockMirror(ctx, org, func() { waits++ })
	require.ErrorContains(t, err, "directory mirror of organization "+org+": another sync or dry run of it has held it for 500ms")
	require.Positive(t, waits, "the wait heartbeats")

	release()
	_, again, err := st.LockMirror(ctx, org, func() {})
	require.NoError(t, err, "released: the next read takes it")
	again()
}

// Upgrading a database to the marks (migration 040) drops at once what the next finish of
// each organization would have dropped, and marks only what no later write can reach: runs
// finished over an hour ago, and runs beyond each organization's 20 newest.
func TestUpgradeToRunMarksDropsWhatTheNextFinishWould(t *testing.T) {
	st, ctx, url := openStoreURL(t)
	// The schema as it was before migration 040.
	_, err := st.Pool().Exec(ctx, `DROP INDEX runs_scratch_left; DROP INDEX runs_work_left;
		ALTER TABLE runs DROP COLUMN scratch_dropped, DROP COLUMN work_dropped;
		ALTER TABLE snapshot_groups ALTER COLUMN run_id TYPE text COLLATE "default";
		ALTER TABLE snapshot_group_members ALTER COLUMN run_id TYPE text COLLATE "default";
		ALTER TABLE snapshot_memberships ALTER COLUMN run_id TYPE text COLLATE "default";
		ALTER TABLE group_deltas ALTER COLUMN run_id TYPE text COLLATE "default";
		DELETE FROM schema_migrations WHERE version = 40`)
	require.NoError(t, err)
	run := func(i int) string { return fmt.Sprintf("usersync/acme/run/%02d", i) }
	for i := range 22 { // run 00 is the oldest; 21 finished ten minutes ago, the others two hours ago
		finished := "now() - interval '2 hours'"
		if i == 21 {
			finished = "now() - interval '10 minutes'"
		}
		_, err := st.Pool().Exec(ctx, `INSERT INTO runs (run_id, org, kind, dry_run, status, started_at, finished_at)
			VALUES ($1, 'acme', 'scheduled', false, 'succeeded', now() - make_interval(mins => 200 - $2::int), `+finished+`)`,
			run(i), i)
		require.NoError(t, err)
		_, err = st.Pool().Exec(ctx, `INSERT INTO work_items (run_id, seq, external_id, user_name, action, item)
			VALUES ($1, 0, 'u1', 'ann', 'create', '{}')`, run(i))
		require.NoError(t, err)
	}
	_, err = st.Pool().Exec(ctx, `INSERT INTO runs (run_id, org, kind, dry_run, status, started_at)
		VALUES ('usersync/acme/run/22', 'acme', 'scheduled', false, 'running', now() - interval '5 minutes');
		INSERT INTO snapshot_users (run_id, external_id, data) VALUES ('usersync/acme/run/22', 'u1', '{}'), ('usersync/acme/run/21', 'u1', '{}');
		INSERT INTO snapshot_memberships (run_id, member_dn, idx) VALUES ('usersync/acme/run/21#1', 'uid=ann', 0), ('usersync/acme/run/22#1', 'uid=ann', 0)`)
	require.NoError(t, err)

	st2, err := store.Open(ctx, url)
	require.NoError(t, err)
	t.Cleanup(st2.Close)
	count := func(sql string, args ...any) int {
		var n int
		require.NoError(t, st2.Pool().QueryRow(ctx, sql, args...).Scan(&n))
		return n
	}
	require.Zero(t, count(`SELECT count(*) FROM snapshot_users WHERE run_id = 'usersync/acme/run/21'`), "a finished run's late snapshot rows go")
	require.Zero(t, count(`SELECT count(*) FROM snapshot_memberships WHERE run_id = 'usersync/acme/run/21#1'`))
	require.Equal(t, 1, count(`SELECT count(*) FROM snapshot_users WHERE run_id = 'usersync/acme/run/22'`), "a run under way keeps its own")
	require.Equal(t, 1, count(`SELECT count(*) FROM snapshot_memberships WHERE run_id = 'usersync/acme/run/22#1'`))
	require.Equal(t, 19, count(`SELECT count(*) FROM work_items`), "the work of the 20 newest runs stays (run 22 has none yet)")
	require.Zero(t, count(`SELECT count(*) FROM work_items WHERE run_id IN ($1, $2, $3)`, run(0), run(1), run(2)))
	require.Equal(t, 3, count(`SELECT count(*) FROM runs WHERE work_dropped`))
	require.Equal(t, 21, count(`SELECT count(*) FROM runs WHERE scratch_dropped`), "runs finished over an hour ago are marked")
	require.Zero(t, count(`SELECT count(*) FROM runs WHERE scratch_dropped AND run_id IN ('usersync/acme/run/21', 'usersync/acme/run/22')`))
	require.Equal(t, 4, count(`SELECT count(*) FROM information_schema.columns WHERE table_name IN ('snapshot_groups',
		'snapshot_group_members', 'snapshot_memberships', 'group_deltas') AND column_name = 'run_id' AND collation_name = 'C'`),
		"attempt keys are ordered bytewise")
}
