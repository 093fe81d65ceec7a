package workflows

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/usersync/usersync/internal/steps"
	"github.com/usersync/usersync/internal/vocab"
)

// watchStep is one WatchDirectory attempt of a test: it ends after this long of workflow
// time with res or err.
type watchStep struct {
	after time.Duration
	res   steps.WatchResult
	err   error
}

// watchScript answers the watch attempts in turn, then watches forever (nothing changes
// again); it returns the inputs the attempts got.
func (e *orgEnv) watchScript(script ...watchStep) *[]steps.WatchInput {
	var ins []steps.WatchInput
	e.SetOnActivityStartedListener(func(info *activity.Info, _ context.Context, args converter.EncodedValues) {
		var in steps.WatchInput
		if info.ActivityType.Name == steps.WatchDirectory && args.Get(&in) == nil {
			ins = append(ins, in)
		}
	})
	for _, st := range script {
		e.OnActivity(steps.WatchDirectory, mock.Anything, mock.Anything).Return(st.res, st.err).After(st.after).Once()
	}
	e.OnActivity(steps.WatchDirectory, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in steps.WatchInput) (steps.WatchResult, error) {
			return steps.WatchResult{Mark: in.Since}, nil
		}).After(30 * time.Minute).Maybe()
	return &ins
}

var watchOn = true

func changed(mark string) steps.WatchResult {
	return steps.WatchResult{Changed: true, Changes: 1, Mark: mark}
}

func TestWatchSeeingAChangeStartsASyncAtOnce(t *testing.T) {
	e := newOrgEnv(t)
	ins := e.watchScript(watchStep{after: 10 * time.Minute, res: changed("csn-2")})
	e.signalAt(time.Second, SignalEnable, SwitchSignal{Actor: "ops", Interval: time.Hour, Watch: &watchOn})
	var st Status
	e.RegisterDelayedCallback(func() { st = e.status(t) }, 5*time.Minute)
	e.RegisterDelayedCallback(func() { e.CancelWorkflow() }, 20*time.Minute)
	e.ExecuteWorkflow(UserSyncWorkflow, SyncState{Org: "acme"})

	require.True(t, st.Watch, "status shows watch mode")
	require.Len(t, e.runs, 2, "the change starts a sync, not the hour's schedule")
	require.Equal(t, vocab.KindWatch, e.runs[1].Kind)
	require.Equal(t, "watch", e.runs[1].Actor)
	require.WithinDuration(t, e.starts[0].Add(10*time.Minute), e.starts[1], 2*time.Second, "at once")
	require.Contains(t, e.actions(), "watch:")
	require.GreaterOrEqual(t, len(*ins), 2, "watching again after the change")
	require.Equal(t, "csn-2", (*ins)[1].Since, "the next watch starts from the mark the last one saw")
}

func TestWatchWhileASyncRunsQueuesExactlyOne(t *testing.T) {
	e := newOrgEnv(t)
	e.runTime = 10 * time.Minute
	e.watchScript(
		watchStep{after: time.Minute, res: changed("1")},
		watchStep{after: time.Minute, res: changed("2")},
		watchStep{after: time.Minute, res: changed("3")},
	)
	e.signalAt(time.Second, SignalEnable, SwitchSignal{Actor: "ops", Interval: time.Hour, Watch: &watchOn})
	var mid Status
	e.RegisterDelayedCallback(func() { mid = e.status(t) }, 5*time.Minute)
	e.RegisterDelayedCallback(func() { e.CancelWorkflow() }, 40*time.Minute)
	e.ExecuteWorkflow(UserSyncWorkflow, SyncState{Org: "acme"})

	require.NotNil(t, mid.CurrentRun, "never two syncs at once")
	require.NotNil(t, mid.Queued)
	require.Equal(t, vocab.KindWatch, mid.Queued.Kind)
	require.Len(t, e.runs, 2, "three changes during a sync queue one sync after it")
	require.Equal(t, vocab.KindWatch, e.runs[1].Kind)
	require.WithinDuration(t, e.starts[0].Add(10*time.Minute), e.starts[1], 2*time.Second, "right after the running one")
	require.Equal(t, []string{"enable:", "watch:", "watch:", "watch:"}, e.actions())
	require.Equal(t, e.runs[0].RunID, e.events[1].Details["queuedBehind"])
}

