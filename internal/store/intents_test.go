package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/usersync/usersync/internal/directory"
	"github.com/usersync/usersync/internal/plan"
	"github.com/usersync/usersync/internal/store"
	"github.com/usersync/usersync/internal/vocab"
)

func intentOf(t *testing.T, ctx context.Context, st *store.Store, externalID string) *store.Intent {
	t.Helper()
	i, err := st.OpenIntentOf(ctx, org, externalID)
	require.NoError(t, err)
	return i
}

// A write intent is open from before the write's first request until its outcome is
// recorded: the save of the applied state, or a write that did not happen (its seats go
// back, except those of products the linked account holds). Linking an account whose write
// is unfinished leaves it open.
func TestWriteIntentOpensBeforeTheWriteAndClosesWithItsOutcome(t *testing.T) {
	st, ctx := openStore(t)
	for _, p := range []string{"Meeting", "Webinar"} {
		require.NoError(t, st.SetLicense(ctx, org, "test", p, 5))
	}
	ann := plan.Desired{ExternalID: "ann", UserName: "ann@acme.test", Email: "ann@acme.test", Active: true, Products: []string{"Meeting"}}
	_, _, err := st.ReserveSeats(ctx, org, "ann", []string{"Meeting", "Webinar"})
	require.NoError(t, err)

	require.NoError(t, st.OpenIntent(ctx, org, "ann", "ann@acme.test", "run-1", string(plan.Create)))
	i := intentOf(t, ctx, st, "ann")
	require.NotNil(t, i)
	require.Equal(t, store.Intent{RunID: "run-1", Action: "create", UserName: "ann@acme.test", OpenedAt: i.OpenedAt}, *i)

	// Created, then the PATCH after it failed: linked, the write unfinished.
	require.NoError(t, st.SaveLinked(ctx, org, "scim-ann", ann, []string{"Meeting", "Webinar"}, "run-1", vocab.Created))
	require.NotNil(t, intentOf(t, ctx, st, "ann"), "still open")
	// The next attempt replaces it.
	require.NoError(t, st.OpenIntent(ctx, org, "ann", "ann@acme.test", "run-2", string(plan.Update)))
	require.Equal(t, "run-2", intentOf(t, ctx, st, "ann").RunID)
	// Refused: closed; the seat of the product the linked account holds stays.
	require.NoError(t, st.ReleaseUnsent(ctx, org, "ann", []string{"Meeting", "Webinar"}))
	require.Nil(t, intentOf(t, ctx, st, "ann"))
	require.Equal(t, map[string]map[string]bool{"Meeting": {"ann": true}}, holders(t, ctx, st))

	require.NoError(t, st.OpenIntent(ctx, org, "ann", "ann@acme.test", "run-3", string(plan.Update)))
	require.NoError(t, st.SaveProvisioned(ctx, org, "scim-ann", ann, "run-3", vocab.Updated))
	require.Nil(t, intentOf(t, ctx, st, "ann"), "the outcome is recorded")
}

// The plan sees open writes: a user of the read with one is flagged, and one the read did
// not return is listed (with the name its write sent), as is a user holding seats without a
// linked account. Resolving such a user gives its seats back.
func TestPlanningSeesOpenWritesAndSeatsWithoutAccount(t *testing.T) {
	st, ctx := openStore(t)
	require.NoError(t, st.SetLicense(ctx, org, "test", "Meeting", 5))
	attempt := beginRun(t, ctx, st, "run-1", vocab.KindManual, false)
	require.NoError(t, st.WriteSnapshot(ctx, "run-1", attempt, []directory.User{{ExternalID: "ann", UserName: "ann@acme.test"},
		{ExternalID: "bob", UserName: "bob@acme.test"}}))
	require.NoError(t, st.OpenIntent(ctx, org, "ann", "ann@acme.test", "run-0", string(plan.Create)))
	require.NoError(t, st.OpenIntent(ctx, org, "cid", "cid@acme.test", "run-0", string(plan.Create)))
	_, _, err := st.ReserveSeats(ctx, org, "dan", []string{"Meeting"})
	require.NoError(t, err)

	p := st.Planning(org, "run-1")
	reconcile := map[string]bool{}
	require.NoError(t, p.Users(ctx, func(r plan.UserRow) error {
		reconcile[r.User.ExternalID] = r.Reconcile
		return nil
	}))
	require.Equal(t, map[string]bool{"ann": true, "bob": false}, reconcile)
	var absent []plan.Known
	require.NoError(t, p.Absent(ctx, func(k plan.Known) error {
		absent = append(absent, k)
		return nil
	}))
	require.Equal(t, []plan.Known{
		{ExternalID: "cid", Reconcile: true, UserName: "cid@acme.test"},
		{ExternalID: "dan", Held: []string{"Meeting"}},
	}, absent)

	require.NoError(t, st.ClearFailures(ctx, org, []string{"dan"}))
	require.Empty(t, holders(t, ctx, st))
}

