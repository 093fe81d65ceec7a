package store_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/usersync/usersync/internal/plan"
	"github.com/usersync/usersync/internal/store"
	"github.com/usersync/usersync/internal/vocab"
)

// holders returns the externalIds holding a seat, per product.
func holders(t *testing.T, ctx context.Context, st *store.Store) map[string]map[string]bool {
	t.Helper()
	_, held, err := st.SeatState(ctx, org)
	require.NoError(t, err)
	return held
}

// Spec 6: two syncs racing never hand out more seats than exist, and a user gets all of a rule's
// products or none. Several rounds (each its own pair of products) make a lost race likely to show.
func TestReserveSeatsUnderRaceNeverOverAllocates(t *testing.T) {
	st, ctx := openStore(t)
	for round := range 8 {
		meeting, webinar := fmt.Sprintf("Meeting-%d", round), fmt.Sprintf("Webinar-%d", round)
		require.NoError(t, st.SetLicense(ctx, org, "alice", meeting, 5))
		require.NoError(t, st.SetLicense(ctx, org, "alice", webinar, 5))
		raceForSeats(t, ctx, st, meeting, webinar)
	}
}

// raceForSeats lets 20 users race for the 5 seats of two products.
func raceForSeats(t *testing.T, ctx context.Context, st *store.Store, meeting, webinar string) {
	t.Helper()
	const users = 20
	type result struct {
		short string
		seats int
		err   error
	}
	results := make([]result, users)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range users {
		wg.Add(1)
		go func() {
			defer wg.Done()
			products := []string{meeting, webinar}
			if i%2 == 1 { // callers list products in any order
				products = []string{webinar, meeting}
			}
			<-start
			short, seats, err := st.ReserveSeats(ctx, org, fmt.Sprintf("user-%02d", i), products)
			results[i] = result{short, seats, err}
		}()
	}
	close(start)
	wg.Wait()

	granted := 0
	for i, r := range results {
		require.NoError(t, r.err, "user-%02d", i)
		if r.short == "" {
			granted++
		} else {
			require.Equal(t, 5, r.seats, "user-%02d is told the seat count of %s", i, r.short)
		}
	}
	held := holders(t, ctx, st)
	require.Len(t, held[meeting], 5, "never more holders than seats")
	require.Len(t, held[webinar], 5, "never more holders than seats")
	require.Equal(t, 5, granted, "every seat that exists is handed out")
	for id := range held[meeting] {
		require.True(t, held[webinar][id], "%s holds %s without %s: all or nothing", id, meeting, webinar)
	}
	ls, err := st.Licenses(ctx, org)
	require.NoError(t, err)
	for _, l := range ls {
		if l.Product == meeting || l.Product == webinar {
			require.Equal(t, 5, l.Used, l.Product)
		}
	}
}

func TestReserveSeatsAllOrNothingWhenOneProductIsFull(t *testing.T) {
	st, ctx := openStore(t)
	require.NoError(t, st.SetLicense(ctx, org, "alice", "Meeting", 5))
	require.NoError(t, st.SetLicense(ctx, org, "alice", "Webinar", 1))
	short, _, err := st.ReserveSeats(ctx, org, "u1", []string{"Webinar"})
	require.NoError(t, err)
	require.Empty(t, short)

	short, seats, err := st.ReserveSeats(ctx, org, "u2", []string{"Meeting", "Webinar"})
	require.NoError(t, err)
	require.Equal(t, "Webinar", short)
	require.Equal(t, 1, seats)
	require.False(t, holders(t, ctx, st)["Meeting"]["u2"], "no Meeting seat without the Webinar seat")

	short, seats, err = st.ReserveSeats(ctx, org, "u3", []string{"Teams"})
	require.NoError(t, err)
	require.Equal(t, "Teams", short, "a product without a license has no seat")
	require.Zero(t, seats)
}

