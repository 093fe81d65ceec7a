package e2e

import (
	"testing"

	"github.com/go-ldap/ldap/v3"
	"github.com/stretchr/testify/require"

	"github.com/usersync/usersync/internal/demo"
	"github.com/usersync/usersync/internal/vocab"
)

// With incremental reads a run reads only the directory entries that changed since the
// last one, and the changes reach the target: a changed name is updated, a leaver and a
// deleted user are suspended, a newcomer is created, read back over SCIM.
func TestIncrementalReadCarriesChangesToTheTarget(t *testing.T) {
	d := demo.Generate(200, 3)
	s := newStack(t, d)
	require.True(t, s.conns.Incremental, "the stack reads incrementally, as the worker does by default")
	first := s.runOnce("initial")
	require.Equal(t, 200, first.Outcomes[vocab.Created])
	require.NotNil(t, first.Directory.Read, "the run read incrementally")
	require.True(t, first.Directory.Read.Full, "the first read is a full one")

	unchanged := s.runOnce("unchanged")
	require.NotNil(t, unchanged.Directory.Read)
	require.False(t, unchanged.Directory.Read.Full)
	require.Zero(t, unchanged.Directory.Read.Entries, "an unchanged directory sends no entry")
	require.Zero(t, unchanged.Plan.Items)

	conn, err := ldap.DialURL(s.ldapURL)
	require.NoError(t, err)
	defer conn.Close()
	require.NoError(t, conn.Bind(s.ldapBindDN, ldapSecret))
	renamedDN, leaverDN, deletedDN, modelDN := demo.UserDN("user0000001"), demo.UserDN("user0000002"),
		demo.UserDN("user0000003"), demo.UserDN("user0000004")

	m := ldap.NewModifyRequest(renamedDN, nil)
	m.Replace("displayName", []string{"Incrementally Renamed"})
	require.NoError(t, conn.Modify(m))
	leave := ldap.NewModifyRequest(groupOf(t, d, leaverDN), nil)
	leave.Delete("member", []string{leaverDN})
	require.NoError(t, conn.Modify(leave))
	require.NoError(t, conn.Del(ldap.NewDelRequest(deletedDN, nil)))

	sum := s.runOnce("changes")
	require.NotNil(t, sum.Directory.Read)
	require.False(t, sum.Directory.Read.Full, "a read of the changes only")
	require.Equal(t, 2, sum.Directory.Read.Entries, "the changed user and the changed group")
	require.Equal(t, 1, sum.Directory.Read.Deleted)
	require.Equal(t, 1, sum.Outcomes[vocab.Updated])
	require.Equal(t, 2, sum.Outcomes[vocab.Suspended])

	// A newcomer like user0000004, in its team.
	addNewcomer(t, conn, d, "newcomer", "E99999", modelDN)
	sum = s.runOnce("newcomer") // after the suspensions freed seats
	require.False(t, sum.Directory.Read.Full)
	require.Equal(t, 2, sum.Directory.Read.Entries, "the newcomer and its group")
	require.Equal(t, 1, sum.Outcomes[vocab.Created])

	find := func(userName string) (active bool, displayName string) {
		t.Helper()
		u, err := s.target.FindUserByUserName(s.ctx, s.ext, userName)
		require.NoError(t, err)
		require.NotNil(t, u, "%s in the target", userName)
		return u.Active, u.DisplayName
	}
	active, name := find("user0000001@example.com")
	require.True(t, active)
	require.Equal(t, "Incrementally Renamed", name)
	active, _ = find("newcomer@example.com")
	require.True(t, active, "the newcomer's account exists")
	for _, gone := range []string{"user0000002@example.com", "user0000003@example.com"} {
		active, _ = find(gone)
		require.False(t, active, "%s is suspended", gone)
	}
}

// addNewcomer adds the user uid (mail <uid>@example.com, employeeNumber empNo) to the
// directory, like the generated user modelDN, and to modelDN's team.
func addNewcomer(t *testing.T, conn *ldap.Conn, d demo.Demo, uid, empNo, modelDN string) {
	t.Helper()
	newDN := demo.UserDN(uid)
	add := ldap.NewAddRequest(newDN, nil)
	for _, e := range d.Entries {
		if e.DN != modelDN {
			continue
		}
		for _, a := range e.Attributes {
			switch a.Type {
			case "uid":
				add.Attribute("uid", []string{uid})
			case "mail":
				add.Attribute("mail", []string{uid + "@example.com"})
			case "employeeNumber":
				add.Attribute("employeeNumber", []string{empNo})
			default:
				add.Attribute(a.Type, a.Vals)
			}
		}
	}
	require.NoError(t, conn.Add(add))
	join := ldap.NewModifyRequest(groupOf(t, d, modelDN), nil) // a team: nested in a department, in a ruled division
	join.Add("member", []string{newDN})
	require.NoError(t, conn.Modify(join))
}
