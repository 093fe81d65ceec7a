package workflows

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/usersync/usersync/internal/steps"
	"github.com/usersync/usersync/internal/vocab"
)

// An action is one admin action on the org workflow: enable, disable, retry, sync-now or
// approve-suspensions. It arrives as a signal (fire and forget, as documented) or as an
// update of the same name (answered), and both are checked by the same functions, in order:
//
//  1. decode and the actor: the payload alone (strict JSON, known fields, values);
//  2. check: against the workflow's state (sync on, the held set named). Deterministic and
//     without I/O, so it runs in the update's validator: a rejected update leaves no event
//     in the workflow's history;
//  3. store: against the database (catalog products, known users, the current held set),
//     through the CheckAction step. A validator may not run activities, so for an update
//     this runs in its handler, and a refusal there fails the update (the caller gets it as
//     a rejection all the same, but it is in the workflow's history).
//
// The administrative history gets one "rejected" row per rejection: written by the workflow
// for a signal and for an update refused by its handler (ErrActionRefused); for an update
// rejected by its validator (ErrActionInvalid) the workflow cannot write, and the sender
// (`starter`) records it. An update sent from the Temporal UI and rejected by a validator is
// answered in the UI and leaves no row: nothing happened.
type action[T any] struct {
	name, eventType string
	decode          func(*commonpb.Payload) (T, *signalError)
	actor           func(T) string
	check           func(*orgLoop, T) *signalError       // nil: no check on the state
	store           func(*orgLoop, T) *steps.ActionCheck // nil: nothing to check in the database
	apply           func(*orgLoop, workflow.Context, T) (ActionResult, *signalError)
	description     string
}

var (
	enableAction = action[SwitchSignal]{name: SignalEnable, eventType: vocab.EventSwitch,
		decode: decodeEnable, actor: func(s SwitchSignal) string { return s.Actor },
		apply:       (*orgLoop).enable,
		description: `Turn user sync on (a sync starts at once) or change its interval or watch mode (a sync at once when the directory changes): {"actor":"you","interval":"1h","watch":true}. Answers the run started.`}
	disableAction = action[SwitchSignal]{name: SignalDisable, eventType: vocab.EventSwitch,
		decode: decodeDisable, actor: func(s SwitchSignal) string { return s.Actor },
		apply:       (*orgLoop).disable,
		description: `Turn user sync off; a running sync stops cleanly: {"actor":"you"}.`}
	retryAction = action[RetrySignal]{name: SignalRetry, eventType: vocab.EventRetry,
		decode: decodeRetry, actor: func(s RetrySignal) string { return s.Actor },
		check: func(o *orgLoop, _ RetrySignal) *signalError { return o.checkOn() },
		store: func(o *orgLoop, s RetrySignal) *steps.ActionCheck {
			if s.Filter.Product == "" && s.Filter.User == "" {
				return nil
			}
			f := s.Filter
			return &steps.ActionCheck{Org: o.st.Org, Action: SignalRetry, Retry: &f}
		},
		apply:       (*orgLoop).retry,
		description: `Re-attempt failed users: {"actor":"you","filter":{"type":"out_of_licenses","product":"","user":""}}. Answers the run started or queued.`}
	syncNowAction = action[ActorSignal]{name: SignalSyncNow, eventType: vocab.EventSync,
		decode: decodeActor, actor: func(s ActorSignal) string { return s.Actor },
		check:       func(o *orgLoop, _ ActorSignal) *signalError { return o.checkOn() },
		apply:       (*orgLoop).syncNow,
		description: `Sync now (user sync must be on): {"actor":"you"}. Answers the run started or queued.`}
	approveAction = action[ApproveSignal]{name: SignalApproveSuspensions, eventType: vocab.EventSync,
		decode: decodeApprove, actor: func(s ApproveSignal) string { return s.Actor },
		check: func(o *orgLoop, s ApproveSignal) *signalError {
			if s.Digest == "" {
				return &signalError{Field: "digest", Reason: "digest is required: name the held set you approve, " +
					"its size (held) and digest as `starter failures --type suspension_held` shows them"}
			}
			return o.checkOn()
		},
		store: func(o *orgLoop, s ApproveSignal) *steps.ActionCheck {
			return &steps.ActionCheck{Org: o.st.Org, Action: SignalApproveSuspensions,
				Approve: &steps.HeldSet{Count: s.Held, Digest: s.Digest}}
		},
		apply:       (*orgLoop).approve,
		description: `Approve the held suspensions named by their count and digest (starter failures --type suspension_held): {"actor":"you","held":12,"digest":"…"}.`}
)

