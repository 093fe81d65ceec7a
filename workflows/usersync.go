package workflows

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/usersync/usersync/internal/codec"
	"github.com/usersync/usersync/internal/steps"
	"github.com/usersync/usersync/internal/vocab"
)

// The long-lived workflow continues as new after this many events or runs, to keep its
// history short (a 15-minute schedule makes ~100 runs a day).
const (
	maxEventsBeforeContinueAsNew = 2000
	maxRunsBeforeContinueAsNew   = 100
)

// UserSyncWorkflow is an organization's long-lived sync workflow (ID usersync/<org>). It holds
// the on/off switch and the schedule, starts each sync as a child workflow, takes the enable,
// disable, retry, sync-now, approve-suspensions and run signals and answers the status query.
// It runs one sync at a time: every request waits for the running sync to end.
func UserSyncWorkflow(ctx workflow.Context, st SyncState) error {
	if st.Interval <= 0 {
		st.Interval = DefaultInterval
	}
	o := &orgLoop{st: st}
	if err := workflow.SetQueryHandler(ctx, QueryStatus, o.status); err != nil {
		return err
	}
	o.recordIn = func(ctx workflow.Context, e vocab.Event) {
		lctx := workflow.WithLocalActivityOptions(ctx, stepOptions)
		e.Org = o.st.Org
		for {
			err := workflow.ExecuteLocalActivity(lctx, steps.RecordEvent, e).Get(ctx, nil)
			if err == nil {
				return
			}
			workflow.GetLogger(ctx).Error("history write failed", "action", e.Action, "error", err)
			var ae *temporal.ApplicationError
			if ctx.Err() != nil || (errors.As(err, &ae) && ae.NonRetryable()) ||
				workflow.GetVersion(ctx, changeHistoryNeverDropped, workflow.DefaultVersion, 1) == workflow.DefaultVersion {
				return // logged, then dropped: as that code did, or a row the database cannot hold
			}
			// The action is not done until its history row is: wait for the database.
			_ = workflow.Sleep(ctx, time.Minute)
		}
	}
	o.record = func(e vocab.Event) { o.recordIn(ctx, e) }
	o.actions = workflow.NewChannel(ctx)
	if err := o.registerUpdates(ctx); err != nil {
		return err
	}
	o.publish(ctx, changeSearchAttributesStart)
	channels := []signalHandler{
		{SignalEnable, enableAction.onSignal(o)}, {SignalDisable, disableAction.onSignal(o)},
		{SignalRetry, retryAction.onSignal(o)}, {SignalSyncNow, syncNowAction.onSignal(o)},
		{SignalApproveSuspensions, approveAction.onSignal(o)}, {SignalRun, o.onRun},
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
		if o.run == nil && o.st.Next != nil && (o.st.Enabled || len(o.st.Next.Requests) > 0) {
			o.startRun(ctx) // a run request (SignalRun) starts while sync is off too
		}
		if o.run == nil && o.st.Enabled && o.timer == nil && o.st.Next == nil {
			o.armTimer(ctx)
			if o.st.Next != nil && workflow.GetVersion(ctx, changeStartOverdueRun, workflow.DefaultVersion, 1) == 1 {
				// The next sync was already due (the interval was shortened): start it now, not at
				// the next signal.
				o.startRun(ctx)
			}
		}
		if o.st.Enabled && o.st.Watch && o.watch == nil && !o.watchFailed &&
			workflow.GetVersion(ctx, changeWatch, workflow.DefaultVersion, 1) == 1 {
			o.startWatch(ctx)
		}
		// Not a command: what the UI shows as the workflow's current details.
		workflow.SetCurrentDetails(ctx, orgDetails(o.st, o.current))
		o.wait(ctx, channels)
		o.publish(ctx, changeSearchAttributes)
		info := workflow.GetInfo(ctx)
		// Not while an update is being handled: its caller waits for its answer from this run.
		if o.run == nil && o.st.Next == nil && o.updating == 0 &&
			(info.GetContinueAsNewSuggested() || info.GetCurrentHistoryLength() > maxEventsBeforeContinueAsNew ||
				o.runs >= maxRunsBeforeContinueAsNew) {
			if ctx.Err() != nil && workflow.GetVersion(ctx, changeCancelAnywhere, workflow.DefaultVersion, 1) == 1 {
				continue // cancelled: end here rather than carry on in a new run
			}
			if o.timer != nil {
				o.cancelTimer()
			}
			o.cancelWatch() // the next execution watches again from WatchMark
			return workflow.NewContinueAsNewError(ctx, UserSyncWorkflow, o.st)
		}
	}
}

