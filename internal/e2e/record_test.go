package e2e

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/temporalproto"
	"go.temporal.io/sdk/client"

	"github.com/usersync/usersync/internal/demo"
	"github.com/usersync/usersync/internal/vocab"
	"github.com/usersync/usersync/workflows"
)

// RecordHistoriesEnv, set to 1, makes TestRecordHistories (re)write the workflow histories that
// workflows.TestReplayRecordedHistories replays.
const RecordHistoriesEnv = "USERSYNC_RECORD_HISTORIES"

// historiesDir is workflows/testdata/histories, seen from this package's directory.
var historiesDir = filepath.Join("..", "..", "workflows", "testdata", "histories")

// TestRecordHistories runs a realistic day on the real stack (enable, first sync, buy seats,
// retry the license failures, disable) and writes the histories of the workflows it ran, in
// the JSON format of `temporal workflow show --output json`. Re-record after an intended
// change of workflow code, once the old histories can no longer occur:
//
//	USERSYNC_RECORD_HISTORIES=1 go test ./internal/e2e -run TestRecordHistories
func TestRecordHistories(t *testing.T) {
	if os.Getenv(RecordHistoriesEnv) != "1" {
		t.Skip(RecordHistoriesEnv + "=1 not set: not re-recording workflows/testdata/histories")
	}
	s := newStack(t, demo.Org())
	// 1 s per request: the first sync's page 0 keeps its task going with local writes for more
	// than a heartbeat (8 s) and lets it end between them, which its history then replays.
	s.sandbox.SetLatency(time.Second)
	s.signal(workflows.SignalEnable, workflows.SwitchSignal{Actor: "alice"})
	first := s.waitRun("")
	require.Equal(t, vocab.RunSucceeded, first.Status, first.Error)
	s.sandbox.SetLatency(0)
	waiting := s.failures(vocab.Filter{Type: vocab.OutOfLicenses})
	require.NotEmpty(t, waiting, "the demo runs short of Webinar seats: the retry has work to do")

	seats := 0
	ls, err := s.store.Licenses(s.ctx, org)
	require.NoError(t, err)
	for _, l := range ls {
		if l.Product == demo.Webinar {
			seats = l.Seats
		}
	}
	require.NoError(t, s.store.SetLicense(s.ctx, org, "alice", demo.Webinar, seats+len(waiting)))
	s.signal(workflows.SignalRetry, workflows.RetrySignal{Actor: "alice", Filter: vocab.Filter{Type: vocab.OutOfLicenses}})
	retry := s.waitRun(first.RunID)
	require.Equal(t, vocab.RunSucceeded, retry.Status, retry.Error)
	require.Equal(t, vocab.KindRetry, retry.Kind)

	s.signal(workflows.SignalDisable, workflows.SwitchSignal{Actor: "alice"})
	require.Eventually(t, func() bool { return !s.status().Enabled }, time.Minute, 100*time.Millisecond)

	require.NoError(t, os.MkdirAll(historiesDir, 0o755))
	for name, id := range map[string]string{
		// Still running (sync is off, the workflow waits for signals): an open history replays too.
		"usersync-org":       workflows.OrgWorkflowID(org),
		"sync-run-scheduled": first.RunID,
		"sync-run-retry":     retry.RunID,
		"process-page-first": first.RunID + "/page/0",
		"process-page-retry": retry.RunID + "/page/0",
	} {
		writeHistory(t, s, id, filepath.Join(historiesDir, name+".json"))
	}
}

// writeHistory waits until the workflow has no workflow task in flight, then writes its current
// run's history as JSON.
func writeHistory(t *testing.T, s *stack, workflowID, path string) {
	t.Helper()
	var hist *historypb.History
	require.Eventually(t, func() bool {
		hist = &historypb.History{}
		it := s.client.GetWorkflowHistory(s.ctx, workflowID, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
		for it.HasNext() {
			e, err := it.Next()
			require.NoError(t, err, workflowID)
			hist.Events = append(hist.Events, e)
		}
		if len(hist.Events) == 0 {
			return false
		}
		return settled(hist)
	}, time.Minute, 200*time.Millisecond, "history of %s settles", workflowID)

	b, err := temporalproto.CustomJSONMarshalOptions{Indent: "  "}.Marshal(hist)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(path, append(b, '\n'), 0o644))

	// What was written is what the replayer will read.
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	back, err := client.HistoryFromJSON(f, client.HistoryJSONOptions{})
	require.NoError(t, err)
	require.Len(t, back.Events, len(hist.Events), path)
	t.Logf("%s: %d events (%s)", path, len(hist.Events), workflowID)
}

// settled reports whether the last workflow task event is a completion (the commands it
// produced, such as markers of local activities, follow it) or the workflow has closed.
func settled(h *historypb.History) bool {
	for i := len(h.Events) - 1; i >= 0; i-- {
		switch h.Events[i].GetEventType() {
		case enumspb.EVENT_TYPE_WORKFLOW_TASK_COMPLETED, enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED,
			enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW, enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED,
			enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED, enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED:
			return true
		case enumspb.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED, enumspb.EVENT_TYPE_WORKFLOW_TASK_STARTED,
			enumspb.EVENT_TYPE_WORKFLOW_TASK_FAILED, enumspb.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT:
			return false
		}
	}
	return false
}
