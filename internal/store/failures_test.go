package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/usersync/usersync/internal/store"
	"github.com/usersync/usersync/internal/vocab"
)

// failureOf returns the current failure of one user.
func failureOf(t *testing.T, ctx context.Context, st *store.Store, externalID string) store.FailureRecord {
	t.Helper()
	fs, err := st.Failures(ctx, org, vocab.Filter{User: externalID})
	require.NoError(t, err)
	require.Len(t, fs, 1, "failure of %s", externalID)
	return fs[0]
}

// ageFailures moves every failure a day into the past, as if it had been recorded yesterday.
func ageFailures(t *testing.T, ctx context.Context, st *store.Store) {
	t.Helper()
	_, err := st.Pool().Exec(ctx, `UPDATE failures SET since = since - interval '1 day', last_attempt = last_attempt - interval '1 day'`)
	require.NoError(t, err)
}

func sinceTime(t *testing.T, f store.FailureRecord) time.Time {
	t.Helper()
	at, err := time.Parse(time.RFC3339, f.Since)
	require.NoError(t, err, "since %q", f.Since)
	return at
}

// Spec 9 "Details": since when a user fails for this reason, and how often it was attempted.
func TestRecordFailureKeepsSinceWhileTheTypeStaysTheSame(t *testing.T) {
	st, ctx := openStore(t)
	oos := vocab.Failure{Type: vocab.OutOfLicenses, Product: "Webinar", Message: "Webinar: all 60 seats in use"}
	require.NoError(t, st.RecordFailure(ctx, org, "run-1", "u1", "ann@acme.test", oos))
	first := failureOf(t, ctx, st, "u1")
	require.Equal(t, 1, first.Attempts)
	ageFailures(t, ctx, st)

	require.NoError(t, st.RecordFailure(ctx, org, "run-2", "u1", "ann@acme.test", oos))
	second := failureOf(t, ctx, st, "u1")
	require.Equal(t, 2, second.Attempts)
	require.Equal(t, "run-2", second.RunID)
	require.True(t, time.Since(sinceTime(t, second)) > 12*time.Hour, "same type: since stays yesterday (%s)", second.Since)
	require.NotEqual(t, second.Since, second.LastAttempt, "the last attempt is now")

	dup := vocab.Failure{Type: vocab.ExistingAccount, Message: "userName ann@acme.test is taken"}
	require.NoError(t, st.RecordFailure(ctx, org, "run-3", "u1", "ann@acme.test", dup))
	third := failureOf(t, ctx, st, "u1")
	require.Equal(t, vocab.ExistingAccount, third.Type)
	require.Empty(t, third.Product, "the product of the previous failure does not linger")
	require.Equal(t, dup.Message, third.Message)
	require.Equal(t, 3, third.Attempts)
	require.True(t, time.Since(sinceTime(t, third)) < 12*time.Hour, "a new type starts a new since (%s)", third.Since)

	events, err := st.History(ctx, org, store.HistoryFilter{Type: vocab.EventFailure})
	require.NoError(t, err)
	require.Len(t, events, 3, "each failure is in the history")
	require.Equal(t, vocab.ExistingAccount, events[0].Action)
	require.Equal(t, vocab.OutOfLicenses, events[2].Action)
	for _, e := range events {
		require.Equal(t, "failed", e.Status)
		require.Equal(t, "u1", e.Details["externalId"])
		require.Equal(t, "ann@acme.test", e.Details["userName"])
	}
	require.Equal(t, "Webinar", events[2].Details["product"])
	require.Equal(t, "run-3", events[0].Details["run"])
}

