package directory

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/go-ldap/ldap/v3"
)

// Incremental reads (OpenLDAP, RFC 4533 content synchronization in refreshOnly mode): the
// user and group entries a read takes are kept in a persistent mirror (MirrorStore, the
// store's, per organization). SyncMirror asks the server only for what changed since the
// mirror's cookie and applies it; SnapshotFromMirror then runs the very same snapshot as
// a full read (SnapshotWith) over the mirror's entries instead of a paged search, so the
// planner's input is the same either way.

// Kinds of mirrored entries.
const (
	MirrorUsers  = "user"
	MirrorGroups = "group"
)

// DefaultFullReadEvery is how often SyncMirror reads everything again (and replaces the
// mirror) when not told otherwise.
const DefaultFullReadEvery = 24 * time.Hour

// MirrorEntry is one directory entry as the mirror keeps it.
type MirrorEntry struct {
	UUID  string              // entryUUID
	DN    string              // as the directory spells it
	Attrs map[string][][]byte // attribute name -> values
}

// SyncState is where a kind's incremental reads stand.
type SyncState struct {
	Scope  string    // what the entries were read with (base, filter, attributes); another needs a full read
	Cookie []byte    // the server's; nil: none yet
	FullAt time.Time // the last full read
}

// MirrorStore is one organization's mirror.
type MirrorStore interface {
	// SyncState returns kind's state; ok is false when there is none (never read).
	SyncState(ctx context.Context, kind string) (st SyncState, ok bool, err error)
	// Begin starts applying one read of kind. With full, the read replaces every entry.
	Begin(ctx context.Context, kind string, full bool) (MirrorTx, error)
	// Entries hands the mirror's entries of kind to page, some at a time.
	Entries(ctx context.Context, kind string, page func([]MirrorEntry) error) error
}

// MirrorTx applies one read: all of it or, on Rollback, nothing.
type MirrorTx interface {
	Put(ctx context.Context, es []MirrorEntry) error // added or changed (keyed by UUID)
	// Delete drops the entries (those it holds) and says how many it held.
	Delete(ctx context.Context, uuids []string) (int, error)
	// Commit stores st. keep, when not nil, is the whole set of entries that remain (a
	// present phase): every other one is deleted.
	Commit(ctx context.Context, st SyncState, keep []string) error
	Rollback(ctx context.Context)
}

// SyncStats describes one SyncMirror.
type SyncStats struct {
	Full    bool   // a full read replaced the mirror (Reason says why)
	Reason  string // why a full read: "first read", "scope changed", "scheduled", "cookie refused"
	Entries int    // entries the server sent with their attributes (added, changed, or all on a full read)
	Deleted int    // entries dropped from the mirror as deleted (or out of scope) on the server
	Present int    // unchanged entries the server named in a present phase
}

func (s *SyncStats) add(o SyncStats) {
	s.Full = s.Full || o.Full
	if s.Reason == "" {
		s.Reason = o.Reason
	}
	s.Entries += o.Entries
	s.Deleted += o.Deleted
	s.Present += o.Present
}

// ErrNoContentSync: the directory does not offer content synchronization (no syncprov
// overlay): read it in full.
var ErrNoContentSync = errors.New("the directory does not offer content synchronization (RFC 4533, OpenLDAP's syncprov overlay)")

// ldapSyncRefreshRequired is e-syncRefreshRequired (RFC 4533): the cookie is unusable.
const ldapSyncRefreshRequired = 4096

// SupportsIncremental reports whether SyncMirror can read this directory's changes
// (OpenLDAP's content synchronization).
func (r *Reader) SupportsIncremental() bool { return r.cfg.Profile != ProfileAD }

// SyncMirror brings m up to date with the directory: the user entries (UserFilter, with
// the attributes a snapshot asking for extraAttrs reads) and the group entries
// (GroupFilter, members). It reads only what changed since m's cookie, and everything
// (replacing m) when m has no usable cookie, was read with another scope, its last full
// read is fullEvery or more ago (<= 0: DefaultFullReadEvery), or the server refuses the
// cookie. Any error leaves m as it was (per kind).
func (r *Reader) SyncMirror(ctx context.Context, m MirrorStore, extraAttrs []string, fullEvery time.Duration) (SyncStats, error) {
	if !r.SupportsIncremental() {
		return SyncStats{}, errors.New("directory: incremental reads need OpenLDAP's content synchronization (not AD)")
	}
	if fullEvery <= 0 {
		fullEvery = DefaultFullReadEvery
	}
	// The base entry's entryUUID names this directory: another server (or one loaded
	// again) at the same URL must not be asked with this one's cookie.
	base, err := r.baseUUID(ctx)
	if err != nil {
		return SyncStats{}, err
	}
	var total SyncStats
	for _, k := range []struct {
		kind, filter string
		attrs        []string
	}{
		{MirrorUsers, r.cfg.UserFilter, append(r.userAttributes(extraAttrs), "entryUUID")},
		{MirrorGroups, r.cfg.GroupFilter, []string{"member", "entryUUID"}},
	} {
		s, err := r.syncKind(ctx, m, base, k.kind, k.filter, k.attrs, fullEvery)
		if err != nil {
			return SyncStats{}, err
		}
		total.add(s)
	}
	return total, nil
}

