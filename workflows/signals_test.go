package workflows

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"

	"github.com/usersync/usersync/internal/vocab"
)

// badSignal is a malformed payload as the Temporal UI sends it (raw JSON), and a valid signal
// on the same channel with how to tell it was served.
type badSignal struct {
	signal    string
	payload   string
	eventType string
	field     string // expected in the rejection's details
	value     string // expected value in the details; "" when none may be recorded
	valid     any
	served    func(t *testing.T, e *orgEnv, after Status)
}

var badSignals = []badSignal{
	{signal: SignalEnable, payload: `{"interval":"1x"}`, eventType: vocab.EventSwitch, field: "interval", value: `"1x"`,
		valid: json.RawMessage(`{"actor":"ops","interval":"1h"}`),
		served: func(t *testing.T, _ *orgEnv, after Status) {
			require.Equal(t, time.Hour, after.Interval)
		}},
	{signal: SignalEnable, payload: `{"interval":"10s"}`, eventType: vocab.EventSwitch, field: "interval", value: `"10s"`,
		valid: SwitchSignal{Actor: "ops", Interval: time.Hour},
		served: func(t *testing.T, _ *orgEnv, after Status) {
			require.Equal(t, time.Hour, after.Interval)
		}},
	{signal: SignalEnable, payload: `{"interval":5000000000}`, eventType: vocab.EventSwitch, field: "interval", value: `5000000000`,
		valid: SwitchSignal{Actor: "ops", Interval: time.Hour},
		served: func(t *testing.T, _ *orgEnv, after Status) {
			require.Equal(t, time.Hour, after.Interval)
		}},
	{signal: SignalEnable, payload: `{"intervall":"1h"}`, eventType: vocab.EventSwitch, field: "intervall",
		valid: SwitchSignal{Actor: "ops", Interval: time.Hour},
		served: func(t *testing.T, _ *orgEnv, after Status) {
			require.Equal(t, time.Hour, after.Interval)
		}},
	{signal: SignalDisable, payload: `"off"`, eventType: vocab.EventSwitch,
		valid: SwitchSignal{Actor: "bob"},
		served: func(t *testing.T, _ *orgEnv, after Status) {
			require.False(t, after.Enabled)
		}},
	{signal: SignalDisable, payload: `{"actor":5}`, eventType: vocab.EventSwitch, field: "actor",
		valid: SwitchSignal{Actor: "bob"},
		served: func(t *testing.T, _ *orgEnv, after Status) {
			require.False(t, after.Enabled)
		}},
	{signal: SignalRetry, payload: `{"filter":"oops"}`, eventType: vocab.EventRetry, field: "filter", value: `"oops"`,
		valid: RetrySignal{Actor: "ops", Filter: vocab.Filter{Type: vocab.OutOfLicenses}}, served: servedRetry},
	{signal: SignalRetry, payload: `{"filter":{"type":"bogus"}}`, eventType: vocab.EventRetry, field: "filter.type", value: `"bogus"`,
		valid: RetrySignal{Actor: "ops", Filter: vocab.Filter{Type: vocab.OutOfLicenses}}, served: servedRetry},
	{signal: SignalRetry, payload: `{"filter":{"tpye":"out_of_licenses"}}`, eventType: vocab.EventRetry, field: "filter.tpye",
		valid: RetrySignal{Actor: "ops", Filter: vocab.Filter{Type: vocab.OutOfLicenses}}, served: servedRetry},
	{signal: SignalRetry, payload: `{"filter":{"user":["jane.doe@acme.test"]}}`, eventType: vocab.EventRetry, field: "filter.user",
		valid: RetrySignal{Actor: "ops", Filter: vocab.Filter{Type: vocab.OutOfLicenses}}, served: servedRetry},
	{signal: SignalRetry, payload: `{"filter":{}`, eventType: vocab.EventRetry,
		valid: RetrySignal{Actor: "ops", Filter: vocab.Filter{Type: vocab.OutOfLicenses}}, served: servedRetry},
	{signal: SignalSyncNow, payload: `{}`, eventType: vocab.EventSync, field: "actor", // no actor: who did it?
		valid: ActorSignal{Actor: "alice"},
		served: func(t *testing.T, e *orgEnv, _ Status) {
			require.Len(t, e.runs, 2)
			require.Equal(t, vocab.KindManual, e.runs[1].Kind)
		}},
	{signal: SignalRetry, payload: `{"actor":"  ","filter":{}}`, eventType: vocab.EventRetry, field: "actor",
		valid: RetrySignal{Actor: "ops", Filter: vocab.Filter{Type: vocab.OutOfLicenses}}, served: servedRetry},
	{signal: SignalSyncNow, payload: `{"actor":["x"]}`, eventType: vocab.EventSync, field: "actor",
		valid: ActorSignal{Actor: "alice"},
		served: func(t *testing.T, e *orgEnv, _ Status) {
			require.Len(t, e.runs, 2)
			require.Equal(t, vocab.KindManual, e.runs[1].Kind)
		}},
	{signal: SignalApproveSuspensions, payload: `{"approve":true}`, eventType: vocab.EventSync, field: "approve",
		valid: ApproveSignal{Actor: "alice", Held: 2, Digest: "abc"},
		served: func(t *testing.T, e *orgEnv, _ Status) {
			require.Len(t, e.runs, 2)
			require.True(t, e.runs[1].ApproveSuspensions)
		}},
}

