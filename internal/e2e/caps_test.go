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
	"github.com/usersync/usersync/internal/rules"
	"github.com/usersync/usersync/internal/steps"
	"github.com/usersync/usersync/internal/vocab"
	"github.com/usersync/usersync/workflows"
)

// slowStep is how much longer each directory read and each page evaluation take than the
// test's small directories need: as a large directory's would, long enough that steps started
// together overlap unless a cap keeps them apart.
const slowStep = 2 * time.Second

// slowSteps is a worker's steps whose directory read and page evaluation take slowStep longer.
type slowSteps struct{ *activities.Activities }

func (s *slowSteps) SnapshotDirectory(ctx context.Context, in steps.SnapshotInput) (steps.SnapshotResult, error) {
	if err := sleep(ctx, slowStep); err != nil {
		return steps.SnapshotResult{}, err
	}
	return s.Activities.SnapshotDirectory(ctx, in)
}

func (s *slowSteps) EvaluatePage(ctx context.Context, in steps.PageRef) (steps.PageEvaluation, error) {
	if err := sleep(ctx, slowStep); err != nil {
		return steps.PageEvaluation{}, err
	}
	return s.Activities.EvaluatePage(ctx, in)
}

func sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-time.After(d):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// cappedStep is one attempt of a step of a capped lane (directory read, plan, page evaluation)
// of an organization's run, as its run's (or page's) history recorded it.
type cappedStep struct {
	org, step, queue              string
	scheduled, started, completed time.Time
}

// cappedSteps are the directory reads, plans and page evaluations of the runs, from the
// histories of the runs and their pages (the server's times of each attempt's schedule,
// start and completion), by lane. Any failed or timed-out task, and any retry, fails the
// test: waiting for a cap is never a failure.
func (f *fleet) cappedSteps(runs map[string]*steps.RunSummary) map[string][]cappedStep {
	t := f.t
	t.Helper()
	out := map[string][]cappedStep{}
	for org, r := range runs {
		for ids := []string{r.RunID}; len(ids) > 0; ids = ids[1:] {
			byScheduled := map[int64]*cappedStep{}
			it := f.c.GetWorkflowHistory(f.ctx, ids[0], "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
			for it.HasNext() {
				e, err := it.Next()
				require.NoError(t, err)
				switch e.EventType {
				case enumspb.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_STARTED:
					ids = append(ids, e.GetChildWorkflowExecutionStartedEventAttributes().WorkflowExecution.GetWorkflowId())
				case enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
					a := e.GetActivityTaskScheduledEventAttributes()
					switch n := a.ActivityType.GetName(); n {
					case steps.SnapshotDirectory, steps.PlanRun, steps.EvaluatePage:
						byScheduled[e.EventId] = &cappedStep{org: org, step: n, queue: a.TaskQueue.GetName(), scheduled: e.EventTime.AsTime()}
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
					t.Errorf("%s: %s in the history of %s", org, e.EventType, ids[0])
				}
			}
			for _, s := range byScheduled {
				require.False(t, s.started.IsZero() || s.completed.IsZero(), "%s's %s did not complete", org, s.step)
				out[s.queue] = append(out[s.queue], *s)
			}
		}
	}
	for _, ss := range out {
		slices.SortFunc(ss, func(a, b cappedStep) int { return a.started.Compare(b.started) })
	}
	return out
}

// overlaps are the pairs of read-lane steps of different organizations that ran at the same time.
func overlaps(rs []cappedStep) []string {
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

// Fairness per worker (issue 10): with --syncs 1 --pages 1, three organizations' syncs
// started at once all complete, their users in their targets, and the worker ran one directory
// read or plan at a time and one page evaluation at a time, the others waiting their turn (the
// times are the server's, from the histories of the runs and their pages) without a failure,
// timeout or retry in any history. With 3 and 3 the same steps do overlap: the caps are what
// kept them apart.
func TestCapsRunOneDirectoryReadAndOnePageAtATime(t *testing.T) {
	tenants := []*tenant{
		{name: "cap-a", token: "cap-a-token-1", ldapPassword: "cap-a-ldap", users: 30},
		{name: "cap-b", token: "cap-b-token-2", ldapPassword: "cap-b-ldap", users: 20},
		{name: "cap-c", token: "cap-c-token-3", ldapPassword: "cap-c-ldap", users: 10},
	}
	f := newFleet(t, tenants)
	f.steps = func(a *activities.Activities) engine.Steps { return &slowSteps{a} }

	for i, limit := range []int{1, 3} {
		if i > 0 { // every user changes: each organization has a page to evaluate again
			for _, tn := range tenants {
				_, err := f.st.EditRules(f.ctx, tn.name, "e2e", "user group for all", func(rs []rules.Rule) ([]rules.Rule, error) {
					rs[0].UserGroup = "Capped-" + tn.name
					return rs, nil
				})
				require.NoError(t, err)
			}
		}
		f.startWorkers(1, engine.Options{Syncs: limit, Pages: limit})
		runs := f.syncAll(tenants, i == 0)
		for _, tn := range tenants {
			r := runs[tn.name]
			require.Equal(t, vocab.RunSucceeded, r.Status, "%s with caps %d: %s", tn.name, limit, r.Error)
			require.Equal(t, tn.users, f.accounts(tn), "%s with caps %d: its users in its target", tn.name, limit)
		}
		lanes := f.cappedSteps(runs)
		require.Len(t, lanes[workflows.ReadTaskQueue], 2*len(tenants), "a read and a plan per run on %s: %v", workflows.ReadTaskQueue, lanes)
		require.Len(t, lanes[workflows.PageTaskQueue], len(tenants), "a page per run on %s: %v", workflows.PageTaskQueue, lanes)
		for _, lane := range []string{workflows.ReadTaskQueue, workflows.PageTaskQueue} {
			for _, s := range lanes[lane] {
				t.Logf("caps %d: %s %-17s scheduled %s, ran %s -> %s on %s", limit, s.org, s.step, s.scheduled.Format("15:04:05.000"),
					s.started.Format("15:04:05.000"), s.completed.Format("15:04:05.000"), s.queue)
			}
			if o := overlaps(lanes[lane]); limit == 1 {
				require.Empty(t, o, "with a cap of 1, steps of different organizations ran at once on %s", lane)
			} else {
				require.NotEmpty(t, o, "with a cap of %d, the steps started together on %s never overlapped: the test cannot tell a cap", limit, lane)
			}
		}
	}
}
