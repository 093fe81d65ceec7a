package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/usersync/usersync/internal/vocab"
	"github.com/usersync/usersync/workflows"
)

// errNoWorkflow: the organization's sync workflow does not run (never enabled, or deleted).
var errNoWorkflow = errors.New("no sync workflow runs for this organization")

// update sends an admin action to the org workflow as an update and waits for its answer:
// the run it started or queued, or why it was rejected.
func (a *app) update(ctx context.Context, name, eventType string, payload any) (workflows.ActionResult, error) {
	tc, err := a.temporal()
	if err != nil {
		return workflows.ActionResult{}, err
	}
	uctx, cancel := context.WithTimeout(ctx, a.answerTimeout)
	defer cancel()
	h, err := tc.UpdateWorkflow(uctx, client.UpdateWorkflowOptions{WorkflowID: workflows.OrgWorkflowID(a.Org),
		UpdateName: name, Args: []any{payload}, WaitForStage: client.WorkflowUpdateStageCompleted})
	var res workflows.ActionResult
	if err == nil {
		err = h.Get(uctx, &res)
	}
	return res, a.updateError(ctx, name, eventType, err)
}

// updateError explains err, the outcome of update name. A rejection by the workflow's
// validator is recorded in the history here: a validator cannot write to the database (the
// workflow records the rejections of its handlers itself).
func (a *app) updateError(ctx context.Context, name, eventType string, err error) error {
	var notFound *serviceerror.NotFound
	var ae *temporal.ApplicationError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &notFound):
		return fmt.Errorf("%s: %w", name, errNoWorkflow)
	case errors.As(err, &ae) && (ae.Type() == workflows.ErrActionInvalid || ae.Type() == workflows.ErrActionRefused):
		if ae.Type() == workflows.ErrActionInvalid {
			var r workflows.Rejection
			_ = ae.Details(&r)
			a.recordRejected(ctx, name, eventType, r)
		}
		return fmt.Errorf("%s rejected: %s", name, ae.Message())
	case ctx.Err() == nil && (errors.Is(err, context.DeadlineExceeded) || isUpdateTimeout(err)):
		return fmt.Errorf("%s: no worker answered within %s (is the worker running? see `starter status`)", name, a.answerTimeout)
	}
	return fmt.Errorf("%s: %w", name, err)
}

func isUpdateTimeout(err error) bool {
	var t *client.WorkflowUpdateServiceTimeoutOrCanceledError
	return errors.As(err, &t)
}

// recordRejected writes the history row of an update its validator rejected. Best effort: the
// rejection is reported to the admin whether or not it could be recorded.
func (a *app) recordRejected(ctx context.Context, name, eventType string, r workflows.Rejection) {
	details := map[string]any{"reason": r.Reason}
	if r.Field != "" {
		details["field"] = r.Field
	}
	if r.Value != "" {
		details["value"] = r.Value
	}
	db, err := a.store(ctx)
	if err == nil {
		err = db.AddEvent(ctx, vocab.Event{Org: a.Org, Actor: a.actor, Type: eventType, Action: name, Status: "rejected", Details: details})
	}
	if err != nil {
		fmt.Fprintf(a.stderr, "warning: the rejection of %s is not in the history: %v\n", name, err)
	}
}

// defaultAnswerTimeout bounds the wait for the org workflow's answer to an update: without a
// worker, none comes.
const defaultAnswerTimeout = 30 * time.Second

// describeRun says what became of the run an accepted update asked for.
func describeRun(res workflows.ActionResult) string {
	switch res.Outcome {
	case workflows.OutcomeStarted:
		return "run " + res.RunID + " starts now"
	case workflows.OutcomeQueued:
		return "run " + res.RunID + " is queued behind " + res.Behind
	}
	return res.Message
}
