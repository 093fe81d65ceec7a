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

// Incremental reads: the user and group entries a read takes are kept in a persistent
// mirror (MirrorStore, the store's, per organization). SyncMirror asks the directory only
// for what changed since the mirror's mark and applies it: OpenLDAP by RFC 4533 content
// synchronization (refreshOnly, a cookie; mirror_syncrepl.go), Active Directory by
// uSNChanged high-water marks of one DC (mirror_usn.go). SnapshotFromMirror then runs the
// very same snapshot as a full read (SnapshotWith) over the mirror's entries instead of a
// paged search, so the planner's input is the same either way.
//
// A read of the mirror is all or nothing: both kinds (users and groups) are applied in one
// MirrorTx and committed only when both refreshes ended whole, so the mirror never holds
// the users of one read beside the groups of another, nor a cookie without its entries.

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
	UUID  string              // entryUUID, or objectGUID in canonical form
	DN    string              // as the directory spells it
	Attrs map[string][][]byte // attribute name -> values
}

// SyncState is where a kind's incremental reads stand.
type SyncState struct {
	Scope  string    // what the entries were read with (base, filter, attributes); another needs a full read
	Cookie []byte    // the server's mark; nil: none yet
	FullAt time.Time // the last full read
	// Beyond names the entries that were newer than Cookie's mark when it was read
	// (beyondTheMark); "" when none were. ListedAt is when a read last listed the kind's IDs
	// to drop what the server no longer has (a full read lists them all).
	Beyond   string
	ListedAt time.Time
	// Entries is how many entries of the kind the mirror held when this state was
	// committed: a mirror that holds another number was changed outside a read (or lost
	// rows), and its mark no longer describes it.
	Entries int
}

// MirrorStore is one organization's mirror.
type MirrorStore interface {
	// Begin starts one read of the mirror (both kinds). Reads of one organization's mirror
	// run one at a time: Begin waits for the one under way, and the MirrorTx sees what it
	// committed.
	Begin(ctx context.Context) (MirrorTx, error)
	// View opens a consistent view of the mirror as the last committed read left it.
	View(ctx context.Context) (MirrorView, error)
}

// MirrorView is a read-only, consistent view of a mirror.
type MirrorView interface {
	// Entries hands the entries of kind to page, some at a time.
	Entries(ctx context.Context, kind string, page func([]MirrorEntry) error) error
	// Some is Entries for the entries of kind among uuids.
	Some(ctx context.Context, kind string, uuids []string, page func([]MirrorEntry) error) error
	// Names is Entries without the attributes: UUID and DN.
	Names(ctx context.Context, kind string, page func([]MirrorEntry) error) error
	// Count is how many entries of kind the view holds.
	Count(ctx context.Context, kind string) (int, error)
	Close(ctx context.Context)
}

// MirrorTx applies one read: all of it or, on Rollback, nothing.
type MirrorTx interface {
	// State returns kind's state (ok false: never read) and how many entries of kind the
	// mirror holds now.
	State(ctx context.Context, kind string) (st SyncState, held int, ok bool, err error)
	// Clear drops every entry of kind (a full read follows).
	Clear(ctx context.Context, kind string) error
	Put(ctx context.Context, kind string, es []MirrorEntry) error // added or changed (keyed by UUID)
	// Delete drops the entries (those it holds) and says how many it held.
	Delete(ctx context.Context, kind string, uuids []string) (int, error)
	// Keep drops every entry of kind but these (a present phase: the whole set that remains)
	// and returns the entries it dropped.
	Keep(ctx context.Context, kind string, uuids []string) ([]MirrorEntry, error)
	// DNs returns the DN the mirror holds for each of uuids it holds.
	DNs(ctx context.Context, kind string, uuids []string) (map[string]string, error)
	// Entries returns the entries of kind the mirror holds among uuids.
	Entries(ctx context.Context, kind string, uuids []string) ([]MirrorEntry, error)
	// SetState stores kind's state, its Entries the number of entries of kind held now.
	SetState(ctx context.Context, kind string, st SyncState) error
	Commit(ctx context.Context) error
	Rollback(ctx context.Context)
}

