package bench

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/go-ldap/ldap/v3"
	"go.temporal.io/sdk/client"

	"github.com/usersync/usersync/internal/demo"
	"github.com/usersync/usersync/internal/devstack"
	"github.com/usersync/usersync/workflows"
)

// WatchChanges is how many changes the watch scenario measures.
const WatchChanges = 20

// WatchLatency measures watch mode's change-to-target latency (issue 13): after an initial
// sync of n users (user sync on, watch on, an hour between scheduled syncs), it adds
// WatchChanges users to a ruled group one after another, each once the sync of the one
// before ended, and times each from the directory write until its account exists in the
// target. It returns the p50 and p95 rows.
func WatchLatency(ctx context.Context, s *Stack, n int, workerBin string, log func(string, ...any)) ([]Row, error) {
	d := demo.Generate(n, 1)
	for p := range d.Seats {
		d.Seats[p] += WatchChanges // seats for the joiners too
	}
	if err := devstack.LoadEntries(ctx, s.Slapd.URL(), s.Slapd.AdminDN, ldapSecret, d.Entries); err != nil {
		return nil, err
	}
	if err := demo.Seed(ctx, s.Store, org, "bench", d); err != nil {
		return nil, err
	}
	if err := s.StartWorker(ctx, workerBin, org, 0); err != nil {
		return nil, err
	}
	defer s.StopWorker()
	id := workflows.OrgWorkflowID(org)
	on := true
	t0 := time.Now()
	if _, err := s.Client.SignalWithStartWorkflow(ctx, id, workflows.SignalEnable,
		workflows.SwitchSignal{Actor: "bench", Interval: time.Hour, Watch: &on},
		client.StartWorkflowOptions{ID: id, TaskQueue: workflows.TaskQueue},
		workflows.UserSyncWorkflow, workflows.SyncState{Org: org, Interval: time.Hour}); err != nil {
		return nil, err
	}
	if _, err := s.waitIdle(ctx, 1); err != nil {
		return nil, err
	}
	log("initial sync of %d users (enable, watch on) in %s", n, time.Since(t0).Round(time.Millisecond))

	conn, err := ldap.DialURL(s.Slapd.URL())
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	if err := conn.Bind(s.Slapd.AdminDN, ldapSecret); err != nil {
		return nil, err
	}
	var lat []time.Duration
	for i := 1; i <= WatchChanges; i++ {
		entry, join, mail := demo.Joiner(i)
		if err := conn.Add(entry); err != nil {
			return nil, err
		}
		start := time.Now()
		if err := conn.Modify(join); err != nil {
			return nil, err
		}
		for {
			if _, ok := s.Sandbox.UserByUserName(mail); ok {
				break
			}
			if time.Since(start) > 5*time.Minute {
				return nil, fmt.Errorf("watch: no account of %s in the target 5 minutes after the change", mail)
			}
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(20 * time.Millisecond):
			}
		}
		lat = append(lat, time.Since(start))
		log("watch: change %d in the target after %s", i, lat[len(lat)-1].Round(time.Millisecond))
		if _, err := s.waitIdle(ctx, 0); err != nil { // one change after another
			return nil, err
		}
	}
	runs, err := s.waitIdle(ctx, 0)
	if err != nil {
		return nil, err
	}
	slices.Sort(lat)
	note := fmt.Sprintf("%d changes, %d syncs in all (1 initial)", WatchChanges, runs)
	return []Row{
		{N: n, Scenario: "watch: change to target, p50", Wall: percentile(lat, 50), Note: note},
		{N: n, Scenario: "watch: change to target, p95", Wall: percentile(lat, 95), Note: note},
	}, nil
}

// percentile of sorted durations (nearest rank).
func percentile(sorted []time.Duration, p int) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := (p*len(sorted) + 99) / 100
	return sorted[max(0, min(len(sorted), i)-1)]
}

// waitIdle waits until the organization's workflow has finished at least minRuns runs and
// nothing runs or is queued; it returns the runs so far.
func (s *Stack) waitIdle(ctx context.Context, minRuns int) (int, error) {
	deadline := time.Now().Add(30 * time.Minute)
	for time.Now().Before(deadline) {
		v, err := s.Client.QueryWorkflow(ctx, workflows.OrgWorkflowID(org), "", workflows.QueryStatus)
		if err != nil {
			return 0, err
		}
		var st workflows.Status
		if err := v.Get(&st); err != nil {
			return 0, err
		}
		if st.LastRun != nil && st.Runs >= minRuns && st.CurrentRun == nil && st.Queued == nil {
			return st.Runs, nil
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return 0, fmt.Errorf("the organization's workflow did not become idle within 30 minutes")
}
