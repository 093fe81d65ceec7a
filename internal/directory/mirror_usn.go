package directory

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/go-ldap/ldap/v3"
)

// Active Directory's incremental reads: uSNChanged high-water marks of one DC.
//
// Every change a DC applies (also a rename, a move, a delete, a member added) gives the
// object a new uSNChanged, from a counter of that DC (highestCommittedUSN in its rootDSE).
// The mark of a read is that counter, read before the read, with the DC's invocationId
// (its nTDSDSA object's): USNs are one DC's, and a DC restored from a backup gets a new
// invocationId, so a mark of another DC or of another life of it is not used (full read).
//
// A read from mark M asks (1) for the entries of the kind under BaseDN with
// uSNChanged > M, with all their attributes, as a full read would (groups' members
// through ranged retrieval), and (2) once for both kinds, for the IDs of every object of
// the domain changed since M, deleted ones included (show-deleted control), and whether
// each was created or deleted since M: an entry the mirror holds whose object changed but
// is not among (1) was deleted, moved out of BaseDN or no longer matches the filter, and is
// dropped. AD rewrites the member values naming an object it renames or moves without
// changing the groups' uSNChanged, so the groups that name a renamed entry are read again.
// Deleted objects must be visible to the bind account (Deleted Objects container); when
// they are not, a change read would miss deletions, and the directory is read in full
// (ErrNoContentSync).

// Controls.
const (
	controlShowDeleted = "1.2.840.113556.1.4.417" // LDAP_SERVER_SHOW_DELETED_OID
	// deletedObjectsWKGUID is the well-known GUID of a naming context's Deleted Objects.
	deletedObjectsWKGUID = "18e2ea80684f11d2b9aa00c04f79f805"
)

// usnMark is where a kind's AD reads stand: a DC's invocationId and its USN.
type usnMark struct {
	invocation string
	usn        int64
}

func (m usnMark) cookie() []byte { return fmt.Appendf(nil, "usn:%s:%d", m.invocation, m.usn) }

func parseUSNMark(b []byte) (usnMark, bool) {
	rest, ok := strings.CutPrefix(string(b), "usn:")
	if !ok {
		return usnMark{}, false
	}
	inv, n, ok := strings.Cut(rest, ":")
	usn, err := strconv.ParseInt(n, 10, 64)
	if !ok || err != nil || inv == "" {
		return usnMark{}, false
	}
	return usnMark{invocation: inv, usn: usn}, true
}

// dcState is what a read of the DC starts from.
type dcState struct {
	mark usnMark
	nc   string // the domain's naming context (defaultNamingContext)
}

// readDCState reads the DC's highestCommittedUSN and invocationId.
func (r *Reader) readDCState(ctx context.Context) (dcState, error) {
	req := ldap.NewSearchRequest("", ldap.ScopeBaseObject, ldap.NeverDerefAliases, 1, 0, false, "(objectClass=*)",
		[]string{"highestCommittedUSN", "dsServiceName", "defaultNamingContext"}, nil)
	var res *ldap.SearchResult
	if err := r.guard(ctx, func() (err error) { res, err = r.conn.Search(req); return err }); err != nil {
		return dcState{}, fmt.Errorf("directory %s: read the rootDSE: %w", r.cfg.URL, err)
	}
	if len(res.Entries) != 1 {
		return dcState{}, fmt.Errorf("directory %s: no rootDSE", r.cfg.URL)
	}
	root := res.Entries[0]
	usn, err := strconv.ParseInt(root.GetAttributeValue("highestCommittedUSN"), 10, 64)
	if err != nil {
		return dcState{}, fmt.Errorf("directory %s: rootDSE highestCommittedUSN %q: %w", r.cfg.URL, root.GetAttributeValue("highestCommittedUSN"), ErrNoContentSync)
	}
	service := root.GetAttributeValue("dsServiceName")
	req = ldap.NewSearchRequest(service, ldap.ScopeBaseObject, ldap.NeverDerefAliases, 1, 0, false, "(objectClass=*)",
		[]string{"invocationId"}, nil)
	if err := r.guard(ctx, func() (err error) { res, err = r.conn.Search(req); return err }); err != nil {
		return dcState{}, fmt.Errorf("directory %s: read the invocationId of %q: %w", r.cfg.URL, service, err)
	}
	if len(res.Entries) != 1 {
		return dcState{}, fmt.Errorf("directory %s: no invocationId on %q: %w", r.cfg.URL, service, ErrNoContentSync)
	}
	inv, err := guidString(res.Entries[0].GetEqualFoldRawAttributeValue("invocationId"))
	if err != nil {
		return dcState{}, fmt.Errorf("directory %s: invocationId of %q: %v: %w", r.cfg.URL, service, err, ErrNoContentSync)
	}
	return dcState{mark: usnMark{invocation: inv, usn: usn}, nc: root.GetAttributeValue("defaultNamingContext")}, nil
}

