package workflows

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/usersync/usersync/activities"
	"github.com/usersync/usersync/internal/steps"
	"github.com/usersync/usersync/internal/vocab"
)

// orgEnv is a test environment for UserSyncWorkflow whose sync runs are replaced by a stub
// that records its inputs and takes runTime of workflow time.
type orgEnv struct {
	*testsuite.TestWorkflowEnvironment
	runs    []RunInput
	starts  []time.Time // of the runs, in workflow time
	events  []vocab.Event
	runTime time.Duration
	// verdict answers the CheckAction step (nil: everything passes); checks are what it was asked.
	verdict func(steps.ActionCheck) steps.ActionVerdict
	checks  []steps.ActionCheck
	// recordErr, when set, answers the RecordEvent step (the history table) first; nil writes.
	recordErr func(vocab.Event) error
}

func newOrgEnv(t *testing.T) *orgEnv {
	var s testsuite.WorkflowTestSuite
	quiet(&s)
	e := &orgEnv{TestWorkflowEnvironment: s.NewTestWorkflowEnvironment(), runTime: time.Minute}
	e.RegisterWorkflow(UserSyncWorkflow)
	e.RegisterWorkflowWithOptions(func(ctx workflow.Context, in RunInput) (steps.RunSummary, error) {
		e.runs = append(e.runs, in)
		e.starts = append(e.starts, workflow.Now(ctx))
		if err := workflow.Sleep(ctx, e.runTime); err != nil {
			return steps.RunSummary{}, err
		}
		return steps.RunSummary{FinishInput: steps.FinishInput{RunRef: steps.RunRef{Org: in.Org, RunID: in.RunID},
			Kind: in.Kind, Status: vocab.RunSucceeded}}, nil
	}, workflow.RegisterOptions{Name: "SyncRunWorkflow"})
	e.RegisterActivity(&activities.Activities{})
	e.OnActivity("DiscoverTarget", mock.Anything, mock.Anything).Return(steps.TargetCheck{Patch: true}, nil).Maybe()
	e.OnActivity("RecordEvent", mock.Anything, mock.Anything).Return(func(_ context.Context, ev vocab.Event) error {
		if e.recordErr != nil {
			if err := e.recordErr(ev); err != nil {
				return err
			}
		}
		e.events = append(e.events, ev)
		return nil
	})
	e.OnActivity("CheckAction", mock.Anything, mock.Anything).Return(func(_ context.Context, c steps.ActionCheck) (steps.ActionVerdict, error) {
		e.checks = append(e.checks, c)
		if e.verdict == nil {
			return steps.ActionVerdict{}, nil
		}
		return e.verdict(c), nil
	}).Maybe()
	return e
}

func (e *orgEnv) signalAt(d time.Duration, name string, arg any) {
	e.RegisterDelayedCallback(func() { e.SignalWorkflow(name, arg) }, d)
}

func (e *orgEnv) status(t *testing.T) Status {
	v, err := e.QueryWorkflow(QueryStatus)
	require.NoError(t, err)
	var s Status
	require.NoError(t, v.Get(&s))
	return s
}

func (e *orgEnv) actions() []string {
	var out []string
	for _, ev := range e.events {
		out = append(out, ev.Action+":"+ev.Status)
	}
	return out
}

func TestEnableStartsASyncAtOnceThenOnTheSchedule(t *testing.T) {
	e := newOrgEnv(t)
	e.signalAt(time.Second, SignalEnable, SwitchSignal{Actor: "alice", Interval: 10 * time.Minute})
	var mid Status
	e.RegisterDelayedCallback(func() { mid = e.status(t) }, 30*time.Second)
	e.RegisterDelayedCallback(func() { e.CancelWorkflow() }, 30*time.Minute)
	e.ExecuteWorkflow(UserSyncWorkflow, SyncState{Org: "acme"})

	require.True(t, mid.Enabled)
	require.NotNil(t, mid.CurrentRun, "the first sync runs right after enable")
	// Runs start at 0:00, 0:11 and 0:22: each takes a minute and the next starts 10 minutes after.
	require.Len(t, e.runs, 3)
	for _, r := range e.runs {
		require.Equal(t, vocab.KindScheduled, r.Kind)
		require.Equal(t, "acme", r.Org)
	}
	require.NotEqual(t, e.runs[0].RunID, e.runs[1].RunID)
	require.Equal(t, []string{"enable:"}, e.actions())
	require.Equal(t, "alice", e.events[0].Actor)
}