func (r *Reader) syncKind(ctx context.Context, m MirrorStore, server, kind, filter string, attrs []string, fullEvery time.Duration) (SyncStats, error) {
	attrs = slices.Clone(attrs)
	for i := range attrs {
		attrs[i] = strings.ToLower(attrs[i])
	}
	slices.Sort(attrs)
	attrs = slices.Compact(attrs)
	scope := mirrorScope(server, r.cfg.URL, r.cfg.BaseDN, filter, attrs)
	st, ok, err := m.SyncState(ctx, kind)
	if err != nil {
		return SyncStats{}, err
	}
	reason := ""
	switch now := r.clock(); {
	case !ok || len(st.Cookie) == 0:
		reason = "first read"
	case st.Scope != scope:
		reason = "scope changed"
	case now.Sub(st.FullAt) >= fullEvery:
		reason = "scheduled"
	}
	if reason == "" {
		s, err := r.refresh(ctx, m, kind, filter, attrs, scope, st)
		if err == nil || !ldap.IsErrorWithCode(err, ldapSyncRefreshRequired) {
			return s, err
		}
		reason = "cookie refused"
	}
	s, err := r.refresh(ctx, m, kind, filter, attrs, scope, SyncState{})
	s.Full, s.Reason = true, reason
	return s, err
}

// baseUUID reads the entryUUID of the base entry.
func (r *Reader) baseUUID(ctx context.Context) (string, error) {
	req := ldap.NewSearchRequest(r.cfg.BaseDN, ldap.ScopeBaseObject, ldap.NeverDerefAliases, 1, 0, false,
		"(objectClass=*)", []string{"entryUUID"}, nil)
	var res *ldap.SearchResult
	if err := r.guard(ctx, func() (err error) { res, err = r.conn.Search(req); return err }); err != nil {
		return "", fmt.Errorf("directory %s: read base %q: %w", r.cfg.URL, r.cfg.BaseDN, err)
	}
	if len(res.Entries) == 0 {
		return "", fmt.Errorf("directory %s: base %q not found", r.cfg.URL, r.cfg.BaseDN)
	}
	return res.Entries[0].GetAttributeValue("entryUUID"), nil
}

// mirrorScope names what a kind's entries are read with.
func mirrorScope(server, url, base, filter string, attrs []string) string {
	h := sha256.Sum256([]byte(strings.Join([]string{server, url, normalizeDN(base), filter, strings.Join(attrs, ",")}, "\n")))
	return hex.EncodeToString(h[:])
}

