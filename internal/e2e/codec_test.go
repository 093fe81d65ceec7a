package e2e

import (
	"bytes"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"google.golang.org/protobuf/proto"

	"github.com/usersync/usersync/internal/codec"
	"github.com/usersync/usersync/internal/demo"
	"github.com/usersync/usersync/internal/orgs"
	"github.com/usersync/usersync/internal/vocab"
	"github.com/usersync/usersync/workflows"
)

// With the payload key set, whoever reads the Temporal histories (the UI, an export) finds
// neither the admins' names nor the users' userNames in them: every input, result, signal,
// marker and failure message is ciphertext. The codec opens them again.
func TestHistoriesHoldNoPersonalDataWithThePayloadCodec(t *testing.T) {
	keyFile := filepath.Join(t.TempDir(), "payload.keys")
	_, err := orgs.AddKey(keyFile)
	require.NoError(t, err)
	keys, err := orgs.LoadKeyring(keyFile)
	require.NoError(t, err)
	cd := codec.Codec{Keys: keys}
	s := newStackOn(t, demo.Org(), sandboxTarget, func(o *client.Options) {
		o.DataConverter, o.FailureConverter = cd.DataConverter(), cd.FailureConverter()
	})

	const admin = "alice.codec-admin"
	s.signal(workflows.SignalEnable, workflows.SwitchSignal{Actor: admin})
	first := s.waitRun("")
	require.Equal(t, vocab.RunSucceeded, first.Status, first.Error)
	failed := s.failures(vocab.Filter{Type: vocab.ExistingAccount})
	require.NotEmpty(t, failed)
	user := failed[0].UserName // an email address
	// The CLI, with the same key, sends the retry of that user by the directory's opaque ID.
	s.cliEnv = []string{"USERSYNC_PAYLOAD_KEY_FILE=" + keyFile, "USER=" + admin}
	s.cliOK("retry", "--user", user)

	// Read every history as the UI does without the codec: raw events.
	plain, err := client.Dial(client.Options{HostPort: s.hostPort, Logger: quietLogger()})
	require.NoError(t, err)
	defer plain.Close()
	var events, encrypted int
	var sample []byte
	var next []byte
	for {
		resp, err := plain.ListWorkflow(s.ctx, &workflowservice.ListWorkflowExecutionsRequest{PageSize: 100, NextPageToken: next})
		require.NoError(t, err)
		for _, ex := range resp.Executions {
			it := plain.GetWorkflowHistory(s.ctx, ex.Execution.WorkflowId, ex.Execution.RunId, false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
			for it.HasNext() {
				e, err := it.Next()
				require.NoError(t, err)
				events++
				b, err := proto.Marshal(e)
				require.NoError(t, err)
				for _, secret := range []string{admin, user} {
					require.False(t, bytes.Contains(b, []byte(secret)),
						"%s event %d (%s) holds %q in clear", ex.Execution.WorkflowId, e.EventId, e.EventType, secret)
				}
				if sig := e.GetWorkflowExecutionSignaledEventAttributes(); sig != nil && sig.SignalName == workflows.SignalRetry {
					p := sig.GetInput().GetPayloads()[0]
					require.Equal(t, codec.Encoding, string(p.GetMetadata()["encoding"]))
					encrypted++
					sample, err = proto.Marshal(p)
					require.NoError(t, err)
				}
			}
		}
		if next = resp.NextPageToken; len(next) == 0 {
			break
		}
	}
	require.Greater(t, events, 100, "the histories were read")
	require.Equal(t, 1, encrypted, "the retry signal was found, encrypted")

	// The codec (as the codec server uses it) opens the signal again.
	var p commonpb.Payload
	require.NoError(t, proto.Unmarshal(sample, &p))
	opened, err := cd.Decode([]*commonpb.Payload{&p})
	require.NoError(t, err)
	require.Contains(t, string(opened[0].GetData()), failed[0].ExternalID, "the retry names the user by externalId")
	require.Contains(t, string(opened[0].GetData()), admin)
}
