package workflows

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/usersync/usersync/activities"
	"github.com/usersync/usersync/internal/steps"
	"github.com/usersync/usersync/internal/vocab"
)

// spanEnv is a test environment for UserSyncWorkflow whose sync runs are stubs that take
// runTime of workflow time and record when they ran.
type spanEnv struct {
	*testsuite.TestWorkflowEnvironment
	runTime time.Duration
	spans   []runSpan
	events  []vocab.Event
}

// runSpan is one sync run: its input and when it started and ended (workflow time).
type runSpan struct {
	in         RunInput
	start, end time.Time
}

func newSpanEnv(t *testing.T, runTime time.Duration) *spanEnv {
	var s testsuite.WorkflowTestSuite
	quiet(&s)
	e := &spanEnv{TestWorkflowEnvironment: s.NewTestWorkflowEnvironment(), runTime: runTime}
	e.RegisterWorkflow(UserSyncWorkflow)
	e.RegisterWorkflowWithOptions(func(ctx workflow.Context, in RunInput) (steps.RunSummary, error) {
		i := len(e.spans)
		e.spans = append(e.spans, runSpan{in: in, start: workflow.Now(ctx)})
		err := workflow.Sleep(ctx, e.runTime)
		e.spans[i].end = workflow.Now(ctx)
		if err != nil {
			return steps.RunSummary{}, err
		}
		return steps.RunSummary{FinishInput: steps.FinishInput{RunRef: steps.RunRef{Org: in.Org, RunID: in.RunID},
			Kind: in.Kind, Status: vocab.RunSucceeded}}, nil
	}, workflow.RegisterOptions{Name: "SyncRunWorkflow"})
	e.RegisterActivity(&activities.Activities{})
	e.OnActivity("RecordEvent", mock.Anything, mock.Anything).Return(func(_ context.Context, ev vocab.Event) error {
		e.events = append(e.events, ev)
		return nil
	})
	return e
}

func (e *spanEnv) signalAt(d time.Duration, name string, arg any) {
	e.RegisterDelayedCallback(func() { e.SignalWorkflow(name, arg) }, d)
}

func (e *spanEnv) statusAt(t *testing.T, d time.Duration, into *Status) {
	e.RegisterDelayedCallback(func() {
		v, err := e.QueryWorkflow(QueryStatus)
		require.NoError(t, err)
		require.NoError(t, v.Get(into))
	}, d)
}

// requireNoOverlap checks that no sync run ran beside another.
func (e *spanEnv) requireNoOverlap(t *testing.T) {
	t.Helper()
	for i := 1; i < len(e.spans); i++ {
		require.False(t, e.spans[i].start.Before(e.spans[i-1].end),
			"run %s started at %s, before run %s ended at %s", e.spans[i].in.RunID, e.spans[i].start,
			e.spans[i-1].in.RunID, e.spans[i-1].end)
	}
}

func ticketOf(st Status, req string) *RunTicket {
	for _, t := range st.Tickets {
		if t.Request == req {
			return &t
		}
	}
	return nil
}

// `starter run` while a scheduled sync runs: the run is queued by the org workflow and starts
// when the scheduled one ends, never beside it; its ticket names it.
func TestRunRequestedDuringAScheduledSyncStartsWhenItEnds(t *testing.T) {
	e := newSpanEnv(t, 10*time.Minute)
	e.signalAt(time.Second, SignalEnable, SwitchSignal{Actor: "ops", Interval: time.Hour})
	e.signalAt(2*time.Minute, SignalRun, RunSignal{Actor: "dave", Request: "r1"})
	var queued, after Status
	e.statusAt(t, 3*time.Minute, &queued)
	e.statusAt(t, 15*time.Minute, &after)
	e.RegisterDelayedCallback(func() { e.CancelWorkflow() }, 30*time.Minute)
	e.ExecuteWorkflow(UserSyncWorkflow, SyncState{Org: "acme"})

	require.NotNil(t, queued.CurrentRun)
	require.Equal(t, vocab.KindScheduled, queued.CurrentRun.Phase)
	require.NotNil(t, queued.Queued, "queued behind the scheduled sync")
	require.Equal(t, []string{"r1"}, queued.Queued.Requests)
	require.Nil(t, ticketOf(queued, "r1"), "no ticket before the run starts")

	require.Len(t, e.spans, 2)
	e.requireNoOverlap(t)
	require.Equal(t, vocab.KindManual, e.spans[1].in.Kind)
	require.Equal(t, "dave", e.spans[1].in.Actor)
	tk := ticketOf(after, "r1")
	require.NotNil(t, tk)
	require.Equal(t, RunTicket{Request: "r1", RunID: e.spans[1].in.RunID, Kind: vocab.KindManual}, *tk)
}