// checkOn: runs are only requested while user sync is on.
func (o *orgLoop) checkOn() *signalError {
	if !o.st.Enabled {
		return &signalError{Reason: errSyncIsOff}
	}
	return nil
}

// validate is steps 1 and 2: the update's validator, and its handler again (the state may
// have changed since; validators do not run on replay, handlers do).
func (a action[T]) validate(o *orgLoop, p *commonpb.Payload) (T, *signalError) {
	v, bad := a.decode(p)
	if bad == nil && strings.TrimSpace(a.actor(v)) == "" {
		bad = &signalError{Field: "actor", Reason: "actor is required: who is acting, recorded in the history"}
	}
	if bad == nil && a.check != nil {
		bad = a.check(o, v)
	}
	if bad != nil && bad.Actor == "" {
		bad.Actor = a.actor(v)
	}
	return v, bad
}

// checkStore is step 3.
func (a action[T]) checkStore(ctx workflow.Context, o *orgLoop, v T) *signalError {
	if a.store == nil {
		return nil
	}
	c := a.store(o, v)
	if c == nil {
		return nil
	}
	var verdict steps.ActionVerdict
	lctx := workflow.WithLocalActivityOptions(ctx, checkOptions)
	if err := workflow.ExecuteLocalActivity(lctx, steps.CheckAction, *c).Get(ctx, &verdict); err != nil {
		return &signalError{Actor: a.actor(v), Reason: "could not be checked against the database: " + rootCause(err).Error()}
	}
	if verdict.Reason == "" {
		return nil
	}
	return &signalError{Actor: a.actor(v), Field: verdict.Field, Value: verdict.Value, Reason: verdict.Reason}
}

// checkOptions: the sender of an update waits for the check.
var checkOptions = workflow.LocalActivityOptions{
	StartToCloseTimeout:    10 * time.Second,
	ScheduleToCloseTimeout: 30 * time.Second,
}

// onSignal serves the action's signal: decoded as every signal is (receiveSignal), then, since
// changeCheckedSignals, checked as its update is; a rejection is recorded.
func (a action[T]) onSignal(o *orgLoop) func(workflow.Context, workflow.ReceiveChannel) {
	return func(ctx workflow.Context, ch workflow.ReceiveChannel) {
		v, ok := receiveSignal(ctx, o, ch, a.eventType, a.decode)
		if !ok {
			return
		}
		if workflow.GetVersion(ctx, changeCheckedSignals, workflow.DefaultVersion, 1) == 1 {
			var bad *signalError
			if a.check != nil {
				bad = a.check(o, v)
			}
			if bad == nil {
				bad = a.checkStore(ctx, o, v)
			}
			if bad != nil {
				if bad.Actor == "" {
					bad.Actor = a.actor(v)
				}
				o.reject(ctx, a.name, a.eventType, bad)
				return
			}
		}
		_, _ = a.apply(o, ctx, v) // a refusal was recorded by apply
	}
}

// pendingAction is an accepted update waiting for the main loop to apply it.
type pendingAction struct {
	apply func(workflow.Context) (ActionResult, *signalError)
	done  workflow.Settable
}

// outcomeRun: apply queued a run; the update's answer names it (nameRun).
const outcomeRun = "run"

