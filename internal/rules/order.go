package rules

import (
	"fmt"
	"slices"
)

// The ordering helpers take the full rule list of an organization and return a new list,
// sorted by priority, with dense priorities 1..n. The input is not modified. They accept
// an input that is not dense (it is sorted by priority, then ID, and renumbered), so a
// damaged list heals on the next edit.

// Insert adds r. r.Priority 0 appends it at the end; 1..n+1 inserts it there and shifts
// the rules at and below that position down by one.
func Insert(rs []Rule, r Rule) ([]Rule, error) {
	out := ordered(rs)
	if r.ID != 0 && slices.ContainsFunc(out, func(x Rule) bool { return x.ID == r.ID }) {
		return nil, fmt.Errorf("rule %d: already exists", r.ID)
	}
	pos := r.Priority
	switch {
	case pos == 0:
		pos = len(out) + 1
	case pos < 1 || pos > len(out)+1:
		return nil, fmt.Errorf("rule priority %d: out of range (1..%d, or 0 to append)", r.Priority, len(out)+1)
	}
	out = slices.Insert(out, pos-1, r)
	renumber(out)
	return out, nil
}

// Move puts the rule with the given ID at priority to (1..n), shifting the others.
func Move(rs []Rule, id int64, to int) ([]Rule, error) {
	out := ordered(rs)
	i := slices.IndexFunc(out, func(x Rule) bool { return x.ID == id })
	if i < 0 {
		return nil, fmt.Errorf("rule %d: no such rule", id)
	}
	if to < 1 || to > len(out) {
		return nil, fmt.Errorf("rule priority %d: out of range (1..%d)", to, len(out))
	}
	r := out[i]
	out = slices.Delete(out, i, i+1)
	out = slices.Insert(out, to-1, r)
	renumber(out)
	return out, nil
}

// Remove deletes the rule with the given ID and closes the gap.
func Remove(rs []Rule, id int64) ([]Rule, error) {
	out := ordered(rs)
	i := slices.IndexFunc(out, func(x Rule) bool { return x.ID == id })
	if i < 0 {
		return nil, fmt.Errorf("rule %d: no such rule", id)
	}
	out = slices.Delete(out, i, i+1)
	renumber(out)
	return out, nil
}

// CheckDense reports an error unless the priorities are exactly 1..n, each used once, and
// rule IDs are unique.
func CheckDense(rs []Rule) error {
	byPriority := make(map[int]int64, len(rs))
	ids := make(map[int64]bool, len(rs))
	for _, r := range rs {
		if r.ID != 0 && ids[r.ID] {
			return fmt.Errorf("rule %d: listed twice", r.ID)
		}
		ids[r.ID] = true
		if r.Priority < 1 || r.Priority > len(rs) {
			return fmt.Errorf("rule priority %d (rule %d): out of range 1..%d", r.Priority, r.ID, len(rs))
		}
		if other, dup := byPriority[r.Priority]; dup {
			return fmt.Errorf("rule priority %d: used by rules %d and %d", r.Priority, other, r.ID)
		}
		byPriority[r.Priority] = r.ID
	}
	// n distinct priorities within 1..n: dense by pigeonhole.
	return nil
}

func ordered(rs []Rule) []Rule {
	out := slices.Clone(rs)
	sortRules(out)
	return out
}

func renumber(rs []Rule) {
	for i := range rs {
		rs[i].Priority = i + 1
	}
}