// objectChange is what AD says of an object changed since a read's mark.
type objectChange struct {
	created bool // its uSNCreated is after the mark
	deleted bool // a tombstone (isDeleted)
}

// usnTx is the MirrorTx a read of changes applies to, told before any entry what AD says of
// the objects changed since the mark (recordingTx names a group created or deleted since).
type usnTx interface {
	MirrorTx
	objectsChanged(map[string]objectChange)
}

// syncUSN reads each kind from its mark into tx (everything when it needs a full read).
func (r *Reader) syncUSN(ctx context.Context, tx usnTx, server string, kinds []mirrorKind, fullEvery time.Duration) (SyncStats, error) {
	dc, err := r.readDCState(ctx)
	if err != nil {
		return SyncStats{}, err
	}
	// Also before a full read: a mirror that no read of changes can keep is not made.
	if err := r.seeDeleted(ctx, dc.nc); err != nil {
		return SyncStats{}, err
	}
	type plan struct {
		k      mirrorKind
		scope  string
		st     SyncState
		reason string
		from   usnMark
	}
	plans := make([]plan, len(kinds))
	since := int64(-1) // the lowest mark of the kinds read incrementally
	for i, k := range kinds {
		p := plan{k: k, scope: mirrorScope(server, r.cfg.URL, r.cfg.BaseDN, k.filter, k.attrs)}
		var held int
		var ok bool
		if p.st, held, ok, err = tx.State(ctx, k.kind); err != nil {
			return SyncStats{}, err
		}
		p.reason = r.fullReadReason(p.st, held, ok, p.scope, fullEvery)
		if p.reason == "" {
			m, ok := parseUSNMark(p.st.Cookie)
			switch {
			case !ok:
				p.reason = "cookie refused"
			case m.invocation != dc.mark.invocation:
				p.reason = "another DC or a restored one (invocationId changed)"
			case m.usn > dc.mark.usn:
				p.reason = "cookie refused"
			default:
				p.from = m
				if since < 0 || m.usn < since {
					since = m.usn
				}
			}
		}
		plans[i] = p
	}

	var total SyncStats
	// changed: the objects of the domain changed (or created) since the lowest mark; when
	// both kinds are read from a mark it is both kinds' (every read writes one to both).
	var changed map[string]objectChange
	if since >= 0 {
		if changed, err = r.changedSince(ctx, dc.nc, since); err != nil {
			return SyncStats{}, err
		}
		total.Checked = len(changed)
		tx.objectsChanged(changed)
	}
	var renamed []string // new DNs of entries the mirror held under another DN
	groupsFull := false
	for _, p := range plans {
		var s SyncStats
		if p.reason != "" {
			if err := tx.Clear(ctx, p.k.kind); err != nil {
				return SyncStats{}, err
			}
			s.Full, s.Reason = true, p.reason
			if p.k.kind == MirrorGroups {
				groupsFull = true
			}
			if s.Entries, _, err = r.readMirrorEntries(ctx, tx, p.k, p.k.filter, nil); err != nil {
				return SyncStats{}, err
			}
		} else {
			filter := fmt.Sprintf("(&(uSNChanged>=%d)%s)", p.from.usn+1, p.k.filter)
			var read map[string]bool
			if s.Entries, read, err = r.readMirrorEntries(ctx, tx, p.k, filter, &renamed); err != nil {
				return SyncStats{}, err
			}
			var gone []string
			for id := range changed {
				if !read[id] {
					gone = append(gone, id)
				}
			}
			if len(gone) > 0 {
				if s.Deleted, err = tx.Delete(ctx, p.k.kind, gone); err != nil {
					return SyncStats{}, err
				}
			}
		}
		total.add(s)
	}
	if len(renamed) > 0 && !groupsFull {
		n, err := r.rereadGroupsNaming(ctx, tx, kinds, renamed)
		if err != nil {
			return SyncStats{}, err
		}
		total.Entries += n
	}
	for _, p := range plans {
		next := SyncState{Scope: p.scope, Cookie: dc.mark.cookie(), FullAt: p.st.FullAt}
		if p.reason != "" {
			next.FullAt = r.clock()
		}
		if err := tx.SetState(ctx, p.k.kind, next); err != nil {
			return SyncStats{}, err
		}
	}
	return total, nil
}

