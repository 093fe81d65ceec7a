package workflows

import (
	"strconv"
	"time"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/usersync/usersync/activities"
	"github.com/usersync/usersync/internal/plan"
	"github.com/usersync/usersync/internal/store"
)

// The long-lived workflow continues as new after this many events or runs, to keep its
// history short (a 15-minute schedule makes ~100 runs a day).
const (
	maxEventsBeforeContinueAsNew = 2000
	maxRunsBeforeContinueAsNew   = 100
)

// UserSyncWorkflow is an organization's long-lived sync workflow (ID usersync/<org>). It holds
// the on/off switch and the schedule, starts each sync as a child workflow, takes the enable,
// disable, retry, sync-now and approve-suspensions signals and answers the status query.
func UserSyncWorkflow(ctx workflow.Context, st SyncState) error {
	if st.Interval <= 0 {
		st.Interval = DefaultInterval
	}
	o := &orgLoop{st: st}
	if err := workflow.SetQueryHandler(ctx, QueryStatus, o.status); err != nil {
		return err
	}
	lctx := workflow.WithLocalActivityOptions(ctx, stepOptions)
	o.record = func(e store.Event) {
		e.Org = o.st.Org
		if err := workflow.ExecuteLocalActivity(lctx, a.RecordEvent, e).Get(ctx, nil); err != nil {
			workflow.GetLogger(ctx).Error("history write failed", "action", e.Action, "error", err)
		}
	}
	channels := []struct {
		name   string
		handle func(workflow.Context, workflow.ReceiveChannel)
	}{
		{SignalEnable, o.onEnable}, {SignalDisable, o.onDisable}, {SignalRetry, o.onRetry},
		{SignalSyncNow, o.onSyncNow}, {SignalApproveSuspensions, o.onApprove},
	}
	for {
		if ctx.Err() != nil && o.run == nil {
			// Cancelled from the UI or CLI: the running sync (a child) was cancelled with us.
			return ctx.Err()
		}
		if ctx.Err() != nil {
			_ = o.run.Get(ctx, nil)
			o.run = nil
			continue
		}
		if o.run == nil && o.st.Enabled && o.st.Next != nil {
			o.startRun(ctx)
		}
		if o.run == nil && o.st.Enabled && o.timer == nil && o.st.Next == nil {
			o.armTimer(ctx)
		}
		sel := workflow.NewSelector(ctx)
		for _, c := range channels {
			c := c
			sel.AddReceive(workflow.GetSignalChannel(ctx, c.name), func(ch workflow.ReceiveChannel, _ bool) { c.handle(ctx, ch) })
		}
		if o.run != nil {
			sel.AddFuture(o.run, func(f workflow.Future) { o.runDone(ctx, f) })
		}
		if o.timer != nil {
			sel.AddFuture(o.timer, func(f workflow.Future) {
				o.timer = nil
				if f.Get(ctx, nil) == nil && o.st.Enabled && o.st.Next == nil {
					o.st.Next = &RunRequest{Kind: KindScheduled, Actor: "schedule"}
				}
			})
		}
		sel.Select(ctx)
		for sel.HasPending() {
			sel.Select(ctx)
		}
		info := workflow.GetInfo(ctx)
		if o.run == nil && o.st.Next == nil &&
			(info.GetContinueAsNewSuggested() || info.GetCurrentHistoryLength() > maxEventsBeforeContinueAsNew ||
				o.runs >= maxRunsBeforeContinueAsNew) {
			if o.timer != nil {
				o.cancelTimer()
			}
			return workflow.NewContinueAsNewError(ctx, UserSyncWorkflow, o.st)
		}
	}
}

// orgLoop is UserSyncWorkflow's state between signals.
type orgLoop struct {
	st          SyncState
	runs        int // started in this execution
	run         workflow.ChildWorkflowFuture
	runCancel   workflow.CancelFunc
	current     *Progress
	timer       workflow.Future
	timerCancel workflow.CancelFunc
	record      func(store.Event)
}

func (o *orgLoop) status() (Status, error) {
	s := Status{Org: o.st.Org, Enabled: o.st.Enabled, Interval: o.st.Interval, CurrentRun: o.current,
		Queued: o.st.Next, LastRun: o.st.LastRun, Runs: o.st.Seq}
	if o.st.Enabled && !o.st.NextAt.IsZero() {
		t := o.st.NextAt
		s.NextAt = &t
	}
	return s, nil
}

func (o *orgLoop) onEnable(ctx workflow.Context, ch workflow.ReceiveChannel) {
	var s SwitchSignal
	ch.Receive(ctx, &s)
	if s.Interval > 0 && s.Interval != o.st.Interval {
		if o.st.Enabled && !o.st.NextAt.IsZero() {
			// Re-arm the schedule with the new interval, still counted from the last run's end.
			o.cancelTimer()
			o.st.NextAt = o.st.NextAt.Add(s.Interval - o.st.Interval)
		}
		o.st.Interval = s.Interval
	}
	if o.st.Enabled {
		o.record(store.Event{Actor: s.Actor, Type: store.EventSwitch, Action: "enable", Status: "no-op",
			Details: map[string]any{"reason": "sync was already on", "interval": o.st.Interval.String()}})
		return
	}
	o.st.Enabled = true
	o.queue(RunRequest{Kind: KindScheduled, Actor: s.Actor})
	o.record(store.Event{Actor: s.Actor, Type: store.EventSwitch, Action: "enable",
		Details: map[string]any{"interval": o.st.Interval.String()}})
}

