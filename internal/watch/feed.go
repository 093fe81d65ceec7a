package watch

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/usersync/usersync/internal/directory"
)

// Directory is a real directory as a Source: a persistent content synchronization on
// OpenLDAP, else a polled mark (Probe). Close it after Wait.
type Directory struct {
	cfg  directory.Config
	feed *feed   // the persistent search, or
	poll *Poller // the polled mark
	conn *ldap.Conn
}

// Open returns the directory of cfg as a Source; it connects at Start.
func Open(cfg directory.Config) *Directory { return &Directory{cfg: cfg} }

// Polls is how many times the mark was read (0: the directory tells of its changes).
func (d *Directory) Polls() int {
	if d.poll == nil {
		return 0
	}
	return d.poll.Reads
}

// Close ends the connection.
func (d *Directory) Close() error {
	if d.feed != nil {
		d.feed.cancel()
	}
	if d.conn == nil {
		return nil
	}
	return d.conn.Close()
}

// cookieMark prefixes a mark that is a content synchronization cookie (base64): any other
// is a polled one (a contextCSN or a USN).
const cookieMark = "cookie:"

// warned: the directories (URL and base DN) whose refusal of content synchronization was
// logged, so that a watch restarted every attempt says it once per process.
var warned sync.Map

// Start connects, and on OpenLDAP starts the persistent search from since's cookie; a
// server that refuses it is polled instead.
func (d *Directory) Start(ctx context.Context, since string, poll time.Duration) (string, bool, error) {
	conn, err := directory.Connect(ctx, d.cfg)
	if err != nil {
		return "", false, err
	}
	d.conn = conn
	probe := &Probe{conn: conn, cfg: d.cfg}
	if d.cfg.Profile != directory.ProfileAD {
		m, changed, err := d.startFeed(ctx, probe, since)
		if !errors.Is(err, directory.ErrNoContentSync) {
			return m, changed, err
		}
		if _, seen := warned.LoadOrStore(d.cfg.URL+" "+d.cfg.BaseDN, true); !seen {
			slog.Warn("watch: the directory refuses a persistent content synchronization (RFC 4533; "+
				"OpenLDAP's syncprov overlay on the database of the base DN gives it): polling its contextCSN instead",
				"url", d.cfg.URL, "baseDN", d.cfg.BaseDN, "every", poll)
		}
		// The refused search may have closed the connection: poll on a new one.
		conn.Close()
		if d.conn, err = directory.Connect(ctx, d.cfg); err != nil {
			return "", false, err
		}
		probe = &Probe{conn: d.conn, cfg: d.cfg}
	}
	d.poll = &Poller{Mark: probe.Mark}
	return d.poll.Start(ctx, since, poll)
}

// Next: the next notice of the persistent search, or the next read of the mark.
func (d *Directory) Next(ctx context.Context, until time.Time) (string, bool, error) {
	if d.feed != nil {
		return d.feed.next(ctx, until)
	}
	return d.poll.Next(ctx, until)
}

// feed is a running refreshAndPersist search.
type feed struct {
	cfg    directory.Config
	cancel context.CancelFunc
	notes  chan note
	cookie []byte
}

// note is one message of the search, as the watch sees it.
type note struct {
	cookie  []byte // the server's new cookie, if it sent one
	changed bool   // an entry was added, modified, moved or deleted
	present bool   // an unchanged entry (a refresh's present phase)
	done    bool   // the refresh ended: what follows is news
	err     error
}

// startFeed starts the search from since's cookie and reads its refresh: changed when it
// names an entry changed or deleted since. Without a cookie (a first watch, a mark from
// polling, or one the server refused) the refresh lists every entry under the base DN (DN
// and entryUUID only, as no attributes are asked for) and is read without counting as a
// change, except that a refused cookie, or a polled mark other than the contextCSN now,
// counts as one: a sync that may find nothing beats a change missed.
func (d *Directory) startFeed(ctx context.Context, probe *Probe, since string) (string, bool, error) {
	var cookie []byte
	changed := false
	switch {
	case strings.HasPrefix(since, cookieMark):
		c, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(since, cookieMark))
		if err != nil {
			return "", false, fmt.Errorf("watch: mark %q is not a cookie: %w", since, err)
		}
		cookie = c
	case since != "": // a contextCSN, from a watch that polled
		m, err := probe.Mark(ctx)
		if err != nil && !errors.Is(err, ErrNoMark) {
			return "", false, err
		}
		changed = m != since
	}
	f, moved, err := d.follow(ctx, cookie)
	if err != nil && cookie != nil && ldap.IsErrorWithCode(err, ldapSyncRefreshRequired) {
		// The server no longer knows that point (its session log moved on).
		d.conn.Close()
		if d.conn, err = directory.Connect(ctx, d.cfg); err != nil {
			return "", false, err
		}
		f, _, err = d.follow(ctx, nil)
		moved = true
	}
	if err != nil {
		return "", false, err
	}
	d.feed = f
	return f.mark(), changed || moved, nil
}

