package activities

import (
	"context"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/usersync/usersync/internal/devstack/devstacktest"
	"github.com/usersync/usersync/internal/plan"
	"github.com/usersync/usersync/internal/scim"
	"github.com/usersync/usersync/internal/scimsandbox"
	"github.com/usersync/usersync/internal/store"
	"github.com/usersync/usersync/internal/vocab"
)

// Adoption (spec 7) links an unlinked account only with an admin's approval, and never takes
// over an account that another directory user of ours is linked to, approval or not.
func TestAdoptionNeedsApprovalAndNeverTakesALinkedAccount(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(ctx, devstacktest.Database(t))
	require.NoError(t, err)
	t.Cleanup(st.Close)
	sb := scimsandbox.New(scimsandbox.Options{Token: "t"})
	srv := httptest.NewServer(sb)
	t.Cleanup(srv.Close)
	target := scim.New(scim.Config{BaseURL: srv.URL, Token: "t"})
	acts := &Activities{Store: st, Orgs: Single("acme", Org{Target: target})}
	const org = "acme"

	// ann's userName is taken by an account nobody linked; bob's by the account of "old-bob",
	// another directory user usersync manages.
	require.NoError(t, sb.SeedExisting("ann@acme.test"))
	oldBob := plan.Desired{ExternalID: "old-bob", UserName: "bob@acme.test", Email: "bob@acme.test", Active: true}
	created, err := target.CreateUser(ctx, scim.Extension{}, oldBob)
	require.NoError(t, err)
	require.NoError(t, st.SaveProvisioned(ctx, org, created.ID, oldBob, "", ""))

	create := func(id, name string) plan.Item {
		return plan.Item{ExternalID: id, UserName: name, Action: plan.Create,
			Desired: plan.Desired{ExternalID: id, UserName: name, Email: name, Active: true, Role: "Member"}}
	}
	provision := func(it plan.Item) (string, string, *vocab.Failure) {
		r, err := acts.provision(ctx, target, org, store.UserWork{Item: it})
		require.NoError(t, err)
		return r.scimID, r.status, r.failure
	}

	_, _, f := provision(create("ann", "ann@acme.test"))
	require.NotNil(t, f, "no approval: not adopted")
	require.Equal(t, vocab.ExistingAccount, f.Type)
	require.Contains(t, f.Message, "starter adopt ann@acme.test")

	require.NoError(t, st.ApproveAdoption(ctx, org, "alice", "ann", "ann@other.test"))
	_, _, f = provision(create("ann", "ann@acme.test"))
	require.NotNil(t, f, "an approval given for another userName does not count")

	require.NoError(t, st.ApproveAdoption(ctx, org, "alice", "ann", "ANN@acme.test"))
	id, status, f := provision(create("ann", "ann@acme.test"))
	require.Nil(t, f)
	require.Equal(t, vocab.Adopted, status)
	ann, ok := sb.UserByUserName("ann@acme.test")
	require.True(t, ok)
	require.Equal(t, ann.ID, id)
	require.Equal(t, "ann", ann.ExternalID, "linked: the account now carries the directory user's externalId")
	require.Equal(t, []string{"Member"}, ann.Roles)

	// A retried step (the PATCH went through, the save did not) finds the account it linked.
	id2, _, f := provision(create("ann", "ann@acme.test"))
	require.Nil(t, f)
	require.Equal(t, id, id2)

	require.NoError(t, st.ApproveAdoption(ctx, org, "alice", "bob", "bob@acme.test"))
	_, _, f = provision(create("bob", "bob@acme.test"))
	require.NotNil(t, f, "old-bob's account is not taken over")
	require.Equal(t, vocab.ExistingAccount, f.Type)
	bob, _ := sb.UserByUserName("bob@acme.test")
	require.Equal(t, "old-bob", bob.ExternalID)

	// Not even when its externalId was cleared in the target by hand: old-bob is linked to it.
	patch := plan.Desired{UserName: "bob@acme.test", Email: "bob@acme.test", Active: true}
	require.NoError(t, target.UpdateUser(ctx, scim.Extension{}, bob.ID, oldBob, patch))
	bob, _ = sb.UserByUserName("bob@acme.test")
	require.Empty(t, bob.ExternalID)
	_, _, f = provision(create("bob", "bob@acme.test"))
	require.NotNil(t, f, "an account one of our users is linked to is never adopted")
}
