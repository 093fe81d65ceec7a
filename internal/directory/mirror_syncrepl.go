package directory

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/go-ldap/ldap/v3"
)

// OpenLDAP's incremental reads: RFC 4533 content synchronization, refreshOnly, one cookie
// per kind.

// ldapSyncRefreshRequired is e-syncRefreshRequired (RFC 4533): the cookie is unusable.
const ldapSyncRefreshRequired = 4096

// syncRefresh refreshes each kind from its cookie into tx (everything when it needs a full
// read). A kind whose refresh did not end whole fails the read.
func (r *Reader) syncRefresh(ctx context.Context, tx MirrorTx, server string, kinds []mirrorKind, fullEvery time.Duration) (SyncStats, error) {
	var total SyncStats
	for _, k := range kinds {
		scope := mirrorScope(server, r.cfg.URL, r.cfg.BaseDN, k.filter, k.attrs)
		st, held, ok, err := tx.State(ctx, k.kind)
		if err != nil {
			return SyncStats{}, err
		}
		reason := r.fullReadReason(st, held, ok, scope, fullEvery)
		var s SyncStats
		if reason == "" {
			s, err = r.refresh(ctx, tx, k, scope, st)
			if ldap.IsErrorWithCode(err, ldapSyncRefreshRequired) {
				reason = "cookie refused"
			} else if err != nil {
				return SyncStats{}, err
			}
		}
		if reason != "" {
			// Clear drops what a refused refresh may have applied, too.
			if err := tx.Clear(ctx, k.kind); err != nil {
				return SyncStats{}, err
			}
			if s, err = r.refresh(ctx, tx, k, scope, SyncState{}); err != nil {
				return SyncStats{}, err
			}
			s.Full, s.Reason = true, reason
		}
		total.add(s)
	}
	return total, nil
}

