package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/usersync/usersync/internal/plan"
	"github.com/usersync/usersync/internal/scim"
	"github.com/usersync/usersync/internal/vocab"
)

// WorkItem loads one planned item.
func (s *Store) WorkItem(ctx context.Context, runID string, seq int) (plan.Item, error) {
	var it plan.Item
	err := s.pool.QueryRow(ctx, `SELECT item FROM work_items WHERE run_id=$1 AND seq=$2`, runID, seq).Scan(&it)
	if err == pgx.ErrNoRows {
		return it, fmt.Errorf("run %s item %d: %w", runID, seq, ErrNotFound)
	}
	return it, err
}

// WorkItemRange loads the items [from, to) of a run, in order.
func (s *Store) WorkItemRange(ctx context.Context, runID string, from, to int) ([]plan.Item, error) {
	rows, err := s.pool.Query(ctx, `SELECT item FROM work_items WHERE run_id=$1 AND seq >= $2 AND seq < $3 ORDER BY seq`,
		runID, from, to)
	if err != nil {
		return nil, fmt.Errorf("read work: %w", err)
	}
	items, err := pgx.CollectRows(rows, pgx.RowTo[plan.Item])
	if err == nil && len(items) != to-from {
		err = fmt.Errorf("run %s items %d-%d: %d found: %w", runID, from, to-1, len(items), ErrNotFound)
	}
	return items, err
}

// UserWork is one user's planned item with what the provisioning step needs besides it.
type UserWork struct {
	Item    plan.Item
	Applied *plan.Applied // nil when not linked
	// Extension is the custom extension the run checked the target for (defaults when the
	// run recorded none).
	Extension scim.Extension
	// Intent is the user's open write (its outcome unknown), nil when none.
	Intent *Intent
}

// UserWork loads one planned item with the user's applied state, open write intent and the
// target's extension, in one query.
func (s *Store) UserWork(ctx context.Context, org, runID string, seq int) (UserWork, error) {
	return s.userWork(ctx, org, runID, seq, false, Hold{})
}

// BeginUserWrite is UserWork for the step about to write to the user's account: in the same
// statement it opens the write's intent (OpenIntent) when the user has none (never for a
// failed item: that step only reads the target for an earlier write). w.Intent is the
// intent found before, an earlier write whose outcome is unknown: that one stays as it was
// (the caller reads the target for it, then replaces it with OpenIntent).
func (s *Store) BeginUserWrite(ctx context.Context, org, runID string, seq int) (UserWork, error) {
	return s.userWork(ctx, org, runID, seq, true, Hold{})
}

// Hold is how an attempt holds the intent it opens: until it releases it (ReleaseHold), at
// the latest for For. The zero Hold holds nothing.
type Hold struct {
	By  string // the attempt's token
	For time.Duration
}

// BeginHeldWrite is BeginUserWrite for an attempt that may outlive its workflow task (a
// local activity): the intent it opens (none when an earlier one is open) is held by h, and
// an earlier intent's hold shows in w.Intent.HeldFor. It closes the item to local writes in
// the same statement; when the item was closed already (another step decided about it) it
// opens nothing and fails with ErrLocalClosed.
func (s *Store) BeginHeldWrite(ctx context.Context, org, runID string, seq int, h Hold) (UserWork, error) {
	if h.By == "" || h.For <= 0 {
		return UserWork{}, fmt.Errorf("run %s item %d: a held write needs a holder and a duration", runID, seq)
	}
	return s.userWork(ctx, org, runID, seq, true, h)
}

// ErrLocalClosed: a local write found its work item closed to local writes (CloseLocal).
var ErrLocalClosed = errors.New("another step already decided about this user's write")

// CloseLocal closes a work item to local writes: one that has not opened its intent yet
// never will. It waits for one opening it now, so that what is read after it sees that.
func (s *Store) CloseLocal(ctx context.Context, runID string, seq int) error {
	if _, err := s.pool.Exec(ctx, `UPDATE work_items SET local_closed = true
		WHERE run_id=$1 AND seq=$2 AND NOT local_closed`, runID, seq); err != nil {
		return fmt.Errorf("close run %s item %d to local writes: %w", runID, seq, err)
	}
	return nil
}

// ReleaseHold ends the hold of attempt by on the user's intent, if the intent is still open
// and held by it: the attempt is over and writes no more.
func (s *Store) ReleaseHold(ctx context.Context, org, externalID, by string) error {
	_, err := s.pool.Exec(ctx, `UPDATE write_intents SET held_by=NULL, held_until=NULL
		WHERE org=$1 AND external_id=$2 AND held_by=$3`, org, externalID, by)
	if err != nil {
		return fmt.Errorf("release write hold: %w", err)
	}
	return nil
}

