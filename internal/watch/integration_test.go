package watch_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

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

// slapdWatch starts a slapd with the demo directory (syncprov unless noSync) and returns it,
// the watch's settings (base DN: the people container) and an admin connection.
func slapdWatch(t *testing.T, noSync bool) (*devstack.Slapd, directory.Config, *ldap.Conn) {
	t.Helper()
	if _, err := os.Stat(devstack.SlapdBinary); err != nil {
		devstacktest.SkipUnlessRequired(t, "slapd not installed (%s)", devstack.SlapdBinary)
	}
	ctx := context.Background()
	d := demo.Generate(20, 1)
	sl := &devstack.Slapd{Dir: t.TempDir(), Suffix: d.Suffix, AdminDN: "cn=admin," + d.Suffix, AdminPassword: "pw",
		NoContentSync: noSync}
	require.NoError(t, sl.Start(ctx))
	t.Cleanup(func() { _ = sl.Stop() })
	require.NoError(t, devstack.LoadEntries(ctx, sl.URL(), sl.AdminDN, "pw", d.Entries))
	c, err := ldap.DialURL(sl.URL())
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	require.NoError(t, c.Bind(sl.AdminDN, "pw"))
	return sl, directory.Config{URL: sl.URL(), BindDN: sl.AdminDN, BindPassword: "pw",
		AllowPlaintextBind: true, BaseDN: demo.PeopleDN}, c
}

// entryCSN is the CSN of dn's last change: a cookie the server sends after that change
// names it.
func entryCSN(t *testing.T, c *ldap.Conn, dn string) string {
	t.Helper()
	res, err := c.Search(ldap.NewSearchRequest(dn, ldap.ScopeBaseObject, ldap.NeverDerefAliases, 1, 0, false,
		"(objectClass=*)", []string{"entryCSN"}, nil))
	require.NoError(t, err)
	require.Len(t, res.Entries, 1)
	return res.Entries[0].GetAttributeValue("entryCSN")
}

// cookie is the content synchronization cookie in a mark.
func cookie(t *testing.T, mark string) string {
	t.Helper()
	require.True(t, strings.HasPrefix(mark, "cookie:"), "mark %q is a cookie", mark)
	b, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(mark, "cookie:"))
	require.NoError(t, err)
	return string(b)
}

// watching runs Wait in the background; started is closed at its first heartbeat (the
// refresh read: the server now tells of every change).
func watching(ctx context.Context, d *watch.Directory, since string, tm watch.Timing) (started chan struct{}, done chan waitEnd) {
	started, done = make(chan struct{}), make(chan waitEnd, 1)
	var once sync.Once
	go func() {
		res, err := watch.Wait(ctx, d, since, tm, func(string) { once.Do(func() { close(started) }) })
		done <- waitEnd{res, err}
	}()
	return started, done
}

type waitEnd struct {
	res watch.Result
	err error
}

var persistTiming = watch.Timing{Poll: 50 * time.Millisecond, Quiet: 300 * time.Millisecond, Max: 5 * time.Second, Give: time.Hour}

// On OpenLDAP, the watch is a persistent search of the base DN: a write outside it (a group)
// tells it nothing, a user added under it ends Wait as changed, with the cookie of that
// write, and the mark is never polled.
func TestPersistentWatchEndsAtAWriteUnderTheBaseDN(t *testing.T) {
	_, cfg, admin := slapdWatch(t, false)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	d := watch.Open(cfg)
	defer d.Close()
	started, done := watching(ctx, d, "", persistTiming)
	select {
	case <-started:
	case e := <-done:
		t.Fatalf("Wait ended before it watched: %+v", e)
	}

	outside := ldap.NewModifyRequest(demo.GroupsDN, nil)
	outside.Replace("description", []string{"changed outside the base DN"})
	require.NoError(t, admin.Modify(outside))
	entry, _, _ := demo.Joiner(1)
	require.NoError(t, admin.Add(entry))
	csn := entryCSN(t, admin, entry.DN)

	e := <-done
	require.NoError(t, e.err)
	require.True(t, e.res.Changed)
	require.Equal(t, 1, e.res.Changes, "one notice: the group's change outside the base DN made none")
	require.Contains(t, cookie(t, e.res.Mark), csn, "the notice is the user's addition, the last write")
	require.Zero(t, d.Polls(), "the server told of the change: no mark was polled")
}

