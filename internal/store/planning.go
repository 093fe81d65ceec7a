package store

import (
	"context"
	"encoding/json"
	"fmt"
	"math"

	"github.com/jackc/pgx/v5"

	"github.com/usersync/usersync/internal/directory"
	"github.com/usersync/usersync/internal/plan"
)

// The queries of a streaming plan: one pass over the snapshot joined with what the store
// knows of each user, items written as they are decided, seats handed out in seat order
// from the work table, then the users who left. Memory holds a batch, never the directory.

// PlanRow is one snapshot user with its failure and seats. Its applied state is read
// separately (AppliedStatesOf) and only when needed: most users of a resync are settled by
// the hash alone, and their states would be most of the bytes read.
type PlanRow struct {
	User        directory.User
	AppliedHash string // "" when not linked
	Failure     *plan.Failure
	Held        []string // products whose seat the user holds, sorted bytewise
}

// heldSeats aggregates a user's seats in Go's byte order (COLLATE "C"), as plan compares them.
const heldSeats = `(SELECT array_agg(z.product ORDER BY z.product COLLATE "C") FROM seats z
	WHERE z.org=$1 AND z.external_id=%s)`

// PlanRows streams a run's snapshot, in externalId order, each user with its applied
// state's hash, failure and held seats.
func (s *Store) PlanRows(ctx context.Context, org, runID string, fn func(PlanRow) error) error {
	rows, err := s.pool.Query(ctx, `SELECT s.data, u.hash, f.type, f.product, f.message,
		`+fmt.Sprintf(heldSeats, "s.external_id")+`
		FROM snapshot_users s
		LEFT JOIN user_state u ON u.org=$1 AND u.external_id=s.external_id
		LEFT JOIN failures f ON f.org=$1 AND f.external_id=s.external_id
		WHERE s.run_id=$2 ORDER BY s.external_id`, org, runID)
	if err != nil {
		return fmt.Errorf("read snapshot: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var r PlanRow
		var hash, ftype, fproduct, fmessage *string
		if err := rows.Scan(&r.User, &hash, &ftype, &fproduct, &fmessage, &r.Held); err != nil {
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

func failureOf(typ, product, message *string) *plan.Failure {
	if typ == nil {
		return nil
	}
	return &plan.Failure{Type: *typ, Product: *product, Message: *message}
}

// Leavers streams the linked active accounts a run may suspend: those whose externalId is in
// outOfScope (read, but out of scope) and those the run's directory read did not return.
func (s *Store) Leavers(ctx context.Context, org, runID string, outOfScope []string,
	fn func(ap plan.Applied, f *plan.Failure, held []string) error) error {
	rows, err := s.pool.Query(ctx, `SELECT u.external_id, u.scim_id, u.state, f.type, f.product, f.message,
		`+fmt.Sprintf(heldSeats, "u.external_id")+`
		FROM user_state u
		LEFT JOIN failures f ON f.org=u.org AND f.external_id=u.external_id
		WHERE u.org=$1 AND u.active AND (u.external_id IN (SELECT unnest($3::text[]))
			OR NOT EXISTS (SELECT 1 FROM snapshot_users s WHERE s.run_id=$2 AND s.external_id=u.external_id))
		ORDER BY u.external_id`, org, runID, nonNil(outOfScope))
	if err != nil {
		return fmt.Errorf("read leavers: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var ap plan.Applied
		var ftype, fproduct, fmessage *string
		var held []string
		if err := rows.Scan(&ap.ExternalID, &ap.ScimID, &ap.State, &ftype, &fproduct, &fmessage, &held); err != nil {
			return fmt.Errorf("read leavers: %w", err)
		}
		if err := fn(ap, failureOf(ftype, fproduct, fmessage), held); err != nil {
			return err
		}
	}
	return rows.Err()
}

// FailedLeavers streams the failed users that the run's directory read did not return and
// that have no active account: their failure no longer matters. userName is that of the
// (inactive) account, "" when there is none, as plan.Plan matches retry filters.
func (s *Store) FailedLeavers(ctx context.Context, org, runID string, fn func(externalID, userName string, f plan.Failure) error) error {
	rows, err := s.pool.Query(ctx, `SELECT f.external_id, COALESCE(a.user_name, ''), f.type, f.product, f.message FROM failures f
		LEFT JOIN user_state a ON a.org=f.org AND a.external_id=f.external_id
		WHERE f.org=$1
		AND NOT EXISTS (SELECT 1 FROM snapshot_users s WHERE s.run_id=$2 AND s.external_id=f.external_id)
		AND NOT EXISTS (SELECT 1 FROM user_state u WHERE u.org=$1 AND u.external_id=f.external_id AND u.active)
		ORDER BY f.external_id`, org, runID)
	if err != nil {
		return fmt.Errorf("read failures: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id, name string
		var f plan.Failure
		if err := rows.Scan(&id, &name, &f.Type, &f.Product, &f.Message); err != nil {
			return err
		}
		if err := fn(id, name, f); err != nil {
			return err
		}
	}
	return rows.Err()
}

// ActiveLinked counts the active linked accounts (for the suspension threshold).
func (s *Store) ActiveLinked(ctx context.Context, org string) (int, error) {
	var n int
	err := s.pool.QueryRow(ctx, `SELECT count(*) FROM user_state WHERE org=$1 AND active`, org).Scan(&n)
	return n, err
}

// SeatCounts returns the seats bought and the seats in use, per product.
func (s *Store) SeatCounts(ctx context.Context, org string) (seats, used map[string]int, err error) {
	seats, used = map[string]int{}, map[string]int{}
	rows, err := s.pool.Query(ctx, `SELECT product, seats, true FROM licenses WHERE org=$1
		UNION ALL SELECT product, count(*)::int, false FROM seats WHERE org=$1 GROUP BY product`, org)
	if err != nil {
		return nil, nil, fmt.Errorf("read seats: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var p string
		var n int
		var bought bool
		if err := rows.Scan(&p, &n, &bought); err != nil {
			return nil, nil, err
		}
		if bought {
			seats[p] = n
		} else {
			used[p] = n
		}
	}
	return seats, used, rows.Err()
}

// WorkWriter appends a run's items with consecutive seq numbers, in batches of COPY.
type WorkWriter struct {
	s     *Store
	runID string
	rows  [][]any
	next  int
}

const workBatch = 1000

// NewWorkWriter starts writing runID's items at seq 0; the run must have none yet.
func (s *Store) NewWorkWriter(runID string) *WorkWriter {
	return &WorkWriter{s: s, runID: runID}
}

// Add appends one item; key orders it among the seat candidates when it takes new seats.
func (w *WorkWriter) Add(ctx context.Context, it plan.Item, key plan.SeatKey) error {
	b, err := json.Marshal(it)
	if err != nil {
		return err
	}
	priority := 0 // only seat candidates are ordered by it
	if len(it.NewSeats) > 0 {
		priority = min(key.Priority, math.MaxInt32)
	}
	w.rows = append(w.rows, []any{w.runID, w.next, it.ExternalID, it.UserName, string(it.Action), b,
		priority, plan.SortName(it.UserName), nonNil(it.NewSeats)})
	w.next++
	if len(w.rows) >= workBatch {
		return w.Flush(ctx)
	}
	return nil
}

// Count is the number of items added.
func (w *WorkWriter) Count() int { return w.next }

// Flush writes the items added since the last flush.
func (w *WorkWriter) Flush(ctx context.Context) error {
	if len(w.rows) == 0 {
		return nil
	}
	_, err := w.s.pool.CopyFrom(ctx, pgx.Identifier{"work_items"},
		[]string{"run_id", "seq", "external_id", "user_name", "action", "item", "seat_priority", "sort_name", "new_seats"},
		pgx.CopyFromRows(w.rows))
	if err != nil {
		return fmt.Errorf("write work: %w", err)
	}
	w.rows = w.rows[:0]
	return nil
}

// DeleteWork removes a run's items (a retried plan starts over).
func (s *Store) DeleteWork(ctx context.Context, runID string) error {
	_, err := s.pool.Exec(ctx, `DELETE FROM work_items WHERE run_id=$1`, runID)
	return err
}

// SeatCandidates streams the run's items that take new seats, in seat order (plan.SeatKey).
func (s *Store) SeatCandidates(ctx context.Context, runID string, fn func(seq int, action plan.Action, products []string) error) error {
	rows, err := s.pool.Query(ctx, `SELECT seq, action, new_seats FROM work_items
		WHERE run_id=$1 AND cardinality(new_seats) > 0
		ORDER BY seat_priority, sort_name COLLATE "C", external_id COLLATE "C"`, runID)
	if err != nil {
		return fmt.Errorf("read seat candidates: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var seq int
		var action string
		var products []string
		if err := rows.Scan(&seq, &action, &products); err != nil {
			return err
		}
		if err := fn(seq, plan.Action(action), products); err != nil {
			return err
		}
	}
	return rows.Err()
}

// WorkFailure fails one planned item before provisioning.
type WorkFailure struct {
	Seq     int
	Failure plan.Failure
}

// FailWork turns planned items into failures (plan.FailItem, done in the database): nothing
// is written for them and they take or release no seat.
func (s *Store) FailWork(ctx context.Context, runID string, fs []WorkFailure) error {
	if len(fs) == 0 {
		return nil
	}
	seqs, failures := make([]int, len(fs)), make([]string, len(fs))
	for i, f := range fs {
		b, err := json.Marshal(f.Failure)
		if err != nil {
			return err
		}
		seqs[i], failures[i] = f.Seq, string(b)
	}
	_, err := s.pool.Exec(ctx, `UPDATE work_items w SET action='fail', new_seats='{}',
		item = (w.item - 'changed' - 'newSeats' - 'releaseSeats') || jsonb_build_object('action', 'fail', 'failure', f.failure::jsonb)
		FROM unnest($2::int[], $3::text[]) AS f(seq, failure)
		WHERE w.run_id=$1 AND w.seq=f.seq`, runID, seqs, failures)
	if err != nil {
		return fmt.Errorf("fail work items: %w", err)
	}
	return nil
}
