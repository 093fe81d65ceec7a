package e2e

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/api/workflowservice/v1"

	"github.com/usersync/usersync/internal/demo"
	"github.com/usersync/usersync/internal/vocab"
	"github.com/usersync/usersync/workflows"
)

// list runs a visibility query until it finds workflows (visibility lags a little) and
// returns their IDs.
func (s *stack) list(query string) []string {
	s.t.Helper()
	var ids []string
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(300 * time.Millisecond) {
		resp, err := s.client.ListWorkflow(s.ctx, &workflowservice.ListWorkflowExecutionsRequest{Query: query})
		require.NoError(s.t, err, query)
		ids = ids[:0]
		for _, e := range resp.Executions {
			ids = append(ids, e.Execution.WorkflowId)
		}
		if len(ids) > 0 {
			return ids
		}
	}
	return nil
}

// Ops find organizations with failures and partial runs in the UI with the saved filters the
// README gives: the workflows upsert search attributes.
func TestOpsFindOrganizationsWithFailuresBySearchAttributes(t *testing.T) {
	s := newStack(t, demo.Org())
	s.cliOK("enable", "--interval", "1h")
	s.cliOK("status", "--wait", "--timeout", "3m")
	failed := len(s.failures(vocab.Filter{}))
	require.Greater(t, failed, 0, "the demo has failed users")
	runID := s.lastRunID()

	orgID := workflows.OrgWorkflowID(org)
	require.Contains(t, s.list(`UsersyncFailedUsers > 0`), orgID)
	require.Contains(t, s.list(fmt.Sprintf(`UsersyncOrg = %q AND UsersyncSyncOn = true AND UsersyncFailedUsers = %d`, org, failed)), orgID,
		"the org workflow holds the number of failed users")
	require.Contains(t, s.list(`UsersyncFailureTypes = "out_of_licenses" AND UsersyncRunOutcome = "partial" AND UsersyncRunKind = "scheduled"`), orgID)
	require.Contains(t, s.list(`UsersyncRunOutcome = "partial" AND UsersyncLastRun > "2020-01-01T00:00:00Z"`), runID, "the run itself is partial")

	// Off, with the failures fixed by seats: the attributes follow.
	s.cliOK("licenses", "set", "Webinar", "500")
	s.cliOK("retry", "--type", "out_of_licenses")
	left := len(s.failures(vocab.Filter{}))
	require.Contains(t, s.list(fmt.Sprintf(`WorkflowId = %q AND UsersyncFailedUsers = %d AND UsersyncRunKind = "retry"`, orgID, left)), orgID)
	s.cliOK("disable")
	require.Contains(t, s.list(fmt.Sprintf(`WorkflowId = %q AND UsersyncSyncOn = false`, orgID)), orgID)
}
