package store_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/usersync/usersync/internal/plan"
	"github.com/usersync/usersync/internal/store"
	"github.com/usersync/usersync/internal/vocab"
)

// An approval to adopt is for one user and one userName; the save of that user uses it up,
// in the history in the approving admin's name ("adopted", or "closed" when the user got an
// account another way), and a user who leaves scope takes it along.
func TestAdoptionApprovalIsUsedUpBySavingTheUser(t *testing.T) {
	st, ctx := openStore(t)
	require.NoError(t, st.ApproveAdoption(ctx, org, "alice", "u1", "ann@acme.test"))
	ok, err := st.AdoptionApproved(ctx, org, "u1", "Ann@Acme.test")
	require.NoError(t, err)
	require.True(t, ok, "userNames compare case-insensitively")
	ok, err = st.AdoptionApproved(ctx, org, "u1", "boss@acme.test")
	require.NoError(t, err)
	require.False(t, ok, "not for another userName")

	ann := plan.Desired{ExternalID: "u1", UserName: "ann@acme.test", Active: true}
	require.NoError(t, st.SaveProvisioned(ctx, org, "scim-1", ann, "run-1", "adopted"))
	ok, err = st.AdoptionApproved(ctx, org, "u1", "ann@acme.test")
	require.NoError(t, err)
	require.False(t, ok, "used up")
	linked, err := st.LinkedTo(ctx, org, "scim-1")
	require.NoError(t, err)
	require.Equal(t, "u1", linked)

	require.NoError(t, st.ApproveAdoption(ctx, org, "bob", "u2", "cid@acme.test"))
	cid := plan.Desired{ExternalID: "u2", UserName: "cid@acme.test", Active: true}
	require.NoError(t, st.SaveProvisioned(ctx, org, "scim-2", cid, "run-1", "created"))

	require.NoError(t, st.ApproveAdoption(ctx, org, "bob", "u3", "dan@acme.test"))
	require.NoError(t, st.ClearFailures(ctx, org, []string{"u3"}))
	ok, err = st.AdoptionApproved(ctx, org, "u3", "dan@acme.test")
	require.NoError(t, err)
	require.False(t, ok, "a user out of scope takes the approval along")

	es, err := st.History(ctx, org, store.HistoryFilter{Type: vocab.EventAdoption})
	require.NoError(t, err)
	var got []string
	for _, e := range es {
		got = append(got, e.Actor+" "+e.Action)
	}
	require.ElementsMatch(t, []string{"alice approve", "alice adopted", "bob approve", "bob closed", "bob approve"}, got)
}
