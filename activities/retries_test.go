package activities

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	tlog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/usersync/usersync/internal/devstack/devstacktest"
	"github.com/usersync/usersync/internal/plan"
	"github.com/usersync/usersync/internal/scim"
	"github.com/usersync/usersync/internal/steps"
	"github.com/usersync/usersync/internal/store"
	"github.com/usersync/usersync/internal/vocab"
)

// runWith writes a run of org with items (seq 0, 1, ...) into a new store.
func runWith(t *testing.T, org, runID string, items ...plan.Item) (*store.Store, context.Context) {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, devstacktest.Database(t))
	require.NoError(t, err)
	t.Cleanup(st.Close)
	_, err = st.BeginRun(ctx, org, runID, vocab.KindManual, false)
	require.NoError(t, err)
	w := st.NewWorkWriter(runID)
	for _, it := range items {
		require.NoError(t, w.Add(ctx, it, plan.SeatKey{}))
	}
	require.NoError(t, w.Flush(ctx))
	return st, ctx
}

func createItem(id string, seats ...string) plan.Item {
	name := id + "@acme.test"
	return plan.Item{ExternalID: id, UserName: name, Action: plan.Create, NewSeats: seats,
		Desired: plan.Desired{ExternalID: id, UserName: name, Email: name, Active: true, Role: "Member", Products: seats}}
}

// failureEvents counts the failure rows of the history of org for externalID.
func failureEvents(t *testing.T, ctx context.Context, st *store.Store, org, externalID string) int {
	t.Helper()
	var n int
	require.NoError(t, st.Pool().QueryRow(ctx, `SELECT count(*) FROM history WHERE org=$1 AND type=$2 AND details->>'externalId'=$3`,
		org, vocab.EventFailure, externalID).Scan(&n))
	return n
}

func attemptsOf(t *testing.T, ctx context.Context, st *store.Store, org, externalID string) int {
	t.Helper()
	fs, err := st.Failures(ctx, org, vocab.Filter{User: externalID})
	require.NoError(t, err)
	require.Len(t, fs, 1, "failure of %s", externalID)
	return fs[0].Attempts
}

// The local activities that record failures (EvaluatePage, CheckLicenses, RecordUserFailure)
// may run again for the same run and user (a retried or replayed attempt): the failure is
// recorded once, one history row and one more attempt, whatever the repeats; a later run
// counts again.
func TestLocalStepsRecordAFailureOncePerRun(t *testing.T) {
	const org, run = "acme", "acme/run/1"
	domain := &vocab.Failure{Type: vocab.DomainNotValidated, Message: "domain other.org is not validated"}
	failed := plan.Item{ExternalID: "dom", UserName: "dom@other.org", Action: plan.Fail, Failure: domain}
	st, ctx := runWith(t, org, run, failed, createItem("full", "Webinar"), createItem("down"))
	require.NoError(t, st.SetLicense(ctx, org, "test", "Webinar", 0))
	// "down" failed in an earlier run already: its attempts go on from there.
	unavailable := vocab.Failure{Type: vocab.TargetUnavailable, Message: "the target did not accept the change"}
	require.NoError(t, st.RecordFailure(ctx, org, "acme/run/0", "down", "down@acme.test", unavailable))
	acts := &Activities{Store: st}
	ref := steps.RunRef{Org: org, RunID: run}

	for range 3 {
		ev, err := acts.EvaluatePage(ctx, steps.PageRef{RunRef: ref, From: 0, To: 3})
		require.NoError(t, err)
		require.Equal(t, 1, ev.Failures[vocab.DomainNotValidated])

		r, err := acts.CheckLicenses(ctx, steps.SeatsInput{UserStep: steps.UserStep{RunRef: ref, Seq: 1}, ExternalID: "full", Products: []string{"Webinar"}})
		require.NoError(t, err)
		require.False(t, r.Continue)
		require.Equal(t, vocab.OutOfLicenses, r.Outcome.FailureType)

		o, err := acts.RecordUserFailure(ctx, steps.UserFailureInput{UserStep: steps.UserStep{RunRef: ref, Seq: 2}, Failure: unavailable})
		require.NoError(t, err)
		require.Equal(t, vocab.Failed, o.Status)
	}
	for id, attempts := range map[string]int{"dom": 1, "full": 1, "down": 2} {
		require.Equal(t, attempts, attemptsOf(t, ctx, st, org, id), "%s: attempts", id)
	}
	require.Equal(t, 1, failureEvents(t, ctx, st, org, "dom"))
	require.Equal(t, 1, failureEvents(t, ctx, st, org, "full"))
	require.Equal(t, 2, failureEvents(t, ctx, st, org, "down"), "one row per run")

	// Another failure type in the same run is a new failure: recorded.
	o, err := acts.RecordUserFailure(ctx, steps.UserFailureInput{UserStep: steps.UserStep{RunRef: ref, Seq: 2},
		Failure: vocab.Failure{Type: vocab.TargetRejected, Message: "400"}})
	require.NoError(t, err)
	require.Equal(t, vocab.TargetRejected, o.FailureType)
	require.Equal(t, 3, attemptsOf(t, ctx, st, org, "down"))
	require.Equal(t, 3, failureEvents(t, ctx, st, org, "down"))
}