func servedRetry(t *testing.T, e *orgEnv, _ Status) {
	require.Len(t, e.runs, 2)
	require.Equal(t, vocab.KindRetry, e.runs[1].Kind)
	require.Equal(t, &vocab.Filter{Type: vocab.OutOfLicenses}, e.runs[1].Retry)
}

// runBadSignal enables sync (a first run at 0:00), sends the malformed payload at 5 minutes,
// then sends next (signal name and payload) at 6 minutes, and stops the workflow at 10 minutes,
// before the scheduled sync. It returns the status at 9 minutes.
func runBadSignal(t *testing.T, e *orgEnv, bad badSignal, next string, payload any) Status {
	e.signalAt(time.Second, SignalEnable, SwitchSignal{Actor: "alice"})
	e.signalAt(5*time.Minute, bad.signal, converter.NewRawValue(rawJSON(bad.payload)))
	e.signalAt(6*time.Minute, next, payload)
	var after Status
	e.RegisterDelayedCallback(func() { after = e.status(t) }, 9*time.Minute)
	e.RegisterDelayedCallback(func() { e.CancelWorkflow() }, 10*time.Minute)
	e.ExecuteWorkflow(UserSyncWorkflow, SyncState{Org: "acme"})
	require.True(t, e.IsWorkflowCompleted())
	require.True(t, temporal.IsCanceledError(e.GetWorkflowError()), "%v", e.GetWorkflowError())
	return after
}

// requireRejected checks that the malformed payload was recorded as rejected, saying why,
// right after the enable and before what was served next.
func requireRejected(t *testing.T, e *orgEnv, bad badSignal) {
	require.GreaterOrEqual(t, len(e.events), 3, "%v", e.actions())
	require.Equal(t, bad.signal+":rejected", e.actions()[1], "%v", e.actions())
	ev := e.events[1]
	require.Equal(t, bad.eventType, ev.Type)
	reason, _ := ev.Details["reason"].(string)
	require.NotEmpty(t, reason)
	if bad.field != "" {
		require.Equal(t, bad.field, ev.Details["field"], "reason: %s", reason)
		require.Contains(t, reason, bad.field)
	}
	if bad.value != "" {
		require.Equal(t, bad.value, ev.Details["value"], "reason: %s", reason)
		require.Contains(t, reason, bad.value)
	} else {
		require.NotContains(t, ev.Details, "value")
	}
	require.NotContains(t, fmt.Sprint(ev.Details), "jane", "no personal data in the history")
}

func TestAMalformedSignalIsRejectedAndTheNextSignalOnAnotherChannelIsServed(t *testing.T) {
	for _, bad := range badSignals {
		t.Run(bad.signal+" "+bad.payload, func(t *testing.T) {
			e := newOrgEnv(t)
			next, served, payload := SignalSyncNow, vocab.KindManual, any(ActorSignal{Actor: "alice"})
			if bad.signal == SignalSyncNow {
				next, payload = SignalApproveSuspensions, ApproveSignal{Actor: "alice", Held: 2, Digest: "abc"}
			}
			after := runBadSignal(t, e, bad, next, payload)

			require.Len(t, e.runs, 2, "the signal after the malformed one starts a sync: %v", e.actions())
			require.Equal(t, served, e.runs[1].Kind)
			require.True(t, after.Enabled, "a rejected signal changes nothing")
			require.Equal(t, DefaultInterval, after.Interval, "a rejected signal changes nothing")
			requireRejected(t, e, bad)
			require.Equal(t, next+":", e.actions()[2])
		})
	}
}

func TestAMalformedSignalIsRejectedAndTheNextSignalOnTheSameChannelIsServed(t *testing.T) {
	for _, bad := range badSignals {
		t.Run(bad.signal+" "+bad.payload, func(t *testing.T) {
			e := newOrgEnv(t)
			after := runBadSignal(t, e, bad, bad.signal, bad.valid)

			bad.served(t, e, after)
			requireRejected(t, e, bad)
			require.Equal(t, bad.signal, e.events[2].Action)
			require.NotEqual(t, "rejected", e.events[2].Status)
		})
	}
}

