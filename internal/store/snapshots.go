package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/usersync/usersync/internal/directory"
)

// WriteSnapshot appends directory users to a run's snapshot with COPY. It never fails on a
// value: each user is stored as directory.Clean makes it (no NUL, valid UTF-8, what jsonb
// and text hold), a value it repairs named in the user's Problems, which the plan turns into
// the user's own invalid_user_data failure. A Reader's users need no repair. Only the run's
// snapshot attempt writes (BeginRun's attempt; else ErrSuperseded).
func (s *Store) WriteSnapshot(ctx context.Context, runID string, attempt int64, users []directory.User) error {
	rows := make([][]any, len(users))
	for i, u := range users {
		u = directory.Clean(u)
		b, err := json.Marshal(u)
		if err != nil {
			return err
		}
		rows[i] = []any{runID, u.ExternalID, b}
	}
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := checkAttempt(ctx, tx, runID, attempt); err != nil {
			return fmt.Errorf("write snapshot: %w", err)
		}
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"snapshot_users"}, []string{"run_id", "external_id", "data"}, pgx.CopyFromRows(rows)); err != nil {
			return fmt.Errorf("write snapshot: %w", err)
		}
		return nil
	})
}

// MarkDelta records that run runID's snapshot is a delta snapshot: it holds only the users
// its directory changes touched, whose externalIds are touched (plan.Input.Delta). Only the
// run's snapshot attempt marks it.
func (s *Store) MarkDelta(ctx context.Context, runID string, attempt int64, touched []string) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		// Touched users without the mark would be planned as a whole directory's: a run not
		// recorded fails here too.
		if err := checkAttempt(ctx, tx, runID, attempt); err != nil {
			return fmt.Errorf("mark delta snapshot: %w", err)
		}
		rows := make([][]any, len(touched))
		for i, id := range touched {
			rows[i] = []any{runID, id}
		}
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"snapshot_touched"}, []string{"run_id", "external_id"}, pgx.CopyFromRows(rows)); err != nil {
			return fmt.Errorf("mark delta snapshot: %w", err)
		}
		if _, err := tx.Exec(ctx, `UPDATE runs SET delta=true WHERE run_id=$1`, runID); err != nil {
			return fmt.Errorf("mark delta snapshot: %w", err)
		}
		return nil
	})
}

// DeltaSnapshot reports whether run runID's snapshot is a delta snapshot (MarkDelta).
func (s *Store) DeltaSnapshot(ctx context.Context, runID string) (bool, error) {
	var delta bool
	err := s.pool.QueryRow(ctx, `SELECT delta FROM runs WHERE run_id=$1`, runID).Scan(&delta)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read run %s: %w", runID, err)
	}
	return delta, nil
}

// AnalyzeSnapshot refreshes PostgreSQL's statistics of the snapshot table after a read: it
// swings between empty and a whole directory, and the plan's joins are chosen by its size.
func (s *Store) AnalyzeSnapshot(ctx context.Context) error {
	return s.analyze(ctx, "snapshot_users")
}

// analyze refreshes the statistics of scratch tables, best effort: it waits at most two
// seconds for the table (another run's ANALYZE, an autovacuum), then goes on with the
// statistics there are. The tables belong to the role that ran the migrations; others analyze
// them through usersync_analyze (migration 025), which runs as it.
func (s *Store) analyze(ctx context.Context, tables ...string) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SET LOCAL lock_timeout = '2s'`); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `SELECT usersync_analyze($1)`, tables)
		return err
	})
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "55P03" { // lock_not_available
		return nil
	}
	if err != nil {
		return fmt.Errorf("analyze %s: %w", strings.Join(tables, ", "), err)
	}
	return nil
}
