package activities

import (
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