func TestDisableStopsTheRunningSyncAndStartsNoNewOne(t *testing.T) {
	e := newOrgEnv(t)
	e.runTime = 5 * time.Minute
	e.signalAt(time.Second, SignalEnable, SwitchSignal{Actor: "ops"})
	e.signalAt(2*time.Minute, SignalDisable, SwitchSignal{Actor: "bob"})
	var after Status
	e.RegisterDelayedCallback(func() { after = e.status(t) }, 3*time.Minute)
	e.signalAt(4*time.Minute, SignalSyncNow, ActorSignal{Actor: "bob"})
	e.RegisterDelayedCallback(func() { e.CancelWorkflow() }, 2*time.Hour)
	e.ExecuteWorkflow(UserSyncWorkflow, SyncState{Org: "acme"})

	require.Len(t, e.runs, 1, "nothing starts while sync is off")
	require.False(t, after.Enabled)
	require.Nil(t, after.CurrentRun)
	require.NotNil(t, after.LastRun)
	require.Equal(t, vocab.RunCancelled, after.LastRun.Status, "disable cancels the running sync")
	require.Equal(t, []string{"enable:", "disable:", "sync-now:rejected"}, e.actions())
}

func TestRetrySignalRunsARetryOfTheMatchingFailures(t *testing.T) {
	e := newOrgEnv(t)
	e.signalAt(time.Second, SignalEnable, SwitchSignal{Actor: "ops"})
	e.signalAt(5*time.Minute, SignalRetry, RetrySignal{Actor: "carol", Filter: vocab.Filter{Type: vocab.OutOfLicenses}})
	e.RegisterDelayedCallback(func() { e.CancelWorkflow() }, 8*time.Minute)
	e.ExecuteWorkflow(UserSyncWorkflow, SyncState{Org: "acme"})

	require.Len(t, e.runs, 2)
	require.Equal(t, vocab.KindRetry, e.runs[1].Kind)
	require.Equal(t, &vocab.Filter{Type: vocab.OutOfLicenses}, e.runs[1].Retry)
	require.Contains(t, e.actions(), "retry:")
}

func TestSignalsDuringARunQueueOneMergedRun(t *testing.T) {
	e := newOrgEnv(t)
	e.runTime = 10 * time.Minute
	e.signalAt(time.Second, SignalEnable, SwitchSignal{Actor: "ops"})
	e.signalAt(time.Minute, SignalRetry, RetrySignal{Actor: "ops", Filter: vocab.Filter{Type: vocab.OutOfLicenses}})
	e.signalAt(2*time.Minute, SignalRetry, RetrySignal{Actor: "ops", Filter: vocab.Filter{Type: vocab.DomainNotValidated}})
	var queued Status
	e.RegisterDelayedCallback(func() { queued = e.status(t) }, 3*time.Minute)
	e.RegisterDelayedCallback(func() { e.CancelWorkflow() }, 15*time.Minute)
	e.ExecuteWorkflow(UserSyncWorkflow, SyncState{Org: "acme"})

	require.NotNil(t, queued.Queued)
	require.Equal(t, &vocab.Filter{}, queued.Queued.Retry, "two different retry filters widen to all failures")
	require.Len(t, e.runs, 2, "the queued retries run once, after the running sync")
	require.Equal(t, vocab.KindRetry, e.runs[1].Kind)
}