// SyncStats describes one SyncMirror.
type SyncStats struct {
	Full    bool   // a full read replaced the mirror (Reason says why)
	Reason  string // why a full read: "first read", "scope changed", "scheduled", "cookie refused", ...
	Entries int    // entries the server sent with their attributes (added, changed, or all on a full read)
	Deleted int    // entries dropped from the mirror as deleted (or out of scope) on the server
	Present int    // unchanged entries the server named in a present phase
	// Checked counts the entries the server named without their attributes to find what
	// changed (AD: the objects changed since the mark, deleted ones included).
	Checked int
	// Changes is what the read changed in the mirror; nil when not known (a full read, a
	// present phase, on AD a group moved in or out or renamed, too many changes).
	Changes *Changes
}

func (s *SyncStats) add(o SyncStats) {
	s.Full = s.Full || o.Full
	if s.Reason == "" {
		s.Reason = o.Reason
	}
	s.Entries += o.Entries
	s.Deleted += o.Deleted
	s.Present += o.Present
	s.Checked += o.Checked
}

// ErrNoContentSync: the directory does not offer reads of its changes (no syncprov
// overlay on OpenLDAP; on AD, deleted objects the bind account cannot see): read it in full.
var ErrNoContentSync = errors.New("the directory does not offer content synchronization (RFC 4533, OpenLDAP's syncprov overlay)")

// SupportsIncremental reports whether SyncMirror can read this directory's changes
// (OpenLDAP's content synchronization, AD's uSNChanged).
func (r *Reader) SupportsIncremental() bool { return true }

// mirrorKind is what one kind of entries is read with.
type mirrorKind struct {
	kind, filter string
	attrs        []string // sorted, lower case, unique
}

// mirrorKinds are the user entries (UserFilter, with the attributes a snapshot asking for
// extraAttrs reads) and the group entries (GroupFilter, members; on AD the objectSid
// that primary groups are found by).
func (r *Reader) mirrorKinds(extraAttrs []string) []mirrorKind {
	groupAttrs := []string{"member", r.cfg.idAttribute()}
	if r.cfg.Profile == ProfileAD {
		groupAttrs = append(groupAttrs, "objectSid")
	}
	return []mirrorKind{
		{MirrorUsers, r.cfg.UserFilter, canonicalAttrs(append(r.userAttributes(extraAttrs), r.cfg.idAttribute()))},
		{MirrorGroups, r.cfg.GroupFilter, canonicalAttrs(groupAttrs)},
	}
}

func canonicalAttrs(attrs []string) []string {
	attrs = slices.Clone(attrs)
	for i := range attrs {
		attrs[i] = strings.ToLower(attrs[i])
	}
	slices.Sort(attrs)
	return slices.Compact(attrs)
}

// SyncMirror brings m up to date with the directory: the user entries and the group
// entries. It reads only what changed since m's mark, and everything of a kind (replacing
// it) when m has no usable mark for it, was read with another scope, holds another number
// of entries than its mark was committed with, its last full read is fullEvery or more ago
// (<= 0: DefaultFullReadEvery), or the server refuses the mark. Both kinds are committed
// together, and only when both were read whole: any error leaves m as it was.
func (r *Reader) SyncMirror(ctx context.Context, m MirrorStore, extraAttrs []string, fullEvery time.Duration) (_ SyncStats, err error) {
	if fullEvery <= 0 {
		fullEvery = DefaultFullReadEvery
	}
	// The base entry's ID names this directory: another server (or one loaded again) at
	// the same URL must not be asked with this one's mark.
	base, err := r.baseUUID(ctx)
	if err != nil {
		return SyncStats{}, err
	}
	tx, err := m.Begin(ctx)
	if err != nil {
		return SyncStats{}, err
	}
	defer func() {
		if err != nil {
			tx.Rollback(context.WithoutCancel(ctx))
		}
	}()
	var stats SyncStats
	rec := &recordingTx{MirrorTx: tx, ad: r.cfg.Profile == ProfileAD}
	if r.cfg.Profile == ProfileAD {
		stats, err = r.syncUSN(ctx, rec, base, r.mirrorKinds(extraAttrs), fullEvery)
	} else {
		stats, err = r.syncRefresh(ctx, rec, base, r.mirrorKinds(extraAttrs), fullEvery)
	}
	if err != nil {
		return SyncStats{}, err
	}
	if !stats.Full {
		stats.Changes = rec.changes()
	}
	if err := ctx.Err(); err != nil {
		return SyncStats{}, err
	}
	if err := tx.Commit(ctx); err != nil {
		return SyncStats{}, err
	}
	return stats, nil
}