func (s *Store) userWork(ctx context.Context, org, runID string, seq int, open bool, h Hold) (UserWork, error) {
	var w UserWork
	var scimID *string
	var state *plan.Desired
	var ext *scim.Extension
	var i Intent
	var intentRun, intentAction, intentName *string
	var intentAt *time.Time
	var intentAge, heldFor *float64
	var claimed bool
	// The statement's reads see the table as it was before its insert: i is the earlier intent.
	// Planned at each call (QueryExecModeExec: an unnamed statement gets a custom plan): a cached
	// generic plan, made while user_state and write_intents were small at the start of an
	// initial sync, kept scanning them as they grew (706 buffer blocks per user at 10,000 users).
	err := s.pool.QueryRow(ctx, `WITH w AS (SELECT w.item, w.external_id, w.user_name, w.action, t.extension
			FROM work_items w
			JOIN runs t ON t.run_id=w.run_id AND t.org=$1 -- a step names its organization's run, or none
			WHERE w.run_id=$2 AND w.seq=$3),
		-- A held write first closes the item to local writes; it goes on only if it did. The
		-- update waits for another one's on the same row and then sees its result.
		claimed AS (UPDATE work_items SET local_closed = true
			WHERE $5::text IS NOT NULL AND run_id=$2 AND seq=$3 AND NOT local_closed
			AND EXISTS (SELECT 1 FROM w) RETURNING 1),
		opened AS (INSERT INTO write_intents (org, external_id, user_name, run_id, action, held_by, held_until)
			SELECT $1, external_id, user_name, $2, action, $5,
				CASE WHEN $5::text IS NOT NULL THEN clock_timestamp() + make_interval(secs => $6) END
			FROM w WHERE $4 AND action <> 'fail' -- a failure writes nothing
			AND ($5::text IS NULL OR EXISTS (SELECT 1 FROM claimed))
			ON CONFLICT (org, external_id) DO NOTHING)
		SELECT w.item, u.scim_id, u.state, w.extension, i.run_id, i.action, i.user_name, i.opened_at,
			EXTRACT(EPOCH FROM clock_timestamp() - i.opened_at)::float8,
			EXTRACT(EPOCH FROM i.held_until - clock_timestamp())::float8,
			EXISTS (SELECT 1 FROM claimed) FROM w
		LEFT JOIN user_state u ON u.org=$1 AND u.external_id=w.external_id
		LEFT JOIN write_intents i ON i.org=$1 AND i.external_id=w.external_id`, pgx.QueryExecModeExec,
		org, runID, seq, open, holder(h), h.For.Seconds()).Scan(
		&w.Item, &scimID, &state, &ext, &intentRun, &intentAction, &intentName, &intentAt, &intentAge, &heldFor, &claimed)
	if err == pgx.ErrNoRows {
		return w, fmt.Errorf("run %s item %d: %w", runID, seq, ErrNotFound)
	}
	if err != nil {
		return w, err
	}
	if h.By != "" && !claimed {
		return UserWork{}, fmt.Errorf("run %s item %d: %w", runID, seq, ErrLocalClosed)
	}
	if ext != nil {
		w.Extension = *ext
	}
	w.Extension = w.Extension.Resolved()
	if scimID != nil {
		w.Applied = &plan.Applied{ExternalID: w.Item.ExternalID, ScimID: *scimID, State: *state}
	}
	if intentRun != nil {
		i.RunID, i.Action, i.UserName, i.OpenedAt = *intentRun, *intentAction, *intentName, *intentAt
		i.Age = time.Duration(*intentAge * float64(time.Second))
		if heldFor != nil && *heldFor > 0 {
			i.HeldFor = time.Duration(*heldFor * float64(time.Second))
		}
		w.Intent = &i
	}
	return w, nil
}

// holder is h's token as a query argument: NULL for no hold.
func holder(h Hold) *string {
	if h.By == "" {
		return nil
	}
	return &h.By
}

// WorkItems lists a run's planned items by userName (for dry runs), up to limit.
func (s *Store) WorkItems(ctx context.Context, runID string, limit int) ([]plan.Item, error) {
	rows, err := s.pool.Query(ctx, `SELECT item FROM work_items WHERE run_id=$1
		ORDER BY order_key, seq LIMIT $2`, runID, limit) // plan.ItemOrder
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[plan.Item])
}

// DeleteWork removes a run's items (a retried plan starts over).
func (s *Store) DeleteWork(ctx context.Context, runID string) error {
	_, err := s.pool.Exec(ctx, `DELETE FROM work_items WHERE run_id=$1`, runID)
	return err
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

// Add appends one item; key orders it among the seat candidates (plan.SeatOrder) when it
// takes new seats.
func (w *WorkWriter) Add(ctx context.Context, it plan.Item, key plan.SeatKey) error {
	var c workColumns
	if err := c.add(it, key); err != nil {
		return err
	}
	var seatKey any // a nil []byte would be written as an empty key, not NULL
	if c.seatKey[0] != nil {
		seatKey = c.seatKey[0]
	}
	w.rows = append(w.rows, []any{w.runID, w.next, c.externalID[0], c.userName[0], c.action[0], []byte(c.item[0]),
		c.failureType[0], c.failureProduct[0], c.failureMessage[0], seatKey, c.orderKey[0]})
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
		[]string{"run_id", "seq", "external_id", "user_name", "action", "item",
			"failure_type", "failure_product", "failure_message", "seat_key", "order_key"},
		pgx.CopyFromRows(w.rows))
	if err != nil {
		return fmt.Errorf("write work: %w", err)
	}
	w.rows = w.rows[:0]
	return nil
}

// workColumns are the stored columns of items, column by column. Each is an item's field or
// a key computed by plan: the store adds no meaning of its own.
type workColumns struct {
	externalID, userName, action, item          []string
	failureType, failureProduct, failureMessage []string
	seatKey, orderKey                           [][]byte
}

func (c *workColumns) add(it plan.Item, key plan.SeatKey) error {
	b, err := json.Marshal(it)
	if err != nil {
		return err
	}
	var f vocab.Failure
	if it.Failure != nil {
		f = *it.Failure
	}
	c.externalID = append(c.externalID, it.ExternalID)
	c.userName = append(c.userName, it.UserName)
	c.action = append(c.action, string(it.Action))
	c.item = append(c.item, string(b))
	c.failureType = append(c.failureType, f.Type)
	c.failureProduct = append(c.failureProduct, f.Product)
	c.failureMessage = append(c.failureMessage, f.Message)
	c.seatKey = append(c.seatKey, plan.SeatOrder(it, key))
	c.orderKey = append(c.orderKey, plan.ItemOrder(it))
	return nil
}
