package plantest

import (
	"bytes"
	"context"
	"maps"
	"slices"
	"strings"

	"github.com/usersync/usersync/internal/plan"
)

// Store is a plan.Store in memory, holding what a database would hold for in: the read
// (in.Users, each externalId once, first copy kept), the applied states, failures and seats,
// and the run's work. Like the database it only selects, streams and writes.
type Store struct {
	in       plan.Input
	touched  map[string]bool // a delta run's touched users (NewDeltaStore); nil: a full read
	users    []plan.UserRow
	held     map[string][]string
	work     []row // written
	buffered []row // added, not yet flushed
}

type row struct {
	item      plan.Item
	seatOrder []byte
	itemOrder []byte
}

var _ plan.Store = (*Store)(nil)

// NewStore holds in.
func NewStore(in plan.Input) *Store {
	s := &Store{in: in, held: map[string][]string{}}
	for _, p := range slices.Sorted(maps.Keys(in.Held)) {
		for id, ok := range in.Held[p] {
			if ok {
				s.held[id] = append(s.held[id], p)
			}
		}
	}
	seen := map[string]bool{}
	for _, u := range in.Users {
		if seen[u.ExternalID] {
			continue
		}
		seen[u.ExternalID] = true
		_, reconcile := in.Reconcile[u.ExternalID]
		r := plan.UserRow{User: u, Held: s.held[u.ExternalID], Reconcile: reconcile}
		if ap, ok := in.Applied[u.ExternalID]; ok {
			r.AppliedHash = ap.State.Hash()
		}
		if f, ok := in.Failed[u.ExternalID]; ok {
			r.Failure = &f
		}
		s.users = append(s.users, r)
	}
	slices.SortFunc(s.users, func(a, b plan.UserRow) int { return strings.Compare(a.User.ExternalID, b.User.ExternalID) })
	return s
}

// NewDeltaStore holds in as a delta run's store: its read is the users of in.Users that
// touched names (touched also names users the read does not return: left, deleted).
func NewDeltaStore(in plan.Input, touched map[string]bool) *Store {
	s := NewStore(in)
	s.touched = touched
	s.users = slices.DeleteFunc(s.users, func(r plan.UserRow) bool { return !touched[r.User.ExternalID] })
	return s
}

// untouched: a delta run's changes did not touch the user.
func (s *Store) untouched(id string) bool { return s.touched != nil && !s.touched[id] }

func (s *Store) Untouched(context.Context) (int, error) {
	n := 0
	for id, ap := range s.in.Applied {
		if ap.State.Active && s.untouched(id) {
			n++
		}
	}
	return n, nil
}

func (s *Store) Users(_ context.Context, fn func(plan.UserRow) error) error {
	for _, r := range s.users {
		if err := fn(r); err != nil {
			return err
		}
	}
	return nil
}

func (s *Store) AppliedStates(_ context.Context, ids []string) (map[string]plan.Applied, error) {
	out := map[string]plan.Applied{}
	for _, id := range ids {
		if ap, ok := s.in.Applied[id]; ok {
			out[id] = ap
		}
	}
	return out, nil
}

func (s *Store) Absent(_ context.Context, fn func(plan.Known) error) error {
	read := map[string]bool{}
	for _, r := range s.users {
		read[r.User.ExternalID] = true
	}
	ids := map[string]bool{}
	for id := range s.in.Applied {
		ids[id] = !read[id]
	}
	for id := range s.in.Failed {
		ids[id] = !read[id]
	}
	for id := range s.in.Reconcile {
		ids[id] = !read[id]
	}
	for id := range s.held {
		ids[id] = !read[id]
	}
	for _, id := range slices.Sorted(maps.Keys(ids)) {
		if !ids[id] {
			continue
		}
		k := plan.Known{ExternalID: id, Held: s.held[id], Touched: s.touched[id]}
		if name, ok := s.in.Reconcile[id]; ok {
			k.Reconcile, k.UserName = true, name
		}
		if ap, ok := s.in.Applied[id]; ok {
			k.Linked, k.Active, k.UserName = true, ap.State.Active, ap.State.UserName
		}
		if f, ok := s.in.Failed[id]; ok {
			k.Failure = &f
		}
		if err := fn(k); err != nil {
			return err
		}
	}
	return nil
}

func (s *Store) Seats(context.Context) (seats, used map[string]int, err error) {
	seats, used = maps.Clone(s.in.Seats), map[string]int{}
	for _, ps := range s.held {
		for _, p := range ps {
			used[p]++
		}
	}
	return seats, used, nil
}

func (s *Store) ActiveLinked(context.Context) (int, error) {
	n := 0
	for _, ap := range s.in.Applied {
		if ap.State.Active {
			n++
		}
	}
	return n, nil
}

func (s *Store) AddWork(_ context.Context, it plan.Item, key plan.SeatKey) error {
	s.buffered = append(s.buffered, row{item: it, seatOrder: plan.SeatOrder(it, key), itemOrder: plan.ItemOrder(it)})
	return nil
}

func (s *Store) FlushWork(context.Context) error {
	s.work = append(s.work, s.buffered...)
	s.buffered = nil
	return nil
}

func (s *Store) SeatCandidates(_ context.Context, fn func(plan.Work) error) error {
	var seqs []int
	for seq, r := range s.work {
		if r.seatOrder != nil {
			seqs = append(seqs, seq)
		}
	}
	slices.SortFunc(seqs, func(a, b int) int { return bytes.Compare(s.work[a].seatOrder, s.work[b].seatOrder) })
	items := make([]plan.Item, len(seqs)) // read before fn may replace any
	for i, seq := range seqs {
		items[i] = s.work[seq].item
	}
	for i, seq := range seqs {
		if err := fn(plan.Work{Seq: seq, Item: items[i]}); err != nil {
			return err
		}
	}
	return nil
}

func (s *Store) ReplaceWork(_ context.Context, ws []plan.Work) error {
	for _, w := range ws {
		s.work[w.Seq] = row{item: w.Item, seatOrder: plan.SeatOrder(w.Item, plan.SeatKey{}), itemOrder: plan.ItemOrder(w.Item)}
	}
	return nil
}

// Work lists the written items in item order (ItemOrder), as a store lists them, and the
// number of items added but never flushed.
func (s *Store) Work() (items []plan.Item, unflushed int) {
	rows := slices.Clone(s.work)
	slices.SortStableFunc(rows, func(a, b row) int { return bytes.Compare(a.itemOrder, b.itemOrder) })
	for _, r := range rows {
		items = append(items, r.item)
	}
	return items, len(s.buffered)
}