// fullReadReason says why kind k needs a full read ("" for none) given its state.
func (r *Reader) fullReadReason(st SyncState, held int, ok bool, scope string, fullEvery time.Duration) string {
	switch {
	case !ok || len(st.Cookie) == 0:
		return "first read"
	case st.Scope != scope:
		return "scope changed"
	case st.Entries != held:
		// Rows lost or added outside a read (a restore, a manual delete): the mark would
		// read "nothing changed" over a mirror that is not what it describes.
		return "mirror incomplete"
	case r.clock().Sub(st.FullAt) >= fullEvery:
		return "scheduled"
	}
	return ""
}

// baseUUID reads the immutable ID of the base entry.
func (r *Reader) baseUUID(ctx context.Context) (string, error) {
	req := ldap.NewSearchRequest(r.cfg.BaseDN, ldap.ScopeBaseObject, ldap.NeverDerefAliases, 1, 0, false,
		"(objectClass=*)", []string{r.cfg.idAttribute()}, nil)
	var res *ldap.SearchResult
	if err := r.guard(ctx, func() (err error) { res, err = r.conn.Search(req); return err }); err != nil {
		return "", fmt.Errorf("directory %s: read base %q: %w", r.cfg.URL, r.cfg.BaseDN, err)
	}
	if len(res.Entries) == 0 {
		return "", fmt.Errorf("directory %s: base %q not found", r.cfg.URL, r.cfg.BaseDN)
	}
	return r.entryID(res.Entries[0]), nil
}

// mirrorScope names what a kind's entries are read with.
func mirrorScope(server, url, base, filter string, attrs []string) string {
	h := sha256.Sum256([]byte(strings.Join([]string{server, url, normalizeDN(base), filter, strings.Join(attrs, ",")}, "\n")))
	return hex.EncodeToString(h[:])
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
// directory at the mirror's state, without reading the directory. Users and groups come
// from one consistent view of the mirror.
func (r *Reader) SnapshotFromMirror(ctx context.Context, m MirrorStore, idx MembershipIndex, groupDNs []string,
	extraAttrs []string, batchSize int, emit func([]User) error) (Stats, error) {
	v, err := m.View(ctx)
	if err != nil {
		if idx != nil {
			_ = idx.Close(ctx)
		}
		return Stats{}, err
	}
	defer v.Close(context.WithoutCancel(ctx))
	mr := *r
	mr.cfg.InChain = false // the mirror holds the groups' members
	mr.mirror = v
	return mr.SnapshotWith(ctx, idx, groupDNs, extraAttrs, batchSize, emit)
}

// mirrorSearch serves pagedSearch from the mirror: the user or group entries, by filter
// (the users among mirrorOnly when it is set).
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
	entries := func(ms []MirrorEntry) error {
		es := make([]*ldap.Entry, len(ms))
		for i, me := range ms {
			es[i] = me.ldapEntry()
		}
		return page(es)
	}
	if kind == MirrorUsers && r.mirrorOnly != nil {
		return r.mirror.Some(ctx, kind, r.mirrorOnly, entries)
	}
	return r.mirror.Entries(ctx, kind, entries)
}

// ErrTooManyChanges: a read's changes touch too many users for a delta snapshot to be worth
// it (more than a tenth of the mirror's users, and more than minTouched), they are not
// known, or on AD they change a nesting (Changes.PrimaryGroups): take the full snapshot
// (SnapshotFromMirror).
var ErrTooManyChanges = errors.New("directory: the changes touch too many users for a delta snapshot")

// minTouched: a delta snapshot of this many users is always worth it.
const minTouched = 100