func TestARejectedSignalNamesItsSender(t *testing.T) {
	e := newOrgEnv(t)
	e.signalAt(time.Second, SignalRetry, json.RawMessage(`{"actor":"carol","filter":"oops"}`))
	e.RegisterDelayedCallback(func() { e.CancelWorkflow() }, time.Minute)
	e.ExecuteWorkflow(UserSyncWorkflow, SyncState{Org: "acme"})

	require.Equal(t, []string{"retry:rejected"}, e.actions())
	require.Equal(t, "carol", e.events[0].Actor)
	require.Equal(t, "acme", e.events[0].Org)
}

func TestEnableTakesADurationString(t *testing.T) {
	e := newOrgEnv(t)
	e.signalAt(time.Second, SignalEnable, json.RawMessage(`{"actor":"alice","interval":"1h"}`))
	var mid Status
	e.RegisterDelayedCallback(func() { mid = e.status(t) }, 30*time.Minute)
	e.RegisterDelayedCallback(func() { e.CancelWorkflow() }, 90*time.Minute)
	e.ExecuteWorkflow(UserSyncWorkflow, SyncState{Org: "acme"})

	require.True(t, mid.Enabled)
	require.Equal(t, time.Hour, mid.Interval)
	// Runs at 0:00 (one minute) and 1:01.
	require.Len(t, e.runs, 2)
	require.Equal(t, []string{"enable:"}, e.actions())
	require.Equal(t, "1h0m0s", e.events[0].Details["interval"])
}

func TestEnableTakesNanosecondsAndIgnoresAZeroInterval(t *testing.T) {
	e := newOrgEnv(t)
	e.signalAt(time.Second, SignalEnable, json.RawMessage(`{"actor":"ops","interval":1800000000000}`))
	e.signalAt(time.Minute, SignalEnable, json.RawMessage(`{"actor":"ops","interval":0}`))
	var mid Status
	e.RegisterDelayedCallback(func() { mid = e.status(t) }, 2*time.Minute)
	e.RegisterDelayedCallback(func() { e.CancelWorkflow() }, 3*time.Minute)
	e.ExecuteWorkflow(UserSyncWorkflow, SyncState{Org: "acme"})

	require.Equal(t, 30*time.Minute, mid.Interval)
	require.Equal(t, []string{"enable:", "enable:no-op"}, e.actions())
}

func TestCancellingWhileSyncIsOffEndsTheWorkflow(t *testing.T) {
	for name, signals := range map[string]func(e *orgEnv){
		"never enabled": func(*orgEnv) {},
		"disabled": func(e *orgEnv) {
			e.signalAt(time.Second, SignalEnable, SwitchSignal{Actor: "ops"})
			e.signalAt(2*time.Minute, SignalDisable, SwitchSignal{Actor: "ops"})
		},
	} {
		t.Run(name, func(t *testing.T) {
			e := newOrgEnv(t)
			signals(e)
			var cancelledAt time.Time
			e.RegisterDelayedCallback(func() {
				cancelledAt = e.Now()
				e.CancelWorkflow()
			}, 10*time.Minute)
			e.ExecuteWorkflow(UserSyncWorkflow, SyncState{Org: "acme"})

			require.True(t, e.IsWorkflowCompleted())
			require.True(t, temporal.IsCanceledError(e.GetWorkflowError()), "%v", e.GetWorkflowError())
			require.Equal(t, cancelledAt, e.Now(), "the workflow ends when cancelled, not at the next signal")
		})
	}
}

func TestShorteningTheIntervalPastTheNextSyncStartsItAtOnce(t *testing.T) {
	e := newOrgEnv(t)
	e.signalAt(time.Second, SignalEnable, SwitchSignal{Actor: "ops", Interval: time.Hour})
	// The first sync ends at 1:01; with 15 minutes the next one was due at 16:01.
	e.signalAt(20*time.Minute, SignalEnable, SwitchSignal{Actor: "ops", Interval: 15 * time.Minute})
	var after Status
	e.RegisterDelayedCallback(func() { after = e.status(t) }, 20*time.Minute+30*time.Second)
	e.RegisterDelayedCallback(func() { e.CancelWorkflow() }, 25*time.Minute)
	e.ExecuteWorkflow(UserSyncWorkflow, SyncState{Org: "acme"})

	require.Len(t, e.runs, 2, "the overdue sync starts when the interval changes, not at the next signal")
	require.NotNil(t, after.CurrentRun)
}

// rawJSON is a payload as any client may send it: JSON text, valid or not.
func rawJSON(s string) *commonpb.Payload {
	return &commonpb.Payload{Metadata: map[string][]byte{converter.MetadataEncoding: []byte(converter.MetadataEncodingJSON)},
		Data: []byte(s)}
}