func TestLongLivedWorkflowContinuesAsNewKeepingItsState(t *testing.T) {
	e := newOrgEnv(t)
	e.runTime = time.Second
	e.signalAt(time.Second, SignalEnable, SwitchSignal{Actor: "ops", Interval: time.Minute})
	e.ExecuteWorkflow(UserSyncWorkflow, SyncState{Org: "acme"})

	err := e.GetWorkflowError()
	var can *workflow.ContinueAsNewError
	require.ErrorAs(t, err, &can, "the workflow must continue as new before its history grows long")
	var next SyncState
	require.NoError(t, converter.GetDefaultDataConverter().FromPayloads(can.Input, &next))
	require.True(t, next.Enabled)
	require.Equal(t, time.Minute, next.Interval)
	require.Equal(t, len(e.runs), next.Seq)
	require.NotNil(t, next.LastRun)
}

// quiet keeps the test output to what fails.
func quiet(s *testsuite.WorkflowTestSuite) {
	s.SetLogger(log.NewStructuredLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
}

func TestChangingTheIntervalWhileOnReschedulesTheNextSync(t *testing.T) {
	e := newOrgEnv(t)
	e.signalAt(time.Second, SignalEnable, SwitchSignal{Actor: "ops", Interval: time.Hour})
	e.signalAt(10*time.Minute, SignalEnable, SwitchSignal{Actor: "ops", Interval: 15 * time.Minute})
	e.RegisterDelayedCallback(func() { e.CancelWorkflow() }, 20*time.Minute)
	e.ExecuteWorkflow(UserSyncWorkflow, SyncState{Org: "acme"})

	require.Len(t, e.runs, 2, "the second sync runs 15 minutes after the first ended, not an hour")
}

func TestApproveSuspensionsRunsASyncThatAppliesThem(t *testing.T) {
	e := newOrgEnv(t)
	e.signalAt(time.Second, SignalEnable, SwitchSignal{Actor: "ops"})
	e.signalAt(5*time.Minute, SignalApproveSuspensions, ApproveSignal{Actor: "alice", Held: 3, Digest: "abc"})
	e.RegisterDelayedCallback(func() { e.CancelWorkflow() }, 8*time.Minute)
	e.ExecuteWorkflow(UserSyncWorkflow, SyncState{Org: "acme"})

	require.Len(t, e.runs, 2)
	require.False(t, e.runs[0].ApproveSuspensions)
	require.True(t, e.runs[1].ApproveSuspensions, "the approved run applies the held suspensions")
	require.Contains(t, e.actions(), "approve-suspensions:")
}

// The history table cannot be written (the database is down): enable is not done, and no
// sync starts, until its history row is; the write is retried, never dropped.
func TestAFailedHistoryWriteHoldsTheActionUntilItIsWritten(t *testing.T) {
	e := newOrgEnv(t)
	down, attempts := true, 0
	e.recordErr = func(vocab.Event) error {
		if down {
			attempts++
			return errors.New("connection refused")
		}
		return nil
	}
	e.signalAt(time.Second, SignalEnable, SwitchSignal{Actor: "alice", Interval: time.Hour})
	var during Status
	var runsDuring int
	e.RegisterDelayedCallback(func() { during, runsDuring = e.status(t), len(e.runs) }, 20*time.Minute)
	e.RegisterDelayedCallback(func() { down = false }, 21*time.Minute)
	e.RegisterDelayedCallback(func() { e.CancelWorkflow() }, 40*time.Minute)
	e.ExecuteWorkflow(UserSyncWorkflow, SyncState{Org: "acme"})

	require.Zero(t, runsDuring, "no sync starts while its history row cannot be written")
	require.Nil(t, during.CurrentRun)
	require.Greater(t, attempts, 3, "the write was retried")
	require.Equal(t, []string{"enable:"}, e.actions(), "written once the database is back")
	require.Equal(t, "alice", e.events[0].Actor)
	require.Len(t, e.runs, 1, "then the sync starts")
}