// SnapshotChanges is SnapshotFromMirror for only the users ch (the changes the last
// SyncMirror made to m) touched: the users whose entries changed, were deleted, or are
// reachable in the group graph from a member some group gained or lost (Seeds). The users
// it emits are exactly those SnapshotFromMirror would emit among them, with the same groups;
// touched are their IDs, emitted or not (left every ruled group, deleted). Stats count the
// touched users, but Users (every user entry), Groups and MissingGroups count as
// SnapshotFromMirror's. It emits nothing when it returns ErrTooManyChanges. Memory holds the
// touched users' IDs and DNs and the group graph without the other users' memberships.
func (r *Reader) SnapshotChanges(ctx context.Context, m MirrorStore, groupDNs, extraAttrs []string,
	batchSize int, ch *Changes, emit func([]User) error) (_ Stats, touched []string, err error) {
	v, err := m.View(ctx)
	if err != nil {
		return Stats{}, nil, err
	}
	defer v.Close(context.WithoutCancel(ctx))
	ids, users, err := touchedUsers(ctx, v, ch)
	if err != nil {
		return Stats{}, nil, err
	}
	// The touched users' groups need the graph's edges between groups and to the touched
	// users only: few, held in memory, where a full snapshot's index holds every membership.
	keep, err := touchedGraph(ctx, v, ids)
	if err != nil {
		return Stats{}, nil, err
	}
	mr := *r
	mr.cfg.InChain = false // the mirror holds the groups' members
	mr.mirror = v
	mr.mirrorOnly = ids
	touched = slices.Clone(ids)
	stats, err := mr.SnapshotWith(ctx, keptIndex{MembershipIndex: NewMemoryIndex(), keep: keep}, groupDNs, extraAttrs, batchSize, func(us []User) error {
		for _, u := range us {
			if _, found := slices.BinarySearch(ids, u.ExternalID); !found {
				touched = append(touched, u.ExternalID) // spelled otherwise than the mirror's UUID
			}
		}
		return emit(us)
	})
	if err != nil {
		return Stats{}, nil, err
	}
	stats.Users = users
	slices.Sort(touched)
	return stats, slices.Compact(touched), nil
}

// touchedGraph returns the members a delta snapshot's membership index keeps: groups (their
// normalized DNs), the users ids (theirs), and AD's primary groups (primaryGroupKey).
func touchedGraph(ctx context.Context, v MirrorView, ids []string) (func(member string) bool, error) {
	dns := map[string]bool{}
	add := func(es []MirrorEntry) error {
		for _, e := range es {
			dns[normalizeDN(e.DN)] = true
		}
		return nil
	}
	if err := v.Names(ctx, MirrorGroups, add); err != nil {
		return nil, err
	}
	if err := v.Some(ctx, MirrorUsers, ids, add); err != nil {
		return nil, err
	}
	return func(m string) bool { return dns[m] || strings.HasPrefix(m, primaryGroupKeyPrefix) }, nil
}

// keptIndex is a MembershipIndex that records only the members keep keeps.
type keptIndex struct {
	MembershipIndex
	keep func(member string) bool
}

func (x keptIndex) AddGroups(ctx context.Context, groups []GroupMembers) error {
	kept := make([]GroupMembers, len(groups))
	for i, g := range groups {
		kept[i].DN = g.DN
		for _, m := range g.Members {
			if x.keep(m) {
				kept[i].Members = append(kept[i].Members, m)
			}
		}
	}
	return x.MembershipIndex.AddGroups(ctx, kept)
}

// touchedUsers returns the IDs (sorted) of the users ch touched in the view, and how many
// user entries it holds; ErrTooManyChanges when ch is nil or touches too many.
func touchedUsers(ctx context.Context, v MirrorView, ch *Changes) ([]string, int, error) {
	if ch == nil {
		return nil, 0, ErrTooManyChanges
	}
	users, err := v.Count(ctx, MirrorUsers)
	if err != nil {
		return nil, 0, err
	}
	groups := func(page func([]GroupMembers) error) error {
		return v.Entries(ctx, MirrorGroups, func(es []MirrorEntry) error {
			gs := make([]GroupMembers, len(es))
			for i, e := range es {
				gs[i] = groupMembers(e)
			}
			return page(gs)
		})
	}
	names := func(page func([]MirrorEntry) error) error { return v.Names(ctx, MirrorUsers, page) }
	ids, ok, err := Touched(ctx, ch, groups, names, max(users/10, minTouched))
	if err != nil {
		return nil, 0, err
	}
	if !ok {
		return nil, 0, ErrTooManyChanges
	}
	return ids, users, nil
}