// refresh runs one refreshOnly content synchronization from st.Cookie (nil: everything)
// and applies it to m in one transaction.
func (r *Reader) refresh(ctx context.Context, m MirrorStore, kind, filter string, attrs []string, scope string, st SyncState) (_ SyncStats, err error) {
	full := len(st.Cookie) == 0
	tx, err := m.Begin(ctx, kind, full)
	if err != nil {
		return SyncStats{}, err
	}
	committed := false
	defer func() {
		if !committed {
			tx.Rollback(context.WithoutCancel(ctx))
		}
	}()
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	req := ldap.NewSearchRequest(r.cfg.BaseDN, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases,
		0, 0, false, filter, attrs, nil)
	resp := r.conn.Syncrepl(sctx, req, 64, ldap.SyncRequestModeRefreshOnly, st.Cookie, false)

	var stats SyncStats
	var (
		cookie       = st.Cookie
		present      []string // present phase: unchanged entries
		put          []string // entries sent in full
		presentPhase = true   // until the server says it ran a delete phase
		done         bool     // the server ended the refresh (Sync Done): the read is whole
		batch        []MirrorEntry
	)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		err := tx.Put(ctx, batch)
		batch = batch[:0]
		return err
	}
	for resp.Next() {
		if e := resp.Entry(); e != nil {
			state, _ := ldap.FindControl(resp.Controls(), ldap.ControlTypeSyncState).(*ldap.ControlSyncState)
			if state == nil {
				return SyncStats{}, fmt.Errorf("directory %s: sync of %q: entry without a sync state", r.cfg.URL, filter)
			}
			if len(state.Cookie) > 0 {
				cookie = state.Cookie
			}
			id := state.EntryUUID.String()
			switch state.State {
			case ldap.SyncStateAdd, ldap.SyncStateModify:
				stats.Entries++
				put = append(put, id)
				batch = append(batch, mirrorEntry(id, e))
				if len(batch) >= r.cfg.PageSize {
					if err := flush(); err != nil {
						return SyncStats{}, err
					}
				}
			case ldap.SyncStatePresent:
				stats.Present++
				present = append(present, id)
			case ldap.SyncStateDelete:
				n, err := tx.Delete(ctx, []string{id})
				if err != nil {
					return SyncStats{}, err
				}
				stats.Deleted += n
			}
			continue
		}
		for _, c := range resp.Controls() {
			switch c := c.(type) {
			case *ldap.ControlSyncInfo:
				switch {
				case c.NewCookie != nil:
					cookie = c.NewCookie.Cookie
				case c.RefreshDelete != nil:
					cookie, presentPhase = orCookie(c.RefreshDelete.Cookie, cookie), false
				case c.RefreshPresent != nil:
					cookie = orCookie(c.RefreshPresent.Cookie, cookie)
				case c.SyncIdSet != nil:
					cookie = orCookie(c.SyncIdSet.Cookie, cookie)
					ids := make([]string, len(c.SyncIdSet.SyncUUIDs))
					for i, u := range c.SyncIdSet.SyncUUIDs {
						ids[i] = u.String()
					}
					if c.SyncIdSet.RefreshDeletes {
						// syncprov's session log names the deletes of every search
						// (also of other kinds' entries): count only ours.
						n, err := tx.Delete(ctx, ids)
						if err != nil {
							return SyncStats{}, err
						}
						stats.Deleted += n
					} else {
						stats.Present += len(ids)
						present = append(present, ids...)
					}
				}
			case *ldap.ControlSyncDone:
				done = true
				cookie = orCookie(c.Cookie, cookie)
				if c.RefreshDeletes {
					presentPhase = false
				}
			}
		}
	}
	if err := resp.Err(); err != nil {
		if ldap.IsErrorWithCode(err, ldap.LDAPResultUnavailableCriticalExtension) {
			return SyncStats{}, fmt.Errorf("directory %s: %w", r.cfg.URL, ErrNoContentSync)
		}
		return SyncStats{}, fmt.Errorf("directory %s: sync of %q under %q: %w", r.cfg.URL, filter, r.cfg.BaseDN, err)
	}
	if err := ctx.Err(); err != nil {
		return SyncStats{}, err
	}
	if !done {
		// The stream ended without the server's Sync Done (a connection lost mid-read ends it
		// without an error): what was read is a part, and a part must never replace the
		// mirror (its users would look deleted). The read fails; the run retries it.
		return SyncStats{}, fmt.Errorf("directory %s: sync of %q under %q ended before the server finished it (connection lost?)",
			r.cfg.URL, filter, r.cfg.BaseDN)
	}
	if err := flush(); err != nil {
		return SyncStats{}, err
	}
	if len(cookie) == 0 {
		return SyncStats{}, fmt.Errorf("directory %s: sync of %q sent no cookie: %w", r.cfg.URL, filter, ErrNoContentSync)
	}
	var keep []string
	if presentPhase && !full {
		keep = append(present, put...)
	}
	next := SyncState{Scope: scope, Cookie: cookie, FullAt: st.FullAt}
	if full {
		next.FullAt = r.clock()
	}
	if err := tx.Commit(ctx, next, keep); err != nil {
		return SyncStats{}, err
	}
	committed = true
	return stats, nil
}

func orCookie(c, old []byte) []byte {
	if len(c) > 0 {
		return c
	}
	return old
}

func mirrorEntry(id string, e *ldap.Entry) MirrorEntry {
	me := MirrorEntry{UUID: id, DN: e.DN, Attrs: make(map[string][][]byte, len(e.Attributes))}
	for _, a := range e.Attributes {
		me.Attrs[a.Name] = append(me.Attrs[a.Name], a.ByteValues...)
	}
	return me
}

func (me MirrorEntry) ldapEntry() *ldap.Entry {
	e := &ldap.Entry{DN: me.DN}
	for _, name := range slices.Sorted(maps.Keys(me.Attrs)) {
		vs := me.Attrs[name]
		a := &ldap.EntryAttribute{Name: name, ByteValues: vs, Values: make([]string, len(vs))}
		for i, v := range vs {
			a.Values[i] = string(v)
		}
		e.Attributes = append(e.Attributes, a)
	}
	return e
}

// SnapshotFromMirror is SnapshotWith over m's entries (read them current with SyncMirror
// and the same extraAttrs first): the same users, groups and stats as a full read of the
// directory at the mirror's state, without reading the directory.
func (r *Reader) SnapshotFromMirror(ctx context.Context, m MirrorStore, idx MembershipIndex, groupDNs []string,
	extraAttrs []string, batchSize int, emit func([]User) error) (Stats, error) {
	mr := *r
	mr.cfg.InChain = false // the mirror holds the groups' members
	mr.mirror = m
	return mr.SnapshotWith(ctx, idx, groupDNs, extraAttrs, batchSize, emit)
}

// mirrorSearch serves pagedSearch from the mirror: the user or group entries, by filter.
func (r *Reader) mirrorSearch(ctx context.Context, filter string, page func([]*ldap.Entry) error) error {
	var kind string
	switch filter {
	case r.cfg.UserFilter:
		kind = MirrorUsers
	case r.cfg.GroupFilter:
		kind = MirrorGroups
	default:
		return fmt.Errorf("directory: the mirror has no search %q", filter)
	}
	return r.mirror.Entries(ctx, kind, func(ms []MirrorEntry) error {
		es := make([]*ldap.Entry, len(ms))
		for i, me := range ms {
			es[i] = me.ldapEntry()
		}
		return page(es)
	})
}
