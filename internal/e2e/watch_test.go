package e2e

import (
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"
	"github.com/stretchr/testify/require"
	sdkpb "go.temporal.io/api/sdk/v1"

	"github.com/usersync/usersync/internal/demo"
	"github.com/usersync/usersync/internal/store"
	"github.com/usersync/usersync/internal/vocab"
	"github.com/usersync/usersync/workflows"
)

// With watch mode on and an hour between scheduled syncs, a user added to a ruled group in
// the directory has an account in the target within seconds, without sync-now; two such
// changes a second apart make one sync, not two.
func TestWatchModeSyncsADirectoryChangeAtOnce(t *testing.T) {
	d := demo.Generate(50, 13)
	for p := range d.Seats { // seats for the joiners too
		d.Seats[p] += 10
	}
	s := newStack(t, d)
	require.Contains(t, s.cliOK("enable", "--interval", "1h", "--watch"),
		"User sync of acme is on (every 1h0m0s and at once when the directory changes (watch))")
	first := s.waitRun("")
	require.Equal(t, vocab.RunSucceeded, first.Status)
	require.Contains(t, s.cliOK("status"), "User sync of acme: on, every 1h0m0s and at once when the directory changes (watch)")
	v, err := s.client.QueryWorkflow(s.ctx, workflows.OrgWorkflowID(org), "", "__temporal_workflow_metadata")
	require.NoError(t, err)
	var md sdkpb.WorkflowMetadata
	require.NoError(t, v.Get(&md))
	require.Contains(t, md.GetCurrentDetails(), "**Sync on**, every 1h, and at once when the directory changes (watch)",
		"the UI shows watch mode")

	conn, err := ldap.DialURL(s.ldapURL)
	require.NoError(t, err)
	defer conn.Close()
	require.NoError(t, conn.Bind(s.ldapBindDN, ldapSecret))
	join := func(i int) string {
		entry, member, mail := demo.Joiner(i)
		require.NoError(t, conn.Add(entry))
		require.NoError(t, conn.Modify(member))
		return mail
	}

	const bound = 30 * time.Second // poll 2 s + quiet 2 s + one small sync, with room for a slow machine
	mail := join(1)
	start := time.Now()
	s.waitAccount(mail, bound)
	t.Logf("change to target: %s", time.Since(start).Round(10*time.Millisecond))
	st := s.waitIdle()
	require.Equal(t, 2, st.Runs, "one sync for the change, no other")
	require.Equal(t, vocab.KindWatch, st.LastRun.Kind)
	require.Equal(t, 1, s.watchEvents(), "the history says the watch started it")

	// Two changes a second apart: one burst, one sync.
	a := join(2)
	time.Sleep(time.Second)
	b := join(3)
	s.waitAccount(a, bound)
	s.waitAccount(b, bound)
	time.Sleep(8 * time.Second) // a second sync would have started by now (poll + quiet)
	st = s.waitIdle()
	require.Equal(t, 3, st.Runs, "two changes within the debounce window make one sync")
	require.Equal(t, 2, s.watchEvents())
	require.Equal(t, vocab.KindWatch, st.LastRun.Kind)

	// Watch off: a change waits for the schedule again.
	require.Contains(t, s.cliOK("enable", "--watch=false"), "User sync of acme was already on (every 1h0m0s); no sync started")
	require.False(t, s.status().Watch)
	late := join(4)
	time.Sleep(8 * time.Second)
	u, err := s.target.FindUserByUserName(s.ctx, s.ext, late)
	require.NoError(t, err)
	require.Nil(t, u, "no sync without watch before the hour is up")
	require.Equal(t, 3, s.waitIdle().Runs)
}

// waitAccount waits until the target holds an account of userName, read over SCIM.
func (s *stack) waitAccount(userName string, bound time.Duration) {
	s.t.Helper()
	deadline := time.Now().Add(bound)
	for time.Now().Before(deadline) {
		u, err := s.target.FindUserByUserName(s.ctx, s.ext, userName)
		require.NoError(s.t, err)
		if u != nil {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	st := s.status()
	s.t.Fatalf("no account of %s in the target within %s (last run: %+v, running: %+v, queued: %+v)", userName, bound,
		st.LastRun, st.CurrentRun, st.Queued)
}

// waitIdle waits until nothing runs or is queued, and returns the status then.
func (s *stack) waitIdle() workflows.Status {
	s.t.Helper()
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		if st := s.status(); st.CurrentRun == nil && st.Queued == nil {
			return st
		}
		time.Sleep(200 * time.Millisecond)
	}
	s.t.Fatal("the organization's workflow did not become idle within a minute")
	return workflows.Status{}
}

// watchEvents counts the history's "watch" events (a change seen) and checks their actor.
func (s *stack) watchEvents() int {
	s.t.Helper()
	evs, err := s.store.History(s.ctx, org, store.HistoryFilter{})
	require.NoError(s.t, err)
	n := 0
	for _, e := range evs {
		if e.Action == "watch" {
			require.Equal(s.t, "watch", e.Actor)
			n++
		}
	}
	return n
}
