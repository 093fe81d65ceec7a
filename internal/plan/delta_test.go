package plan_test

import (
	"context"
	"math/rand"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/usersync/usersync/internal/plan"
	"github.com/usersync/usersync/internal/plan/plantest"
)

// A delta run (issue 13) plans only the users its directory changes touched, and decides
// exactly what a full run decides: after a clean run over a random directory with nested
// groups, a random change (users changed, renamed, added, deleted, members added to and
// removed from groups, a nested group deleted); the full plan has items only for the
// touched users, and the delta plan has the same items and summary (in scope and unchanged
// counted over the whole directory).
func TestDeltaPlanDecidesWhatAFullPlanDecides(t *testing.T) {
	ctx := context.Background()
	seen := map[string]bool{}
	runs := 0
	for seed := int64(1); seed <= 3000; seed++ {
		r := rand.New(rand.NewSource(seed))
		in, before, ok := plantest.CleanOrg(r)
		if !ok {
			continue
		}
		after, ch := plantest.Change(r, before)
		in.Users = after.Read()
		full := plan.Plan(in)
		touched := after.Touched(ch)
		for _, it := range full.Items {
			require.True(t, touched[it.ExternalID], "seed %d: the full plan has work for %s, whom the changes did not touch", seed, it.ExternalID)
		}
		st := plantest.NewDeltaStore(in, touched)
		if n, _ := st.Untouched(ctx); n == 0 && !readsAny(in, touched) {
			continue // nobody to read: the activity takes the full snapshot
		}
		delta := in
		delta.Delta = true
		got, err := plan.Stream(ctx, delta, st)
		require.NoError(t, err, "seed %d", seed)
		items, unflushed := st.Work()
		require.Zero(t, unflushed, "seed %d", seed)
		require.Equal(t, jsonOf(t, full.Items), jsonOf(t, items), "seed %d: items", seed)
		require.Equal(t, summaryOf(full), got, "seed %d: summary", seed)
		runs++
		for _, c := range plantest.Covered(in, full) {
			seen[c] = true
		}
	}
	require.Greater(t, runs, 1000)
	for _, c := range []string{"create", "update", "suspend", "fail", "out_of_licenses", "suspension_held",
		"domain_not_validated", "invalid_user_data", "suspicious", "unchanged"} {
		require.True(t, seen[c], "no case covered %q: change the generator", c)
	}
}

// readsAny: the delta snapshot holds a user (the read returned one the changes touched).
func readsAny(in plan.Input, touched map[string]bool) bool {
	for _, u := range in.Users {
		if touched[u.ExternalID] {
			return true
		}
	}
	return false
}
