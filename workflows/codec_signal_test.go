package workflows

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"

	"github.com/usersync/usersync/internal/codec"
	"github.com/usersync/usersync/internal/orgs"
)

// sendsAsIs is the worker's data converter, but a rawPayload argument goes out as it is: a
// payload sealed elsewhere reaches the workflow without this side encoding it again.
type sendsAsIs struct{ converter.DataConverter }

type rawPayload struct{ p *commonpb.Payload }

func (c sendsAsIs) ToPayloads(values ...any) (*commonpb.Payloads, error) {
	if len(values) == 1 {
		if r, ok := values[0].(rawPayload); ok {
			return &commonpb.Payloads{Payloads: []*commonpb.Payload{r.p}}, nil
		}
	}
	return c.DataConverter.ToPayloads(values...)
}

func (c sendsAsIs) ToPayload(value any) (*commonpb.Payload, error) {
	if r, ok := value.(rawPayload); ok {
		return r.p, nil
	}
	return c.DataConverter.ToPayload(value)
}

func testCodec(t *testing.T, name string) codec.Codec {
	path := filepath.Join(t.TempDir(), name)
	_, err := orgs.AddKey(path)
	require.NoError(t, err)
	keys, err := orgs.LoadKeyring(path)
	require.NoError(t, err)
	return codec.Codec{Keys: keys}
}

// With the payload codec on, a signal sealed under a key this worker does not hold (a starter
// with another key file, or forged bytes) is rejected and recorded, and the next signal on the
// same channel is served: the workflow never waits on it.
func TestASealedSignalThatDoesNotOpenIsRejectedNotDropped(t *testing.T) {
	ours, theirs := testCodec(t, "ours.keys"), testCodec(t, "theirs.keys")
	e := newOrgEnv(t)
	e.SetDataConverter(sendsAsIs{ours.DataConverter()})
	foreign, err := theirs.DataConverter().ToPayload(SwitchSignal{Actor: "mallory", Interval: time.Hour})
	require.NoError(t, err)
	e.signalAt(time.Second, SignalEnable, rawPayload{foreign})
	e.signalAt(time.Minute, SignalEnable, SwitchSignal{Actor: "ops", Interval: 2 * time.Hour})
	var mid Status
	e.RegisterDelayedCallback(func() { mid = e.status(t) }, 2*time.Minute)
	e.RegisterDelayedCallback(func() { e.CancelWorkflow() }, 3*time.Minute)
	e.ExecuteWorkflow(UserSyncWorkflow, SyncState{Org: "acme"})

	require.Equal(t, []string{"enable:rejected", "enable:"}, e.actions())
	require.True(t, mid.Enabled, "the next enable was served")
	require.Equal(t, 2*time.Hour, mid.Interval)
}

// With USERSYNC_PAYLOAD_REQUIRE_ENCRYPTION, a signal or an update sent without the payload key
// (from the UI, the temporal CLI) is rejected and recorded, never acted on, and the workflow
// goes on serving sealed ones.
func TestAnUnencryptedSignalOrUpdateIsRefusedWhenEncryptionIsRequired(t *testing.T) {
	ours := testCodec(t, "ours.keys")
	ours.RequireEncryption = true
	e := newOrgEnv(t)
	e.SetDataConverter(sendsAsIs{ours.DataConverter()})
	plain, err := converter.GetDefaultDataConverter().ToPayload(SwitchSignal{Actor: "mallory", Interval: time.Hour})
	require.NoError(t, err)
	e.signalAt(time.Second, SignalEnable, rawPayload{plain})
	var afterPlain Status
	e.RegisterDelayedCallback(func() { afterPlain = e.status(t) }, 30*time.Second)
	e.signalAt(time.Minute, SignalEnable, SwitchSignal{Actor: "ops", Interval: 2 * time.Hour})
	plainRetry, err := converter.GetDefaultDataConverter().ToPayload(RetrySignal{Actor: "mallory"})
	require.NoError(t, err)
	upd := e.updateAt(t, 5*time.Minute, SignalRetry, rawPayload{plainRetry})
	good := e.updateAt(t, 6*time.Minute, SignalRetry, RetrySignal{Actor: "carol"})
	var mid Status
	e.RegisterDelayedCallback(func() { mid = e.status(t) }, 2*time.Minute)
	e.RegisterDelayedCallback(func() { e.CancelWorkflow() }, 10*time.Minute)
	e.ExecuteWorkflow(UserSyncWorkflow, SyncState{Org: "acme"})

	require.False(t, afterPlain.Enabled, "the unencrypted enable was not acted on")
	require.Equal(t, "enable:rejected", e.actions()[0])
	require.Contains(t, e.events[0].Details["reason"], "USERSYNC_PAYLOAD_REQUIRE_ENCRYPTION")
	require.True(t, mid.Enabled, "the next, sealed enable was served")
	require.Equal(t, 2*time.Hour, mid.Interval)

	require.False(t, upd.accepted, "the unencrypted update is rejected")
	require.ErrorContains(t, upd.err, "not encrypted")
	require.True(t, good.accepted, "the next, sealed update is served")
	require.Len(t, e.runs, 2, "one run from the enable, one from the sealed retry")
}
