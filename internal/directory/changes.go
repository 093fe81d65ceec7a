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
	// Members are the normalized DNs that groups gained or lost as direct members (Group).
	Members []string
	// PrimaryGroups (AD): groups also hold the users whose primary group they are, by
	// primaryGroupID and no member value, so a group gained or lost as a member (nesting
	// changed) touches users no DN names, and Touched gives up (a full snapshot).
	PrimaryGroups bool
}

// Group records the change of one group entry from before to after (nil: none, added or
// deleted): the members it gained or lost, all of them when it was added, deleted or
// renamed (its DN names another group then).
func (c *Changes) Group(before, after *GroupMembers) {
	if before == nil || after == nil || before.DN != after.DN {
		for _, g := range []*GroupMembers{before, after} {
			if g != nil {
				c.Members = append(c.Members, g.Members...)
			}
		}
		return
	}
	had := make(map[string]bool, len(before.Members))
	for _, m := range before.Members {
		had[m] = true
	}
	has := make(map[string]bool, len(after.Members))
	for _, m := range after.Members {
		has[m] = true
		if !had[m] {
			c.Members = append(c.Members, m)
		}
	}
	for _, m := range before.Members {
		if !has[m] {
			c.Members = append(c.Members, m)
		}
	}
}

// Seeds are the DNs a user's group memberships may have changed under. A user whose ruled
// groups differ after the read is reachable in the graph after it from a member some group
// gained or lost: a membership gained has, on its path after the read, a last edge gained,
// and every edge below it was there before and still is; a membership lost has, on its path
// before the read, a last edge lost, and every edge below it is still there.
func (c *Changes) Seeds() []string { return c.Members }

// size is how many IDs and DNs c holds.
func (c *Changes) size() int { return len(c.Users) + len(c.Deleted) + len(c.Members) }

// errTooMany: more was reached or touched than the caller's limit.
var errTooMany = errors.New("too many users touched")

// errNestingChanged: with PrimaryGroups, a member some group gained or lost is a group.
var errNestingChanged = errors.New("a group gained or lost a group as member")

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
// limit users are touched, or, with ch.PrimaryGroups, when a seed is a group.
func Touched(ctx context.Context, ch *Changes, groups func(page func([]GroupMembers) error) error,
	users func(page func([]MirrorEntry) error) error, limit int) (ids []string, ok bool, err error) {
	ids = slices.Concat(ch.Users, ch.Deleted)
	if seeds := normalizeAll(ch.Seeds()); len(seeds) > 0 && len(ids) <= limit {
		if ch.PrimaryGroups {
			groups = refuseGroupSeeds(seeds, groups)
		}
		// The limit counts the groups reached too: a bound, not the users' count.
		reached, ok, err := Reach(ctx, seeds, groups, 2*limit)
		if errors.Is(err, errNestingChanged) {
			return nil, false, nil
		}
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

// refuseGroupSeeds is groups failing with errNestingChanged at a group among seeds: Reach
// visits a group only from a seed that is one, so it fails before reaching any group.
func refuseGroupSeeds(seeds []string, groups func(page func([]GroupMembers) error) error) func(page func([]GroupMembers) error) error {
	seed := make(map[string]bool, len(seeds))
	for _, s := range seeds {
		seed[s] = true
	}
	return func(page func([]GroupMembers) error) error {
		return groups(func(gs []GroupMembers) error {
			for _, g := range gs {
				if seed[g.DN] {
					return errNestingChanged
				}
			}
			return page(gs)
		})
	}
}
