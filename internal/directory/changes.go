package directory

import (
	"context"
	"errors"
	"slices"
	"strings"
)

// Delta reads (issue 13): an incremental read records what it changed in the mirror
// (Changes), and a delta snapshot (SnapshotChanges) reads from the mirror only the users
// those changes may have touched, so that a run plans them and not the whole directory.

// Changes is what one incremental read changed in the mirror (SyncStats.Changes): enough to
// find every user whose snapshot may differ from the one the mirror gave before the read.
type Changes struct {
	Users   []string // IDs (the mirror's UUIDs) of the user entries added or changed
	Deleted []string // IDs of the user entries deleted
	// Groups are the normalized DNs of the group entries added, changed or deleted (as
	// before the read and after), Members the normalized DNs the changed or deleted groups
	// held as direct members before the read.
	Groups  []string
	Members []string
}

// Seeds are the DNs a user's group memberships may have changed under: a user whose ruled
// groups differ after the read is, in the graph after it, reachable from a changed group
// (a membership gained) or from a direct member a changed group held before (a membership
// lost: the last changed group on the old path held it, or a group above it, directly;
// every group below that one kept its members).
func (c *Changes) Seeds() []string {
	return slices.Concat(c.Groups, c.Members)
}

// size is how many IDs and DNs c holds.
func (c *Changes) size() int {
	return len(c.Users) + len(c.Deleted) + len(c.Groups) + len(c.Members)
}

// errTooMany: more was reached or touched than the caller's limit.
var errTooMany = errors.New("too many users touched")

// Reach returns the DNs reachable from seeds (normalized; seeds included) through the direct
// members of groups, which groups hands over page by page, once per call: one pass per level
// of nesting, so that memory holds what is reached and one page of groups, never the graph.
// ok is false, and nothing more is read, once more than limit DNs are reached.
func Reach(ctx context.Context, seeds []string, groups func(page func([]GroupMembers) error) error, limit int) (reached map[string]bool, ok bool, err error) {
	reached = map[string]bool{}
	var frontier []string
	for _, s := range seeds {
		if !reached[s] {
			reached[s] = true
			frontier = append(frontier, s)
		}
	}
	for len(frontier) > 0 && len(reached) <= limit {
		front := make(map[string]bool, len(frontier))
		for _, dn := range frontier {
			front[dn] = true
		}
		frontier = nil
		err := groups(func(gs []GroupMembers) error {
			for _, g := range gs {
				if !front[g.DN] {
					continue
				}
				for _, m := range g.Members {
					if !reached[m] {
						reached[m] = true
						frontier = append(frontier, m)
					}
				}
				if len(reached) > limit {
					return errTooMany
				}
			}
			return ctx.Err()
		})
		if errors.Is(err, errTooMany) {
			break
		}
		if err != nil {
			return nil, false, err
		}
	}
	if len(reached) > limit {
		return nil, false, nil
	}
	return reached, true, nil
}

// groupMembers is a mirrored group entry as the membership graph holds it: its normalized DN
// and direct members (the mirror holds every member value: no ranges).
func groupMembers(e MirrorEntry) GroupMembers {
	g := GroupMembers{DN: normalizeDN(e.DN)}
	for name, vs := range e.Attrs {
		if strings.EqualFold(name, "member") {
			for _, v := range vs {
				g.Members = append(g.Members, normalizeDN(string(v)))
			}
		}
	}
	return g
}

// Touched returns the IDs (sorted, not nil) of the users ch touched: those whose entries
// changed or were deleted, and those whose DN is reachable from ch's Seeds through the
// groups (Reach). groups hands over the group graph after the changes, users the user
// entries (UUID and DN; attributes unused), each once per call. ok is false when more than
// limit users are touched.
func Touched(ctx context.Context, ch *Changes, groups func(page func([]GroupMembers) error) error,
	users func(page func([]MirrorEntry) error) error, limit int) (ids []string, ok bool, err error) {
	ids = slices.Concat(ch.Users, ch.Deleted)
	if seeds := ch.Seeds(); len(seeds) > 0 && len(ids) <= limit {
		// The limit counts the groups reached too: a bound, not the users' count.
		reached, ok, err := Reach(ctx, normalizeAll(seeds), groups, 2*limit)
		if err != nil || !ok {
			return nil, false, err
		}
		err = users(func(es []MirrorEntry) error {
			for _, e := range es {
				if reached[normalizeDN(e.DN)] {
					ids = append(ids, e.UUID)
				}
			}
			return nil
		})
		if err != nil {
			return nil, false, err
		}
	}
	slices.Sort(ids)
	ids = append([]string{}, slices.Compact(ids)...) // not nil: none is none (mirrorOnly)
	if len(ids) > limit {
		return nil, false, nil
	}
	return ids, true, nil
}