// While sync is off, a run request still runs (as `starter run` always did), one at a time,
// and nothing else starts; a resent request is not run twice.
func TestRunRequestsWhileOffRunOneAtATime(t *testing.T) {
	e := newSpanEnv(t, 5*time.Minute)
	e.signalAt(time.Second, SignalRun, RunSignal{Actor: "ops", Request: "r1"})
	e.signalAt(time.Minute, SignalRun, RunSignal{Actor: "ops", Request: "r2"})
	e.signalAt(2*time.Minute, SignalRun, RunSignal{Actor: "ops", Request: "r2"})  // resent
	e.signalAt(20*time.Minute, SignalRun, RunSignal{Actor: "ops", Request: "r1"}) // resent after it ran
	var after Status
	e.statusAt(t, time.Hour, &after)
	e.RegisterDelayedCallback(func() { e.CancelWorkflow() }, 2*time.Hour)
	e.ExecuteWorkflow(UserSyncWorkflow, SyncState{Org: "acme"})

	require.Len(t, e.spans, 2, "two requests, two runs, and nothing scheduled while off")
	e.requireNoOverlap(t)
	require.False(t, after.Enabled)
	for i, req := range []string{"r1", "r2"} {
		tk := ticketOf(after, req)
		require.NotNil(t, tk, req)
		require.Equal(t, e.spans[i].in.RunID, tk.RunID, req)
	}
}

// Disable cancels the running sync and drops a queued run request; the ticket says why.
func TestDisableDropsAQueuedRunRequest(t *testing.T) {
	e := newSpanEnv(t, 5*time.Minute)
	e.signalAt(time.Second, SignalRun, RunSignal{Actor: "ops", Request: "r1"})
	e.signalAt(time.Minute, SignalRun, RunSignal{Actor: "ops", Request: "r2"})
	e.signalAt(2*time.Minute, SignalDisable, SwitchSignal{Actor: "erin"})
	var after Status
	e.statusAt(t, 10*time.Minute, &after)
	e.RegisterDelayedCallback(func() { e.CancelWorkflow() }, time.Hour)
	e.ExecuteWorkflow(UserSyncWorkflow, SyncState{Org: "acme"})

	require.Len(t, e.spans, 1)
	require.NotNil(t, after.LastRun)
	require.Equal(t, vocab.RunCancelled, after.LastRun.Status)
	tk := ticketOf(after, "r2")
	require.NotNil(t, tk)
	require.Empty(t, tk.RunID)
	require.Contains(t, tk.Dropped, "turned off")
	require.Nil(t, after.Queued)
}

// A bad run payload is rejected and recorded; the workflow keeps serving the channel.
func TestMalformedRunSignalIsRejectedAndTheNextOneRuns(t *testing.T) {
	e := newSpanEnv(t, time.Minute)
	e.signalAt(time.Second, SignalRun, json.RawMessage(`{"request":5,"actor":"dave"}`))
	e.signalAt(2*time.Second, SignalRun, json.RawMessage(`{"request":"r1","dry":true}`))
	e.signalAt(3*time.Second, SignalRun, RunSignal{Actor: "ops", Request: "r2"})
	e.RegisterDelayedCallback(func() { e.CancelWorkflow() }, time.Hour)
	e.ExecuteWorkflow(UserSyncWorkflow, SyncState{Org: "acme"})

	require.Len(t, e.spans, 1)
	var rejected []string
	for _, ev := range e.events {
		if ev.Status == "rejected" {
			require.Equal(t, SignalRun, ev.Action)
			rejected = append(rejected, ev.Details["field"].(string))
		}
	}
	require.Equal(t, []string{"request", "dry"}, rejected)
	require.Equal(t, "dave", e.events[0].Actor, "the rejection names the sender")
}
