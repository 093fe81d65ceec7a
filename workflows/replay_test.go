package workflows

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/worker"
)

// TestReplayRecordedHistories replays histories recorded on the real stack against the current
// workflow code. A failure means a change is not deterministic: workflows already running in
// production would break when workers are upgraded. Make the change replay-safe (for example
// with workflow.GetVersion) rather than re-recording.
//
// Re-record only after an intended, versioned change, or to cover new behaviour:
//
//	USERSYNC_RECORD_HISTORIES=1 go test ./internal/e2e -run TestRecordHistories
//
// which writes testdata/histories/*.json (the `temporal workflow show --output json` format;
// a history saved with that command from a real deployment can be dropped in too).
func TestReplayRecordedHistories(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "histories", "*.json"))
	require.NoError(t, err)
	require.NotEmpty(t, files, "no recorded history in testdata/histories: this test would prove nothing")

	replayer := worker.NewWorkflowReplayer()
	replayer.RegisterWorkflow(UserSyncWorkflow)
	replayer.RegisterWorkflow(SyncRunWorkflow)
	replayer.RegisterWorkflow(ProcessPageWorkflow)
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			require.NoError(t, replayer.ReplayWorkflowHistoryFromJSONFile(nil, f))
		})
	}
}
