package activities

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"

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