func seedFailures(t *testing.T, ctx context.Context, st *store.Store) {
	t.Helper()
	for _, f := range []struct {
		id, name string
		vocab.Failure
	}{
		{"u1", "Ann@Acme.test", vocab.Failure{Type: vocab.OutOfLicenses, Product: "Webinar", Message: "no Webinar seat"}},
		{"u2", "bob@acme.test", vocab.Failure{Type: vocab.OutOfLicenses, Product: "Webinar", Message: "no Webinar seat"}},
		{"u3", "cid@acme.test", vocab.Failure{Type: vocab.OutOfLicenses, Product: "Meeting", Message: "no Meeting seat"}},
		{"u4", "dan@partner.test", vocab.Failure{Type: vocab.DomainNotValidated, Message: "partner.test is not validated"}},
		{"u5", "eve@partner.test", vocab.Failure{Type: vocab.DomainNotValidated, Message: "partner.test is not validated"}},
		{"u6", "fay@acme.test", vocab.Failure{Type: vocab.ExistingAccount, Message: "fay@acme.test is taken"}},
	} {
		require.NoError(t, st.RecordFailure(ctx, org, "run-1", f.id, f.name, f.Failure))
	}
	// Another organization's failures never show.
	require.NoError(t, st.RecordFailure(ctx, "other", "run-x", "u9", "zed@other.test",
		vocab.Failure{Type: vocab.OutOfLicenses, Product: "Webinar", Message: "no seat"}))
}

// Spec 9 "Banners": one line per failure type (and product) with the user count and advice.
func TestBannersGroupFailuresWithAdvice(t *testing.T) {
	st, ctx := openStore(t)
	seedFailures(t, ctx, st)

	bs, err := st.Banners(ctx, org)
	require.NoError(t, err)
	type line struct {
		typ, product string
		users        int
	}
	var got []line
	for _, b := range bs {
		got = append(got, line{b.Type, b.Product, b.Users})
		require.NotEmpty(t, b.Advice, "banner %s has advice", b.Type)
	}
	require.Equal(t, []line{
		{vocab.DomainNotValidated, "", 2},
		{vocab.ExistingAccount, "", 1},
		{vocab.OutOfLicenses, "Meeting", 1},
		{vocab.OutOfLicenses, "Webinar", 2},
	}, got)
	require.Contains(t, bs[3].Advice, "Webinar", "license advice names the product to buy")
	require.Contains(t, bs[0].Advice, "validate")

	for _, typ := range vocab.FailureTypes {
		require.NotEmpty(t, vocab.Advice(typ, "X"), "every failure type has advice: %s", typ)
	}
}

func TestFailuresFilterByTypeProductAndUser(t *testing.T) {
	st, ctx := openStore(t)
	seedFailures(t, ctx, st)
	ids := func(f vocab.Filter) []string {
		fs, err := st.Failures(ctx, org, f)
		require.NoError(t, err)
		var out []string
		for _, x := range fs {
			out = append(out, x.ExternalID)
		}
		return out
	}
	require.Len(t, ids(vocab.Filter{}), 6)
	require.ElementsMatch(t, []string{"u1", "u2", "u3"}, ids(vocab.Filter{Type: vocab.OutOfLicenses}))
	require.ElementsMatch(t, []string{"u1", "u2"}, ids(vocab.Filter{Product: "Webinar"}))
	require.ElementsMatch(t, []string{"u3"}, ids(vocab.Filter{Type: vocab.OutOfLicenses, Product: "Meeting"}))
	require.Equal(t, []string{"u1"}, ids(vocab.Filter{User: "ann@acme.TEST"}), "userName matches case-insensitively")
	require.Equal(t, []string{"u5"}, ids(vocab.Filter{User: "u5"}), "or the externalId")
	require.Empty(t, ids(vocab.Filter{User: "u5", Type: vocab.OutOfLicenses}), "filters combine")
	require.Empty(t, ids(vocab.Filter{User: "zed@other.test"}), "other organizations stay apart")

	f := failureOf(t, ctx, st, "u4")
	require.Equal(t, "dan@partner.test", f.UserName)
	require.Equal(t, "partner.test is not validated", f.Message)
	require.Equal(t, "run-1", f.RunID)

	require.NoError(t, st.ClearFailures(ctx, org, []string{"u4", "u5"}))
	require.Empty(t, ids(vocab.Filter{Type: vocab.DomainNotValidated}))
	failed, err := st.FailedUsers(ctx, org)
	require.NoError(t, err)
	require.Len(t, failed, 4)
	require.Equal(t, "Webinar", failed["u1"].Product)
}
