package e2e

import (
	"fmt"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"
	"github.com/stretchr/testify/require"

	"github.com/usersync/usersync/internal/demo"
	"github.com/usersync/usersync/internal/steps"
	"github.com/usersync/usersync/internal/vocab"
	"github.com/usersync/usersync/workflows"
)

// A run after a few directory changes is a delta run (issue 13): its snapshot holds only the
// users the changes touched (a changed name, a user who left a ruled group's team, a deleted
// user, a newcomer added to a team nested in a ruled group), and the target, read back over
// SCIM, holds what a full sync gives: a full plan (a dry run, which always reads everything)
// finds nothing left to do, and counts as many users in scope as the delta run did.
func TestDeltaRunPlansOnlyTheTouchedUsers(t *testing.T) {
	d := demo.Generate(300, 7)
	s := newStack(t, d)
	for _, p := range []string{demo.Meeting, demo.Webinar, demo.Connect} { // a seat for the newcomer
		require.NoError(t, s.store.SetLicense(s.ctx, org, "e2e", p, 400))
	}
	first := s.runOnce("initial")
	require.Equal(t, 300, first.Outcomes[vocab.Created])
	require.Equal(t, 300, first.InScope)

	conn, err := ldap.DialURL(s.ldapURL)
	require.NoError(t, err)
	defer conn.Close()
	require.NoError(t, conn.Bind(s.ldapBindDN, ldapSecret))
	renamedDN, leaverDN, deletedDN, modelDN := demo.UserDN("user0000011"), demo.UserDN("user0000012"),
		demo.UserDN("user0000013"), demo.UserDN("user0000014")
	m := ldap.NewModifyRequest(renamedDN, nil)
	m.Replace("displayName", []string{"Delta Renamed"})
	require.NoError(t, conn.Modify(m))
	leave := ldap.NewModifyRequest(groupOf(t, d, leaverDN), nil) // its only path to a ruled group
	leave.Delete("member", []string{leaverDN})
	require.NoError(t, conn.Modify(leave))
	require.NoError(t, conn.Del(ldap.NewDelRequest(deletedDN, nil)))
	addNewcomer(t, conn, d, "deltacomer", "E99998", modelDN)

	sum := s.runOnce("delta")
	require.Equal(t, vocab.RunSucceeded, sum.Status)
	require.NotNil(t, sum.Directory.Delta, "a delta run: %+v", sum.Directory)
	require.Equal(t, first.RunID, sum.Directory.Delta.Since)
	require.Equal(t, 4, sum.Directory.Delta.Touched, "the snapshot's users: the touched ones only")
	require.Equal(t, 2, sum.Directory.InScope, "in the snapshot: the renamed user and the newcomer")
	require.Equal(t, 300, sum.Directory.Users, "the directory's user entries, all counted")
	require.Equal(t, 4, sum.Plan.Items)
	require.Equal(t, 1, sum.Outcomes[vocab.Updated])
	require.Equal(t, 2, sum.Outcomes[vocab.Suspended])
	require.Equal(t, 1, sum.Outcomes[vocab.Created])
	require.Equal(t, 299, sum.InScope, "in scope: the whole directory's (300, two gone, one come)")
	require.Equal(t, 297, sum.Plan.Unchanged, "the 297 untouched users, and none of the touched")

	// Read back over SCIM.
	find := func(userName string) (active bool, displayName string, entitlements int) {
		t.Helper()
		u, err := s.target.FindUserByUserName(s.ctx, s.ext, userName)
		require.NoError(t, err)
		require.NotNil(t, u, "%s in the target", userName)
		return u.Active, u.DisplayName, len(u.Products)
	}
	active, name, _ := find("user0000011@example.com")
	require.True(t, active)
	require.Equal(t, "Delta Renamed", name)
	active, _, products := find("deltacomer@example.com")
	require.True(t, active, "the newcomer's account exists")
	require.NotZero(t, products, "with its products")
	for _, gone := range []string{"user0000012@example.com", "user0000013@example.com"} {
		active, _, products := find(gone)
		require.False(t, active, "%s is suspended", gone)
		require.Zero(t, products, "%s's access removed", gone)
	}

	// A full plan of the same directory finds nothing left to do.
	id := workflows.RunWorkflowID(org, fmt.Sprintf("full-dry-%d", time.Now().UnixNano()))
	run, err := s.client.ExecuteWorkflow(s.ctx, clientOptions(id), workflows.SyncRunWorkflow,
		workflows.RunInput{Org: org, RunID: id, Kind: vocab.KindManual, DryRun: true})
	require.NoError(t, err)
	var dry steps.RunSummary
	require.NoError(t, run.Get(s.ctx, &dry))
	require.Nil(t, dry.Directory.Delta, "a dry run reads everything")
	require.Zero(t, dry.Plan.Items, "a full plan after the delta run: nothing to do")
	require.Equal(t, 299, dry.Plan.InScope)
	require.Equal(t, 299, dry.Directory.InScope)
}

// A run whose changes touch more users than a delta snapshot is worth (a tenth of the
// directory, at least 100) takes the full snapshot, and still writes every change.
func TestManyChangesTakeTheFullSnapshot(t *testing.T) {
	d := demo.Generate(300, 7)
	s := newStack(t, d)
	first := s.runOnce("initial")
	require.Equal(t, 300, first.Outcomes[vocab.Created])

	conn, err := ldap.DialURL(s.ldapURL)
	require.NoError(t, err)
	defer conn.Close()
	require.NoError(t, conn.Bind(s.ldapBindDN, ldapSecret))
	const renamed = 120
	for i := 1; i <= renamed; i++ {
		m := ldap.NewModifyRequest(demo.UserDN(fmt.Sprintf("user%07d", i)), nil)
		m.Replace("displayName", []string{fmt.Sprintf("Renamed %d", i)})
		require.NoError(t, conn.Modify(m))
	}

	sum := s.runOnce("many")
	require.Equal(t, vocab.RunSucceeded, sum.Status)
	require.NotNil(t, sum.Directory.Read, "an incremental read")
	require.False(t, sum.Directory.Read.Full)
	require.Nil(t, sum.Directory.Delta, "too many touched for a delta run: %+v", sum.Directory)
	require.Equal(t, 300, sum.Directory.InScope, "the full snapshot")
	require.Equal(t, renamed, sum.Outcomes[vocab.Updated])
	require.Equal(t, 300, sum.InScope)
	u, err := s.target.FindUserByUserName(s.ctx, s.ext, "user0000120@example.com")
	require.NoError(t, err)
	require.NotNil(t, u)
	require.Equal(t, "Renamed 120", u.DisplayName)
}
