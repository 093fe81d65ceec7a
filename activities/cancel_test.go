package activities

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	tlog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/usersync/usersync/internal/steps"
	"github.com/usersync/usersync/internal/vocab"
	"github.com/usersync/usersync/workflows"
)

// Sync is disabled while a page waits between CheckLicenses and its users' writes. Seats
// reserved for a write that never started go back at once; a user whose write was sent and
// whose answer was lost keeps its seat (the next sync reads the account).
func TestCancelledPageGivesBackTheSeatsOfWritesNeverStarted(t *testing.T) {
	const org, run = "acme", "acme/run/1"
	st, ctx := runWith(t, org, run, createItem("ann", "Webinar"), createItem("bob", "Webinar"))
	require.NoError(t, st.SetLicense(ctx, org, "test", "Webinar", 5))
	acts := &Activities{Store: st, Orgs: Single(org, Org{})}

	var s testsuite.WorkflowTestSuite
	s.SetLogger(tlog.NewStructuredLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	env := s.NewTestWorkflowEnvironment()
	env.SetTestTimeout(time.Minute)
	env.RegisterWorkflow(workflows.ProcessPageWorkflow)
	env.RegisterActivity(acts)
	env.OnActivity(steps.ProvisionUser, mock.Anything, mock.Anything).Return(func(ctx context.Context, in steps.UserStep) (steps.UserOutcome, error) {
		if in.Seq == 1 { // bob: the write is sent, its answer lost
			if err := st.OpenIntent(ctx, org, "bob", "bob@acme.test", run, "create"); err != nil {
				return steps.UserOutcome{}, err
			}
			return steps.UserOutcome{}, temporal.NewApplicationError("scim POST /Users: network error: EOF", vocab.TargetUnavailable)
		}
		// ann: the shared request pace sends the attempt away before it sends anything.
		return steps.UserOutcome{}, temporal.NewApplicationErrorWithOptions("the target's request pace is taken for now",
			RequestPaced, temporal.ApplicationErrorOptions{NextRetryDelay: time.Hour})
	})
	env.RegisterDelayedCallback(env.CancelWorkflow, time.Minute)
	env.ExecuteWorkflow(workflows.ProcessPageWorkflow, workflows.PageInput{RunRef: steps.RunRef{Org: org, RunID: run}, From: 0, To: 2})
	require.True(t, env.IsWorkflowCompleted())
	require.True(t, temporal.IsCanceledError(env.GetWorkflowError()), "%v", env.GetWorkflowError())

	require.Empty(t, seatsHeld(t, ctx, st, org, "ann"), "ann's write never started: her seat is back")
	require.Equal(t, []string{"Webinar"}, seatsHeld(t, ctx, st, org, "bob"), "bob's write may have landed")
	ls, err := st.Licenses(ctx, org)
	require.NoError(t, err)
	require.Equal(t, 1, ls[0].Used)
}
