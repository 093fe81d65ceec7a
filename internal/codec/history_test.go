package codec_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/usersync/usersync/internal/codec"
	"github.com/usersync/usersync/internal/devstack/devstacktest"
	"github.com/usersync/usersync/internal/orgs"
)

const (
	memoText      = "memo-dana@acme.test"
	heartbeatText = "heartbeat-erin@acme.test"
	failureText   = "failure-frank@acme.test"
)

// heartbeatThenHang records a heartbeat with details and never answers again: it times out on
// its heartbeat, so that the server keeps the last details in the history.
func heartbeatThenHang(ctx context.Context) error {
	activity.RecordHeartbeat(ctx, heartbeatText)
	<-ctx.Done()
	return ctx.Err()
}

// failingWorkflow runs heartbeatThenHang once and fails with a message naming a user.
func failingWorkflow(ctx workflow.Context) error {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: time.Minute,
		HeartbeatTimeout: time.Second, RetryPolicy: &temporal.RetryPolicy{MaximumAttempts: 1}})
	err := workflow.ExecuteActivity(ctx, heartbeatThenHang).Get(ctx, nil)
	return temporal.NewNonRetryableApplicationError(failureText+": "+errors.Unwrap(err).Error(), "test", nil, failureText)
}

// With the payload key, what the server stores of a workflow is ciphertext, including what is
// not an input or a result: the memo, an activity's last heartbeat details (kept by the server
// when it times out) and failure messages, stack traces and details (the failure converter).
// The codec opens them again.
func TestMemoHeartbeatDetailsAndFailuresAreSealedInTheHistory(t *testing.T) {
	hostPort := devstacktest.Temporal(t)
	path := filepath.Join(t.TempDir(), "payload.keys")
	_, err := orgs.AddKey(path)
	require.NoError(t, err)
	keys, err := orgs.LoadKeyring(path)
	require.NoError(t, err)
	cd := codec.Codec{Keys: keys}
	c, err := client.Dial(client.Options{HostPort: hostPort, DataConverter: cd.DataConverter(), FailureConverter: cd.FailureConverter()})
	require.NoError(t, err)
	defer c.Close()
	w := worker.New(c, "codec-history", worker.Options{})
	w.RegisterWorkflow(failingWorkflow)
	w.RegisterActivity(heartbeatThenHang)
	require.NoError(t, w.Start())
	defer w.Stop()

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "codec-history", TaskQueue: "codec-history",
		Memo: map[string]any{"note": memoText}}, failingWorkflow)
	require.NoError(t, err)
	werr := run.Get(ctx, nil)
	require.ErrorContains(t, werr, failureText, "the client with the codec reads the failure")

	plain, err := client.Dial(client.Options{HostPort: hostPort})
	require.NoError(t, err)
	defer plain.Close()
	var sealed []*commonpb.Payload
	seen := map[enums.EventType]bool{}
	it := plain.GetWorkflowHistory(ctx, run.GetID(), run.GetRunID(), false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		e, err := it.Next()
		require.NoError(t, err)
		seen[e.EventType] = true
		b, err := proto.Marshal(e)
		require.NoError(t, err)
		for _, s := range []string{memoText, heartbeatText, failureText} {
			require.NotContains(t, string(b), s, "event %d %s holds %q in clear", e.EventId, e.EventType, s)
		}
		eachPayload(e.ProtoReflect(), func(p *commonpb.Payload) {
			require.Equal(t, codec.Encoding, string(p.GetMetadata()[converter.MetadataEncoding]),
				"event %d %s: a payload in clear: %s", e.EventId, e.EventType, p.GetData())
			sealed = append(sealed, p)
		})
	}
	require.True(t, seen[enums.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT], "the activity timed out on its heartbeat")
	require.True(t, seen[enums.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED])

	opened, err := cd.Decode(sealed)
	require.NoError(t, err)
	var all strings.Builder
	for _, p := range opened {
		all.Write(p.GetData())
	}
	for _, s := range []string{memoText, heartbeatText, failureText} {
		require.Contains(t, all.String(), s, "the codec opens it")
	}
}

// eachPayload calls f with every Payload in m, at any depth.
func eachPayload(m protoreflect.Message, f func(*commonpb.Payload)) {
	if p, ok := m.Interface().(*commonpb.Payload); ok {
		f(p)
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
