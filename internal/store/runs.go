package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/usersync/usersync/internal/vocab"
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

// BeginRun records a run as started (RecordRun), makes the caller the run's snapshot attempt
// (returned: the fencing token of its writes, checkAttempt) and clears what an earlier attempt
// of the same run left in its snapshot and work tables: the directory read starts over.
func (s *Store) BeginRun(ctx context.Context, org, runID, kind string, dryRun bool) (attempt int64, err error) {
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := recordRun(ctx, tx, org, runID, kind, dryRun); err != nil {
			return err
		}
		// The row lock taken here orders this begin with the earlier attempt's writes.
		if err := tx.QueryRow(ctx, `UPDATE runs SET snapshot_attempt=snapshot_attempt+1 WHERE run_id=$1
			RETURNING snapshot_attempt`, runID).Scan(&attempt); err != nil {
			return fmt.Errorf("begin run %s: %w", runID, err)
		}
		return clearSnapshot(ctx, tx, runID)
	})
	return attempt, err
}

// ResetSnapshot clears run runID's snapshot as BeginRun does, for the attempt that owns it.
func (s *Store) ResetSnapshot(ctx context.Context, runID string, attempt int64) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := checkAttempt(ctx, tx, runID, attempt); err != nil {
			return err
		}
		return clearSnapshot(ctx, tx, runID)
	})
}

func clearSnapshot(ctx context.Context, tx pgx.Tx, runID string) error {
	for _, q := range []string{`DELETE FROM snapshot_users WHERE run_id=$1`, `DELETE FROM snapshot_touched WHERE run_id=$1`,
		`UPDATE runs SET delta=false WHERE run_id=$1`, `DELETE FROM work_items WHERE run_id=$1`} {
		if _, err := tx.Exec(ctx, q, runID); err != nil {
			return err
		}
	}
	return nil
}

// ErrSuperseded is the error of a write by a run's snapshot attempt after a later attempt
// of the run began (BeginRun): the write is refused, and the attempt must stop.
var ErrSuperseded = errors.New("superseded")

// CheckAttempt fails with ErrSuperseded unless attempt is still run runID's snapshot attempt.
func (s *Store) CheckAttempt(ctx context.Context, runID string, attempt int64) error {
	return checkAttempt(ctx, s.pool, runID, attempt)
}

// checkAttempt is the fence of every write to a run's snapshot state, in the write's
// transaction: FOR SHARE waits for a BeginRun under way, and keeps the next one waiting
// until the write commits, so no write of an earlier attempt lands after a later one began.
func checkAttempt(ctx context.Context, db dbtx, runID string, attempt int64) error {
	var current int64
	err := db.QueryRow(ctx, `SELECT snapshot_attempt FROM runs WHERE run_id=$1 FOR SHARE`, runID).Scan(&current)
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("run %s is not recorded", runID)
	}
	if err != nil {
		return fmt.Errorf("run %s: %w", runID, err)
	}
	if current != attempt {
		return fmt.Errorf("run %s: snapshot attempt %d was %w by attempt %d", runID, attempt, ErrSuperseded, current)
	}
	return nil
}

// RecordRun records a run as started, with its "sync started" history row, unless it is
// recorded already (idempotent: a retry or a later step keeps the first start). It leaves
// the run's snapshot and work as they are.
func (s *Store) RecordRun(ctx context.Context, org, runID, kind string, dryRun bool) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		return recordRun(ctx, tx, org, runID, kind, dryRun)
	})
}

func recordRun(ctx context.Context, tx pgx.Tx, org, runID, kind string, dryRun bool) error {
	tag, err := tx.Exec(ctx, `INSERT INTO runs (run_id, org, kind, dry_run, status) VALUES ($1,$2,$3,$4,$5)
		ON CONFLICT (run_id) DO NOTHING`, runID, org, kind, dryRun, vocab.RunRunning)
	if err != nil {
		return fmt.Errorf("record run: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return nil
	}
	action := "sync started"
	if dryRun {
		action = "dry-run started"
	}
	return addEvent(ctx, tx, vocab.Event{Org: org, Type: vocab.EventSync, Action: action,
		Details: map[string]any{"run": runID, "kind": kind}})
}

// FinishRun records the outcome of a run and drops its snapshot, keeping the work items of the
// last runs for inspection.
func (s *Store) FinishRun(ctx context.Context, runID, status string, failure vocab.Failure, inScope int, summary any) error {
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
		return dropEnded(ctx, tx, org, runID)
	})
}

