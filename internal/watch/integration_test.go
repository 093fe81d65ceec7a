package watch_test

import (
	"context"
	"os"
	"testing"

	"github.com/go-ldap/ldap/v3"
	"github.com/stretchr/testify/require"

	"github.com/usersync/usersync/internal/demo"
	"github.com/usersync/usersync/internal/devstack"
	"github.com/usersync/usersync/internal/devstack/devstacktest"
	"github.com/usersync/usersync/internal/directory"
	"github.com/usersync/usersync/internal/watch"
)

// On OpenLDAP with syncprov, the mark moves with every write below the base DN and not
// without one.
func TestSlapdMarkMovesWithAWrite(t *testing.T) {
	if _, err := os.Stat(devstack.SlapdBinary); err != nil {
		devstacktest.SkipUnlessRequired(t, "slapd not installed (%s)", devstack.SlapdBinary)
	}
	ctx := context.Background()
	d := demo.Generate(20, 1)
	sl := &devstack.Slapd{Dir: t.TempDir(), Suffix: d.Suffix, AdminDN: "cn=admin," + d.Suffix, AdminPassword: "pw"}
	require.NoError(t, sl.Start(ctx))
	t.Cleanup(func() { _ = sl.Stop() })
	require.NoError(t, devstack.LoadEntries(ctx, sl.URL(), sl.AdminDN, "pw", d.Entries))

	p, err := watch.Dial(ctx, directory.Config{URL: sl.URL(), BindDN: sl.AdminDN, BindPassword: "pw",
		AllowPlaintextBind: true, BaseDN: demo.PeopleDN})
	require.NoError(t, err)
	defer p.Close()
	m1, err := p.Mark(ctx)
	require.NoError(t, err)
	require.NotEmpty(t, m1)
	m2, err := p.Mark(ctx)
	require.NoError(t, err)
	require.Equal(t, m1, m2, "no write, no move")

	c, err := ldap.DialURL(sl.URL())
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.Bind(sl.AdminDN, "pw"))
	entry, join, _ := demo.Joiner(1)
	require.NoError(t, c.Add(entry))
	m3, err := p.Mark(ctx)
	require.NoError(t, err)
	require.NotEqual(t, m2, m3, "an added entry moves the mark")
	require.NoError(t, c.Modify(join))
	m4, err := p.Mark(ctx)
	require.NoError(t, err)
	require.NotEqual(t, m3, m4, "a group's new member moves it")
}

// On Active Directory (the Samba DC), the mark is the rootDSE's highestCommittedUSN, read by
// the service account without any replication right: it moves with a new group member.
func TestADMarkMovesWithAWrite(t *testing.T) {
	t.Cleanup(devstacktest.StopSambaDC)
	dc := devstacktest.SambaDC(t)
	ctx := context.Background()
	p, err := watch.Dial(ctx, directory.Config{URL: dc.LDAPSURL(), CAFile: dc.CAFile(), BindDN: dc.AdminDN(),
		BindPassword: dc.AdminPassword, BaseDN: dc.BaseDN(), Profile: directory.ProfileAD})
	require.NoError(t, err)
	defer p.Close()
	m1, err := p.Mark(ctx)
	require.NoError(t, err)
	require.NotEmpty(t, m1)

	c, err := ldap.DialURL(dc.URL())
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.Bind(dc.AdminDN(), dc.AdminPassword))
	g := ldap.NewAddRequest("CN=watch-test,CN=Users,"+dc.BaseDN(), nil)
	g.Attribute("objectClass", []string{"group"})
	g.Attribute("sAMAccountName", []string{"watch-test"})
	require.NoError(t, c.Add(g))
	m2, err := p.Mark(ctx)
	require.NoError(t, err)
	require.NotEqual(t, m1, m2, "a new group moves the mark")
	add := ldap.NewModifyRequest(g.DN, nil)
	add.Add("member", []string{dc.AdminDN()})
	require.NoError(t, c.Modify(add))
	m3, err := p.Mark(ctx)
	require.NoError(t, err)
	require.NotEqual(t, m2, m3, "a new member moves it")
	m4, err := p.Mark(ctx)
	require.NoError(t, err)
	require.Equal(t, m3, m4, "reading it moves nothing")
}
