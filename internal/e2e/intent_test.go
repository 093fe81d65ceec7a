package e2e

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/usersync/usersync/internal/demo"
	"github.com/usersync/usersync/internal/vocab"
	"github.com/usersync/usersync/workflows"
)

// A create whose 201 is lost leaves the user "to reconcile": the account may exist, so its
// seats stay. When that user then fails a check before provisioning (here its mail moved to a
// domain that is not validated), the failure must not leave the account outside our records:
// the sync reads the target first, links the account it finds (as it is: a failing user's
// account is not written), and its seats are what the account holds. Later the user leaves
// and the same account is suspended.
func TestLostCreateThenAFailedCheckLinksTheAccount(t *testing.T) {
	d := demo.Generate(20, 9)
	s := newStack(t, d)
	const uid = "user0000001"
	mail := uid + "@" + demo.Domain
	dn := demo.UserDN(uid)
	conn, err := ldap.DialURL(s.ldapURL)
	require.NoError(t, err)
	defer conn.Close()
	require.NoError(t, conn.Bind(s.ldapBindDN, ldapSecret))
	setAttr := func(attr string, values ...string) {
		m := ldap.NewModifyRequest(dn, nil)
		m.Replace(attr, values)
		require.NoError(t, conn.Modify(m), "%s of %s", attr, dn)
	}

	// The user is disabled at first: the initial sync creates the others.
	setAttr("employeeType", "disabled")
	require.Equal(t, 19, s.runOnce("initial").Outcomes[vocab.Created])

	// Enabled, then created with its answer lost; the target then answers 503 to everything,
	// and the sync is disabled before a retry can read the account.
	setAttr("employeeType")
	s.sandbox.DropAnswers(1, http.MethodPost)
	run := s.startRun("lost-201")
	require.Eventually(t, func() bool { return s.sandbox.Stats().Dropped == 1 }, 2*time.Minute, 5*time.Millisecond)
	s.sandbox.FailNext(1<<30, http.StatusServiceUnavailable)
	require.NoError(t, s.client.CancelWorkflow(s.ctx, run.GetID(), ""))
	require.True(t, temporal.IsCanceledError(run.Get(s.ctx, nil)), "the run ends cancelled")
	s.sandbox.FailNext(0, 0)

	created, ok := s.sandbox.UserByUserName(mail)
	require.True(t, ok, "the lost create did land")
	require.NotEmpty(t, created.Entitlements)
	linked, err := s.store.LinkedTo(s.ctx, org, created.ID)
	require.NoError(t, err)
	require.Empty(t, linked, "its answer was lost: not linked yet")
	require.ElementsMatch(t, created.Entitlements, s.seatsOfID(created.ExternalID), "the seats stay while the outcome is unknown")

	// The user now fails a check before provisioning.
	setAttr("mail", uid+"@"+demo.PartnerDomain)
	sum := s.runOnce("failed-check")
	require.Equal(t, 1, sum.Failures[vocab.DomainNotValidated], "the failure is the check's")
	fs := s.failures(vocab.Filter{Type: vocab.DomainNotValidated})
	require.Len(t, fs, 1)
	require.Equal(t, created.ExternalID, fs[0].ExternalID)

	accounts := s.checkTarget() // one account, linked, seats == entitlements held
	account := accounts[created.ID]
	require.NotNil(t, account)
	require.True(t, account.Active, "a failing user's account is kept as it is, as a linked one's would be")
	require.Equal(t, 20, countLinked(accounts))
	linked, err = s.store.LinkedTo(s.ctx, org, created.ID)
	require.NoError(t, err)
	require.Equal(t, created.ExternalID, linked, "the account is linked: within reach of the leavers pass")
	require.Equal(t, 1, s.sandbox.Stats().Count("POST", "/Users")-19, "created once")

	// It leaves: the same account is suspended, its seats go back.
	setAttr("employeeType", "disabled")
	require.Equal(t, 1, s.runOnce("leaver").Outcomes[vocab.Suspended])
	after, ok := s.sandbox.User(created.ID)
	require.True(t, ok)
	require.False(t, after.Active)
	require.Empty(t, after.Entitlements)
	s.checkTarget()
}

// startRun starts one manual sync, as `starter run` does, without waiting for it.
func (s *stack) startRun(name string) client.WorkflowRun {
	s.t.Helper()
	id := workflows.RunWorkflowID(org, fmt.Sprintf("%s-%d", name, time.Now().UnixNano()))
	run, err := s.client.ExecuteWorkflow(s.ctx, clientOptions(id), workflows.SyncRunWorkflow,
		workflows.RunInput{Org: org, RunID: id, Kind: vocab.KindManual})
	require.NoError(s.t, err)
	return run
}

// seatsOfID lists the products whose seat the user externalID holds in PostgreSQL.
func (s *stack) seatsOfID(externalID string) []string {
	s.t.Helper()
	_, held, err := s.store.SeatState(s.ctx, org)
	require.NoError(s.t, err)
	var out []string
	for p, holders := range held {
		if holders[externalID] {
			out = append(out, p)
		}
	}
	return out
}
