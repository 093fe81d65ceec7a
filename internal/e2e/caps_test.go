package e2e

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"

	"github.com/usersync/usersync/activities"
	"github.com/usersync/usersync/internal/engine"
	"github.com/usersync/usersync/internal/steps"
	"github.com/usersync/usersync/internal/vocab"
	"github.com/usersync/usersync/workflows"
)

// slowRead is how much longer each directory read takes than the test's small directories
// need: as a large directory's would, long enough that reads started together overlap
// unless the cap keeps them apart.
const slowRead = 2 * time.Second

// slowReads is a worker's steps whose directory read takes slowRead longer.
type slowReads struct{ *activities.Activities }

func (s *slowReads) SnapshotDirectory(ctx context.Context, in steps.SnapshotInput) (steps.SnapshotResult, error) {
	select {
	case <-time.After(slowRead):
	case <-ctx.Done():
		return steps.SnapshotResult{}, ctx.Err()
	}
	return s.Activities.SnapshotDirectory(ctx, in)
}

// readStep is one attempt of a read-lane step (directory read or plan) of an organization's
// run, as its run's history recorded it.
type readStep struct {
	org, step, queue              string
	scheduled, started, completed time.Time
}

// readSteps are the directory reads and plans of the runs, from their histories (the server's
// times of each attempt's start and completion). Any failed or timed-out attempt, and any
// retry, fails the test: waiting for the cap is never a failure.
func (f *fleet) readSteps(runs map[string]*steps.RunSummary) []readStep {
	t := f.t
	t.Helper()
	var out []readStep
	for org, r := range runs {
		byScheduled := map[int64]*readStep{}
		it := f.c.GetWorkflowHistory(f.ctx, r.RunID, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
		for it.HasNext() {
			e, err := it.Next()
			require.NoError(t, err)
			switch e.EventType {
			case enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
				a := e.GetActivityTaskScheduledEventAttributes()
				if n := a.ActivityType.GetName(); n == steps.SnapshotDirectory || n == steps.PlanRun {
					byScheduled[e.EventId] = &readStep{org: org, step: n, queue: a.TaskQueue.GetName(), scheduled: e.EventTime.AsTime()}
				}
			case enumspb.EVENT_TYPE_ACTIVITY_TASK_STARTED:
				a := e.GetActivityTaskStartedEventAttributes()
				if s := byScheduled[a.ScheduledEventId]; s != nil {
					require.EqualValues(t, 1, a.Attempt, "%s's %s was retried", org, s.step)
					s.started = e.EventTime.AsTime()
				}
			case enumspb.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
				if s := byScheduled[e.GetActivityTaskCompletedEventAttributes().ScheduledEventId]; s != nil {
					s.completed = e.EventTime.AsTime()
				}
			case enumspb.EVENT_TYPE_ACTIVITY_TASK_FAILED, enumspb.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT,
				enumspb.EVENT_TYPE_WORKFLOW_TASK_FAILED, enumspb.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT:
				t.Errorf("%s's run %s: %s in its history", org, r.RunID, e.EventType)
			}
		}
		for _, s := range byScheduled {
			require.False(t, s.started.IsZero() || s.completed.IsZero(), "%s's %s did not complete", org, s.step)
			out = append(out, *s)
		}
	}
	slices.SortFunc(out, func(a, b readStep) int { return a.started.Compare(b.started) })
	return out
}

// overlaps are the pairs of read-lane steps of different organizations that ran at the same time.
func overlaps(rs []readStep) []string {
	var out []string
	for i, a := range rs {
		for _, b := range rs[i+1:] {
			if a.org != b.org && b.started.Before(a.completed) && a.started.Before(b.completed) {
				out = append(out, fmt.Sprintf("%s %s with %s %s", a.org, a.step, b.org, b.step))
			}
		}
	}
	return out
}

// Fairness per worker (issue 10): with --syncs 1, three organizations' syncs started at once
// all complete, their users in their targets, and the worker ran one directory read or plan at
// a time, the others waiting their turn (the times are the server's, from the runs'
// histories) without a failure, timeout or retry in any history. With --syncs 3 the same
// reads do overlap: the cap is what kept them apart.
func TestSyncCapRunsOneDirectoryReadAtATime(t *testing.T) {
	tenants := []*tenant{
		{name: "cap-a", token: "cap-a-token-1", ldapPassword: "cap-a-ldap", users: 30},
		{name: "cap-b", token: "cap-b-token-2", ldapPassword: "cap-b-ldap", users: 20},
		{name: "cap-c", token: "cap-c-token-3", ldapPassword: "cap-c-ldap", users: 10},
	}
	f := newFleet(t, tenants)
	f.steps = func(a *activities.Activities) engine.Steps { return &slowReads{a} }

	for i, syncs := range []int{1, 3} {
		f.startWorkers(1, engine.Options{Syncs: syncs})
		runs := f.syncAll(tenants, i == 0)
		for _, tn := range tenants {
			r := runs[tn.name]
			require.Equal(t, vocab.RunSucceeded, r.Status, "%s with --syncs %d: %s", tn.name, syncs, r.Error)
			require.Equal(t, tn.users, f.accounts(tn), "%s with --syncs %d: its users in its target", tn.name, syncs)
		}
		rs := f.readSteps(runs)
		require.Len(t, rs, 2*len(tenants), "a read and a plan per run")
		for _, s := range rs {
			t.Logf("--syncs %d: %s %-17s scheduled %s, ran %s -> %s on %s", syncs, s.org, s.step, s.scheduled.Format("15:04:05.000"),
				s.started.Format("15:04:05.000"), s.completed.Format("15:04:05.000"), s.queue)
			require.Equal(t, workflows.ReadTaskQueue, s.queue)
		}
		if o := overlaps(rs); syncs == 1 {
			require.Empty(t, o, "with --syncs 1, directory reads and plans of different organizations ran at once")
		} else {
			require.NotEmpty(t, o, "with --syncs %d, the reads started together never overlapped: the test cannot tell a cap", syncs)
		}
	}
}
