package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/usersync/usersync/internal/directory"
	"github.com/usersync/usersync/internal/plan"
	"github.com/usersync/usersync/internal/scim"
)

// Run statuses.
const (
	RunRunning   = "running"
	RunSucceeded = "succeeded"
	RunFailed    = "failed"
	RunCancelled = "cancelled"
)

// Run is one sync as recorded in the store.
type Run struct {
	RunID      string          `json:"runId"`
	Org        string          `json:"org"`
	Kind       string          `json:"kind"`
	DryRun     bool            `json:"dryRun"`
	Status     string          `json:"status"`
	StartedAt  time.Time       `json:"startedAt"`
	FinishedAt *time.Time      `json:"finishedAt,omitempty"`
	Summary    json.RawMessage `json:"summary,omitempty"`
}

// BeginRun records a run as started (idempotent: an activity retry keeps the first start) and
// clears what an earlier attempt of the same run left in its snapshot and work tables.
func (s *Store) BeginRun(ctx context.Context, org, runID, kind string, dryRun bool) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `INSERT INTO runs (run_id, org, kind, dry_run, status) VALUES ($1,$2,$3,$4,$5)
			ON CONFLICT (run_id) DO NOTHING`, runID, org, kind, dryRun, RunRunning)
		if err != nil {
			return fmt.Errorf("record run: %w", err)
		}
		if tag.RowsAffected() == 1 {
			action := "sync started"
			if dryRun {
				action = "dry-run started"
			}
			if err := addEvent(ctx, tx, Event{Org: org, Type: EventSync, Action: action,
				Details: map[string]any{"run": runID, "kind": kind}}); err != nil {
				return err
			}
		}
		if _, err := tx.Exec(ctx, `DELETE FROM snapshot_users WHERE run_id=$1`, runID); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `DELETE FROM work_items WHERE run_id=$1`, runID)
		return err
	})
}

// FinishRun records the outcome of a run and drops its snapshot, keeping the work items of the
// last runs for inspection.
func (s *Store) FinishRun(ctx context.Context, runID, status string, failure plan.Failure, inScope int, summary any) error {
	b, err := json.Marshal(summary)
	if err != nil {
		return err
	}
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var org string
		if err := tx.QueryRow(ctx, `UPDATE runs SET status=$2, finished_at=now(), summary=$3, failure_type=$4, failure_message=$5,
			in_scope=$6 WHERE run_id=$1 RETURNING org`, runID, status, b, failure.Type, failure.Message, inScope).Scan(&org); err != nil {
			return fmt.Errorf("finish run %s: %w", runID, err)
		}
		// Scratch rows of finished runs, and of runs that never finished (terminated) after a
		// day; memberships and group deltas are keyed by run and attempt ("<run>#<attempt>").
		const ended = `(SELECT run_id FROM runs WHERE org=$1 AND (finished_at IS NOT NULL OR started_at < now() - interval '1 day'))`
		if _, err := tx.Exec(ctx, `DELETE FROM snapshot_users WHERE run_id IN `+ended, org); err != nil {
			return err
		}
		if err := dropMemberships(ctx, tx, `split_part(run_id, '#', 1) IN `+ended, org); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM group_deltas WHERE split_part(run_id, '#', 1) IN `+ended, org); err != nil {
			return err
		}
		// Keep the work of the 20 newest runs.
		_, err := tx.Exec(ctx, `DELETE FROM work_items WHERE run_id IN (SELECT run_id FROM runs WHERE org=$1
			ORDER BY started_at DESC OFFSET 20)`, org)
		return err
	})
}

// Runs lists the newest runs.
func (s *Store) Runs(ctx context.Context, org string, limit int) ([]Run, error) {
	rows, err := s.pool.Query(ctx, `SELECT run_id, org, kind, dry_run, status, started_at, finished_at, summary
		FROM runs WHERE org=$1 ORDER BY started_at DESC LIMIT $2`, org, limit)
	if err != nil {
		return nil, fmt.Errorf("read runs: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Run, error) {
		var x Run
		return x, r.Scan(&x.RunID, &x.Org, &x.Kind, &x.DryRun, &x.Status, &x.StartedAt, &x.FinishedAt, &x.Summary)
	})
}

// LastGoodSnapshotSize is the in-scope count of the newest successful non-dry run, 0 if none.
func (s *Store) LastGoodSnapshotSize(ctx context.Context, org string) (int, error) {
	var n int
	err := s.pool.QueryRow(ctx, `SELECT in_scope FROM runs
		WHERE org=$1 AND status=$2 AND NOT dry_run AND kind <> 'retry' ORDER BY started_at DESC LIMIT 1`, org, RunSucceeded).Scan(&n)
	if err == pgx.ErrNoRows {
		return 0, nil
	}
	return n, err
}

// AnalyzeSnapshot refreshes PostgreSQL's statistics of the snapshot table after a read: it
// swings between empty and a whole directory, and the plan's joins are chosen by its size.
func (s *Store) AnalyzeSnapshot(ctx context.Context) error {
	return s.analyze(ctx, "snapshot_users")
}

// analyze refreshes the statistics of scratch tables, best effort: it waits at most two
// seconds for the table (another run's ANALYZE, an autovacuum), then goes on with the
// statistics there are. The tables belong to the role that ran the migrations, which may
// analyze them.
func (s *Store) analyze(ctx context.Context, tables string) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SET LOCAL lock_timeout = '2s'`); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `ANALYZE `+tables)
		return err
	})
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "55P03" { // lock_not_available
		return nil
	}
	if err != nil {
		return fmt.Errorf("analyze %s: %w", tables, err)
	}
	return nil
}

