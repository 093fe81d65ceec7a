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
	var ds []store.GroupDelta
	require.NoError(t, st.GroupDeltas(ctx, org, "run-1", 0, func(d store.GroupDelta) error {
		ds = append(ds, d)
		return nil
	}))
	return ds
}

func TestGroupDeltasFollowActiveUsersGroups(t *testing.T) {
	st, ctx := openStore(t)
	ann := plan.Desired{ExternalID: "u1", UserName: "ann@acme.test", Active: true,
		UserGroup: "Engineering", DeviceGroups: []string{"Desks", "Phones"}}
	bob := plan.Desired{ExternalID: "u2", UserName: "bob@acme.test", Active: true, UserGroup: "Sales"}
	gone := plan.Desired{ExternalID: "u3", UserName: "cid@acme.test", Active: false, UserGroup: "Sales"}
	for id, d := range map[string]plan.Desired{"s1": ann, "s2": bob, "s3": gone} {
		require.NoError(t, st.SaveProvisioned(ctx, org, id, d, "", ""))
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
	require.NoError(t, st.SaveProvisioned(ctx, org, "s1", ann, "", ""))
	bob.UserGroup = "Engineering"
	require.NoError(t, st.SaveProvisioned(ctx, org, "s2", bob, "", ""))

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

// A large membership change streams in chunks that each carry up to chunk additions and
// chunk removals, additions and removals side by side: the fewest PATCHes for the change.
func TestGroupDeltasStreamInFullChunks(t *testing.T) {
	st, ctx := openStore(t)
	for _, id := range []string{"s1", "s2", "s3", "s4", "s5"} {
		require.NoError(t, st.SaveProvisioned(ctx, org, id, plan.Desired{ExternalID: "u-" + id, UserName: id + "@acme.test",
			Active: true, UserGroup: "Staff"}, "", ""))
	}
	require.NoError(t, st.SaveGroupMembers(ctx, org, "Staff", []string{"x1", "x2", "x3"}, nil))

	var got []store.GroupDelta
	require.NoError(t, st.GroupDeltas(ctx, org, "run-1", 2, func(d store.GroupDelta) error {
		got = append(got, d)
		return nil
	}))
	require.Equal(t, []store.GroupDelta{
		{Name: "Staff", Add: []string{"s1", "s2"}, Remove: []string{"x1", "x2"}},
		{Name: "Staff", Add: []string{"s3", "s4"}, Remove: []string{"x3"}},
		{Name: "Staff", Add: []string{"s5"}},
	}, got)
}
