package store

import (
	"context"
	"fmt"

	"github.com/usersync/usersync/internal/plan"
	"github.com/usersync/usersync/internal/vocab"
)

// The storage of a streaming plan (plan.Store, driven by plan.Stream): the snapshot joined
// with what the store knows of each user, the users the read did not return, seat counts,
// and the run's work table (work.go). These queries select, stream and write; they decide nothing and
// read no field of a plan type's JSON (the snapshot's users and the applied states are read
// whole). Every decision, and every key SQL orders by, is computed in Go.

// PlanRow is one snapshot user with its applied state's hash, failure and seats.
type PlanRow = plan.UserRow

// heldSeats aggregates a user's seats in Go's byte order (COLLATE "C"), as plan compares them.
const heldSeats = `(SELECT array_agg(z.product ORDER BY z.product COLLATE "C") FROM seats z
	WHERE z.org=$1 AND z.external_id=%s)`

// PlanRows streams a run's snapshot, in externalId order, each user with its applied
// state's hash, failure, held seats and whether a write of it is open (write_intents).
func (s *Store) PlanRows(ctx context.Context, org, runID string, fn func(PlanRow) error) error {
	rows, err := s.pool.Query(ctx, `SELECT s.data, u.hash, f.type, f.product, f.message,
		`+fmt.Sprintf(heldSeats, "s.external_id")+`, i.external_id IS NOT NULL
		FROM snapshot_users s
		LEFT JOIN user_state u ON u.org=$1 AND u.external_id=s.external_id
		LEFT JOIN failures f ON f.org=$1 AND f.external_id=s.external_id
		LEFT JOIN write_intents i ON i.org=$1 AND i.external_id=s.external_id
		WHERE s.run_id=$2 ORDER BY s.external_id`, org, runID)
	if err != nil {
		return fmt.Errorf("read snapshot: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var r PlanRow
		var hash, ftype, fproduct, fmessage *string
		if err := rows.Scan(&r.User, &hash, &ftype, &fproduct, &fmessage, &r.Held, &r.Reconcile); err != nil {
			return fmt.Errorf("read snapshot: %w", err)
		}
		if hash != nil {
			r.AppliedHash = *hash
		}
		r.Failure = failureOf(ftype, fproduct, fmessage)
		if err := fn(r); err != nil {
			return err
		}
	}
	return rows.Err()
}

func failureOf(typ, product, message *string) *vocab.Failure {
	if typ == nil {
		return nil
	}
	return &vocab.Failure{Type: *typ, Product: *product, Message: *message}
}

// RunPlanning is the storage of one run's plan (plan.Store).
type RunPlanning struct {
	s          *Store
	org, runID string
	w          *WorkWriter
	// Delta: the run's snapshot is a delta snapshot, as the plan's input says
	// (plan.Input.Delta, read once by the caller from DeltaSnapshot): Absent then leaves out
	// the linked accounts the run's changes did not touch.
	Delta bool
}

var _ plan.Store = (*RunPlanning)(nil)

// Planning is the storage of org's plan of runID. The run must have no work yet (DeleteWork).
func (s *Store) Planning(org, runID string) *RunPlanning {
	return &RunPlanning{s: s, org: org, runID: runID, w: s.NewWorkWriter(runID)}
}

// Users streams the run's snapshot (PlanRows).
func (p *RunPlanning) Users(ctx context.Context, fn func(plan.UserRow) error) error {
	return p.s.PlanRows(ctx, p.org, p.runID, fn)
}

// AppliedStates returns the applied states of the given linked accounts.
func (p *RunPlanning) AppliedStates(ctx context.Context, externalIDs []string) (map[string]plan.Applied, error) {
	return p.s.AppliedStatesOf(ctx, p.org, externalIDs)
}

// Absent streams, in externalId order, every linked account, current failure, open write
// (write_intents) and seat holder of a user the run's directory read did not return: the
// account's columns (not its state), the failure, whether a write is open and the seats
// held. UserName is the linked account's, else the open write's, else "". Touched: the
// user is among a delta run's touched users (MarkDelta).
//
// In a delta run it leaves out the linked accounts the run's changes did not touch, which the
// leaver pass skips (plan.Stream decides that): read, they are most of the organization, and
// streaming 100,000 of them took seconds of a run that writes 1,000.
func (p *RunPlanning) Absent(ctx context.Context, fn func(plan.Known) error) error {
	linked := `SELECT u.external_id, true AS linked, u.active, u.user_name FROM user_state u WHERE u.org=$1`
	if p.Delta {
		linked = `SELECT u.external_id, true AS linked, u.active, u.user_name
			FROM snapshot_touched t JOIN user_state u ON u.org=$1 AND u.external_id=t.external_id WHERE t.run_id=$2`
	}
	rows, err := p.s.pool.Query(ctx, `WITH
		known AS (`+linked+`
			UNION ALL
			SELECT x.external_id, false, false, '' FROM (
				SELECT f.external_id FROM failures f WHERE f.org=$1
				UNION SELECT i.external_id FROM write_intents i WHERE i.org=$1
				-- Seat holders without an account, found before the union: it then sorts a
				-- few, not every seat of the organization (on disk at 100,000 users).
				UNION SELECT s.external_id FROM seats s WHERE s.org=$1
					AND NOT EXISTS (SELECT 1 FROM user_state u WHERE u.org=$1 AND u.external_id=s.external_id)) x
			WHERE NOT EXISTS (SELECT 1 FROM user_state u WHERE u.org=$1 AND u.external_id=x.external_id))
		SELECT k.external_id, k.linked, k.active, k.user_name, i.user_name, f.type, f.product, f.message,
			(SELECT array_agg(s.product ORDER BY s.product COLLATE "C") FROM seats s WHERE s.org=$1 AND s.external_id=k.external_id),
			EXISTS (SELECT 1 FROM snapshot_touched t WHERE t.run_id=$2 AND t.external_id=k.external_id)
		FROM known k
		LEFT JOIN failures f ON f.org=$1 AND f.external_id=k.external_id
		LEFT JOIN write_intents i ON i.org=$1 AND i.external_id=k.external_id
		WHERE NOT EXISTS (SELECT 1 FROM snapshot_users s WHERE s.run_id=$2 AND s.external_id=k.external_id)
		ORDER BY k.external_id`, p.org, p.runID)
	if err != nil {
		return fmt.Errorf("read users not in the snapshot: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var k plan.Known
		var intentName, ftype, fproduct, fmessage *string
		if err := rows.Scan(&k.ExternalID, &k.Linked, &k.Active, &k.UserName, &intentName, &ftype, &fproduct, &fmessage, &k.Held, &k.Touched); err != nil {
			return fmt.Errorf("read users not in the snapshot: %w", err)
		}
		if intentName != nil {
			k.Reconcile = true
			if !k.Linked {
				k.UserName = *intentName
			}
		}
		k.Failure = failureOf(ftype, fproduct, fmessage)
		if err := fn(k); err != nil {
			return err
		}
	}
	return rows.Err()
}

// ActiveLinked counts the active linked accounts.
func (p *RunPlanning) ActiveLinked(ctx context.Context) (int, error) {
	var n int
	err := p.s.pool.QueryRow(ctx, `SELECT count(*) FROM user_state WHERE org=$1 AND active`, p.org).Scan(&n)
	return n, err
}

// Untouched counts the active linked accounts of the users a delta run's changes did not
// touch (snapshot_touched).
func (p *RunPlanning) Untouched(ctx context.Context) (int, error) {
	var n int
	err := p.s.pool.QueryRow(ctx, `SELECT count(*) FROM user_state u WHERE u.org=$1 AND u.active
		AND NOT EXISTS (SELECT 1 FROM snapshot_touched t WHERE t.run_id=$2 AND t.external_id=u.external_id)`, p.org, p.runID).Scan(&n)
	return n, err
}

// Seats returns the seats bought and the seats in use, per product.
func (p *RunPlanning) Seats(ctx context.Context) (seats, used map[string]int, err error) {
	seats, used = map[string]int{}, map[string]int{}
	rows, err := p.s.pool.Query(ctx, `SELECT product, seats, true FROM licenses WHERE org=$1
		UNION ALL SELECT product, count(*)::int, false FROM seats WHERE org=$1 GROUP BY product`, p.org)
	if err != nil {
		return nil, nil, fmt.Errorf("read seats: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var prod string
		var n int
		var bought bool
		if err := rows.Scan(&prod, &n, &bought); err != nil {
			return nil, nil, err
		}
		if bought {
			seats[prod] = n
		} else {
			used[prod] = n
		}
	}
	return seats, used, rows.Err()
}

// AddWork appends an item to the run's work (WorkWriter.Add).
func (p *RunPlanning) AddWork(ctx context.Context, it plan.Item, key plan.SeatKey) error {
	return p.w.Add(ctx, it, key)
}

// FlushWork writes the items added since the last flush.
func (p *RunPlanning) FlushWork(ctx context.Context) error { return p.w.Flush(ctx) }

// SeatCandidates streams the run's items that have a seat order, in that order (bytewise).
func (p *RunPlanning) SeatCandidates(ctx context.Context, fn func(plan.Work) error) error {
	rows, err := p.s.pool.Query(ctx, `SELECT seq, item FROM work_items
		WHERE run_id=$1 AND seat_key IS NOT NULL ORDER BY seat_key`, p.runID)
	if err != nil {
		return fmt.Errorf("read seat candidates: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var w plan.Work
		if err := rows.Scan(&w.Seq, &w.Item); err != nil {
			return fmt.Errorf("read seat candidates: %w", err)
		}
		if err := fn(w); err != nil {
			return err
		}
	}
	return rows.Err()
}

// ReplaceWork overwrites items of the run, with the columns WorkWriter.Add would give them
// for a zero seat key.
func (p *RunPlanning) ReplaceWork(ctx context.Context, ws []plan.Work) error {
	if len(ws) == 0 {
		return nil
	}
	var c workColumns
	seqs := make([]int, len(ws))
	for i, w := range ws {
		seqs[i] = w.Seq
		if err := c.add(w.Item, plan.SeatKey{}); err != nil {
			return err
		}
	}
	_, err := p.s.pool.Exec(ctx, `UPDATE work_items w SET item=r.item::jsonb, action=r.action,
		failure_type=r.failure_type, failure_product=r.failure_product, failure_message=r.failure_message,
		seat_key=r.seat_key, order_key=r.order_key
		FROM unnest($2::int[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::bytea[], $9::bytea[])
			AS r(seq, item, action, failure_type, failure_product, failure_message, seat_key, order_key)
		WHERE w.run_id=$1 AND w.seq=r.seq`,
		p.runID, seqs, c.item, c.action, c.failureType, c.failureProduct, c.failureMessage, c.seatKey, c.orderKey)
	if err != nil {
		return fmt.Errorf("replace work items: %w", err)
	}
	return nil
}