// Changes made replay-safe with workflow.GetVersion: histories written before them replay
// with the behaviour of that time (workflow.DefaultVersion).
const (
	// changeStrictSignals: signal payloads are decoded strictly and a bad one is rejected and
	// recorded; before, a payload the SDK could not decode was dropped and the handler kept
	// blocking on its channel until a decodable one came.
	changeStrictSignals = "strict-signals"
	// changeCancelAnywhere: a cancellation ends the workflow while sync is off (before, it
	// was only seen at the next signal) and is not turned into a continue-as-new.
	changeCancelAnywhere = "cancel-anywhere"
	// changeStartOverdueRun: a sync found due when the schedule is re-armed starts at once
	// (before, it waited for the next signal).
	changeStartOverdueRun = "start-overdue-run"
	// changeGroupsWaitForCancel (SyncRunWorkflow): a cancelled run waits for its group step
	// to stop (WaitForCancellation) before it finishes; before, it finished at once while
	// the step's PATCH could still be in flight.
	changeGroupsWaitForCancel = "groups-wait-for-cancel"
	// changeHistoryNeverDropped: a history write that failed after its retries is tried again
	// until it is written; before, it was logged and dropped.
	changeHistoryNeverDropped = "history-never-dropped"
	// changeActorRequired: a signal without an actor is rejected (and recorded as such); before,
	// it was accepted and recorded without one.
	changeActorRequired = "actor-required"
	// changeCheckedSignals: a signal is checked as its update is (the organization's state,
	// then the database through the CheckAction step) before it is acted on; before, only
	// its payload was.
	changeCheckedSignals = "checked-signals"
	// changeWatch: watch mode (SyncState.Watch) runs the WatchDirectory step beside the
	// schedule. Only reached with Watch on, which no history from before it has.
	changeWatch = "watch"
	// changeCappedLanes (SyncRunWorkflow, ProcessPageWorkflow): the directory read and the
	// plan run on ReadTaskQueue, the page evaluation as an activity on PageTaskQueue (before,
	// on the main queue and as a local activity), so that a worker's caps bound them.
	changeCappedLanes = "capped-lanes"
	// changeLocalFirstWrite (ProcessPageWorkflow): a user's SCIM step whose queue is the
	// page's own (an unpaced target) makes its first attempt as a local activity, and falls
	// back to the activity with its retries when that attempt fails; before, only the activity.
	changeLocalFirstWrite = "local-first-write"
	// changeLocalWrites (ProcessPageWorkflow): every target's first write per user is a local
	// activity, a paced target's too (its attempts sent away by the pace try locally again at
	// the user's turn), and a page whose local writes keep its workflow task going lets the
	// task end every localChainLimit; before, only an unpaced target's, once.
	changeLocalWrites = "local-writes"
)

// signalHandler serves one signal channel.
type signalHandler struct {
	name   string
	handle func(workflow.Context, workflow.ReceiveChannel)
}

