package workflows

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/worker"
)

// TestReplayHistoriesFromBeforeStrictSignals replays org workflow histories recorded on a
// Temporal dev server with the code from before changeStrictSignals, changeCancelAnywhere and
// changeStartOverdueRun (sync runs stubbed), in which those bugs happen: a sync found overdue
// after the interval was shortened waits for the next signal; malformed payloads (retry
// {"filter":"oops"}, enable {"interval":"1h"}, disable {"actor":5}) block their channel and
// leave later signals unserved; payloads now rejected (unknown members, an unknown failure
// type) were acted on; a cancellation while sync is off is only seen at the next signal, or
// never (usersync-org-stuck-open.json is still open). Workflows in those states must keep
// replaying once workers run the new code.
func TestReplayHistoriesFromBeforeStrictSignals(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "legacy-histories", "*.json"))
	require.NoError(t, err)
	require.Len(t, files, 2)

	replayer := worker.NewWorkflowReplayer()
	replayer.RegisterWorkflow(UserSyncWorkflow)
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			require.NoError(t, replayer.ReplayWorkflowHistoryFromJSONFile(nil, f))
		})
	}
}