// seeDeleted checks that the bind account sees the Deleted Objects container of naming
// context nc (with the show-deleted control) and reads it, i.e. deleted objects: else a read of changes
// would miss deletions (ErrNoContentSync: read in full).
func (r *Reader) seeDeleted(ctx context.Context, nc string) error {
	wk := fmt.Sprintf("<WKGUID=%s,%s>", deletedObjectsWKGUID, nc)
	// isDeleted, not just the entry: the reads of changes read the deleted objects'
	// attributes (Samba shows the container to an account denied reading it, without them).
	req := ldap.NewSearchRequest(wk, ldap.ScopeBaseObject, ldap.NeverDerefAliases, 1, 0, false,
		"(objectClass=*)", []string{"isDeleted"}, []ldap.Control{ldap.NewControlString(controlShowDeleted, true, "")})
	var res *ldap.SearchResult
	err := r.guard(ctx, func() (err error) { res, err = r.conn.Search(req); return err })
	var le *ldap.Error
	switch {
	case errors.As(err, &le) && le.ResultCode != ldap.ErrorNetwork:
		return r.blindToDeleted(nc, fmt.Sprintf(" (%v)", err))
	case err != nil:
		return fmt.Errorf("directory %s: read the Deleted Objects container: %w", r.cfg.URL, err)
	case len(res.Entries) == 0 || res.Entries[0].GetAttributeValue("isDeleted") == "":
		return r.blindToDeleted(nc, "")
	}
	return nil
}

// blindToDeleted is seeDeleted's refusal: it says what the admin sees (every sync reads in
// full) and what to change, in AD's words rather than ErrNoContentSync's (OpenLDAP's).
func (r *Reader) blindToDeleted(nc, detail string) error {
	return noChangeReads{fmt.Sprintf("directory %s: the bind account %q cannot see the Deleted Objects container "+
		"(CN=Deleted Objects,%s)%s, so a read of changes would miss deleted users: every sync reads the directory "+
		"in full; to read only changes, let the account list and read that container "+
		"(dsacls \"CN=Deleted Objects,%s\" /takeownership, then /G <account>:LCRP)",
		r.cfg.URL, r.cfg.BindDN, nc, detail, nc)}
}

// noChangeReads is an ErrNoContentSync with its own words.
type noChangeReads struct{ msg string }

func (e noChangeReads) Error() string { return e.msg }
func (e noChangeReads) Unwrap() error { return ErrNoContentSync }