// onUpdate is the action's update handler: the checks again (the state may have changed
// since the validator ran), those against the database, then the main loop applies it in
// turn with the signals and answers.
func (a action[T]) onUpdate(o *orgLoop) func(workflow.Context, converter.RawValue) (ActionResult, error) {
	return func(ctx workflow.Context, raw converter.RawValue) (ActionResult, error) {
		o.updating++
		defer func() { o.updating-- }()
		v, bad := a.validate(o, raw.Payload())
		if bad == nil {
			bad = a.checkStore(ctx, o, v)
		}
		if bad != nil {
			o.reject(ctx, a.name, a.eventType, bad)
			return ActionResult{}, bad.refused()
		}
		f, done := workflow.NewFuture(ctx)
		o.actions.Send(ctx, &pendingAction{done: done, apply: func(ctx workflow.Context) (ActionResult, *signalError) {
			res, bad := a.apply(o, ctx, v)
			if bad == nil && res.Outcome == outcomeRun {
				res = o.nameRun(ctx, res)
			}
			return res, bad
		}})
		var res ActionResult
		err := f.Get(ctx, &res)
		return res, err
	}
}

// validator is the action's update validator.
func (a action[T]) validator(o *orgLoop) func(workflow.Context, converter.RawValue) error {
	return func(_ workflow.Context, raw converter.RawValue) error {
		_, bad := a.validate(o, raw.Payload())
		return bad.invalid()
	}
}

func (a action[T]) register(ctx workflow.Context, o *orgLoop) error {
	return workflow.SetUpdateHandlerWithOptions(ctx, a.name, a.onUpdate(o), workflow.UpdateHandlerOptions{
		Validator: a.validator(o), Description: a.description})
}

// registerUpdates sets the update handlers. Registering writes no command: histories from
// before updates replay unchanged.
func (o *orgLoop) registerUpdates(ctx workflow.Context) error {
	for _, r := range []func(workflow.Context, *orgLoop) error{enableAction.register, disableAction.register,
		retryAction.register, syncNowAction.register, approveAction.register} {
		if err := r(ctx, o); err != nil {
			return err
		}
	}
	return nil
}

// nameRun gives the queued run its ID now, so that the update can answer with it.
func (o *orgLoop) nameRun(ctx workflow.Context, res ActionResult) ActionResult {
	n := o.st.Next
	if n.RunID == "" {
		n.RunID = RunWorkflowID(o.st.Org, workflow.Now(ctx).UTC().Format("20060102T150405")+"-"+strconv.Itoa(o.st.Seq+1))
	}
	res.RunID, res.Outcome = n.RunID, OutcomeStarted
	if o.current != nil {
		res.Outcome, res.Behind = OutcomeQueued, o.current.RunID
	}
	return res
}

// invalid is a validator's rejection (not recorded by the workflow: the sender records it).
func (e *signalError) invalid() error { return e.asError(ErrActionInvalid) }

// refused is a handler's rejection, recorded by the workflow.
func (e *signalError) refused() error { return e.asError(ErrActionRefused) }

func (e *signalError) asError(typ string) error {
	if e == nil {
		return nil
	}
	msg := e.Reason
	if e.Field != "" && !strings.Contains(msg, e.Field) {
		msg = e.Field + ": " + msg
	}
	return temporal.NewApplicationError(msg, typ, Rejection{Field: e.Field, Value: e.Value, Reason: e.Reason})
}

func decodeApprove(p *commonpb.Payload) (ApproveSignal, *signalError) {
	return decodeStrict(p, func(data []byte) (s ApproveSignal, bad *signalError) {
		m, bad := jsonObject(data, "", "actor", "held", "digest")
		if bad != nil {
			return s, bad
		}
		if s.Actor, bad = jsonString(m, "actor", "actor", false); bad != nil {
			return s, bad
		}
		if s.Digest, bad = jsonString(m, "digest", "digest", true); bad != nil {
			return s, bad
		}
		if raw := m["held"]; len(raw) > 0 && string(raw) != "null" {
			if json.Unmarshal(raw, &s.Held) != nil || s.Held < 0 {
				return s, &signalError{Field: "held", Value: jsonText(raw),
					Reason: fmt.Sprintf("held %s is not a count of users", jsonText(raw))}
			}
		}
		return s, nil
	})
}
