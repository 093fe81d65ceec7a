package plan

import (
	"context"
	"slices"

	"github.com/usersync/usersync/internal/directory"
	"github.com/usersync/usersync/internal/vocab"
)

// Store is what a streaming plan reads and writes: one run's snapshot and what is known of
// each user, and the run's work table. It selects, streams and writes; it decides nothing.
// Every decision is a Planner's, the same ones Plan makes (store.Store implements it over
// PostgreSQL, plantest.Store in memory).
type Store interface {
	// Users streams the users of the run's directory read, once each, with what is known
	// of them.
	Users(ctx context.Context, fn func(UserRow) error) error
	// AppliedStates returns the applied states of the given linked accounts.
	AppliedStates(ctx context.Context, externalIDs []string) (map[string]Applied, error)
	// Absent streams what is known of the users the read did not return: every linked
	// account and every current failure, and whether the run's changes touched them
	// (Known.Touched; a delta run's).
	Absent(ctx context.Context, fn func(Known) error) error
	// Seats returns the seats bought and the seats in use, per product.
	Seats(ctx context.Context) (seats, used map[string]int, err error)
	// ActiveLinked counts the active linked accounts.
	ActiveLinked(ctx context.Context) (int, error)
	// Untouched counts, in a delta run (Input.Delta), the active linked accounts of users
	// the directory changes did not touch.
	Untouched(ctx context.Context) (int, error)

	// AddWork appends an item to the run's work with the next seq (from 0; the run has no
	// work yet), stored with SeatOrder(it, key) and ItemOrder(it). FlushWork writes what
	// was added.
	AddWork(ctx context.Context, it Item, key SeatKey) error
	FlushWork(ctx context.Context) error
	// SeatCandidates streams the written items that have a seat order, in its byte order.
	SeatCandidates(ctx context.Context, fn func(w Work) error) error
	// ReplaceWork overwrites written items, stored as AddWork stores them with a zero
	// SeatKey: it writes back seat candidates that found no seat (failures, no new seats).
	ReplaceWork(ctx context.Context, ws []Work) error
}

// UserRow is a user of the directory read with what the store knows of it. The applied state
// comes by hash only: Settled decides most users of a resync without it.
type UserRow struct {
	User        directory.User
	AppliedHash string // "" when not linked
	Failure     *vocab.Failure
	Held        []string // products whose seat the user holds, sorted bytewise
	Reconcile   bool     // the outcome of the user's last write is unknown (Input.Reconcile)
}

// Work is an item written to a run's work table, at seq.
type Work struct {
	Seq  int
	Item Item
}

// Summary is what Stream planned: the counts of its items and what Plan's Result says
// besides its items.
type Summary struct {
	Items, Creates, Updates, Suspends, Fails int
	Unchanged, InScope                       int
	SuspensionsHeld                          bool
	Warnings                                 []string
	// Resolved are the externalIds (sorted) whose failure should be cleared (Result.Resolved):
	// none when the read looks wrong.
	Resolved []string
}

// streamBatch is how many users wait at a time for their applied states, and how many
// items are replaced at once.
const streamBatch = 500

// Stream plans a run from a Store, deciding exactly what Plan decides for the same data:
// users are streamed through a Planner, items written as they are decided, seat candidates
// then served from the work table in seat order (SeatLedger), then the users who left are
// planned (Left, HoldSuspensions). Items are written once, except seat candidates that find
// no seat, which are rewritten as failures. Memory holds a batch, the seat counters and the
// IDs of the users who leave or whose failure is resolved, never the directory.
// Settings come from in; its per-user fields (Users, Applied, Failed, Seats, Held) are unused.
//
// A delta run (in.Delta) streams only the users its directory changes touched and counts the
// others from the store (Untouched): the same items and summary as a full read's plan, when
// the last clean run settled every user and nothing besides the directory changed since
// (activities.DeltaSince decides that).
func Stream(ctx context.Context, in Input, st Store) (Summary, error) {
	s := &stream{ctx: ctx, st: st, p: NewPlanner(in), delta: in.Delta}
	if err := s.users(); err != nil {
		return Summary{}, err
	}
	if in.Delta {
		// The users the changes did not touch were settled by the last clean run, whose
		// outcome stands for them: each in scope (its account active) and unchanged.
		n, err := st.Untouched(ctx)
		if err != nil {
			return Summary{}, err
		}
		s.read += n
		s.sum.InScope += n
		s.sum.Unchanged += n
	}
	if err := s.seats(); err != nil {
		return Summary{}, err
	}
	if warning := s.p.SuspiciousRead(s.read, s.sum.InScope); warning != "" {
		s.sum.Warnings = append(s.sum.Warnings, warning)
		return s.sum, nil // no suspension, no failure cleared
	}
	if err := s.absent(); err != nil {
		return Summary{}, err
	}
	if err := s.suspensions(); err != nil {
		return Summary{}, err
	}
	slices.Sort(s.resolved)
	s.sum.Resolved = s.resolved
	return s.sum, nil
}

// stream is one Stream: its counts and the users it still has to write items for.
type stream struct {
	ctx   context.Context
	st    Store
	p     *Planner
	delta bool // Input.Delta

	sum      Summary
	read     int       // users the directory read returned
	pending  []UserRow // users waiting for their applied states
	leavers  []leaver  // to suspend
	resolved []string  // failed users whose failure no longer matters
}

