package plan_test

import (
	"context"
	"encoding/json"
	"errors"
	"math/rand"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/usersync/usersync/internal/plan"
	"github.com/usersync/usersync/internal/plan/plantest"
)

// Stream, driving the Planner over a store (here in memory), decides exactly what Plan
// decides, over random organizations. The same comparison against PostgreSQL is in
// activities (TestPlanRunDecidesExactlyWhatPlanDecides): what fails here is the driver, what
// fails only there is the store's SQL.
func TestStreamDecidesExactlyWhatPlanDecides(t *testing.T) {
	ctx := context.Background()
	seen := map[string]bool{}
	for seed := int64(1); seed <= 2000; seed++ {
		in, _ := plantest.RandomOrg(rand.New(rand.NewSource(seed)))
		st := plantest.NewStore(in)
		got, err := plan.Stream(ctx, in, st)
		require.NoError(t, err, "seed %d", seed)
		want := plan.Plan(in)

		items, unflushed := st.Work()
		require.Zero(t, unflushed, "seed %d: items added and never written", seed)
		require.Equal(t, jsonOf(t, want.Items), jsonOf(t, items), "seed %d: items", seed)
		require.Equal(t, summaryOf(want), got, "seed %d: summary", seed)
		for _, c := range plantest.Covered(in, want) {
			seen[c] = true
		}
	}
	for _, c := range plantest.MustCover {
		require.True(t, seen[c], "no case covered %q: change the generator", c)
	}
}

func TestStreamStopsAtTheStoresFirstError(t *testing.T) {
	in, _ := plantest.RandomOrg(rand.New(rand.NewSource(7)))
	boom := errors.New("boom")
	_, err := plan.Stream(context.Background(), in, failingStore{plantest.NewStore(in), boom})
	require.ErrorIs(t, err, boom)
}

type failingStore struct {
	*plantest.Store
	err error
}

func (f failingStore) Seats(context.Context) (map[string]int, map[string]int, error) {
	return nil, nil, f.err
}

func summaryOf(res plan.Result) plan.Summary {
	s := plan.Summary{Items: len(res.Items), Unchanged: res.Unchanged, InScope: res.InScope,
		SuspensionsHeld: res.SuspensionsHeld, Warnings: res.Warnings, Resolved: res.Resolved}
	for _, it := range res.Items {
		switch it.Action {
		case plan.Create:
			s.Creates++
		case plan.Update:
			s.Updates++
		case plan.Suspend:
			s.Suspends++
		case plan.Fail:
			s.Fails++
		}
	}
	return s
}

func jsonOf(t *testing.T, items []plan.Item) string {
	if items == nil {
		items = []plan.Item{}
	}
	b, err := json.Marshal(items)
	require.NoError(t, err)
	return string(b)
}