func (o *orgLoop) onDisable(ctx workflow.Context, ch workflow.ReceiveChannel) {
	var s SwitchSignal
	ch.Receive(ctx, &s)
	was := o.st.Enabled
	o.st.Enabled, o.st.Next, o.st.NextAt = false, nil, time.Time{}
	o.cancelTimer()
	details := map[string]any{"wasOn": was}
	if o.run != nil {
		o.runCancel() // the run stops cleanly; what it already provisioned stays
		details["cancelledRun"] = o.current.RunID
	}
	o.record(store.Event{Actor: s.Actor, Type: store.EventSwitch, Action: "disable", Details: details})
}

func (o *orgLoop) onRetry(ctx workflow.Context, ch workflow.ReceiveChannel) {
	var s RetrySignal
	ch.Receive(ctx, &s)
	f := s.Filter
	o.requestWhileOn(store.Event{Actor: s.Actor, Type: store.EventRetry, Action: "retry",
		Details: map[string]any{"type": f.Type, "product": f.Product, "user": f.User}},
		RunRequest{Kind: KindRetry, Retry: &f, Actor: s.Actor})
}

func (o *orgLoop) onSyncNow(ctx workflow.Context, ch workflow.ReceiveChannel) {
	var s ActorSignal
	ch.Receive(ctx, &s)
	o.requestWhileOn(store.Event{Actor: s.Actor, Type: store.EventSync, Action: "sync-now"},
		RunRequest{Kind: KindManual, Actor: s.Actor})
}

func (o *orgLoop) onApprove(ctx workflow.Context, ch workflow.ReceiveChannel) {
	var s ActorSignal
	ch.Receive(ctx, &s)
	o.requestWhileOn(store.Event{Actor: s.Actor, Type: store.EventSync, Action: "approve-suspensions"},
		RunRequest{Kind: KindManual, ApproveSuspensions: true, Actor: s.Actor})
}

// requestWhileOn queues a run; while sync is off nothing new starts, and the history says so.
func (o *orgLoop) requestWhileOn(e store.Event, r RunRequest) {
	if !o.st.Enabled {
		e.Status = "rejected"
		if e.Details == nil {
			e.Details = map[string]any{}
		}
		e.Details["reason"] = "user sync is off: enable it first"
		o.record(e)
		return
	}
	o.queue(r)
	o.record(e)
}

// queue merges a request into the next run: a full sync re-attempts every failed user, so it
// absorbs retries; two different retry filters widen to a retry of all failures.
func (o *orgLoop) queue(r RunRequest) {
	n := o.st.Next
	switch {
	case n == nil:
		o.st.Next = &r
	case n.Kind != KindRetry:
		n.ApproveSuspensions = n.ApproveSuspensions || r.ApproveSuspensions
	case r.Kind != KindRetry:
		r.ApproveSuspensions = r.ApproveSuspensions || n.ApproveSuspensions
		o.st.Next = &r
	case *n.Retry != *r.Retry:
		n.Retry = &plan.Filter{}
	}
	o.cancelTimer()
}

func (o *orgLoop) startRun(ctx workflow.Context) {
	req := *o.st.Next
	o.st.Next = nil
	o.st.Seq++
	o.runs++
	runID := RunWorkflowID(o.st.Org, workflow.Now(ctx).UTC().Format("20060102T150405")+"-"+strconv.Itoa(o.st.Seq))
	in := RunInput{Org: o.st.Org, RunID: runID, Kind: req.Kind, Retry: req.Retry,
		ApproveSuspensions: req.ApproveSuspensions, Actor: req.Actor}
	cctx, cancel := workflow.WithCancel(ctx)
	cctx = workflow.WithChildOptions(cctx, workflow.ChildWorkflowOptions{
		WorkflowID:          runID,
		WaitForCancellation: true,
		ParentClosePolicy:   enums.PARENT_CLOSE_POLICY_REQUEST_CANCEL,
	})
	o.run, o.runCancel = workflow.ExecuteChildWorkflow(cctx, SyncRunWorkflow, in), cancel
	o.current = &Progress{RunID: runID, Phase: req.Kind, StartedAt: workflow.Now(ctx)}
}

func (o *orgLoop) runDone(ctx workflow.Context, f workflow.Future) {
	var sum activities.RunSummary
	err := f.Get(ctx, &sum)
	if err != nil && sum.RunID == "" {
		sum.RunID, sum.StartedAt = o.current.RunID, o.current.StartedAt
		sum.Status, sum.Error, sum.FinishedAt = store.RunFailed, rootCause(err).Error(), workflow.Now(ctx)
		if temporal.IsCanceledError(err) {
			sum.Status, sum.Error = store.RunCancelled, ""
		}
	}
	o.st.LastRun = &sum
	o.run, o.runCancel, o.current = nil, nil, nil
	if o.st.Enabled {
		o.st.NextAt = workflow.Now(ctx).Add(o.st.Interval)
	}
}

func (o *orgLoop) armTimer(ctx workflow.Context) {
	wait := o.st.NextAt.Sub(workflow.Now(ctx))
	if o.st.NextAt.IsZero() || wait <= 0 {
		o.st.Next = &RunRequest{Kind: KindScheduled, Actor: "schedule"}
		return
	}
	tctx, cancel := workflow.WithCancel(ctx)
	o.timer, o.timerCancel = workflow.NewTimer(tctx, wait), cancel
}

func (o *orgLoop) cancelTimer() {
	if o.timerCancel != nil {
		o.timerCancel()
	}
	o.timer, o.timerCancel = nil, nil
}