// changedSince returns the objects of naming context nc changed after usn, deleted ones
// included, by ID.
func (r *Reader) changedSince(ctx context.Context, nc string, usn int64) (map[string]objectChange, error) {
	showDeleted := ldap.NewControlString(controlShowDeleted, true, "")
	changed := map[string]objectChange{}
	filter := fmt.Sprintf("(uSNChanged>=%d)", usn+1)
	attrs := []string{"objectGUID", "isDeleted", "uSNCreated"}
	err := r.pagedSearchAt(ctx, nc, filter, attrs, []ldap.Control{showDeleted}, func(es []*ldap.Entry) error {
		for _, e := range es {
			if id := r.entryID(e); id != "" {
				// Unreadable, it is 0: not created since, which names less.
				created, _ := strconv.ParseInt(e.GetAttributeValue("uSNCreated"), 10, 64)
				changed[id] = objectChange{created: created > usn,
					deleted: strings.EqualFold(e.GetAttributeValue("isDeleted"), "TRUE")}
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("directory %s: objects changed since USN %d: %w", r.cfg.URL, usn, err)
	}
	return changed, nil
}

// readMirrorEntries puts the entries of kind k that filter finds under BaseDN into tx,
// groups with every member (ranged retrieval). It returns how many it put and their IDs;
// with renamed, it appends the DN of each entry the mirror held under another DN.
func (r *Reader) readMirrorEntries(ctx context.Context, tx MirrorTx, k mirrorKind, filter string, renamed *[]string) (int, map[string]bool, error) {
	attrs := k.attrs
	if r.cfg.memberRange > 0 && k.kind == MirrorGroups {
		attrs = nil
		for _, a := range k.attrs {
			if a == "member" {
				a = fmt.Sprintf("member;range=0-%d", r.cfg.memberRange-1)
			}
			attrs = append(attrs, a)
		}
	}
	read := map[string]bool{}
	type rangedEntry struct {
		me   *MirrorEntry
		high int // the last member value received
	}
	var ranged []rangedEntry
	var pending []MirrorEntry
	flush := func() error {
		if len(pending) == 0 {
			return nil
		}
		if renamed != nil {
			ids := make([]string, len(pending))
			for i, e := range pending {
				ids[i] = e.UUID
			}
			held, err := tx.DNs(ctx, k.kind, ids)
			if err != nil {
				return err
			}
			for _, e := range pending {
				if old, ok := held[e.UUID]; ok && normalizeDN(old) != normalizeDN(e.DN) {
					*renamed = append(*renamed, e.DN)
				}
			}
		}
		err := tx.Put(ctx, k.kind, pending)
		pending = nil
		return err
	}
	err := r.pagedSearchAt(ctx, r.cfg.BaseDN, filter, attrs, nil, func(es []*ldap.Entry) error {
		for _, e := range es {
			id := r.entryID(e)
			if id == "" {
				continue // no objectGUID readable: a full read skips it too
			}
			me := MirrorEntry{UUID: id, DN: e.DN, Attrs: map[string][][]byte{}}
			var rg *attrRange
			for _, a := range e.Attributes {
				name := a.Name
				if ar, ok, err := parseRangedAttr(a.Name); err != nil {
					return fmt.Errorf("entry %q: %w", e.DN, err)
				} else if ok {
					name = ar.Attr
					if !ar.Last {
						rg = &ar
					}
				}
				me.Attrs[name] = append(me.Attrs[name], a.ByteValues...)
			}
			read[id] = true
			if rg != nil {
				// The rest of the members after the paged search, not in the middle of it.
				ranged = append(ranged, rangedEntry{&me, rg.High})
				continue
			}
			pending = append(pending, me)
		}
		return flush()
	})
	if err != nil {
		return 0, nil, fmt.Errorf("directory %s: read %q under %q: %w", r.cfg.URL, filter, r.cfg.BaseDN, err)
	}
	for _, re := range ranged {
		me := re.me
		fetch := func(desc string) ([]*ldap.EntryAttribute, error) {
			req := ldap.NewSearchRequest(me.DN, ldap.ScopeBaseObject, ldap.NeverDerefAliases,
				0, 0, false, "(objectClass=*)", []string{desc}, nil)
			var res *ldap.SearchResult
			err := r.guard(ctx, func() (err error) { res, err = r.conn.Search(req); return err })
			if err != nil {
				return nil, fmt.Errorf("directory %s: read %s of group %q: %w", r.cfg.URL, desc, me.DN, err)
			}
			var as []*ldap.EntryAttribute
			for _, e := range res.Entries {
				as = append(as, e.Attributes...)
			}
			return as, nil
		}
		add := func(values []string) error {
			for _, v := range values {
				me.Attrs["member"] = append(me.Attrs["member"], []byte(v))
			}
			return nil
		}
		if err := followRanges(attrRange{Attr: "member", High: re.high}, r.cfg.memberRange, fetch, add); err != nil {
			return 0, nil, fmt.Errorf("group %q: %w", me.DN, err)
		}
		pending = append(pending, *me)
		if err := flush(); err != nil {
			return 0, nil, err
		}
	}
	return len(read), read, nil
}

// rereadGroupsNaming reads again the groups under BaseDN whose members name one of dns
// (entries renamed or moved: AD rewrote those member values in place).
func (r *Reader) rereadGroupsNaming(ctx context.Context, tx MirrorTx, kinds []mirrorKind, dns []string) (int, error) {
	var groups mirrorKind
	for _, k := range kinds {
		if k.kind == MirrorGroups {
			groups = k
		}
	}
	n := 0
	const chunk = 50
	for len(dns) > 0 {
		part := dns[:min(chunk, len(dns))]
		dns = dns[len(part):]
		var or strings.Builder
		for _, dn := range part {
			fmt.Fprintf(&or, "(member=%s)", ldap.EscapeFilter(dn))
		}
		got, _, err := r.readMirrorEntries(ctx, tx, groups, fmt.Sprintf("(&%s(|%s))", groups.filter, or.String()), nil)
		if err != nil {
			return 0, err
		}
		n += got
	}
	return n, nil
}