// ldapSyncRefreshRequired is e-syncRefreshRequired (RFC 4533): the cookie is unusable.
const ldapSyncRefreshRequired = 4096

// follow starts the persistent search on d.conn from cookie and reads its refresh phase.
func (d *Directory) follow(ctx context.Context, cookie []byte) (*feed, bool, error) {
	// The search lasts as long as the watch: no request timeout (the connect and bind
	// had theirs). A cut connection ends it with an error.
	d.conn.SetTimeout(0)
	sctx, cancel := context.WithCancel(context.Background())
	f := &feed{cfg: d.cfg, cancel: cancel, notes: make(chan note, 64), cookie: cookie}
	req := ldap.NewSearchRequest(d.cfg.BaseDN, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0, 0, false,
		"(objectClass=*)", []string{"1.1"}, nil)
	go f.pump(sctx, d.conn.Syncrepl(sctx, req, 64, ldap.SyncRequestModeRefreshAndPersist, cookie, false))

	changed, present := false, 0
	for {
		var n note
		select {
		case <-ctx.Done():
			cancel()
			return nil, false, ctx.Err()
		case n = <-f.notes:
		}
		if n.err != nil {
			cancel()
			if ldap.IsErrorWithCode(n.err, ldap.LDAPResultUnavailableCriticalExtension) {
				return nil, false, fmt.Errorf("directory %s: %w", d.cfg.URL, directory.ErrNoContentSync)
			}
			return nil, false, f.wrap(n.err)
		}
		if len(n.cookie) > 0 {
			f.cookie = n.cookie
		}
		changed = changed || n.changed
		if n.present {
			present++
		}
		if n.done {
			break
		}
	}
	if cookie == nil {
		return f, false, nil // everything, listed: nothing to compare with
	}
	// A present phase lists what is left and leaves the deletes unsaid (syncprov runs one
	// when its session log does not reach back to the cookie): a moved cookie may hide one.
	return f, changed || present > 0 && string(f.cookie) != string(cookie), nil
}

// mark is the cookie as a mark.
func (f *feed) mark() string {
	if len(f.cookie) == 0 {
		return ""
	}
	return cookieMark + base64.StdEncoding.EncodeToString(f.cookie)
}

func (f *feed) wrap(err error) error {
	return fmt.Errorf("directory %s: watch of %q: %w", f.cfg.URL, f.cfg.BaseDN, err)
}

// next waits for the search's next message until until.
func (f *feed) next(ctx context.Context, until time.Time) (string, bool, error) {
	tm := time.NewTimer(time.Until(until))
	defer tm.Stop()
	select {
	case <-ctx.Done():
		return f.mark(), false, ctx.Err()
	case <-tm.C:
		return f.mark(), false, nil
	case n := <-f.notes:
		if n.err != nil {
			return f.mark(), false, f.wrap(n.err)
		}
		if len(n.cookie) > 0 {
			f.cookie = n.cookie
		}
		return f.mark(), n.changed, nil
	}
}

// pump turns the search's messages into notes until it ends; its end is an error (the
// server does not end a persistent search on its own), unless ctx was cancelled.
func (f *feed) pump(ctx context.Context, resp ldap.Response) {
	send := func(n note) bool {
		select {
		case f.notes <- n:
			return true
		case <-ctx.Done():
			return false
		}
	}
	for resp.Next() {
		var n note
		if resp.Entry() != nil {
			st, _ := ldap.FindControl(resp.Controls(), ldap.ControlTypeSyncState).(*ldap.ControlSyncState)
			if st == nil {
				send(note{err: errors.New("an entry without a sync state")})
				return
			}
			n.cookie = st.Cookie
			n.changed = st.State != ldap.SyncStatePresent
			n.present = st.State == ldap.SyncStatePresent
		}
		for _, c := range resp.Controls() {
			switch c := c.(type) {
			case *ldap.ControlSyncInfo:
				switch {
				case c.NewCookie != nil:
					n.cookie = c.NewCookie.Cookie
				case c.RefreshDelete != nil:
					n.cookie, n.done = c.RefreshDelete.Cookie, c.RefreshDelete.RefreshDone
				case c.RefreshPresent != nil:
					n.cookie, n.done = c.RefreshPresent.Cookie, c.RefreshPresent.RefreshDone
				case c.SyncIdSet != nil:
					n.cookie = c.SyncIdSet.Cookie
					n.changed = c.SyncIdSet.RefreshDeletes
					n.present = !c.SyncIdSet.RefreshDeletes && len(c.SyncIdSet.SyncUUIDs) > 0
				}
			case *ldap.ControlSyncDone:
				send(note{err: errors.New("the server ended the search")})
				return
			}
		}
		if !send(n) {
			return
		}
	}
	if ctx.Err() != nil {
		return
	}
	err := resp.Err()
	if err == nil {
		err = errors.New("the server ended the search (connection lost?)")
	}
	send(note{err: err})
}
