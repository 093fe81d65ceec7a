package activities

import (
	"errors"
	"io"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	tlog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/usersync/usersync/internal/plan"
	"github.com/usersync/usersync/internal/scim"
	"github.com/usersync/usersync/internal/steps"
	"github.com/usersync/usersync/internal/store"
)

// localAttempt runs one ProvisionUser attempt as the page workflow's local first write.
func localAttempt(t *testing.T, acts *Activities, step steps.UserStep) (steps.UserOutcome, error) {
	t.Helper()
	var s testsuite.WorkflowTestSuite
	s.SetLogger(tlog.NewStructuredLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	env := s.NewTestActivityEnvironment()
	v, err := env.ExecuteLocalActivity(acts.ProvisionUser, step)
	var o steps.UserOutcome
	if err == nil {
		require.NoError(t, v.Get(&o))
	}
	return o, err
}

// requireHeld asserts err is the retryable "an earlier attempt may still be writing" with
// about the hold's remaining time as the next retry's delay.
func requireHeld(t *testing.T, err error, atLeast time.Duration) {
	t.Helper()
	var ae *temporal.ApplicationError
	require.True(t, errors.As(err, &ae), "want a held write, got %v", err)
	require.Equal(t, WriteHeld, ae.Type(), "%v", err)
	require.False(t, ae.NonRetryable())
	require.GreaterOrEqual(t, ae.NextRetryDelay(), atLeast)
}

// A local first write can outlive its workflow task (the task lost and replayed with a new
// attempt for the same user, the old attempt still running): the attempt holds the user's
// write until it ends, and no other attempt, local or not, reads or writes the target for the
// user meanwhile. Once it ends, the next attempt reconciles what it wrote: one account.
// Against the sandbox and SCIMMY, read back over SCIM.
func TestLocalWriteHoldsTheUserUntilItEnds(t *testing.T) {
	for name, start := range map[string]func(*testing.T) intentTarget{"sandbox": sandboxTarget, "scimmy": scimmyTarget} {
		t.Run(name, func(t *testing.T) {
			const org, run = "acme", "acme/run/1"
			tg := start(t)
			st, ctx := runWith(t, org, run, createItem("ann"), createItem("bob"))
			acts := &Activities{Store: st, Orgs: Single(org, Org{Target: tg.client})}
			ann := steps.UserStep{RunRef: steps.RunRef{Org: org, RunID: run}, Seq: 0}
			bob := steps.UserStep{RunRef: steps.RunRef{Org: org, RunID: run}, Seq: 1}

			// The orphaned attempt: it opened and holds ann's write, and is still sending it.
			w, err := st.BeginHeldWrite(ctx, org, run, 0, store.Hold{By: "orphan", For: time.Minute})
			require.NoError(t, err)
			require.Nil(t, w.Intent)
			_, err = localAttempt(t, acts, ann) // the replayed task's local write
			require.ErrorIs(t, err, store.ErrLocalClosed)
			_, err = provisionAttempt(t, acts, ann)
			requireHeld(t, err, 50*time.Second)
			require.Zero(t, tg.posts(), "nothing sent beside the running attempt")

			// The orphan's create lands, its answer is lost, and it ends.
			_, err = tg.client.CreateUser(ctx, w.Extension, w.Item.Desired)
			require.NoError(t, err)
			require.NoError(t, st.ReleaseHold(ctx, org, "ann", "orphan"))
			o, err := provisionAttempt(t, acts, ann)
			require.NoError(t, err)
			require.Len(t, accountsOf(t, ctx, tg, "ann"), 1, "linked, not created twice: %+v", o)
			require.Equal(t, 1, tg.posts())

			// A local attempt whose create lands without an answer releases its hold as it
			// ends: the activity's attempt reconciles at once.
			tg.dropNext(http.MethodPost)
			_, err = localAttempt(t, acts, bob)
			require.Error(t, err)
			w, err = st.UserWork(ctx, org, run, 1)
			require.NoError(t, err)
			require.NotNil(t, w.Intent, "the outcome is unknown: the intent stays open")
			require.Zero(t, w.Intent.HeldFor, "released")
			_, err = provisionAttempt(t, acts, bob)
			require.NoError(t, err)
			require.Len(t, accountsOf(t, ctx, tg, "bob"), 1)
			require.Equal(t, 2, tg.posts())
			w, err = st.UserWork(ctx, org, run, 1)
			require.NoError(t, err)
			require.Nil(t, w.Intent, "recorded")
			require.Equal(t, plan.Create, w.Item.Action)
		})
	}
}

// Sync disabled while a local write was scheduled by a workflow task that was then lost: the
// replayed task gives the user's seats back (ReleaseUnsentSeats), and the local write, if it
// starts after that, writes nothing. The seats stay given back and the target holds nothing.
func TestLateLocalWriteAfterCancellationWritesNothing(t *testing.T) {
	for name, start := range map[string]func(*testing.T) intentTarget{"sandbox": sandboxTarget, "scimmy": scimmyTarget} {
		t.Run(name, func(t *testing.T) {
			const org, run = "acme", "acme/run/1"
			tg := start(t)
			ann := createItem("ann", "Webinar")
			st, ctx := runWith(t, org, run, ann)
			require.NoError(t, st.SetLicense(ctx, org, "test", "Webinar", 1))
			acts := &Activities{Store: st, Orgs: Single(org, Org{Target: tg.client})}
			step := steps.UserStep{RunRef: steps.RunRef{Org: org, RunID: run}}

			r, err := acts.CheckLicenses(ctx, steps.SeatsInput{UserStep: step, ExternalID: "ann", Products: ann.NewSeats})
			require.NoError(t, err)
			require.True(t, r.Continue)
			require.NoError(t, acts.ReleaseUnsentSeats(ctx, step))
			require.Empty(t, seatsHeld(t, ctx, st, org, "ann"), "given back")

			_, err = localAttempt(t, acts, step)
			require.ErrorIs(t, err, store.ErrLocalClosed)
			require.Zero(t, tg.posts(), "nothing sent")
			require.Empty(t, accountsOf(t, ctx, tg, "ann"))
			require.Empty(t, seatsHeld(t, ctx, st, org, "ann"))
		})
	}
}

// A paced target's first write is local too (issue 10). An attempt whose turn in the shared
// pace is further than paceWithin is sent away with its turn before it sends, opens or holds
// anything; at its turn the local attempt writes. An activity attempt closes the user's item
// to local writes for paced targets as for the others: a local write scheduled before it
// writes nothing. Against the sandbox and SCIMMY, read back over SCIM.
func TestPacedLocalWriteSendsNothingBeforeItsTurn(t *testing.T) {
	for name, start := range map[string]func(*testing.T) intentTarget{"sandbox": sandboxTarget, "scimmy": scimmyTarget} {
		t.Run(name, func(t *testing.T) {
			const org, run = "acme", "acme/run/1"
			tg := start(t)
			st, ctx := runWith(t, org, run, createItem("ann"), createItem("bob"))
			cfg := tg.cfg
			cfg.Pacer = st.Pacer("scim/"+org, 20)
			acts := &Activities{Store: st, Orgs: Single(org, Org{Target: scim.New(cfg), Paced: true})}
			ann := steps.UserStep{RunRef: steps.RunRef{Org: org, RunID: run}, Seq: 0}
			bob := steps.UserStep{RunRef: steps.RunRef{Org: org, RunID: run}, Seq: 1}
			defer func(d time.Duration) { paceWithin = d }(paceWithin)
			paceWithin = 300 * time.Millisecond

			// Another worker took the next 2 s of the pace.
			_, err := st.Pool().Exec(ctx, `INSERT INTO request_slots (key, next_at) VALUES ($1, clock_timestamp() + interval '2 seconds')
				ON CONFLICT (key) DO UPDATE SET next_at = clock_timestamp() + interval '2 seconds'`, "scim/"+org)
			require.NoError(t, err)
			_, err = localAttempt(t, acts, ann)
			var ae *temporal.ApplicationError
			require.True(t, errors.As(err, &ae), "want the user's turn, got %v", err)
			require.Equal(t, RequestPaced, ae.Type())
			require.Greater(t, ae.NextRetryDelay(), time.Second)
			require.Zero(t, tg.posts(), "nothing sent before the turn")
			var opened int
			require.NoError(t, st.Pool().QueryRow(ctx, `SELECT count(*) FROM write_intents WHERE org=$1`, org).Scan(&opened))
			require.Zero(t, opened, "nothing opened or held: no other attempt waits for this one")

			time.Sleep(ae.NextRetryDelay())
			o, err := localAttempt(t, acts, ann)
			require.NoError(t, err)
			require.Equal(t, "created", o.Status)
			require.Len(t, accountsOf(t, ctx, tg, "ann"), 1)

			// bob's activity attempt writes first; the local write scheduled before it is late.
			o, err = provisionAttempt(t, acts, bob)
			require.NoError(t, err)
			require.Equal(t, "created", o.Status)
			_, err = localAttempt(t, acts, bob)
			require.ErrorIs(t, err, store.ErrLocalClosed)
			require.Len(t, accountsOf(t, ctx, tg, "bob"), 1)
			require.Equal(t, 2, tg.posts())
		})
	}
}
