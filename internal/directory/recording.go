package directory

import (
	"bytes"
	"context"
	"strings"
)

// maxChanges bounds what a read records (IDs and DNs): a read that changed more goes the
// long way (a full snapshot), and memory stays small.
const maxChanges = 200_000

// recordingTx is a MirrorTx that records what a read changes (Changes). A change it cannot
// name makes the read's changes unknown: a kind cleared, and on AD a group that came or went
// other than by being created or deleted since the read's mark, or that changed its DN or
// SID (adGroupUnnamed, gone); a change of nesting on AD is left to Touched
// (Changes.PrimaryGroups). Entries a present phase drops are named by the mirror (Keep).
type recordingTx struct {
	MirrorTx
	ad bool
	// adChanged is what AD says of the objects changed since the read's mark (syncUSN).
	adChanged map[string]objectChange
	ch        Changes
	unknown   bool
}

func (t *recordingTx) objectsChanged(ch map[string]objectChange) { t.adChanged = ch }

// changes returns what the read changed, nil when that is not known.
func (t *recordingTx) changes() *Changes {
	if t.unknown || t.ch.size() > maxChanges {
		return nil
	}
	t.ch.PrimaryGroups = t.ad
	return &t.ch
}

func (t *recordingTx) Clear(ctx context.Context, kind string) error {
	t.unknown = true
	return t.MirrorTx.Clear(ctx, kind)
}

// Keep records the entries it drops as deleted: a present phase's, or the check while the
// server's mark lags (beyondTheMark), names the entries that remain, and the mirror says
// which of its own are gone.
func (t *recordingTx) Keep(ctx context.Context, kind string, uuids []string) ([]MirrorEntry, error) {
	gone, err := t.MirrorTx.Keep(ctx, kind, uuids)
	if err == nil && t.recording() {
		t.gone(kind, gone)
	}
	return gone, err
}

// recording reports whether the read's changes are still known and worth recording.
func (t *recordingTx) recording() bool { return !t.unknown && t.ch.size() <= maxChanges }

func (t *recordingTx) Put(ctx context.Context, kind string, es []MirrorEntry) error {
	if t.recording() {
		switch kind {
		case MirrorUsers:
			for _, e := range es {
				t.ch.Users = append(t.ch.Users, e.UUID)
			}
		case MirrorGroups:
			ids := make([]string, len(es))
			for i, e := range es {
				ids[i] = e.UUID
			}
			before, err := t.before(ctx, ids)
			if err != nil {
				return err
			}
			for _, e := range es {
				b := before[e.UUID]
				if t.ad && adGroupUnnamed(b, e, t.adChanged[e.UUID].created) {
					t.unknown = true
					break
				}
				after := groupMembers(e)
				var bm *GroupMembers
				if b != nil {
					g := groupMembers(*b)
					bm = &g
				}
				t.ch.Group(bm, &after)
			}
		}
	}
	return t.MirrorTx.Put(ctx, kind, es)
}

func (t *recordingTx) Delete(ctx context.Context, kind string, uuids []string) (int, error) {
	if t.recording() {
		// Those it holds: the server may name the deletes of other kinds' entries too.
		var held []MirrorEntry
		switch kind {
		case MirrorUsers:
			dns, err := t.MirrorTx.DNs(ctx, MirrorUsers, uuids)
			if err != nil {
				return 0, err
			}
			for id, dn := range dns {
				held = append(held, MirrorEntry{UUID: id, DN: dn})
			}
		case MirrorGroups:
			old, err := t.MirrorTx.Entries(ctx, MirrorGroups, uuids)
			if err != nil {
				return 0, err
			}
			held = old
		}
		t.gone(kind, held)
	}
	return t.MirrorTx.Delete(ctx, kind, uuids)
}

// gone records the entries of kind the read drops from the mirror, as the mirror held them
// (users: ID and DN; groups: whole).
func (t *recordingTx) gone(kind string, held []MirrorEntry) {
	switch kind {
	case MirrorUsers:
		for _, e := range held {
			t.ch.Deleted = append(t.ch.Deleted, e.UUID)
		}
	case MirrorGroups:
		for _, b := range held {
			// AD's read names every changed object (users too). A group it holds that
			// leaves may be moved out of BaseDN or out of GroupFilter and still be the
			// primary group of users no member value names; one deleted is nobody's: AD
			// (Samba too) refuses to delete a user's primary group, so the users whose
			// primary group it was at the mark changed their entries since, and the read
			// names them.
			if t.ad && !t.adChanged[b.UUID].deleted {
				t.unknown = true
				return
			}
		}
		for _, b := range held {
			g := groupMembers(b)
			t.ch.Group(&g, nil)
		}
	}
}

// before returns the groups the mirror holds among ids, by ID, as they are before the read
// changes them.
func (t *recordingTx) before(ctx context.Context, ids []string) (map[string]*MirrorEntry, error) {
	old, err := t.MirrorTx.Entries(ctx, MirrorGroups, ids)
	if err != nil {
		return nil, err
	}
	out := make(map[string]*MirrorEntry, len(old))
	for i := range old {
		out[old[i].UUID] = &old[i]
	}
	return out, nil
}

// adGroupUnnamed reports whether an AD group's change from before (nil: the mirror did not
// hold it) to after may change the groups of users that no member value names: those whose
// primary group it is (primaryGroupID, the RID of its objectSid). A group the mirror did not
// hold may have moved into BaseDN or into GroupFilter with such users, unless it was created
// since the read's mark: a user made it its primary group since, a change of the user's own
// entry, which names the user. A group whose DN changed is no longer the group a rule names,
// nor, for their parents' member values, the one they held; a new objectSid (a move across
// domains) makes other users its primary ones.
func adGroupUnnamed(before *MirrorEntry, after MirrorEntry, created bool) bool {
	if before == nil {
		return !created
	}
	return normalizeDN(before.DN) != normalizeDN(after.DN) ||
		!bytes.Equal(attrValue(*before, "objectSid"), attrValue(after, "objectSid"))
}

// attrValue is e's first value of attribute name (any case), nil when none.
func attrValue(e MirrorEntry, name string) []byte {
	for n, vs := range e.Attrs {
		if strings.EqualFold(n, name) && len(vs) > 0 {
			return vs[0]
		}
	}
	return nil
}