func TestReserveSeatsKeepsTheSeatAUserHolds(t *testing.T) {
	st, ctx := openStore(t)
	require.NoError(t, st.SetLicense(ctx, org, "alice", "Webinar", 1))
	for range 3 { // every sync re-checks the same user
		short, _, err := st.ReserveSeats(ctx, org, "u1", []string{"Webinar"})
		require.NoError(t, err)
		require.Empty(t, short, "the holder keeps its seat even when the pool is full")
	}
	ls, err := st.Licenses(ctx, org)
	require.NoError(t, err)
	require.Equal(t, []store.License{{Product: "Webinar", Seats: 1, Used: 1}}, ls)

	short, _, err := st.ReserveSeats(ctx, org, "u2", []string{"Webinar"})
	require.NoError(t, err)
	require.Equal(t, "Webinar", short)
}

func TestSetLicenseRefusesToGoBelowSeatsInUse(t *testing.T) {
	st, ctx := openStore(t)
	require.NoError(t, st.SetLicense(ctx, org, "alice", "Webinar", 5))
	for _, u := range []string{"u1", "u2", "u3"} {
		short, _, err := st.ReserveSeats(ctx, org, u, []string{"Webinar"})
		require.NoError(t, err)
		require.Empty(t, short)
	}

	err := st.SetLicense(ctx, org, "bob", "Webinar", 2)
	require.Error(t, err)
	require.Contains(t, err.Error(), "2 is below the 3 seats")
	require.Contains(t, err.Error(), "Webinar")
	require.Error(t, st.SetLicense(ctx, org, "bob", "Webinar", -1))

	ls, err := st.Licenses(ctx, org)
	require.NoError(t, err)
	require.Equal(t, []store.License{{Product: "Webinar", Seats: 5, Used: 3}}, ls, "a refused change changes nothing")

	require.NoError(t, st.SetLicense(ctx, org, "bob", "Webinar", 3), "exactly the seats in use is fine")
	events, err := st.History(ctx, org, store.HistoryFilter{Type: vocab.EventLicense})
	require.NoError(t, err)
	require.Len(t, events, 2, "refused changes leave no license event")
	require.Equal(t, "bob", events[0].Actor)
	require.Equal(t, "set", events[0].Action)
	require.Equal(t, "Webinar", events[0].Details["product"])
	require.EqualValues(t, 3, events[0].Details["seats"])
	require.Equal(t, "alice", events[1].Actor)
}

func TestSaveProvisionedReleasesDroppedProductsAndClearsTheFailure(t *testing.T) {
	st, ctx := openStore(t)
	require.NoError(t, st.SetLicense(ctx, org, "alice", "Meeting", 5))
	require.NoError(t, st.SetLicense(ctx, org, "alice", "Webinar", 5))
	short, _, err := st.ReserveSeats(ctx, org, "u1", []string{"Meeting", "Webinar"})
	require.NoError(t, err)
	require.Empty(t, short)
	require.NoError(t, st.RecordFailure(ctx, org, "run-1", "u1", "ann@acme.test",
		vocab.Failure{Type: vocab.TargetUnavailable, Message: "503"}))

	d := plan.Desired{ExternalID: "u1", UserName: "ann@acme.test", Email: "ann@acme.test", Active: true,
		Products: []string{"Meeting"}, UserGroup: "Engineering"}
	require.NoError(t, st.SaveProvisioned(ctx, org, "scim-1", d, "", ""))

	held := holders(t, ctx, st)
	require.True(t, held["Meeting"]["u1"], "a product still desired keeps its seat")
	require.False(t, held["Webinar"]["u1"], "a product no longer desired gives its seat back")
	fs, err := st.Failures(ctx, org, vocab.Filter{})
	require.NoError(t, err)
	require.Empty(t, fs, "success clears the failure")
	states, err := st.AppliedStates(ctx, org)
	require.NoError(t, err)
	a := states["u1"]
	require.Equal(t, "scim-1", a.ScimID)
	require.Equal(t, d.Hash(), a.State.Hash())

	// Suspension (no products) frees every seat.
	d.Active, d.Products, d.UserGroup = false, nil, ""
	require.NoError(t, st.SaveProvisioned(ctx, org, "scim-1", d, "", ""))
	require.Empty(t, holders(t, ctx, st)["Meeting"])
}
