package store_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/usersync/usersync/internal/directory"
	"github.com/usersync/usersync/internal/plan"
	"github.com/usersync/usersync/internal/rules"
	"github.com/usersync/usersync/internal/store"
	"github.com/usersync/usersync/internal/vocab"
)

// A value PostgreSQL cannot hold (a NUL, which jsonb and text refuse; bytes that are not
// UTF-8) never fails the snapshot write, which would stop the organization's sync: it is
// stored repaired and named in the user's Problems, and the plan fails that user alone.
func TestWriteSnapshotStoresValuesJSONBRefuses(t *testing.T) {
	st, ctx := openStore(t)
	const run = "usersync/acme/run/nul"
	attempt := beginRun(t, ctx, st, run, "scheduled", false)
	bad := directory.User{ExternalID: "u-bad", DN: "uid=b\x00,dc=acme", UserName: "bea\x00@acme.test", Email: "bea@acme.test",
		DisplayName: "Bea\x00Lee", GivenName: "B\xffea", Attributes: map[string]string{"office": "Room\x00 1"},
		Groups: []string{"cn=eng"}, Problems: []string{`attribute "mail": has 2 distinct values, want one`}}
	good := directory.User{ExternalID: "u-good", UserName: "gus@acme.test", Email: "gus@acme.test", DisplayName: "Gus",
		Attributes: map[string]string{"office": "Room 2"}, Groups: []string{"cn=eng"}}
	require.NoError(t, st.WriteSnapshot(ctx, run, attempt, []directory.User{bad, good}))

	got := map[string]directory.User{}
	require.NoError(t, st.PlanRows(ctx, org, run, func(r store.PlanRow) error { got[r.User.ExternalID] = r.User; return nil }))
	require.Len(t, got, 2)
	require.Equal(t, good, got["u-good"], "a clean user is stored as it is")
	b := got["u-bad"]
	require.Equal(t, "bea\uFFFD@acme.test", b.UserName)
	require.Equal(t, "Bea\uFFFDLee", b.DisplayName)
	require.Equal(t, "B\uFFFDea", b.GivenName)
	require.Equal(t, "Room\uFFFD 1", b.Attributes["office"])
	require.Equal(t, "uid=b\uFFFD,dc=acme", b.DN)
	require.Equal(t, []string{`attribute "mail": has 2 distinct values, want one`,
		`attribute "userName": contains a NUL character`, `attribute "givenName": is not valid UTF-8`,
		`attribute "displayName": contains a NUL character`, `attribute "office": contains a NUL character`}, b.Problems)
	require.Equal(t, "Bea\x00Lee", bad.DisplayName, "the caller's user is not modified")

	// The plan fails the bad user alone.
	in := plan.Input{Users: []directory.User{b, got["u-good"]}, ValidatedDomains: map[string]bool{"acme.test": true},
		Rules: []rules.Rule{{ID: 1, Priority: 1, GroupDN: "cn=eng", Role: "Member"}}}
	res := plan.Plan(in)
	require.Len(t, res.Items, 2)
	for _, it := range res.Items {
		if it.ExternalID == "u-bad" {
			require.Equal(t, plan.Fail, it.Action)
			require.Equal(t, vocab.InvalidUserData, it.Failure.Type)
			require.Contains(t, it.Failure.Message, `attribute "displayName": contains a NUL character`)
		} else {
			require.Equal(t, plan.Create, it.Action)
		}
	}
}
