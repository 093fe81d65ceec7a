package activities

import (
	"cmp"
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"

	"github.com/usersync/usersync/internal/steps"
	"github.com/usersync/usersync/internal/vocab"
)

// A step for an organization the worker has no settings for stops its run with one
// run-level failure naming the organization; it never falls back to another's connections.
func TestStepRefusesAnOrganizationWithoutSettings(t *testing.T) {
	acts := &Activities{Orgs: Single("acme", Org{SuspendThresholdMax: 7})}
	o, err := acts.org(context.Background(), "acme")
	require.NoError(t, err)
	require.Equal(t, 7, o.SuspendThresholdMax)

	_, err = acts.org(context.Background(), "globex")
	var ae *temporal.ApplicationError
	require.True(t, errors.As(err, &ae), "%v", err)
	require.Equal(t, vocab.OrgUnknown, ae.Type())
	require.True(t, ae.NonRetryable())
	require.Contains(t, ae.Error(), `"globex"`)
	require.True(t, vocab.IsRunLevel(ae.Type()))
}

// The SCIM steps of an organization whose target has no rate run on the workflows' queue
// (eagerly); those of a paced one on the paced queue.
func TestRunSettingsChooseTheQueueByThePace(t *testing.T) {
	ctx := context.Background()
	ref := steps.RunRef{Org: "acme", RunID: "r"}
	for _, paced := range []bool{false, true} {
		acts := &Activities{Orgs: Single("acme", Org{Paced: paced}), Settings: steps.FanOut{ProvisionQueue: "paced", PageSize: 7},
			UnpacedQueue: "main"}
		fan, err := acts.RunSettings(ctx, ref)
		require.NoError(t, err)
		want := map[bool]string{false: "main", true: "paced"}[paced]
		require.Equal(t, want, fan.ProvisionQueue, "paced=%v", paced)
		require.Equal(t, 7, fan.PageSize)
	}
}

// Fairness (issue 10): an organization behind a slow target gets the users in flight its pace
// serves within paceWithin (5 s: 24 at 4.9 requests/s), not the full window of 8 pages of 20:
// the rest would only be sent away by the pace, an activity attempt each on the shared
// Temporal server. A fast pace and an unpaced organization keep the configured window.
func TestRunSettingsGiveASlowTargetTheWindowItsPaceUses(t *testing.T) {
	ctx := context.Background()
	ref := steps.RunRef{Org: "acme", RunID: "r"}
	for _, c := range []struct {
		rate         float64
		set          steps.FanOut
		pages, users int
	}{
		{rate: 4.9, pages: 8, users: 3},
		{rate: 0.5, pages: 2, users: 1},
		{rate: 20, set: steps.FanOut{PageWindow: 4, UsersInFlight: 50}, pages: 4, users: 25},
		{rate: 1000, pages: 8, users: 20},
		{rate: 0, set: steps.FanOut{PageWindow: 2, UsersInFlight: 30}, pages: 2, users: 30},
	} {
		set := c.set
		set.ProvisionQueue = "paced"
		acts := &Activities{Orgs: Single("acme", Org{Paced: c.rate > 0, Rate: c.rate}), Settings: set, UnpacedQueue: "main"}
		fan, err := acts.RunSettings(ctx, ref)
		require.NoError(t, err)
		got := [2]int{cmp.Or(fan.PageWindow, steps.DefaultPageWindow), cmp.Or(fan.UsersInFlight, steps.DefaultUsersInFlight)}
		require.Equal(t, [2]int{c.pages, c.users}, got, "rate %v, settings %+v", c.rate, c.set)
		if c.rate > 0 && c.rate < 100 {
			require.LessOrEqual(t, float64(got[0]*got[1]), c.rate*paceWithin.Seconds(), "rate %v: no more in flight than the pace serves", c.rate)
		}
	}
}
