package e2e

import (
	"regexp"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/usersync/usersync/internal/demo"
	"github.com/usersync/usersync/internal/store"
)

// `starter run` goes through the organization's sync workflow: started while a scheduled sync
// runs, it is queued and starts when that one ends, never beside it. It still works while
// user sync is off, and runs only what was asked.
func TestStarterRunNeverRunsBesideAnotherSync(t *testing.T) {
	s := newStack(t, demo.Org())
	s.sandbox.SetLatency(300 * time.Millisecond) // a first sync that takes a while

	s.cliOK("enable", "--interval", "1h")
	deadline := time.Now().Add(time.Minute)
	for s.status().CurrentRun == nil {
		require.True(t, time.Now().Before(deadline), "the scheduled sync never started")
		time.Sleep(100 * time.Millisecond)
	}
	scheduled := s.status().CurrentRun.RunID

	done := make(chan cliResult, 1)
	go func() { done <- s.starter("run") }()
	// Once the request is queued behind the scheduled sync, the target may answer at full speed.
	var queuedBehind string
	for queuedBehind == "" && len(done) == 0 {
		st := s.status()
		if st.Queued != nil && len(st.Queued.Requests) > 0 && st.CurrentRun != nil {
			queuedBehind = st.CurrentRun.RunID
		}
		if st.LastRun != nil {
			break // the scheduled sync has ended
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.sandbox.SetLatency(0)
	r := <-done
	require.Zero(t, r.code, "starter run: %s\n%s", r.stderr, r.stdout)
	runs, err := s.store.Runs(s.ctx, org, 20)
	require.NoError(t, err)
	slices.Reverse(runs) // oldest first
	requireOneAtATime(t, runs)
	require.Equal(t, scheduled, queuedBehind, "queued behind the scheduled sync")
	require.Contains(t, r.stdout, "A scheduled sync (run "+scheduled+") is running: this run is queued and starts when it ends.")
	manual := regexp.MustCompile(`Run (usersync/acme/run/\S+) \(manual\): succeeded`).FindStringSubmatch(r.stdout)
	require.NotNil(t, manual, r.stdout)

	// Off: `starter run` still runs one sync, and sync stays off.
	require.Contains(t, s.cliOK("disable"), "User sync of acme is off")
	out := s.cliOK("run")
	require.Regexp(t, `Run usersync/acme/run/\S+ \(manual\): succeeded`, out)
	require.NotContains(t, out, "is running: this run is queued")
	require.Contains(t, s.cliOK("status"), "User sync of acme: off")

	// The store's record of the runs: one at a time, the manual one after the scheduled one.
	runs, err = s.store.Runs(s.ctx, org, 20)
	require.NoError(t, err)
	slices.Reverse(runs) // oldest first
	require.Len(t, runs, 3)
	require.Equal(t, []string{scheduled, manual[1]}, []string{runs[0].RunID, runs[1].RunID})
	requireOneAtATime(t, runs)
}

// requireOneAtATime checks that no run (dry runs aside) began before the one before it
// finished.
func requireOneAtATime(t *testing.T, runs []store.Run) {
	t.Helper()
	var prev *store.Run
	for i := range runs {
		r := &runs[i]
		if r.DryRun {
			continue
		}
		require.NotNil(t, r.FinishedAt, "run %s finished", r.RunID)
		if prev != nil {
			require.False(t, r.StartedAt.Before(*prev.FinishedAt),
				"run %s started at %s, before run %s finished at %s", r.RunID, r.StartedAt, prev.RunID, *prev.FinishedAt)
		}
		prev = r
	}
}
