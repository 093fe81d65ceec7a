package workflows

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/usersync/usersync/internal/steps"
	"github.com/usersync/usersync/internal/vocab"
)

// updateAnswer is what the sender of an update got back.
type updateAnswer struct {
	accepted bool
	result   ActionResult
	err      error // the rejection, or the handler's error
}

// updateAt sends update name with payload (raw JSON, as the UI sends it, or a value) at d.
func (e *orgEnv) updateAt(t *testing.T, d time.Duration, name string, payload any) *updateAnswer {
	a := &updateAnswer{}
	if s, ok := payload.(string); ok {
		payload = json.RawMessage(s)
	}
	e.RegisterDelayedCallback(func() {
		e.UpdateWorkflow(name, name+"-"+d.String(), &testsuite.TestUpdateCallback{
			OnAccept: func() { a.accepted = true },
			OnReject: func(err error) { a.err = err },
			OnComplete: func(v any, err error) {
				a.err = err
				if err == nil {
					if ev, ok := v.(converter.EncodedValue); ok {
						require.NoError(t, ev.Get(&a.result))
					} else {
						a.result = v.(ActionResult)
					}
				}
			},
		}, payload)
	}, d)
	return a
}

// rejection is the reason and detail of a rejected update, and its error type.
func rejection(t *testing.T, err error) (string, Rejection) {
	var ae *temporal.ApplicationError
	require.True(t, errors.As(err, &ae), "a rejection is an application error: %v", err)
	var r Rejection
	require.NoError(t, ae.Details(&r))
	return ae.Type(), r
}

func TestAnInvalidRetryUpdateIsRejectedToTheSenderAndTheWorkflowKeepsServing(t *testing.T) {
	e := newOrgEnv(t)
	e.signalAt(time.Second, SignalEnable, SwitchSignal{Actor: "ops"})
	bogus := e.updateAt(t, 5*time.Minute, SignalRetry, `{"actor":"carol","filter":{"type":"bogus"}}`)
	good := e.updateAt(t, 6*time.Minute, SignalRetry, RetrySignal{Actor: "carol", Filter: vocab.Filter{Type: vocab.OutOfLicenses}})
	e.RegisterDelayedCallback(func() { e.CancelWorkflow() }, 10*time.Minute)
	e.ExecuteWorkflow(UserSyncWorkflow, SyncState{Org: "acme"})

	require.False(t, bogus.accepted)
	require.ErrorContains(t, bogus.err, `"bogus"`, "the reason names the value")
	typ, r := rejection(t, bogus.err)
	require.Equal(t, ErrActionInvalid, typ, "rejected by the validator")
	require.Equal(t, "filter.type", r.Field)
	require.Equal(t, []string{"enable:", "retry:"}, e.actions(), "a validator's rejection leaves nothing in the workflow (the sender records it)")

	require.True(t, good.accepted)
	require.NoError(t, good.err)
	require.Len(t, e.runs, 2, "the workflow served the next update")
	require.Equal(t, OutcomeStarted, good.result.Outcome)
	require.Equal(t, e.runs[1].RunID, good.result.RunID, "the answer names the run it started")
	require.Equal(t, vocab.KindRetry, e.runs[1].Kind)
}

func TestAnUpdateDuringARunAnswersTheQueuedRunThatThenStartsUnderThatID(t *testing.T) {
	e := newOrgEnv(t)
	e.runTime = 10 * time.Minute
	en := e.updateAt(t, time.Second, SignalEnable, `{"actor":"ops","interval":"1h"}`)
	retry := e.updateAt(t, 2*time.Minute, SignalRetry, RetrySignal{Actor: "carol"})
	e.signalAt(3*time.Minute, SignalSyncNow, ActorSignal{Actor: "bob"}) // merged into the queued run
	e.RegisterDelayedCallback(func() { e.CancelWorkflow() }, 25*time.Minute)
	e.ExecuteWorkflow(UserSyncWorkflow, SyncState{Org: "acme"})

	require.NoError(t, en.err)
	require.Equal(t, OutcomeStarted, en.result.Outcome)
	require.Equal(t, "1h0m0s", en.result.Interval, "a Go duration string is taken")
	require.NoError(t, retry.err)
	require.Equal(t, OutcomeQueued, retry.result.Outcome)
	require.Equal(t, en.result.RunID, retry.result.Behind)
	require.Len(t, e.runs, 2)
	require.Equal(t, en.result.RunID, e.runs[0].RunID)
	require.Equal(t, retry.result.RunID, e.runs[1].RunID, "the queued run starts under the ID the update answered")
	require.Equal(t, vocab.KindManual, e.runs[1].Kind, "sync-now widened the queued retry")
}

