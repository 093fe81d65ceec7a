package directory

import "context"

// maxChanges bounds what a read records (IDs and DNs): a read that changed more goes the
// long way (a full snapshot), and memory stays small.
const maxChanges = 200_000

// recordingTx is a MirrorTx that records what a read changes (Changes). A change it cannot
// name (a kind cleared, entries dropped by a present phase, a group on AD, where primary
// groups hold users that no member value names) makes the read's changes unknown.
type recordingTx struct {
	MirrorTx
	ad      bool
	ch      Changes
	unknown bool
}

// changes returns what the read changed, nil when that is not known.
func (t *recordingTx) changes() *Changes {
	if t.unknown || t.ch.size() > maxChanges {
		return nil
	}
	return &t.ch
}

func (t *recordingTx) Clear(ctx context.Context, kind string) error {
	t.unknown = true
	return t.MirrorTx.Clear(ctx, kind)
}

func (t *recordingTx) Keep(ctx context.Context, kind string, uuids []string) error {
	t.unknown = true
	return t.MirrorTx.Keep(ctx, kind, uuids)
}

func (t *recordingTx) Put(ctx context.Context, kind string, es []MirrorEntry) error {
	if !t.unknown && t.ch.size() <= maxChanges {
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
				after := groupMembers(e)
				t.ch.Group(before[e.UUID], &after)
			}
		}
	}
	return t.MirrorTx.Put(ctx, kind, es)
}

func (t *recordingTx) Delete(ctx context.Context, kind string, uuids []string) (int, error) {
	if !t.unknown && t.ch.size() <= maxChanges {
		switch kind {
		case MirrorUsers:
			// Those it holds: the server may name the deletes of other kinds' entries too.
			held, err := t.MirrorTx.DNs(ctx, MirrorUsers, uuids)
			if err != nil {
				return 0, err
			}
			for id := range held {
				t.ch.Deleted = append(t.ch.Deleted, id)
			}
		case MirrorGroups:
			before, err := t.before(ctx, uuids)
			if err != nil {
				return 0, err
			}
			for _, b := range before {
				t.ch.Group(b, nil)
			}
		}
	}
	return t.MirrorTx.Delete(ctx, kind, uuids)
}

// before returns the groups the mirror holds among ids, by ID, as they are before the read
// changes them; none on AD, whose changed groups make the read's changes unknown.
func (t *recordingTx) before(ctx context.Context, ids []string) (map[string]*GroupMembers, error) {
	if t.ad {
		t.unknown = true
		return nil, nil
	}
	old, err := t.MirrorTx.Entries(ctx, MirrorGroups, ids)
	if err != nil {
		return nil, err
	}
	out := make(map[string]*GroupMembers, len(old))
	for _, e := range old {
		g := groupMembers(e)
		out[e.UUID] = &g
	}
	return out, nil
}