type leaver struct {
	externalID string
	userName   string // for a leaver never linked (Unlinked)
	held       []string
}

// users decides for every user the read returned. Users the hash does not settle wait in
// small batches for their applied states, read together.
func (s *stream) users() error {
	err := s.st.Users(s.ctx, func(r UserRow) error {
		s.read++
		if s.p.Settled(r.User, r.AppliedHash, r.Failure != nil || r.Reconcile, r.Held) {
			s.sum.InScope++
			s.sum.Unchanged++
			return nil
		}
		if s.pending = append(s.pending, r); len(s.pending) == streamBatch {
			return s.decidePending()
		}
		return nil
	})
	if err == nil {
		err = s.decidePending()
	}
	if err == nil {
		err = s.st.FlushWork(s.ctx)
	}
	return err
}

func (s *stream) decidePending() error {
	var ids []string
	for _, r := range s.pending {
		if r.AppliedHash != "" {
			ids = append(ids, r.User.ExternalID)
		}
	}
	states, err := s.st.AppliedStates(s.ctx, ids)
	if err != nil {
		return err
	}
	for _, r := range s.pending {
		row := Row{User: r.User, Failure: r.Failure, Held: r.Held, Reconcile: r.Reconcile}
		if ap, ok := states[r.User.ExternalID]; ok {
			row.Applied = &ap
		}
		if err := s.route(r.User.ExternalID, r.User.UserName, r.Held, s.p.User(row)); err != nil {
			return err
		}
	}
	s.pending = s.pending[:0]
	return nil
}

// route acts on a verdict: counts it, writes its item, or remembers the user for later.
func (s *stream) route(id, userName string, held []string, v Verdict) error {
	if v.InScope {
		s.sum.InScope++
	}
	switch {
	case v.Unchanged:
		s.sum.Unchanged++
	case v.Item != nil:
		return s.add(*v.Item, v.SeatKey)
	case v.Suspend:
		s.leavers = append(s.leavers, leaver{externalID: id, userName: userName, held: held})
	case v.Resolved:
		s.resolved = append(s.resolved, id)
	}
	return nil
}

// seats serves the items that need new seats, in seat order; the losers are rewritten as
// out_of_licenses failures.
func (s *stream) seats() error {
	seats, used, err := s.st.Seats(s.ctx)
	if err != nil {
		return err
	}
	ledger := NewSeatLedger(seats, used)
	var lost []Work
	err = s.st.SeatCandidates(s.ctx, func(w Work) error {
		action := w.Item.Action
		if ledger.Serve(&w.Item) {
			return nil
		}
		s.count(action, -1)
		s.count(w.Item.Action, 1)
		if lost = append(lost, w); len(lost) == streamBatch {
			err := s.st.ReplaceWork(s.ctx, lost)
			lost = lost[:0]
			return err
		}
		return nil
	})
	if err == nil && len(lost) > 0 {
		err = s.st.ReplaceWork(s.ctx, lost)
	}
	return err
}

// absent decides for the users the read did not return. In a delta run, a linked account
// its changes did not touch was not read because nothing of it changed, not because it left.
func (s *stream) absent() error {
	return s.st.Absent(s.ctx, func(k Known) error {
		if s.delta && k.Linked && !k.Touched {
			return nil
		}
		return s.route(k.ExternalID, k.UserName, k.Held, s.p.Left(k))
	})
}

// suspensions writes the suspensions of the users who left, all held as suspension_held
// when there are more than the safety threshold allows.
func (s *stream) suspensions() error {
	if len(s.leavers) == 0 {
		return nil
	}
	active, err := s.st.ActiveLinked(s.ctx)
	if err != nil {
		return err
	}
	ids := make([]string, len(s.leavers))
	for i, l := range s.leavers {
		ids[i] = l.externalID
	}
	holdMsg := s.p.HoldSet(ids, active)
	for batch := range slices.Chunk(s.leavers, streamBatch) {
		ids := make([]string, len(batch))
		for i, l := range batch {
			ids[i] = l.externalID
		}
		states, err := s.st.AppliedStates(s.ctx, ids)
		if err != nil {
			return err
		}
		for _, l := range batch {
			ap, ok := states[l.externalID]
			if !ok {
				ap = Unlinked(l.externalID, l.userName) // a write whose outcome is unknown
			}
			if err := s.add(SuspensionItem(ap, l.held, holdMsg), SeatKey{}); err != nil {
				return err
			}
		}
	}
	if holdMsg != "" {
		s.sum.SuspensionsHeld = true
		s.sum.Warnings = append(s.sum.Warnings, holdMsg)
	}
	return s.st.FlushWork(s.ctx)
}

func (s *stream) add(it Item, key SeatKey) error {
	s.sum.Items++
	s.count(it.Action, 1)
	return s.st.AddWork(s.ctx, it, key)
}

func (s *stream) count(action Action, n int) {
	switch action {
	case Create:
		s.sum.Creates += n
	case Update:
		s.sum.Updates += n
	case Suspend:
		s.sum.Suspends += n
	case Fail:
		s.sum.Fails += n
	}
}