// scimAnswer serves every SCIM request with status (and Retry-After when set) and counts them.
func scimAnswer(t *testing.T, status int, retryAfter string) (*scim.Client, *atomic.Int32) {
	t.Helper()
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		if retryAfter != "" {
			w.Header().Set("Retry-After", retryAfter)
		}
		w.Header().Set("Content-Type", "application/scim+json")
		w.WriteHeader(status)
		_, _ = w.Write([]byte(`{"schemas":["urn:ietf:params:scim:api:messages:2.0:Error"],"detail":"busy"}`))
	}))
	t.Cleanup(srv.Close)
	return scim.New(scim.Config{BaseURL: srv.URL, Token: "test-token", MaxAttempts: 1}), &n
}

// provisionAttempt runs one attempt of ProvisionUser as Temporal's worker would.
func provisionAttempt(t *testing.T, acts *Activities, step steps.UserStep) (steps.UserOutcome, error) {
	t.Helper()
	var s testsuite.WorkflowTestSuite
	s.SetLogger(tlog.NewStructuredLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	env := s.NewTestActivityEnvironment()
	env.RegisterActivity(acts)
	v, err := env.ExecuteActivity(steps.ProvisionUser, step)
	var o steps.UserOutcome
	if err == nil {
		require.NoError(t, v.Get(&o))
	}
	return o, err
}

// ProvisionUser sends one request per attempt and leaves the retries to Temporal: a target
// that is busy or down is a retryable target_unavailable error whose next retry waits the
// Retry-After the target sent; refused credentials are non-retryable target_auth.
func TestProvisionUserLeavesRetriesToTemporalWithTheTargetsRetryAfter(t *testing.T) {
	const org, run = "acme", "acme/run/1"
	st, ctx := runWith(t, org, run, createItem("ann"))
	step := steps.UserStep{RunRef: steps.RunRef{Org: org, RunID: run}, Seq: 0}

	for _, c := range []struct {
		status     int
		retryAfter string
		delay      time.Duration
	}{
		{http.StatusServiceUnavailable, "7", 7 * time.Second},
		{http.StatusTooManyRequests, "2", 2 * time.Second},
		{http.StatusBadGateway, "", 0}, // no Retry-After: the retry policy's backoff
	} {
		target, n := scimAnswer(t, c.status, c.retryAfter)
		start := time.Now()
		_, err := provisionAttempt(t, &Activities{Store: st, Orgs: Single("acme", Org{Target: target})}, step)
		require.Less(t, time.Since(start), 2*time.Second, "%d: no wait inside the attempt", c.status)
		require.Equal(t, int32(1), n.Load(), "%d: one request per attempt", c.status)
		var ae *temporal.ApplicationError
		require.True(t, errors.As(err, &ae), "%d: %v", c.status, err)
		require.Equal(t, vocab.TargetUnavailable, ae.Type())
		require.False(t, ae.NonRetryable())
		require.Equal(t, c.delay, ae.NextRetryDelay(), "%d", c.status)
	}
	fs, err := st.Failures(ctx, org, vocab.Filter{})
	require.NoError(t, err)
	require.Empty(t, fs, "a step Temporal retries records no failure")

	target, n := scimAnswer(t, http.StatusUnauthorized, "")
	_, err = provisionAttempt(t, &Activities{Store: st, Orgs: Single("acme", Org{Target: target})}, step)
	var ae *temporal.ApplicationError
	require.True(t, errors.As(err, &ae), "%v", err)
	require.Equal(t, vocab.TargetAuth, ae.Type())
	require.True(t, ae.NonRetryable())
	require.Equal(t, int32(1), n.Load())
}

// An update the target refuses as a conflict (the new userName is another account's) is the
// user's failure, not something to retry until the attempts run out.
func TestProvisionUserFailsAConflictingUpdate(t *testing.T) {
	const org, run = "acme", "acme/run/1"
	it := createItem("ann")
	it.Action, it.Desired.UserName = plan.Update, "bob@acme.test"
	st, ctx := runWith(t, org, run, it)
	applied := it.Desired
	applied.UserName = "ann@acme.test"
	require.NoError(t, st.SaveProvisioned(ctx, org, "scim-ann", applied, "", ""))
	target, n := scimAnswer(t, http.StatusConflict, "")
	o, err := provisionAttempt(t, &Activities{Store: st, Orgs: Single("acme", Org{Target: target})}, steps.UserStep{RunRef: steps.RunRef{Org: org, RunID: run}})
	require.NoError(t, err)
	require.Equal(t, int32(1), n.Load())
	require.Equal(t, vocab.Failed, o.Status)
	require.Equal(t, vocab.TargetRejected, o.FailureType)
}