// dropEnded deletes the scratch rows of run runID and of org's other ended runs (runs that
// never finished, terminated, after a day), and the work of org's runs beyond its 20 newest.
// Each is found by its run_id through the tables' indexes, never by a join over every run of
// the organization, which the planner ran as a scan of every organization's rows. A run's
// scratch is looked at again by each finish until it finished an hour ago (an attempt still
// running when its run finished may write for up to its StartToClose, 30 minutes), then it
// is marked and left; its work once it is beyond the 20 newest. Unfinished runs stay unmarked.
func dropEnded(ctx context.Context, tx pgx.Tx, org, runID string) error {
	ended, err := runIDs(ctx, tx, `SELECT run_id FROM runs WHERE org=$1 AND (run_id=$2 OR (NOT scratch_dropped
		AND (finished_at IS NOT NULL OR started_at < now() - interval '1 day')))`, org, runID)
	if err != nil {
		return err
	}
	// Planned with the values (pgx.QueryExecModeExec): a generic plan of "= ANY($1)" may scan.
	exec := func(sql string, args ...any) error {
		_, err := tx.Exec(ctx, sql, append([]any{pgx.QueryExecModeExec}, args...)...)
		return err
	}
	for _, table := range []string{"snapshot_users", "snapshot_touched"} {
		if err := exec(`DELETE FROM `+table+` WHERE run_id = ANY($1)`, ended); err != nil {
			return err
		}
	}
	// Memberships and group deltas are keyed "<run>#<attempt>" ("<run>" outside an activity):
	// the attempts' keys are the range ["<run>#", "<run>$") in byte order (column collation C).
	lo, hi := make([]string, len(ended)), make([]string, len(ended))
	for i, id := range ended {
		lo[i], hi[i] = id+"#", id+"$"
	}
	for _, table := range append(slices.Clone(membershipTables), "group_deltas") {
		if err := exec(`DELETE FROM `+table+` WHERE run_id = ANY($1)`, ended); err != nil {
			return err
		}
		if err := exec(`DELETE FROM `+table+` t USING unnest($1::text[], $2::text[]) AS r(lo, hi)
			WHERE t.run_id >= r.lo AND t.run_id < r.hi`, lo, hi); err != nil {
			return err
		}
	}
	if err := exec(`UPDATE runs SET scratch_dropped=true WHERE run_id = ANY($1) AND finished_at < now() - interval '1 hour'`,
		ended); err != nil {
		return err
	}
	// Keep the work of the 20 newest runs.
	old, err := runIDs(ctx, tx, `SELECT run_id FROM runs WHERE org=$1 AND NOT work_dropped
		AND started_at < (SELECT started_at FROM runs WHERE org=$1 ORDER BY started_at DESC OFFSET 19 LIMIT 1)`, org)
	if err != nil || len(old) == 0 {
		return err
	}
	if err := exec(`DELETE FROM work_items WHERE run_id = ANY($1)`, old); err != nil {
		return err
	}
	return exec(`UPDATE runs SET work_dropped=true WHERE run_id = ANY($1)`, old)
}

func runIDs(ctx context.Context, tx pgx.Tx, query string, args ...any) ([]string, error) {
	rows, err := tx.Query(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
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
		WHERE org=$1 AND status=$2 AND NOT dry_run AND kind <> $3 ORDER BY started_at DESC LIMIT 1`, org, vocab.RunSucceeded, vocab.KindRetry).Scan(&n)
	if err == pgx.ErrNoRows {
		return 0, nil
	}
	return n, err
}
