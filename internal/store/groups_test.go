package store_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/usersync/usersync/internal/plan"
	"github.com/usersync/usersync/internal/store"
)

// applyDeltas writes the deltas as the group sync step would after the target accepted them.
func applyDeltas(t *testing.T, ctx context.Context, st *store.Store, ds []store.GroupDelta) {
	t.Helper()
	for _, d := range ds {
		require.NoError(t, st.SaveGroupMembers(ctx, org, d.Name, d.Add, d.Remove))
	}
}

func deltas(t *testing.T, ctx context.Context, st *store.Store) []store.GroupDelta {
	t.Helper()
	ds, err := st.GroupDeltas(ctx, org)
	require.NoError(t, err)
	return ds
}

func TestGroupDeltasFollowActiveUsersGroups(t *testing.T) {
	st, ctx := openStore(t)
	ann := plan.Desired{ExternalID: "u1", UserName: "ann@acme.test", Active: true,
		UserGroup: "Engineering", DeviceGroups: []string{"Desks", "Phones"}}
	bob := plan.Desired{ExternalID: "u2", UserName: "bob@acme.test", Active: true, UserGroup: "Sales"}
	gone := plan.Desired{ExternalID: "u3", UserName: "cid@acme.test", Active: false, UserGroup: "Sales"}
	for id, d := range map[string]plan.Desired{"s1": ann, "s2": bob, "s3": gone} {
		require.NoError(t, st.SaveApplied(ctx, org, id, d))
	}

	require.Equal(t, []store.GroupDelta{
		{Name: "Desks", Add: []string{"s1"}},
		{Name: "Engineering", Add: []string{"s1"}},
		{Name: "Phones", Add: []string{"s1"}},
		{Name: "Sales", Add: []string{"s2"}},
	}, deltas(t, ctx, st), "an inactive user joins no group")
	applyDeltas(t, ctx, st, deltas(t, ctx, st))
	require.Empty(t, deltas(t, ctx, st), "once written, nothing more to do")

	// Ann is suspended; Bob moves from Sales to Engineering.
	ann.Active, ann.UserGroup, ann.DeviceGroups = false, "", nil
	require.NoError(t, st.SaveApplied(ctx, org, "s1", ann))
	bob.UserGroup = "Engineering"
	require.NoError(t, st.SaveApplied(ctx, org, "s2", bob))

	require.Equal(t, []store.GroupDelta{
		{Name: "Desks", Remove: []string{"s1"}},
		{Name: "Engineering", Add: []string{"s2"}, Remove: []string{"s1"}},
		{Name: "Phones", Remove: []string{"s1"}},
		{Name: "Sales", Remove: []string{"s2"}},
	}, deltas(t, ctx, st))
	applyDeltas(t, ctx, st, deltas(t, ctx, st))
	require.Empty(t, deltas(t, ctx, st))

	// Writing the same change twice (an activity retry) is harmless.
	require.NoError(t, st.SaveGroupMembers(ctx, org, "Engineering", []string{"s2"}, []string{"s1"}))
	require.Empty(t, deltas(t, ctx, st))
}

func TestScimGroupIDCache(t *testing.T) {
	st, ctx := openStore(t)
	id, err := st.ScimGroupID(ctx, org, "Engineering")
	require.NoError(t, err)
	require.Empty(t, id, "unknown group")
	require.NoError(t, st.SaveScimGroupID(ctx, org, "Engineering", "g-1"))
	require.NoError(t, st.SaveScimGroupID(ctx, org, "Engineering", "g-2"))
	id, err = st.ScimGroupID(ctx, org, "Engineering")
	require.NoError(t, err)
	require.Equal(t, "g-2", id)
}
