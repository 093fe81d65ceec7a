package store_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/usersync/usersync/internal/vocab"
)

// The previous run is the newest other run; a run that did not finish clean and overlapped
// it (a dry run racing it, a run still going) is counted, one that ended before it is not.
func TestPreviousRunAndWhatOverlappedIt(t *testing.T) {
	st, ctx := openStore(t)
	_, ok, err := st.PreviousRun(ctx, org, "r-now")
	require.NoError(t, err)
	require.False(t, ok, "no earlier run")

	finish := func(run string, clean bool) {
		require.NoError(t, st.FinishRun(ctx, run, vocab.RunSucceeded, vocab.Failure{}, 3, map[string]int{"n": 1}))
		if clean {
			require.NoError(t, st.MarkRunClean(ctx, run))
		}
	}
	beginRun(t, ctx, st, "r-old-dry", vocab.KindManual, true)
	finish("r-old-dry", false) // ended before the clean run started: not overlapping
	time.Sleep(10 * time.Millisecond)
	clean := beginRun(t, ctx, st, "r-clean", vocab.KindScheduled, false)
	exp := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	require.NoError(t, st.SetRunBasis(ctx, "r-clean", clean, "hash", &exp, "r-clean"))
	finish("r-clean", true)
	beginRun(t, ctx, st, "r-now", vocab.KindScheduled, false)

	p, ok, err := st.PreviousRun(ctx, org, "r-now")
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, "r-clean", p.RunID)
	require.True(t, p.Clean && p.Finished)
	require.Equal(t, "hash", p.Inputs)
	require.Equal(t, "r-clean", p.Basis)
	require.True(t, exp.Equal(*p.NextExpiry))
	require.Zero(t, p.Overlapping, "the dry run ended before it")

	// A dry run that started before the clean one and finished after it began.
	_, err = st.Pool().Exec(ctx, `INSERT INTO runs (run_id, org, kind, dry_run, status, started_at, finished_at)
		VALUES ('r-racing-dry', $1, 'manual', true, 'succeeded', $2, now())`, org, p.StartedAt.Add(-time.Second))
	require.NoError(t, err)
	p, _, err = st.PreviousRun(ctx, org, "r-now")
	require.NoError(t, err)
	require.Equal(t, "r-clean", p.RunID)
	require.Equal(t, 1, p.Overlapping, "the racing dry run")

	failures, intents, err := st.PendingWork(ctx, org)
	require.NoError(t, err)
	require.Zero(t, failures)
	require.Zero(t, intents)
}
