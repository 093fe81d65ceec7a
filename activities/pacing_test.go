package activities

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/usersync/usersync/internal/devstack/devstacktest"
	"github.com/usersync/usersync/internal/plan"
	"github.com/usersync/usersync/internal/scim"
	"github.com/usersync/usersync/internal/scimsandbox"
	"github.com/usersync/usersync/internal/steps"
)

// pacedAttempt are the options of ProvisionUser in TestNoAttemptTimesOutWaitingForTheRequestPace:
// provisionOptions (workflows/page.go) scaled down to the test's pace.
var pacedAttempt = workflow.ActivityOptions{
	StartToCloseTimeout: 2 * time.Second,
	RetryPolicy: &temporal.RetryPolicy{
		InitialInterval:    100 * time.Millisecond,
		BackoffCoefficient: 2,
		MaximumInterval:    time.Second,
		MaximumAttempts:    20,
	},
}

// provisionAll provisions the users [0, n) of a run all at once, as pages with every user in
// flight would.
func provisionAll(ctx workflow.Context, run steps.RunRef, n int) ([]steps.UserOutcome, error) {
	actx := workflow.WithActivityOptions(ctx, pacedAttempt)
	fs := make([]workflow.Future, n)
	for seq := range n {
		fs[seq] = workflow.ExecuteActivity(actx, steps.ProvisionUser, steps.UserStep{RunRef: run, Seq: seq})
	}
	out := make([]steps.UserOutcome, n)
	for seq, f := range fs {
		if err := f.Get(ctx, &out[seq]); err != nil {
			return out, fmt.Errorf("user %d: %w", seq, err)
		}
	}
	return out, nil
}

// The issue: at a low SCIM rate with many users in flight, the queue for request slots is
// longer than an attempt's StartToClose, so attempts timed out before their slot and users
// ended target_unavailable. Here 120 users are in flight at 20 requests/s: 6s of queue for
// 2s attempts. On the real stack (Temporal dev server, PostgreSQL pacer, sandbox enforcing the
// rate) no attempt times out: the steps the queue cannot take are sent away with their turn
// as Temporal's retry delay, and every user is created once, without a 429.
func TestNoAttemptTimesOutWaitingForTheRequestPace(t *testing.T) {
	const org, run, users, rate = "acme", "acme/run/1", 120, 20
	items := make([]plan.Item, users)
	for i := range items {
		items[i] = createItem(fmt.Sprintf("u%03d", i))
	}
	st, ctx := runWith(t, org, run, items...)
	hostPort := devstacktest.Temporal(t)
	sb := scimsandbox.New(scimsandbox.Options{Token: "test-token", RateLimit: rate})
	srv := httptest.NewServer(sb)
	t.Cleanup(srv.Close)
	acts := &Activities{Store: st, Orgs: Single(org, Org{Target: scim.New(scim.Config{BaseURL: srv.URL, Token: "test-token", MaxAttempts: 1,
		Pacer: st.Pacer("scim/"+org, rate*0.98)})})}
	defer func(d time.Duration) { paceWithin = d }(paceWithin)
	paceWithin = 300 * time.Millisecond // scaled as the attempt's timeout is

	var attempts, timedOut, paced atomic.Int32
	var perUser [users]atomic.Int32
	provision := func(ctx context.Context, in steps.UserStep) (steps.UserOutcome, error) {
		attempts.Add(1)
		perUser[in.Seq].Add(1)
		o, err := acts.ProvisionUser(ctx, in)
		var ae *temporal.ApplicationError
		switch {
		case ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded):
			timedOut.Add(1)
		case errors.As(err, &ae) && ae.Type() == RequestPaced:
			paced.Add(1)
		case err != nil:
			t.Errorf("user %d: %v", in.Seq, err)
		}
		return o, err
	}
	c, err := client.Dial(client.Options{HostPort: hostPort, Logger: tlog.NewStructuredLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))})
	require.NoError(t, err)
	t.Cleanup(c.Close)
	const queue = "pacing-test"
	w := worker.New(c, queue, worker.Options{})
	w.RegisterWorkflow(provisionAll)
	w.RegisterActivityWithOptions(provision, activity.RegisterOptions{Name: steps.ProvisionUser})
	require.NoError(t, w.Start())
	t.Cleanup(w.Stop)

	// Another worker holds the next 3s of slots: the first attempts find a queue longer than
	// they may wait however fast this machine dispatches them (a slow one would otherwise
	// never build a queue at 20/s).
	_, err = st.Pool().Exec(ctx, `INSERT INTO request_slots (key, next_at) VALUES ($1, clock_timestamp() + interval '3 seconds')
		ON CONFLICT (key) DO UPDATE SET next_at = clock_timestamp() + interval '3 seconds'`, "scim/"+org)
	require.NoError(t, err)
	wctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	wr, err := c.ExecuteWorkflow(wctx, client.StartWorkflowOptions{TaskQueue: queue}, provisionAll,
		steps.RunRef{Org: org, RunID: run}, users)
	require.NoError(t, err)
	var out []steps.UserOutcome
	require.NoError(t, wr.Get(wctx, &out))

	most := int32(0)
	for i := range perUser {
		most = max(most, perUser[i].Load())
	}
	t.Logf("%d attempts for %d users (at most %d for one): %d sent away by the pace, %d timed out",
		attempts.Load(), users, most, paced.Load(), timedOut.Load())
	require.Zero(t, timedOut.Load(), "no attempt spent its timeout waiting for a request slot")
	require.Positive(t, paced.Load(), "the queue was longer than an attempt may wait: steps were sent away")
	require.LessOrEqual(t, most, int32(4), "a step is sent away a few times at most: the retry policy's attempts are not spent by the pace")
	for seq, o := range out {
		require.Equal(t, "created", o.Status, "user %d", seq)
	}
	created := map[string]int{}
	for _, u := range sb.Users() {
		created[u.ExternalID]++
	}
	require.Len(t, created, users)
	for id, n := range created {
		require.Equal(t, 1, n, "%s created once", id)
	}
	require.Zero(t, sb.Stats().Throttled, "the pace held: no 429")
}
