package e2e

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/usersync/usersync/internal/codec"
	"github.com/usersync/usersync/internal/demo"
	"github.com/usersync/usersync/internal/devstack"
	"github.com/usersync/usersync/internal/orgs"
	"github.com/usersync/usersync/internal/vocab"
)

// An ops person reads a run's input in the Temporal UI: with the payload key set, every
// payload in Temporal is ciphertext, so the UI (pointed at `starter codec-server` by the dev
// server's --ui-codec-endpoint) shows the actor only once this browser is signed in to the
// codec server, and not before (the codec server refuses it without its token).
func TestTheTemporalUIShowsPayloadsDecodedByTheCodecServer(t *testing.T) {
	node, chromium, retryScript := browser(t)
	script := filepath.Join(filepath.Dir(retryScript), "codec.mjs")

	keyFile := filepath.Join(t.TempDir(), "payload.keys")
	_, err := orgs.AddKey(keyFile)
	require.NoError(t, err)
	keys, err := orgs.LoadKeyring(keyFile)
	require.NoError(t, err)
	cd := codec.Codec{Keys: keys}
	codecAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(devstack.FreePort()))
	codecURL := "http://" + codecAddr
	s := newStackWithUICodec(t, demo.Generate(20, 11), codecURL, func(o *client.Options) {
		o.DataConverter, o.FailureConverter = cd.DataConverter(), cd.FailureConverter()
	})
	const actor = "dana.codec-ui"
	s.cliEnv = []string{"USER=" + actor, "USERSYNC_PAYLOAD_KEY_FILE=" + keyFile}
	s.cliOK("enable", "--interval", "1h")
	run := s.waitRun("")
	require.Equal(t, vocab.RunSucceeded, run.Status, run.Error)

	// Through the Temporal API, every payload of every history is sealed.
	sealed := requireAllPayloadsSealed(t, s, actor)
	require.Greater(t, sealed, 20)
	desc, err := s.client.DescribeWorkflowExecution(s.ctx, run.RunID, "")
	require.NoError(t, err)
	runID := desc.WorkflowExecutionInfo.Execution.RunId

	// The real codec server, with a token, answering the UI's origin.
	tokenFile := filepath.Join(t.TempDir(), "codec.token")
	const token = "codec-ui-token-5c1e"
	require.NoError(t, os.WriteFile(tokenFile, []byte(token+"\n"), 0o600))
	ctx, cancel := context.WithCancel(s.ctx)
	defer cancel()
	srv := exec.CommandContext(ctx, starterBinary(t), "codec-server", "--listen", codecAddr,
		"--ui-origin", s.uiURL, "--token-file", tokenFile)
	srv.Env = append(os.Environ(), "USERSYNC_PAYLOAD_KEY_FILE="+keyFile, "USERSYNC_CODEC_TOKEN=")
	var srvOut lockedBuffer
	srv.Stdout, srv.Stderr = &srvOut, &srvOut
	require.NoError(t, srv.Start())
	defer func() { cancel(); _ = srv.Wait(); t.Logf("codec-server:\n%s", srvOut.String()) }()
	for deadline := time.Now().Add(30 * time.Second); !devstack.PortOpen(codecAddr); time.Sleep(100 * time.Millisecond) {
		require.True(t, time.Now().Before(deadline), "codec server not listening: %s", srvOut.String())
	}

	dir := artifactsDir(t)
	bctx, bcancel := context.WithTimeout(s.ctx, 4*time.Minute)
	defer bcancel()
	cmd := exec.CommandContext(bctx, node, script, s.uiURL, codecURL, run.RunID, runID, actor)
	cmd.Env = append(os.Environ(), "CHROMIUM_PATH="+chromium, "UITEST_ARTIFACTS="+dir, "UITEST_CODEC_TOKEN="+token)
	out, err := cmd.CombinedOutput()
	t.Logf("codec.mjs:\n%s", out)
	require.NoError(t, err)
	require.Contains(t, string(out), "before sign-in: "+actor+" not shown")
	require.Contains(t, string(out), "after sign-in: "+actor+" shown")
}

// requireAllPayloadsSealed reads every workflow's history raw (no codec) and fails on any
// payload that is not sealed by the codec, or on secret found in the clear; it returns how
// many payloads it saw.
func requireAllPayloadsSealed(t *testing.T, s *stack, secret string) int {
	t.Helper()
	payloads := 0
	eachHistoryEvent(t, s, func(where string, e *historypb.HistoryEvent, raw []byte) {
		require.NotContains(t, string(raw), secret, "%s holds %q in clear", where, secret)
		eachPayload(e.ProtoReflect(), func(p *commonpb.Payload) {
			payloads++
			enc := string(p.GetMetadata()[converter.MetadataEncoding])
			require.Equal(t, codec.Encoding, enc, "%s has a payload in clear: %s", where, strings.TrimSpace(string(p.GetData())))
		})
	})
	require.NotZero(t, payloads)
	return payloads
}

// eachHistoryEvent calls f with every event of every workflow's history, read raw (no codec),
// with where it is ("<workflow ID> event <n> <type>") and its wire bytes.
func eachHistoryEvent(t *testing.T, s *stack, f func(where string, e *historypb.HistoryEvent, raw []byte)) {
	t.Helper()
	plain, err := client.Dial(client.Options{HostPort: s.hostPort, Logger: quietLogger()})
	require.NoError(t, err)
	defer plain.Close()
	var next []byte
	for {
		resp, err := plain.ListWorkflow(s.ctx, &workflowservice.ListWorkflowExecutionsRequest{PageSize: 100, NextPageToken: next})
		require.NoError(t, err)
		for _, ex := range resp.Executions {
			it := plain.GetWorkflowHistory(s.ctx, ex.Execution.WorkflowId, ex.Execution.RunId, false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
			for it.HasNext() {
				e, err := it.Next()
				require.NoError(t, err)
				b, err := proto.Marshal(e)
				require.NoError(t, err)
				f(ex.Execution.WorkflowId+" event "+strconv.FormatInt(e.EventId, 10)+" "+e.EventType.String(), e, b)
			}
		}
		if next = resp.NextPageToken; len(next) == 0 {
			return
		}
	}
}

// eachPayload calls f with every Payload in m, at any depth (inputs, results, headers, memo,
// failures' details, markers), but search attributes' (the server indexes them: never
// encrypted, and usersync's hold no personal data).
func eachPayload(m protoreflect.Message, f func(*commonpb.Payload)) {
	switch p := m.Interface().(type) {
	case *commonpb.Payload:
		f(p)
		return
	case *commonpb.SearchAttributes:
		return
	}
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case fd.IsList() && fd.Message() != nil:
			for i := range v.List().Len() {
				eachPayload(v.List().Get(i).Message(), f)
			}
		case fd.IsMap() && fd.MapValue().Message() != nil:
			v.Map().Range(func(_ protoreflect.MapKey, mv protoreflect.Value) bool {
				eachPayload(mv.Message(), f)
				return true
			})
		case !fd.IsList() && !fd.IsMap() && fd.Message() != nil:
			eachPayload(v.Message(), f)
		}
		return true
	})
}