// A watch resumed from the cookie of an earlier one reports a change made while none ran
// at once (Start), and none when there was none; a first watch's refresh (every entry under
// the base DN) is no change.
func TestPersistentWatchResumesFromItsCookie(t *testing.T) {
	_, cfg, admin := slapdWatch(t, false)
	ctx := context.Background()
	first := watch.Open(cfg)
	mark, changed, err := first.Start(ctx, "", time.Second)
	require.NoError(t, err)
	require.False(t, changed, "the first refresh lists every entry: not a change")
	cookie(t, mark)
	require.NoError(t, first.Close())

	again := watch.Open(cfg)
	m2, changed, err := again.Start(ctx, mark, time.Second)
	require.NoError(t, err)
	require.False(t, changed, "nothing changed since the cookie")
	require.NoError(t, again.Close())

	entry, _, _ := demo.Joiner(2)
	require.NoError(t, admin.Add(entry)) // while no watch runs
	later := watch.Open(cfg)
	defer later.Close()
	// (Give: a change not reported at Start would end it unchanged, not hang the test.)
	res, err := watch.Wait(ctx, later, m2, watch.Timing{Quiet: time.Millisecond, Poll: time.Millisecond, Give: 5 * time.Second},
		func(string) {})
	require.NoError(t, err)
	require.True(t, res.Changed, "the addition made while no watch ran")
	require.Contains(t, cookie(t, res.Mark), entryCSN(t, admin, entry.DN))

	del := watch.Open(cfg)
	defer del.Close()
	require.NoError(t, admin.Del(ldap.NewDelRequest(entry.DN, nil)))
	_, changed, err = del.Start(ctx, res.Mark, time.Second)
	require.NoError(t, err)
	require.True(t, changed, "a deletion made while no watch ran")
}

// A cut connection (the server stopped) ends Wait with an error the activity retries (not
// ErrNoMark), instead of a watch that hangs.
func TestPersistentWatchEndsWhenTheConnectionIsCut(t *testing.T) {
	sl, cfg, _ := slapdWatch(t, false)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	d := watch.Open(cfg)
	defer d.Close()
	started, done := watching(ctx, d, "", persistTiming)
	<-started
	require.NoError(t, sl.Stop())
	e := <-done
	require.Error(t, e.err)
	require.NoError(t, ctx.Err(), "Wait ended on its own, not at the test's timeout")
	require.False(t, errors.Is(e.err, watch.ErrNoMark), "a retryable error: %v", e.err)
	require.False(t, e.res.Changed)
}

// A directory without content synchronization is polled instead, with one log line however
// many watches start; without syncprov it keeps no contextCSN either: ErrNoMark (the
// activity stops watching for good), after one read, not an error loop.
func TestWatchFallsBackToPollingWithOneLogLine(t *testing.T) {
	_, cfg, _ := slapdWatch(t, true)
	var logs bytes.Buffer
	prev := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(&logs, nil)))
	defer slog.SetDefault(prev)
	for range 2 {
		d := watch.Open(cfg)
		_, err := watch.Wait(context.Background(), d, "", persistTiming, func(string) {})
		require.ErrorIs(t, err, watch.ErrNoMark)
		require.Equal(t, 0, d.Polls(), "the one read of the mark failed")
		require.NoError(t, d.Close())
	}
	require.Equal(t, 1, strings.Count(logs.String(), "refuses a persistent content synchronization"), logs.String())
	require.NotContains(t, logs.String(), "pw")
}