// The provisioning step's read opens its write's intent in the same statement, unless an
// earlier write's is open: that one is returned, unchanged, for the step to reconcile; a
// read for another organization's run opens nothing.
func TestBeginUserWriteOpensTheIntentUnlessOneIsOpen(t *testing.T) {
	st, ctx := openStore(t)
	beginRun(t, ctx, st, "run-1", vocab.KindManual, false)
	w := st.NewWorkWriter("run-1")
	require.NoError(t, w.Add(ctx, plan.Item{ExternalID: "ann", UserName: "ann@acme.test", Action: plan.Create}, plan.SeatKey{}))
	require.NoError(t, w.Add(ctx, plan.Item{ExternalID: "bob", UserName: "bob@acme.test", Action: plan.Update}, plan.SeatKey{}))
	require.NoError(t, w.Flush(ctx))

	_, err := st.BeginUserWrite(ctx, "other-org", "run-1", 0)
	require.ErrorIs(t, err, store.ErrNotFound)
	require.Nil(t, intentOf(t, ctx, st, "ann"), "another organization's step opens nothing")

	uw, err := st.BeginUserWrite(ctx, org, "run-1", 0)
	require.NoError(t, err)
	require.Nil(t, uw.Intent, "no earlier write")
	i := intentOf(t, ctx, st, "ann")
	require.NotNil(t, i, "opened by the read")
	require.Equal(t, store.Intent{RunID: "run-1", Action: "create", UserName: "ann@acme.test", OpenedAt: i.OpenedAt}, *i)

	require.NoError(t, st.OpenIntent(ctx, org, "bob", "robert@acme.test", "run-0", string(plan.Create)))
	uw, err = st.BeginUserWrite(ctx, org, "run-1", 1)
	require.NoError(t, err)
	require.NotNil(t, uw.Intent)
	require.Equal(t, "run-0", uw.Intent.RunID, "the earlier write is returned")
	require.Equal(t, "robert@acme.test", intentOf(t, ctx, st, "bob").UserName, "and stays as it was")

	plain, err := st.UserWork(ctx, org, "run-1", 0)
	require.NoError(t, err)
	require.Equal(t, "run-1", plain.Intent.RunID, "UserWork reads, it opens nothing")
}

// A local attempt holds the intent it opens until it releases it or its time is up; the
// attempts after it see how much longer it may still write. Only the holder releases.
func TestHeldWriteShowsUntilReleasedOrExpired(t *testing.T) {
	st, ctx := openStore(t)
	beginRun(t, ctx, st, "run-1", vocab.KindManual, false)
	w := st.NewWorkWriter("run-1")
	require.NoError(t, w.Add(ctx, plan.Item{ExternalID: "ann", UserName: "ann@acme.test", Action: plan.Create}, plan.SeatKey{}))
	require.NoError(t, w.Add(ctx, plan.Item{ExternalID: "bob", UserName: "bob@acme.test", Action: plan.Create}, plan.SeatKey{}))
	require.NoError(t, w.Flush(ctx))

	uw, err := st.BeginHeldWrite(ctx, org, "run-1", 0, store.Hold{By: "attempt-a", For: time.Minute})
	require.NoError(t, err)
	require.Nil(t, uw.Intent, "no earlier write: the attempt opens and holds it")

	_, err = st.BeginHeldWrite(ctx, org, "run-1", 0, store.Hold{By: "attempt-b", For: time.Minute})
	require.ErrorIs(t, err, store.ErrLocalClosed, "one local write per item")
	uw, err = st.BeginUserWrite(ctx, org, "run-1", 0)
	require.NoError(t, err)
	require.NotNil(t, uw.Intent)
	require.Greater(t, uw.Intent.HeldFor, 50*time.Second, "the next attempt sees the hold")
	require.LessOrEqual(t, uw.Intent.HeldFor, time.Minute)

	require.NoError(t, st.ReleaseHold(ctx, org, "ann", "attempt-b"))
	uw, err = st.BeginUserWrite(ctx, org, "run-1", 0)
	require.NoError(t, err)
	require.Greater(t, uw.Intent.HeldFor, time.Duration(0), "another attempt cannot release it")

	require.NoError(t, st.ReleaseHold(ctx, org, "ann", "attempt-a"))
	uw, err = st.BeginUserWrite(ctx, org, "run-1", 0)
	require.NoError(t, err)
	require.NotNil(t, uw.Intent, "released, the intent stays open: the outcome is still unknown")
	require.Zero(t, uw.Intent.HeldFor)

	_, err = st.BeginHeldWrite(ctx, org, "run-1", 1, store.Hold{By: "attempt-c", For: 20 * time.Millisecond})
	require.NoError(t, err)
	time.Sleep(100 * time.Millisecond) // the attempt died without releasing
	uw, err = st.BeginUserWrite(ctx, org, "run-1", 1)
	require.NoError(t, err)
	require.Zero(t, uw.Intent.HeldFor, "a hold ends with its time")
}

// A step that decides about an item (the activity's attempt, the seats given back on
// cancellation) closes it to local writes first: a local write that starts after that opens
// nothing. Closing waits for a local write opening its intent, and is idempotent.
func TestClosedItemTakesNoLocalWrite(t *testing.T) {
	st, ctx := openStore(t)
	beginRun(t, ctx, st, "run-1", vocab.KindManual, false)
	w := st.NewWorkWriter("run-1")
	require.NoError(t, w.Add(ctx, plan.Item{ExternalID: "ann", UserName: "ann@acme.test", Action: plan.Create}, plan.SeatKey{}))
	require.NoError(t, w.Flush(ctx))

	require.NoError(t, st.CloseLocal(ctx, "run-1", 0))
	require.NoError(t, st.CloseLocal(ctx, "run-1", 0))
	_, err := st.BeginHeldWrite(ctx, org, "run-1", 0, store.Hold{By: "late", For: time.Minute})
	require.ErrorIs(t, err, store.ErrLocalClosed)
	require.Nil(t, intentOf(t, ctx, st, "ann"), "the late local write opened nothing")
	_, err = st.BeginHeldWrite(ctx, "other-org", "run-1", 0, store.Hold{By: "x", For: time.Minute})
	require.ErrorIs(t, err, store.ErrNotFound)
}
