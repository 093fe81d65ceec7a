package activities

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/usersync/usersync/internal/devstack/devstacktest"
	"github.com/usersync/usersync/internal/rules"
	"github.com/usersync/usersync/internal/steps"
	"github.com/usersync/usersync/internal/store"
	"github.com/usersync/usersync/internal/vocab"
)

// The checks of an admin action that need the database: the retry's product is in the
// catalog, its user is known, and an approval names the held set as it is now.
func TestCheckActionRefusesUnknownProductsAndUsersAndAChangedHeldSet(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(ctx, devstacktest.Database(t))
	require.NoError(t, err)
	t.Cleanup(st.Close)
	acts := &Activities{Store: st}
	const org = "acme"
	require.NoError(t, st.SetCatalog(ctx, org, "alice", rules.Catalog{Products: []string{"Meeting", "Webinar"}}))
	hold := func(id string) {
		require.NoError(t, st.RecordFailure(ctx, org, "run-1", id, id+"@acme.test", vocab.Failure{Type: vocab.SuspensionHeld, Message: "held"}))
	}
	hold("u-1")
	hold("u-2")
	check := func(c steps.ActionCheck) steps.ActionVerdict {
		c.Org = org
		v, err := acts.CheckAction(ctx, c)
		require.NoError(t, err)
		return v
	}

	require.Empty(t, check(steps.ActionCheck{Retry: &vocab.Filter{Product: "Webinar", User: "U-1@acme.test"}}).Reason)
	v := check(steps.ActionCheck{Retry: &vocab.Filter{Product: "Webniar"}})
	require.Equal(t, "filter.product", v.Field)
	require.Contains(t, v.Reason, `"Webniar"`)
	v = check(steps.ActionCheck{Retry: &vocab.Filter{User: "mallory@acme.test"}})
	require.Equal(t, "filter.user", v.Field)
	require.NotContains(t, v.Reason+v.Value, "mallory", "no personal data in the verdict")

	n, digest, err := st.HeldSet(ctx, org)
	require.NoError(t, err)
	require.Equal(t, 2, n)
	require.Equal(t, vocab.HeldDigest([]string{"u-2", "u-1"}), digest, "the digest does not depend on the order")
	require.Empty(t, check(steps.ActionCheck{Approve: &steps.HeldSet{Count: 2, Digest: digest}}).Reason)

	hold("u-3") // the directory changed after the admin looked
	v = check(steps.ActionCheck{Approve: &steps.HeldSet{Count: 2, Digest: digest}})
	require.Equal(t, "digest", v.Field)
	require.Contains(t, v.Reason, "the held suspensions changed: 3 held now")
}