// WriteSnapshot appends directory users to a run's snapshot with COPY.
func (s *Store) WriteSnapshot(ctx context.Context, runID string, users []directory.User) error {
	rows := make([][]any, len(users))
	for i, u := range users {
		b, err := json.Marshal(u)
		if err != nil {
			return err
		}
		rows[i] = []any{runID, u.ExternalID, b}
	}
	_, err := s.pool.CopyFrom(ctx, pgx.Identifier{"snapshot_users"}, []string{"run_id", "external_id", "data"}, pgx.CopyFromRows(rows))
	if err != nil {
		return fmt.Errorf("write snapshot: %w", err)
	}
	return nil
}

// AppliedStates returns the last applied state of every linked account (for explain; a
// sync's plan streams them instead).
func (s *Store) AppliedStates(ctx context.Context, org string) (map[string]plan.Applied, error) {
	return s.appliedStates(ctx, `org=$1`, org)
}

// AppliedStatesOf returns the last applied states of the given linked accounts.
func (s *Store) AppliedStatesOf(ctx context.Context, org string, externalIDs []string) (map[string]plan.Applied, error) {
	return s.appliedStates(ctx, `org=$1 AND external_id = ANY($2)`, org, externalIDs)
}

func (s *Store) appliedStates(ctx context.Context, where string, args ...any) (map[string]plan.Applied, error) {
	rows, err := s.pool.Query(ctx, `SELECT external_id, scim_id, state FROM user_state WHERE `+where, args...)
	if err != nil {
		return nil, fmt.Errorf("read user state: %w", err)
	}
	defer rows.Close()
	out := map[string]plan.Applied{}
	for rows.Next() {
		var a plan.Applied
		if err := rows.Scan(&a.ExternalID, &a.ScimID, &a.State); err != nil {
			return nil, fmt.Errorf("read user state: %w", err)
		}
		out[a.ExternalID] = a
	}
	return out, rows.Err()
}

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
}

// UserWork loads one planned item with the user's applied state and the target's extension,
// in one query.
func (s *Store) UserWork(ctx context.Context, org, runID string, seq int) (UserWork, error) {
	var w UserWork
	var scimID *string
	var state *plan.Desired
	var ext *scim.Extension
	err := s.pool.QueryRow(ctx, `SELECT w.item, u.scim_id, u.state, t.extension FROM work_items w
		LEFT JOIN user_state u ON u.org=$1 AND u.external_id=w.external_id
		LEFT JOIN runs t ON t.run_id=w.run_id
		WHERE w.run_id=$2 AND w.seq=$3`, org, runID, seq).Scan(&w.Item, &scimID, &state, &ext)
	if err == pgx.ErrNoRows {
		return w, fmt.Errorf("run %s item %d: %w", runID, seq, ErrNotFound)
	}
	if err != nil {
		return w, err
	}
	if ext != nil {
		w.Extension = *ext
	}
	w.Extension = w.Extension.Resolved()
	if scimID != nil {
		w.Applied = &plan.Applied{ExternalID: w.Item.ExternalID, ScimID: *scimID, State: *state}
	}
	return w, nil
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