func TestAnEnableUpdateUnderTheMinimumIntervalIsRejected(t *testing.T) {
	e := newOrgEnv(t)
	short := e.updateAt(t, time.Second, SignalEnable, `{"actor":"ops","interval":"10s"}`)
	noActor := e.updateAt(t, 2*time.Second, SignalEnable, `{"interval":"1h"}`)
	e.RegisterDelayedCallback(func() { e.CancelWorkflow() }, time.Minute)
	e.ExecuteWorkflow(UserSyncWorkflow, SyncState{Org: "acme"})

	require.ErrorContains(t, short.err, `interval "10s" is under the minimum of 30s`)
	_, r := rejection(t, noActor.err)
	require.Equal(t, "actor", r.Field)
	require.Empty(t, e.runs, "nothing was enabled")
}

func TestARetryUpdateForAProductNotInTheCatalogIsRefusedAndRecorded(t *testing.T) {
	e := newOrgEnv(t)
	e.verdict = func(c steps.ActionCheck) steps.ActionVerdict {
		if c.Retry != nil && c.Retry.Product == "Webniar" {
			return steps.ActionVerdict{Field: "filter.product", Value: `"Webniar"`, Reason: `filter.product "Webniar" is not a product of the catalog`}
		}
		return steps.ActionVerdict{}
	}
	e.signalAt(time.Second, SignalEnable, SwitchSignal{Actor: "ops"})
	upd := e.updateAt(t, 5*time.Minute, SignalRetry, RetrySignal{Actor: "carol", Filter: vocab.Filter{Product: "Webniar"}})
	e.signalAt(6*time.Minute, SignalRetry, RetrySignal{Actor: "dave", Filter: vocab.Filter{Product: "Webniar"}})
	e.RegisterDelayedCallback(func() { e.CancelWorkflow() }, 10*time.Minute)
	e.ExecuteWorkflow(UserSyncWorkflow, SyncState{Org: "acme"})

	typ, r := rejection(t, upd.err)
	require.Equal(t, ErrActionRefused, typ)
	require.Equal(t, "filter.product", r.Field)
	require.Len(t, e.runs, 1, "neither the update nor the signal started a retry")
	require.Equal(t, []string{"enable:", "retry:rejected", "retry:rejected"}, e.actions(), "the update and the signal are refused alike")
	require.Equal(t, "carol", e.events[1].Actor)
	require.Equal(t, "filter.product", e.events[1].Details["field"])
	require.Equal(t, "dave", e.events[2].Actor)
}

func TestApprovingSuspensionsIsRefusedWhenTheHeldSetChanged(t *testing.T) {
	e := newOrgEnv(t)
	e.verdict = func(c steps.ActionCheck) steps.ActionVerdict {
		if c.Approve != nil && (c.Approve.Count != 3 || c.Approve.Digest != "aaaabbbbcccc") {
			return steps.ActionVerdict{Field: "digest", Reason: "the held suspensions changed"}
		}
		return steps.ActionVerdict{}
	}
	e.signalAt(time.Second, SignalEnable, SwitchSignal{Actor: "ops"})
	unnamed := e.updateAt(t, 5*time.Minute, SignalApproveSuspensions, ActorSignal{Actor: "alice"})
	stale := e.updateAt(t, 6*time.Minute, SignalApproveSuspensions, ApproveSignal{Actor: "alice", Held: 2, Digest: "000011112222"})
	ok := e.updateAt(t, 7*time.Minute, SignalApproveSuspensions, ApproveSignal{Actor: "alice", Held: 3, Digest: "aaaabbbbcccc"})
	e.RegisterDelayedCallback(func() { e.CancelWorkflow() }, 10*time.Minute)
	e.ExecuteWorkflow(UserSyncWorkflow, SyncState{Org: "acme"})

	_, r := rejection(t, unnamed.err)
	require.Equal(t, "digest", r.Field, "an approval names the set it approves")
	require.ErrorContains(t, stale.err, "the held suspensions changed")
	require.NoError(t, ok.err)
	require.Len(t, e.runs, 2)
	require.True(t, e.runs[1].ApproveSuspensions)
	require.Equal(t, ok.result.RunID, e.runs[1].RunID)
	require.Equal(t, "aaaabbbbcccc", e.runs[1].ApprovedHeld, "the run applies only the set approved")
}

func TestUpdatesWhileSyncIsOffAreRejected(t *testing.T) {
	e := newOrgEnv(t)
	now := e.updateAt(t, time.Second, SignalSyncNow, ActorSignal{Actor: "bob"})
	off := e.updateAt(t, 2*time.Second, SignalDisable, SwitchSignal{Actor: "bob"})
	e.RegisterDelayedCallback(func() { e.CancelWorkflow() }, time.Minute)
	e.ExecuteWorkflow(UserSyncWorkflow, SyncState{Org: "acme"})

	require.ErrorContains(t, now.err, "user sync is off")
	require.NoError(t, off.err, "disable while off is accepted")
	require.Equal(t, OutcomeOff, off.result.Outcome)
	require.Empty(t, e.runs)
}
