package e2e

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/usersync/usersync/internal/demo"
	"github.com/usersync/usersync/internal/store"
	"github.com/usersync/usersync/internal/vocab"
)

// Spec 7: an account that exists in the target but is not linked fails existing_account and
// is adopted only when an admin says so; it is then linked (same account, now carrying the
// directory's externalId) and managed like the others. The approval and the adoption are in
// the history; the other unlinked accounts are left alone.
func TestAdoptAnExistingAccountOnlyWhenAnAdminSaysSo(t *testing.T) {
	s := newStack(t, demo.Org())
	s.cliOK("enable", "--interval", "1h")
	s.cliOK("status", "--wait", "--timeout", "3m")
	existing := s.failures(vocab.Filter{Type: vocab.ExistingAccount})
	require.Len(t, existing, 5)
	f := existing[0]
	before, ok := s.sandbox.UserByUserName(f.UserName)
	require.True(t, ok)
	require.Empty(t, before.ExternalID, "the account usersync did not create")

	require.Contains(t, s.cliFails("adopt", "nobody@example.com"), `adopt "nobody@example.com": no current existing_account failure`)

	out := s.cliOK("adopt", f.UserName)
	require.Contains(t, out, "Adoption of "+f.UserName+" approved.")
	require.Contains(t, out, "adopted 1")

	after, ok := s.sandbox.UserByUserName(f.UserName)
	require.True(t, ok)
	require.Equal(t, before.ID, after.ID, "the same account, not a new one")
	require.Equal(t, f.ExternalID, after.ExternalID, "now linked to the directory user")
	require.NotEmpty(t, after.Entitlements, "and given what the rules give the user")
	applied, err := s.store.AppliedStatesOf(s.ctx, org, []string{f.ExternalID})
	require.NoError(t, err)
	require.Equal(t, before.ID, applied[f.ExternalID].ScimID)
	require.Len(t, s.failures(vocab.Filter{Type: vocab.ExistingAccount}), 4, "the others wait for their own approval")

	hist, err := s.store.History(s.ctx, org, store.HistoryFilter{Type: vocab.EventAdoption})
	require.NoError(t, err)
	var actions []string
	for _, e := range hist {
		actions = append(actions, e.Action)
		require.Equal(t, cliActor, e.Actor)
	}
	require.ElementsMatch(t, []string{"approve", "adopted"}, actions)
}
