package e2e

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/stretchr/testify/require"
	"go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"

	"github.com/usersync/usersync/internal/demo"
	"github.com/usersync/usersync/internal/store"
	"github.com/usersync/usersync/internal/vocab"
	"github.com/usersync/usersync/workflows"
)

// update sends an update to the org workflow as the UI does (raw JSON) and waits for its answer.
func (s *stack) update(name, payload string) (workflows.ActionResult, error) {
	s.t.Helper()
	h, err := s.client.UpdateWorkflow(s.ctx, client.UpdateWorkflowOptions{WorkflowID: workflows.OrgWorkflowID(org),
		UpdateName: name, Args: []any{json.RawMessage(payload)}, WaitForStage: client.WorkflowUpdateStageCompleted})
	var res workflows.ActionResult
	if err == nil {
		err = h.Get(s.ctx, &res)
	}
	return res, err
}

// The admin's actions are updates: enable answers the run it started, bad input is rejected
// to the sender with the field and value, leaves a rejected row in the history and nothing
// else, and the workflow serves the next action.
func TestUpdatesAnswerTheirRunAndRejectBadInputToTheSender(t *testing.T) {
	s := newStack(t, demo.Org())

	out := s.cliOK("enable", "--interval", "1h")
	m := regexp.MustCompile(`run (usersync/acme/run/\S+) starts now`).FindStringSubmatch(out)
	require.NotNil(t, m, "enable names the run it started: %s", out)
	s.cliOK("status", "--wait", "--timeout", "3m")
	require.Equal(t, m[1], s.lastRunID(), "the run enable answered is the one that ran")
	_, err := s.client.DescribeWorkflowExecution(s.ctx, m[1], "")
	require.NoError(t, err)

	// Rejected by the validator: the answer names the field and value.
	_, err = s.update(workflows.SignalRetry, `{"actor":"ops","filter":{"type":"bogus"}}`)
	require.ErrorContains(t, err, `"bogus"`)
	var ae *temporal.ApplicationError
	require.True(t, errors.As(err, &ae))
	require.Equal(t, workflows.ErrActionInvalid, ae.Type())
	_, err = s.update(workflows.SignalEnable, `{"actor":"ops","interval":"10s"}`)
	require.ErrorContains(t, err, "under the minimum of 30s")

	// Refused by the handler after asking the database: recorded by the workflow.
	_, err = s.update(workflows.SignalRetry, `{"actor":"ops","filter":{"product":"Nope"}}`)
	require.ErrorContains(t, err, `"Nope" is not a product of the catalog`)
	rows, err := s.store.History(s.ctx, org, store.HistoryFilter{Type: vocab.EventRetry, Status: "rejected"})
	require.NoError(t, err)
	require.Len(t, rows, 1, "one rejected row, for the refused update (the validator's rejections were sent by this test, not starter)")
	require.Equal(t, "filter.product", rows[0].Details["field"])
	require.Equal(t, "ops", rows[0].Actor)

	// The workflow keeps serving: a good retry answers its run, which then exists.
	before := s.lastRunID()
	res, err := s.update(workflows.SignalRetry, `{"actor":"ops","filter":{"type":"out_of_licenses"}}`)
	require.NoError(t, err)
	require.Equal(t, workflows.OutcomeStarted, res.Outcome)
	got := s.waitRun(before)
	require.Equal(t, res.RunID, got.RunID)
	require.Equal(t, vocab.KindRetry, got.Kind)
	require.Equal(t, 1*60*60, int(s.status().Interval.Seconds()), "the rejected interval changed nothing")

	// starter records what a validator rejects (the workflow cannot).
	s.cliOK("disable")
	require.Contains(t, s.cliFails("sync-now"), "user sync is off")
	rows, err = s.store.History(s.ctx, org, store.HistoryFilter{Type: vocab.EventSync, Status: "rejected"})
	require.NoError(t, err)
	require.Len(t, rows, 1)
	require.Equal(t, "sync-now", rows[0].Action)
	require.Equal(t, cliActor, rows[0].Actor)

	// The history the updates (accepted, refused, checked in the database) and the search
	// attribute upserts wrote replays on the current code: a worker restart resumes it.
	replayer := worker.NewWorkflowReplayer()
	replayer.RegisterWorkflow(workflows.UserSyncWorkflow)
	var events []*historypb.HistoryEvent
	it := s.client.GetWorkflowHistory(s.ctx, workflows.OrgWorkflowID(org), "", false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	accepted := 0
	for it.HasNext() {
		e, err := it.Next()
		require.NoError(t, err)
		if e.GetWorkflowExecutionUpdateAcceptedEventAttributes() != nil {
			accepted++
		}
		events = append(events, e)
	}
	require.GreaterOrEqual(t, accepted, 4, "enable, the refused retry, the good retry and disable were accepted")
	require.NoError(t, replayer.ReplayWorkflowHistory(nil, &historypb.History{Events: events}))
	if os.Getenv(RecordHistoriesEnv) == "1" { // kept for workflows.TestReplayRecordedHistories
		writeHistory(t, s, workflows.OrgWorkflowID(org), filepath.Join(historiesDir, "usersync-org-updates.json"))
	}
}