func TestDisableStopsTheWatch(t *testing.T) {
	e := newOrgEnv(t)
	ins := e.watchScript(watchStep{after: 10 * time.Minute, res: changed("2")})
	var cancelled []string
	e.SetOnActivityCanceledListener(func(info *activity.Info) { cancelled = append(cancelled, info.ActivityType.Name) })
	e.signalAt(time.Second, SignalEnable, SwitchSignal{Actor: "ops", Interval: time.Hour, Watch: &watchOn})
	e.signalAt(5*time.Minute, SignalDisable, SwitchSignal{Actor: "ops"})
	e.RegisterDelayedCallback(func() { e.CancelWorkflow() }, 3*time.Hour)
	e.ExecuteWorkflow(UserSyncWorkflow, SyncState{Org: "acme"})

	require.Len(t, e.runs, 1, "no sync after disable, the watch's change included")
	require.Len(t, *ins, 1, "no watch starts again while sync is off")
	require.Equal(t, []string{steps.WatchDirectory}, cancelled, "disable cancels the running watch")
}

func TestEnableWithoutWatchTurnsItOff(t *testing.T) {
	e := newOrgEnv(t)
	ins := e.watchScript(watchStep{after: 10 * time.Minute, res: changed("2")})
	off := false
	e.signalAt(time.Second, SignalEnable, SwitchSignal{Actor: "ops", Interval: time.Hour, Watch: &watchOn})
	e.signalAt(5*time.Minute, SignalEnable, SwitchSignal{Actor: "ops", Watch: &off})
	var st Status
	e.RegisterDelayedCallback(func() { st = e.status(t) }, 6*time.Minute)
	e.RegisterDelayedCallback(func() { e.CancelWorkflow() }, 50*time.Minute)
	e.ExecuteWorkflow(UserSyncWorkflow, SyncState{Org: "acme"})

	require.True(t, st.Enabled)
	require.False(t, st.Watch)
	require.Len(t, e.runs, 1)
	require.Len(t, *ins, 1)
}

func TestWatchFailureDoesNotBlockTheSchedule(t *testing.T) {
	for name, err := range map[string]error{
		"retried":   errors.New("directory ldap://dc: connection refused"),
		"permanent": temporal.NewNonRetryableApplicationError("no contextCSN", "WatchUnsupported", nil),
	} {
		t.Run(name, func(t *testing.T) {
			e := newOrgEnv(t)
			calls := 0
			e.OnActivity(steps.WatchDirectory, mock.Anything, mock.Anything).Return(
				func(context.Context, steps.WatchInput) (steps.WatchResult, error) {
					calls++
					return steps.WatchResult{}, err
				}).After(time.Second)
			e.signalAt(time.Second, SignalEnable, SwitchSignal{Actor: "ops", Interval: time.Hour, Watch: &watchOn})
			e.RegisterDelayedCallback(func() { e.CancelWorkflow() }, 2*time.Hour+30*time.Minute)
			e.ExecuteWorkflow(UserSyncWorkflow, SyncState{Org: "acme"})

			require.Len(t, e.runs, 3, "the hourly syncs run while the watch fails")
			for _, r := range e.runs {
				require.Equal(t, vocab.KindScheduled, r.Kind)
			}
			require.Greater(t, calls, 0)
			require.Less(t, calls, 400, "retried with backoff, not in a loop")
		})
	}
}

// Watch mode and the last mark carry across continue-as-new: the next execution watches again
// from where this one stopped.
func TestWatchCarriesAcrossContinueAsNew(t *testing.T) {
	e := newOrgEnv(t)
	e.runTime = time.Second
	e.watchScript(watchStep{after: 30 * time.Second, res: changed("csn-9")})
	e.signalAt(time.Second, SignalEnable, SwitchSignal{Actor: "ops", Interval: time.Minute, Watch: &watchOn})
	e.ExecuteWorkflow(UserSyncWorkflow, SyncState{Org: "acme"})

	var can *workflow.ContinueAsNewError
	require.ErrorAs(t, e.GetWorkflowError(), &can)
	var next SyncState
	require.NoError(t, converter.GetDefaultDataConverter().FromPayloads(can.Input, &next))
	require.True(t, next.Watch)
	require.Equal(t, "csn-9", next.WatchMark)
}