// wait serves what comes next: signals, the end of the run, the timer and, when neither a run
// nor a timer would wake the loop, the workflow's cancellation.
func (o *orgLoop) wait(ctx workflow.Context, channels []signalHandler) {
	for {
		served, cancelSeen := false, false
		sel := workflow.NewSelector(ctx)
		for _, c := range channels {
			c := c
			sel.AddReceive(workflow.GetSignalChannel(ctx, c.name), func(ch workflow.ReceiveChannel, _ bool) {
				served = true
				c.handle(ctx, ch)
			})
		}
		sel.AddReceive(o.actions, func(ch workflow.ReceiveChannel, _ bool) {
			served = true
			var p *pendingAction
			ch.Receive(ctx, &p)
			res, bad := p.apply(ctx)
			p.done.Set(res, bad.refused())
		})
		if o.run != nil {
			sel.AddFuture(o.run, func(f workflow.Future) {
				served = true
				o.runDone(ctx, f)
			})
		}
		if o.watch != nil {
			sel.AddFuture(o.watch, func(f workflow.Future) {
				served = true
				o.watchDone(ctx, f)
			})
		}
		if o.timer != nil {
			sel.AddFuture(o.timer, func(f workflow.Future) {
				served = true
				o.timer = nil
				if f.Get(ctx, nil) == nil && o.st.Enabled && o.st.Next == nil {
					o.st.Next = &RunRequest{Kind: vocab.KindScheduled, Actor: "schedule"}
				}
			})
		}
		if o.run == nil && o.timer == nil && !o.cancelIgnored {
			// A running sync and the timer are cancelled with ctx and wake the loop; with
			// neither, only this does.
			sel.AddReceive(ctx.Done(), func(workflow.ReceiveChannel, bool) {
				cancelSeen = true
				if workflow.GetVersion(ctx, changeCancelAnywhere, workflow.DefaultVersion, 1) == workflow.DefaultVersion {
					o.cancelIgnored = true // as that code did: wait for the next signal
					return
				}
				served = true
			})
		}
		sel.Select(ctx)
		// Done stays ready once closed, so stop draining when it fired. Being last, it only
		// fires with no signal pending.
		for !cancelSeen && sel.HasPending() {
			sel.Select(ctx)
		}
		if served {
			return
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
	record      func(vocab.Event)
	recordIn    func(workflow.Context, vocab.Event) // from another coroutine (an update handler)
	// actions are the accepted updates, applied by the main loop in turn with signals.
	actions  workflow.Channel
	updating int // update handlers not finished
	// published: the search attributes last upserted (nil: none yet in this execution).
	published *orgAttrs
	// cancelIgnored: replaying a history from before changeCancelAnywhere, in which a
	// cancellation while idle was only seen at the next signal.
	cancelIgnored bool
	// watch is the running WatchDirectory step (watch mode); watchFailed: it failed for good
	// (the directory keeps no change mark), tried again after the next sync.
	watch       workflow.Future
	watchCancel workflow.CancelFunc
	watchFailed bool
}

func (o *orgLoop) status() (Status, error) {
	s := Status{Org: o.st.Org, Enabled: o.st.Enabled, Interval: o.st.Interval, CurrentRun: o.current,
		Queued: o.st.Next, LastRun: o.st.LastRun, Runs: o.st.Seq, Tickets: o.st.Tickets, Watch: o.st.Watch}
	if o.st.Enabled && !o.st.NextAt.IsZero() {
		t := o.st.NextAt
		s.NextAt = &t
	}
	return s, nil
}

// enable turns sync on, or changes the interval of a sync that is on.
func (o *orgLoop) enable(_ workflow.Context, s SwitchSignal) (ActionResult, *signalError) {
	if s.Interval > 0 && s.Interval != o.st.Interval {
		if o.st.Enabled && !o.st.NextAt.IsZero() {
			// Re-arm the schedule with the new interval, still counted from the last run's end.
			o.cancelTimer()
			o.st.NextAt = o.st.NextAt.Add(s.Interval - o.st.Interval)
		}
		o.st.Interval = s.Interval
	}
	if s.Watch != nil && *s.Watch != o.st.Watch {
		o.st.Watch, o.watchFailed = *s.Watch, false
		if !o.st.Watch {
			o.cancelWatch()
		}
	}
	details := map[string]any{"interval": o.st.Interval.String()}
	if s.Watch != nil || o.st.Watch {
		details["watch"] = o.st.Watch
	}
	if o.st.Enabled {
		details["reason"] = "sync was already on"
		o.record(vocab.Event{Actor: s.Actor, Type: vocab.EventSwitch, Action: "enable", Status: "no-op", Details: details})
		return ActionResult{Outcome: OutcomeNoOp, Interval: o.st.Interval.String(), Watch: o.st.Watch, Message: "sync was already on"}, nil
	}
	o.st.Enabled = true
	o.queue(RunRequest{Kind: vocab.KindScheduled, Actor: s.Actor})
	o.record(vocab.Event{Actor: s.Actor, Type: vocab.EventSwitch, Action: "enable", Details: details})
	return ActionResult{Outcome: outcomeRun, Interval: o.st.Interval.String(), Watch: o.st.Watch}, nil
}

func (o *orgLoop) disable(_ workflow.Context, s SwitchSignal) (ActionResult, *signalError) {
	res := ActionResult{Outcome: OutcomeOff}
	was := o.st.Enabled
	details := map[string]any{"wasOn": was}
	if n := o.st.Next; n != nil && len(n.Requests) > 0 {
		// Queued run requests (`starter run`) are dropped with the rest: their senders
		// find why in the tickets.
		for _, r := range n.Requests {
			o.ticket(RunTicket{Request: r, Dropped: "user sync was turned off before the run started"})
		}
		details["droppedRequests"] = n.Requests
	}
	o.st.Enabled, o.st.Next, o.st.NextAt = false, nil, time.Time{}
	o.cancelTimer()
	o.cancelWatch()
	if o.run != nil {
		o.runCancel() // the run stops cleanly; what it already provisioned stays
		details["cancelledRun"] = o.current.RunID
		res.RunID = o.current.RunID
	}
	if !was {
		res.Message = "sync was already off"
	}
	o.record(vocab.Event{Actor: s.Actor, Type: vocab.EventSwitch, Action: "disable", Details: details})
	return res, nil
}

func (o *orgLoop) retry(_ workflow.Context, s RetrySignal) (ActionResult, *signalError) {
	f := s.Filter
	return o.requestWhileOn(vocab.Event{Actor: s.Actor, Type: vocab.EventRetry, Action: "retry",
		Details: map[string]any{"type": f.Type, "product": f.Product, "user": f.User}},
		RunRequest{Kind: vocab.KindRetry, Retry: &f, Actor: s.Actor})
}

func (o *orgLoop) syncNow(_ workflow.Context, s ActorSignal) (ActionResult, *signalError) {
	return o.requestWhileOn(vocab.Event{Actor: s.Actor, Type: vocab.EventSync, Action: "sync-now"},
		RunRequest{Kind: vocab.KindManual, Actor: s.Actor})
}

func (o *orgLoop) approve(_ workflow.Context, s ApproveSignal) (ActionResult, *signalError) {
	e := vocab.Event{Actor: s.Actor, Type: vocab.EventSync, Action: "approve-suspensions"}
	if s.Digest != "" { // named by the sender (always, since changeCheckedSignals)
		e.Details = map[string]any{"held": s.Held, "digest": s.Digest}
	}
	return o.requestWhileOn(e, RunRequest{Kind: vocab.KindManual, ApproveSuspensions: true, ApprovedHeld: s.Digest, Actor: s.Actor})
}

// onRun queues one sync (`starter run`) as the next run, whether user sync is on or off: it
// never starts beside the running sync. Its request is answered in the tickets: the run
// that serves it once started (a request merged into a queued one shares its run), or why
// none will. A request already queued or answered is not queued again (a resent signal).
func (o *orgLoop) onRun(ctx workflow.Context, ch workflow.ReceiveChannel) {
	s, ok := receiveSignal(ctx, o, ch, vocab.EventSync, decodeRun)
	if !ok {
		return
	}
	req := s.Request
	if req == "" { // sent without one (from the UI): named here, so that it still runs while off
		req = "unnamed-" + workflow.Now(ctx).UTC().Format("20060102T150405.000")
	}
	if o.known(req) {
		return
	}
	details := map[string]any{"request": req}
	if o.current != nil {
		details["queuedBehind"] = o.current.RunID
	}
	o.queue(RunRequest{Kind: vocab.KindManual, Actor: s.Actor, Requests: []string{req}})
	o.record(vocab.Event{Actor: s.Actor, Type: vocab.EventSync, Action: "run", Details: details})
}

// known: the run request is queued or has a ticket.
func (o *orgLoop) known(req string) bool {
	if n := o.st.Next; n != nil && slices.Contains(n.Requests, req) {
		return true
	}
	return slices.ContainsFunc(o.st.Tickets, func(t RunTicket) bool { return t.Request == req })
}

// ticket records what became of a run request, keeping the latest maxTickets.
func (o *orgLoop) ticket(t RunTicket) {
	o.st.Tickets = append(o.st.Tickets, t)
	if n := len(o.st.Tickets) - maxTickets; n > 0 {
		o.st.Tickets = slices.Delete(o.st.Tickets, 0, n)
	}
}

// receiveSignal takes the next signal off ch, which the caller knows is not empty, and decodes
// it strictly. It never blocks on a bad payload: it records a "rejected" event saying why
// (signal name as action) and returns false. A history from before changeStrictSignals
// replays with the SDK's lenient decoding and its blocking on an undecodable payload.
func receiveSignal[T any](ctx workflow.Context, o *orgLoop, ch workflow.ReceiveChannel, eventType string,
	decode func(*commonpb.Payload) (T, *signalError)) (T, bool) {
	var raw converter.RawValue // takes any payload: the SDK never drops it
	ch.Receive(ctx, &raw)
	v, bad := decode(raw.Payload())
	var legacy T
	legacyOK := converter.GetDefaultDataConverter().FromPayload(raw.Payload(), &legacy) == nil
	if bad == nil && legacyOK && strings.TrimSpace(actorOf(v)) == "" &&
		workflow.GetVersion(ctx, changeActorRequired, workflow.DefaultVersion, 1) == 1 {
		bad = &signalError{Field: "actor", Reason: "actor is required: who is acting, recorded in the history"}
	} else if bad == nil && legacyOK {
		return v, true // decoded alike by both: no version marker needed
	}
	if workflow.GetVersion(ctx, changeStrictSignals, workflow.DefaultVersion, 1) == workflow.DefaultVersion {
		if !legacyOK {
			ch.Receive(ctx, &legacy) // what that code did: skip to a decodable payload
		}
		return legacy, true
	}
	if bad == nil {
		return v, true
	}
	o.reject(ctx, ch.Name(), eventType, bad)
	var zero T
	return zero, false
}

// reject records a signal or update rejected for bad (its name as action).
func (o *orgLoop) reject(ctx workflow.Context, name, eventType string, bad *signalError) {
	workflow.GetLogger(ctx).Warn("action rejected", "action", name, "field", bad.Field, "reason", bad.Reason)
	details := map[string]any{"reason": bad.Error()}
	if bad.Field != "" {
		details["field"] = bad.Field
	}
	if bad.Value != "" {
		details["value"] = bad.Value
	}
	o.recordIn(ctx, vocab.Event{Actor: bad.Actor, Type: eventType, Action: name, Status: "rejected", Details: details})
}

// requestWhileOn queues a run; while sync is off nothing new starts, and the history says so.
func (o *orgLoop) requestWhileOn(e vocab.Event, r RunRequest) (ActionResult, *signalError) {
	if !o.st.Enabled {
		e.Status = "rejected"
		if e.Details == nil {
			e.Details = map[string]any{}
		}
		e.Details["reason"] = errSyncIsOff
		o.record(e)
		return ActionResult{}, &signalError{Actor: e.Actor, Reason: errSyncIsOff}
	}
	o.queue(r)
	o.record(e)
	return ActionResult{Outcome: outcomeRun}, nil
}

const errSyncIsOff = "user sync is off: enable it first"

// queue merges a request into the next run: a full sync re-attempts every failed user, so it
// absorbs retries; two different retry filters widen to a retry of all failures.
func (o *orgLoop) queue(r RunRequest) {
	n := o.st.Next
	switch {
	case n == nil:
		o.st.Next = &r
	case n.Kind != vocab.KindRetry:
		n.ApproveSuspensions = n.ApproveSuspensions || r.ApproveSuspensions
		n.ApprovedHeld = approvedHeld(n, &r)
		n.Requests = append(n.Requests, r.Requests...)
	case r.Kind != vocab.KindRetry:
		r.ApprovedHeld = approvedHeld(n, &r)
		r.ApproveSuspensions = r.ApproveSuspensions || n.ApproveSuspensions
		r.RunID = n.RunID // the name an update gave it stays
		r.Requests = append(slices.Clip(n.Requests), r.Requests...)
		o.st.Next = &r
	case *n.Retry != *r.Retry:
		n.Retry = &vocab.Filter{}
	}
	o.cancelTimer()
}

// approvedHeld is the held set approved by two merged requests: the latest approval's.
func approvedHeld(older, newer *RunRequest) string {
	if newer.ApproveSuspensions {
		return newer.ApprovedHeld
	}
	return older.ApprovedHeld
}

func (o *orgLoop) startRun(ctx workflow.Context) {
	req := *o.st.Next
	o.st.Next = nil
	o.st.Seq++
	o.runs++
	runID := req.RunID
	if runID == "" {
		runID = RunWorkflowID(o.st.Org, workflow.Now(ctx).UTC().Format("20060102T150405")+"-"+strconv.Itoa(o.st.Seq))
	}
	in := RunInput{Org: o.st.Org, RunID: runID, Kind: req.Kind, Retry: req.Retry,
		ApproveSuspensions: req.ApproveSuspensions, ApprovedHeld: req.ApprovedHeld, Actor: req.Actor}
	cctx, cancel := workflow.WithCancel(ctx)
	cctx = workflow.WithChildOptions(cctx, workflow.ChildWorkflowOptions{
		WorkflowID:          runID,
		WaitForCancellation: true,
		ParentClosePolicy:   enums.PARENT_CLOSE_POLICY_REQUEST_CANCEL,
		StaticSummary:       runSummary(in),
		StaticDetails:       runDetails(in),
	})
	o.run, o.runCancel = workflow.ExecuteChildWorkflow(cctx, SyncRunWorkflow, in), cancel
	o.current = &Progress{RunID: runID, Phase: req.Kind, StartedAt: workflow.Now(ctx)}
	for _, r := range req.Requests {
		o.ticket(RunTicket{Request: r, RunID: runID, Kind: req.Kind})
	}
}

func (o *orgLoop) runDone(ctx workflow.Context, f workflow.Future) {
	var sum steps.RunSummary
	err := f.Get(ctx, &sum)
	if err != nil && sum.RunID == "" {
		sum.RunID, sum.StartedAt = o.current.RunID, o.current.StartedAt
		sum.Status, sum.Error, sum.FinishedAt = vocab.RunFailed, rootCause(err).Error(), workflow.Now(ctx)
		sum.FailureType = runFailureType(err)
		if temporal.IsCanceledError(err) {
			sum.Status, sum.Error = vocab.RunCancelled, ""
		}
	}
	o.st.LastRun = &sum
	o.run, o.runCancel, o.current = nil, nil, nil
	o.watchFailed = false // a watch that failed for good is tried again after each sync
	if o.st.Enabled {
		o.st.NextAt = workflow.Now(ctx).Add(o.st.Interval)
	}
}

func (o *orgLoop) armTimer(ctx workflow.Context) {
	wait := o.st.NextAt.Sub(workflow.Now(ctx))
	if o.st.NextAt.IsZero() || wait <= 0 {
		o.st.Next = &RunRequest{Kind: vocab.KindScheduled, Actor: "schedule"}
		return
	}
	tctx, cancel := workflow.WithCancel(ctx)
	o.timer, o.timerCancel = workflow.NewTimer(tctx, wait), cancel
}

// watchOptions: the watch runs until the directory changes (an attempt ends unchanged after
// 30 minutes); its heartbeat (every poll, 2 s) times out quickly, so that a dead worker's
// watch is started again on another. Directory errors are retried with backoff, forever:
// the schedule runs beside it meanwhile.
var watchOptions = workflow.ActivityOptions{
	StartToCloseTimeout: 35 * time.Minute,
	HeartbeatTimeout:    30 * time.Second,
	RetryPolicy: &temporal.RetryPolicy{
		InitialInterval:    5 * time.Second,
		BackoffCoefficient: 2,
		MaximumInterval:    time.Minute,
	},
	Summary: "watch the directory for changes",
}

func (o *orgLoop) startWatch(ctx workflow.Context) {
	wctx, cancel := workflow.WithCancel(ctx)
	wctx = workflow.WithActivityOptions(wctx, watchOptions)
	o.watch = workflow.ExecuteActivity(wctx, steps.WatchDirectory, steps.WatchInput{Org: o.st.Org, Since: o.st.WatchMark})
	o.watchCancel = cancel
}

func (o *orgLoop) cancelWatch() {
	if o.watchCancel != nil {
		o.watchCancel()
	}
	o.watch, o.watchCancel = nil, nil
}

// watchDone takes the watch's result: a change queues a sync (one: requests merge), which
// starts at once or behind the running one; the loop then watches again.
func (o *orgLoop) watchDone(ctx workflow.Context, f workflow.Future) {
	var res steps.WatchResult
	err := f.Get(ctx, &res)
	o.watch, o.watchCancel = nil, nil
	if err != nil {
		if !temporal.IsCanceledError(err) {
			// Only a permanent error gets here (the policy retries the others).
			workflow.GetLogger(ctx).Error("watch stopped until the next sync", "error", err)
			o.watchFailed = true
		}
		return
	}
	o.st.WatchMark = res.Mark
	if !res.Changed || !o.st.Enabled || !o.st.Watch {
		return
	}
	details := map[string]any{"changes": res.Changes}
	if o.current != nil {
		details["queuedBehind"] = o.current.RunID
	}
	o.queue(RunRequest{Kind: vocab.KindWatch, Actor: "watch"})
	o.record(vocab.Event{Actor: "watch", Type: vocab.EventSync, Action: "watch", Details: details})
}

func (o *orgLoop) cancelTimer() {
	if o.timerCancel != nil {
		o.timerCancel()
	}
	o.timer, o.timerCancel = nil, nil
}

// signalError says why a signal's payload was rejected. Field and Value name the offending
// member and its JSON text; Value is left empty for members that may hold personal data
// (actor, filter.user, unknown members) and for a payload that is not an object.
type signalError struct {
	Actor  string // the sender, when the payload names one
	Field  string
	Value  string
	Reason string
}

func (e *signalError) Error() string { return e.Reason }

// The strict decoders of the signal payloads. A payload is JSON ("json/plain"; none or
// "binary/null" is an empty object) holding an object whose members are those of the payload
// type, names matched case-insensitively as encoding/json does; anything else is an error.

func decodeEnable(p *commonpb.Payload) (SwitchSignal, *signalError) {
	return decodeSwitch(p, true)
}

// decodeDisable takes the enable payload; its interval is ignored, so only its form is checked.
func decodeDisable(p *commonpb.Payload) (SwitchSignal, *signalError) {
	return decodeSwitch(p, false)
}

func decodeSwitch(p *commonpb.Payload, enable bool) (SwitchSignal, *signalError) {
	return decodeStrict(p, func(data []byte) (s SwitchSignal, bad *signalError) {
		m, bad := jsonObject(data, "", "actor", "interval", "watch")
		if bad != nil {
			return s, bad
		}
		if s.Actor, bad = jsonString(m, "actor", "actor", false); bad != nil {
			return s, bad
		}
		if s.Interval, bad = parseInterval(m["interval"], enable); bad != nil {
			return s, bad
		}
		s.Watch, bad = jsonBool(m, "watch")
		if !enable {
			s.Watch = nil // disable ignores it, as it does the interval
		}
		return s, bad
	})
}

func decodeRetry(p *commonpb.Payload) (RetrySignal, *signalError) {
	return decodeStrict(p, func(data []byte) (s RetrySignal, bad *signalError) {
		m, bad := jsonObject(data, "", "actor", "filter")
		if bad != nil {
			return s, bad
		}
		if s.Actor, bad = jsonString(m, "actor", "actor", false); bad != nil {
			return s, bad
		}
		f, bad := jsonObject(m["filter"], "filter", "type", "product", "user")
		if bad != nil {
			return s, bad
		}
		if s.Filter.Type, bad = jsonString(f, "type", "filter.type", true); bad != nil {
			return s, bad
		}
		if t := s.Filter.Type; t != "" && !vocab.IsFailureType(t) {
			return s, &signalError{Field: "filter.type", Value: jsonText(f["type"]),
				Reason: fmt.Sprintf("filter.type %s is not a failure type (%s)", jsonText(f["type"]), strings.Join(vocab.FailureTypes, ", "))}
		}
		if s.Filter.Product, bad = jsonString(f, "product", "filter.product", true); bad != nil {
			return s, bad
		}
		s.Filter.User, bad = jsonString(f, "user", "filter.user", false)
		return s, bad
	})
}

func decodeActor(p *commonpb.Payload) (ActorSignal, *signalError) {
	return decodeStrict(p, func(data []byte) (s ActorSignal, bad *signalError) {
		m, bad := jsonObject(data, "", "actor")
		if bad != nil {
			return s, bad
		}
		s.Actor, bad = jsonString(m, "actor", "actor", false)
		return s, bad
	})
}

func decodeRun(p *commonpb.Payload) (RunSignal, *signalError) {
	return decodeStrict(p, func(data []byte) (s RunSignal, bad *signalError) {
		m, bad := jsonObject(data, "", "actor", "request")
		if bad != nil {
			return s, bad
		}
		if s.Actor, bad = jsonString(m, "actor", "actor", false); bad != nil {
			return s, bad
		}
		if s.Request, bad = jsonString(m, "request", "request", true); bad != nil {
			return s, bad
		}
		if len(s.Request) > MaxRequestLen {
			return s, &signalError{Field: "request", Value: jsonText(m["request"]),
				Reason: fmt.Sprintf("request is longer than %d characters", MaxRequestLen)}
		}
		return s, nil
	})
}

// decodeStrict checks the payload's encoding and JSON, then parses it; a rejection names the
// sender when the payload has a string actor.
func decodeStrict[T any](p *commonpb.Payload, parse func([]byte) (T, *signalError)) (T, *signalError) {
	var v T
	var data []byte
	if p != nil {
		switch enc := string(p.GetMetadata()[converter.MetadataEncoding]); enc {
		case converter.MetadataEncodingNil:
		case converter.MetadataEncodingJSON:
			data = p.GetData()
			if !json.Valid(data) {
				return v, &signalError{Reason: "payload is not valid JSON"}
			}
		case codec.EncodingRefused:
			return v, &signalError{Reason: "payload is not encrypted and this worker requires encryption (USERSYNC_PAYLOAD_REQUIRE_ENCRYPTION): send it with the payload key (USERSYNC_PAYLOAD_KEY_FILE)"}
		default:
			return v, &signalError{Reason: fmt.Sprintf("payload encoding %q is not supported: send JSON", clip(enc))}
		}
	}
	v, bad := parse(data)
	if bad != nil {
		var a struct {
			Actor string `json:"actor"`
		}
		_ = json.Unmarshal(data, &a) // best effort: fills what it can
		bad.Actor = a.Actor
	}
	return v, bad
}

// jsonObject splits valid JSON that must be an object (or null, or nothing: no members) into
// its members, keyed by the known names they match. path names the object in errors.
func jsonObject(data json.RawMessage, path string, known ...string) (map[string]json.RawMessage, *signalError) {
	m := map[string]json.RawMessage{}
	data = bytes.TrimSpace(data)
	if len(data) == 0 || string(data) == "null" {
		return m, nil
	}
	if data[0] != '{' {
		if path == "" {
			return nil, &signalError{Reason: "payload must be a JSON object, not " + jsonKind(data)}
		}
		return nil, &signalError{Field: path, Value: jsonText(data),
			Reason: fmt.Sprintf("%s must be a JSON object, not %s", path, jsonText(data))}
	}
	prefix := ""
	if path != "" {
		prefix = path + "."
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if _, err := dec.Token(); err != nil {
		return nil, &signalError{Reason: "payload is not valid JSON"}
	}
	for dec.More() {
		t, err := dec.Token()
		var v json.RawMessage
		if err == nil {
			err = dec.Decode(&v)
		}
		if err != nil {
			return nil, &signalError{Reason: "payload is not valid JSON"}
		}
		key, _ := t.(string)
		name := ""
		for _, k := range known {
			if strings.EqualFold(k, key) {
				name = k
			}
		}
		if name == "" {
			return nil, &signalError{Field: prefix + clip(key), Reason: fmt.Sprintf("unknown field %q", prefix+clip(key))}
		}
		if _, dup := m[name]; dup {
			return nil, &signalError{Field: prefix + name, Reason: fmt.Sprintf("field %q is given twice", prefix+name)}
		}
		m[name] = v
	}
	return m, nil
}

// jsonString reads member name of m, a string or null. showValue: the value is not personal
// data and may be recorded.
func jsonString(m map[string]json.RawMessage, name, path string, showValue bool) (string, *signalError) {
	raw := m[name]
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil
	}
	var s string
	if raw[0] != '"' || json.Unmarshal(raw, &s) != nil {
		bad := &signalError{Field: path, Reason: fmt.Sprintf("%s must be a string, not %s", path, jsonKind(raw))}
		if showValue {
			bad.Value = jsonText(raw)
			bad.Reason = fmt.Sprintf("%s must be a string, not %s", path, bad.Value)
		}
		return "", bad
	}
	return s, nil
}

// jsonBool reads member name of m, a boolean or null (nil: absent).
func jsonBool(m map[string]json.RawMessage, name string) (*bool, *signalError) {
	raw := m[name]
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var b bool
	if json.Unmarshal(raw, &b) != nil {
		return nil, &signalError{Field: name, Value: jsonText(raw), Reason: fmt.Sprintf("%s must be true or false, not %s", name, jsonText(raw))}
	}
	return &b, nil
}

// parseInterval reads the interval of enable: a Go duration string ("1h", "15m") or a
// number of nanoseconds; zero or absent keeps the current one. With checkMin, a non-zero
// interval under MinInterval is an error.
func parseInterval(raw json.RawMessage, checkMin bool) (time.Duration, *signalError) {
	if len(raw) == 0 || string(raw) == "null" {
		return 0, nil
	}
	var d time.Duration
	var err error
	if raw[0] == '"' {
		var s string
		if err = json.Unmarshal(raw, &s); err == nil {
			d, err = time.ParseDuration(s)
		}
	} else {
		var n int64
		err = json.Unmarshal(raw, &n)
		d = time.Duration(n)
	}
	if err != nil {
		return 0, &signalError{Field: "interval", Value: jsonText(raw), Reason: fmt.Sprintf(
			`interval %s is not a duration: give one such as "1h" or "15m", or a number of nanoseconds`, jsonText(raw))}
	}
	if checkMin && d != 0 && d < MinInterval {
		given := jsonText(raw)
		if raw[0] != '"' {
			given += " (" + d.String() + ")"
		}
		return 0, &signalError{Field: "interval", Value: jsonText(raw),
			Reason: fmt.Sprintf("interval %s is under the minimum of %s", given, MinInterval)}
	}
	return d, nil
}

// jsonText is valid JSON as compact text, clipped.
func jsonText(raw json.RawMessage) string {
	var b bytes.Buffer
	if json.Compact(&b, raw) != nil {
		return ""
	}
	return clip(b.String())
}

// jsonKind names the kind of a valid JSON value, for errors that must not show it.
func jsonKind(raw json.RawMessage) string {
	switch raw[0] {
	case '"':
		return "a string"
	case '{':
		return "an object"
	case '[':
		return "an array"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	return "a number"
}

// clip shortens what a sender wrote to a length fit for the history.
func clip(s string) string {
	const max = 64
	// What a sender wrote goes to the history and the terminal: no control characters.
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// actorOf is who sent a signal payload.
func actorOf(v any) string {
	switch s := v.(type) {
	case SwitchSignal:
		return s.Actor
	case RetrySignal:
		return s.Actor
	case ActorSignal:
		return s.Actor
	case ApproveSignal:
		return s.Actor
	case RunSignal:
		return s.Actor
	}
	return ""
}