// refresh runs one refreshOnly content synchronization of kind k from st.Cookie (nil:
// everything, into a kind Clear left empty) and applies it to tx. It stores the kind's
// new state only when the server ended the refresh (Sync Done); any other end is an error.
func (r *Reader) refresh(ctx context.Context, tx MirrorTx, k mirrorKind, scope string, st SyncState) (SyncStats, error) {
	full := len(st.Cookie) == 0
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	req := ldap.NewSearchRequest(r.cfg.BaseDN, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases,
		0, 0, false, k.filter, k.attrs, nil)
	resp := r.conn.Syncrepl(sctx, req, 64, ldap.SyncRequestModeRefreshOnly, st.Cookie, false)

	var stats SyncStats
	var (
		cookie       = st.Cookie
		present      []string // present phase: unchanged entries
		put          []string // entries sent in full
		presentPhase = true   // until the server says it ran a delete phase
		done         bool     // the server ended the refresh (Sync Done): the read is whole
		batch        []MirrorEntry
		gone         []string // entries deleted, not yet applied
	)
	// Entries sent in full and deletes are applied in batches, each flushed before the
	// other is added to: syncprov names a delete for each changed entry outside the search's
	// filter (1,000 renamed users are 1,000 deletes in the groups' refresh), one statement each
	// took a second.
	flushDeletes := func() error {
		if len(gone) == 0 {
			return nil
		}
		n, err := tx.Delete(ctx, k.kind, gone)
		stats.Deleted += n
		gone = gone[:0]
		return err
	}
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		err := tx.Put(ctx, k.kind, batch)
		batch = batch[:0]
		return err
	}
	for resp.Next() {
		if e := resp.Entry(); e != nil {
			state, _ := ldap.FindControl(resp.Controls(), ldap.ControlTypeSyncState).(*ldap.ControlSyncState)
			if state == nil {
				return SyncStats{}, fmt.Errorf("directory %s: sync of %q: entry without a sync state", r.cfg.URL, k.filter)
			}
			if len(state.Cookie) > 0 {
				cookie = state.Cookie
			}
			id := state.EntryUUID.String()
			switch state.State {
			case ldap.SyncStateAdd, ldap.SyncStateModify:
				stats.Entries++
				put = append(put, id)
				if err := flushDeletes(); err != nil {
					return SyncStats{}, err
				}
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
				if err := flush(); err != nil {
					return SyncStats{}, err
				}
				if gone = append(gone, id); len(gone) >= r.cfg.PageSize {
					if err := flushDeletes(); err != nil {
						return SyncStats{}, err
					}
				}
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
						if err := flush(); err != nil {
							return SyncStats{}, err
						}
						if err := flushDeletes(); err != nil {
							return SyncStats{}, err
						}
						// syncprov's session log names the deletes of every search
						// (also of other kinds' entries): count only ours.
						n, err := tx.Delete(ctx, k.kind, ids)
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
		return SyncStats{}, fmt.Errorf("directory %s: sync of %q under %q: %w", r.cfg.URL, k.filter, r.cfg.BaseDN, err)
	}
	if err := ctx.Err(); err != nil {
		return SyncStats{}, err
	}
	if !done {
		// The stream ended without the server's Sync Done (go-ldap ends a search whose
		// connection is lost without an error when its context ends first): what was read
		// is a part, and a part must never be committed.
		return SyncStats{}, fmt.Errorf("directory %s: sync of %q under %q ended before the server finished it (connection lost?)",
			r.cfg.URL, k.filter, r.cfg.BaseDN)
	}
	if err := flush(); err != nil {
		return SyncStats{}, err
	}
	if err := flushDeletes(); err != nil {
		return SyncStats{}, err
	}
	if len(cookie) == 0 {
		return SyncStats{}, fmt.Errorf("directory %s: sync of %q sent no cookie: %w", r.cfg.URL, k.filter, ErrNoContentSync)
	}
	mayStand := true // the entries beyond the mark, read last time, are in the mirror still
	if presentPhase && !full {
		gone, err := tx.Keep(ctx, k.kind, append(present, put...))
		if err != nil {
			return SyncStats{}, err
		}
		stats.Deleted += len(gone)
		mayStand = len(gone) == 0
	}
	next := SyncState{Scope: scope, Cookie: cookie, FullAt: st.FullAt, ListedAt: st.ListedAt}
	if full {
		next.FullAt, next.ListedAt = r.clock(), r.clock()
	}
	caught, err := r.beyondTheMark(ctx, tx, k, st, &next, mayStand)
	if err != nil {
		return SyncStats{}, err
	}
	stats.Entries += caught.Entries
	stats.Deleted += caught.Deleted
	stats.Checked += caught.Checked
	if err := tx.SetState(ctx, k.kind, next); err != nil {
		return SyncStats{}, err
	}
	return stats, nil
}

// beyondTheMark reads into tx what the refresh from st (Cookie nil: a full read) could not
// send. syncprov's refresh stops at the server's contextCSN (the cookie it sends), and slapd
// moves that mark only to the newest CSN under which no older write is still pending, and only
// forward: a write that commits while an older one is pending can stay beyond the mark until
// the next write. The refresh then leaves out an entry any search finds, and a refresh from its
// cookie, too (seen after a parallel load: the last group added, the only ruled one, missed by
// the first read and by every read from its cookie). So, after each refresh, one search of the
// entries newer than the cookie: when there are some, the mark lags; the kind's entries among
// them are read, and (on a read from a cookie) the kind's IDs are listed to drop what the
// server no longer has, since deletes beyond the mark are not named either. A delete beyond the
// mark with no entry beyond it stays unseen until the next write (or the scheduled full read):
// nothing a reader can ask shows it.
//
// It sets next's fingerprint of the entries beyond the mark (SyncState.Beyond). When next's
// cookie is the one of the last read (st) and the same entries (by their CSNs) are beyond
// it, the last read read them, and nothing is read again: without this, a mark left behind
// by a parallel load made every later read list the whole directory (101,110 IDs at 100,000
// users) until the next write. Only a delete can go unseen by that test (no entry carries
// its CSN when it stays beyond the mark), so the IDs are listed again once the last listing
// is relistEvery old. mayStand false (a present phase dropped entries this read, perhaps
// some of those beyond the mark) reads them again.
func (r *Reader) beyondTheMark(ctx context.Context, tx MirrorTx, k mirrorKind, st SyncState, next *SyncState, mayStand bool) (SyncStats, error) {
	full := len(st.Cookie) == 0
	marks := cookieCSNs(next.Cookie)
	if len(marks) == 0 {
		return SyncStats{}, nil
	}
	oldest := slices.Min(slices.Collect(maps.Values(marks)))
	newer := fmt.Sprintf("(&(entryCSN>=%s)(!(entryCSN=%s)))", ldap.EscapeFilter(oldest), ldap.EscapeFilter(oldest))
	var csns []string
	err := r.pagedSearchAt(ctx, r.cfg.BaseDN, newer, []string{"entryCSN"}, nil, func(es []*ldap.Entry) error {
		for _, e := range es {
			if csn := e.GetAttributeValue("entryCSN"); beyond(marks, csn) {
				csns = append(csns, csn)
			}
		}
		return nil
	})
	if err != nil {
		return SyncStats{}, fmt.Errorf("directory %s: entries beyond the sync mark under %q: %w", r.cfg.URL, r.cfg.BaseDN, err)
	}
	if len(csns) == 0 {
		return SyncStats{}, nil
	}
	next.Beyond = csnFingerprint(csns)
	if !full && mayStand && bytes.Equal(next.Cookie, st.Cookie) && next.Beyond == st.Beyond &&
		r.clock().Sub(st.ListedAt) < relistEvery {
		return SyncStats{}, nil
	}
	var stats SyncStats
	if stats.Entries, _, err = r.readMirrorEntries(ctx, tx, k, fmt.Sprintf("(&%s%s)", k.filter, newer), nil); err != nil {
		return SyncStats{}, err
	}
	if full {
		return stats, nil // the mirror holds this read's entries only
	}
	var ids []string
	err = r.pagedSearchAt(ctx, r.cfg.BaseDN, k.filter, []string{r.cfg.idAttribute()}, nil, func(es []*ldap.Entry) error {
		for _, e := range es {
			if id := r.entryID(e); id != "" {
				ids = append(ids, id)
			}
		}
		return nil
	})
	if err != nil {
		return SyncStats{}, fmt.Errorf("directory %s: list %q under %q: %w", r.cfg.URL, k.filter, r.cfg.BaseDN, err)
	}
	stats.Checked = len(ids)
	gone, err := tx.Keep(ctx, k.kind, ids)
	if err != nil {
		return SyncStats{}, err
	}
	stats.Deleted = len(gone)
	next.ListedAt = r.clock()
	return stats, nil
}

// relistEvery bounds how long a read from a lagging mark skips listing the kind's IDs
// (beyondTheMark): a delete that stays beyond the mark is seen within it.
const relistEvery = time.Hour

// csnFingerprint names a set of CSNs (each write has its own) in a few bytes.
func csnFingerprint(csns []string) string {
	slices.Sort(csns)
	h := sha256.New()
	for _, c := range csns {
		h.Write([]byte(c))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// cookieCSNs returns the CSNs of a syncprov cookie ("rid=000,sid=001,csn=<csn>;<csn>") by
// the server ID each carries.
func cookieCSNs(cookie []byte) map[string]string {
	marks := map[string]string{}
	for _, part := range strings.Split(string(cookie), ",") {
		if v, ok := strings.CutPrefix(part, "csn="); ok {
			for _, csn := range strings.Split(v, ";") {
				if csn != "" {
					marks[csnSID(csn)] = csn
				}
			}
		}
	}
	return marks
}

// beyond reports whether csn is newer than the mark of its server (a server the cookie has
// no mark of: newer).
func beyond(marks map[string]string, csn string) bool {
	mark, ok := marks[csnSID(csn)]
	return !ok || csn > mark
}

// csnSID is the server ID of a CSN (<time>#<count>#<sid>#<mod>); CSNs of one server
// compare as strings.
func csnSID(csn string) string {
	if f := strings.Split(csn, "#"); len(f) == 4 {
		return f[2]
	}
	return ""
}
