package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// RunBasis is what a finished (or unfinished) run recorded of what its outcome stands on
// (migration 032), read by the next run to tell whether anything changed since.
type RunBasis struct {
	RunID      string
	Kind       string
	DryRun     bool
	Status     string
	Finished   bool
	Clean      bool
	Inputs     string     // "" when not recorded
	NextExpiry *time.Time // nil: no user's account expires after the read
	Basis      string     // the run whose read and plan this one's outcome is
	StartedAt  time.Time
	Summary    json.RawMessage
	// Overlapping counts the organization's other runs, neither this one nor the one
	// asking, that are not clean and either finished after this one started or have not
	// finished (started within a day: older ones were abandoned): such a run may have read
	// directory changes into the mirror after this one's read, and not applied them.
	Overlapping int
}

// PreviousRun is the organization's newest run other than runID (any kind, dry or not,
// finished or not, started before runID or, racing it, after); ok is false when there is
// none.
func (s *Store) PreviousRun(ctx context.Context, org, runID string) (b RunBasis, ok bool, err error) {
	var inputs, basis *string
	var finished *time.Time
	err = s.pool.QueryRow(ctx, `SELECT p.run_id, p.kind, p.dry_run, p.status, p.finished_at, p.clean, p.inputs,
		p.next_expiry, p.basis, p.started_at, p.summary,
		(SELECT count(*) FROM runs o WHERE o.org=$1 AND o.run_id NOT IN ($2, p.run_id) AND NOT o.clean
			AND (o.finished_at > p.started_at OR (o.finished_at IS NULL AND o.started_at > now() - interval '1 day')))
		FROM runs p WHERE p.org=$1 AND p.run_id<>$2 ORDER BY p.started_at DESC LIMIT 1`, org, runID).Scan(
		&b.RunID, &b.Kind, &b.DryRun, &b.Status, &finished, &b.Clean, &inputs, &b.NextExpiry, &basis, &b.StartedAt,
		&b.Summary, &b.Overlapping)
	if errors.Is(err, pgx.ErrNoRows) {
		return RunBasis{}, false, nil
	}
	if err != nil {
		return RunBasis{}, false, fmt.Errorf("read previous run: %w", err)
	}
	b.Finished = finished != nil
	if inputs != nil {
		b.Inputs = *inputs
	}
	if basis != nil {
		b.Basis = *basis
	}
	return b, true, nil
}

// SetRunBasis records what the run's outcome stands on (its directory read's inputs), for
// the run's snapshot attempt only (BeginRun; else ErrSuperseded).
func (s *Store) SetRunBasis(ctx context.Context, runID string, attempt int64, inputs string, nextExpiry *time.Time, basis string) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := checkAttempt(ctx, tx, runID, attempt); err != nil {
			return fmt.Errorf("record run basis: %w", err)
		}
		if _, err := tx.Exec(ctx, `UPDATE runs SET inputs=$2, next_expiry=$3, basis=$4 WHERE run_id=$1`,
			runID, inputs, nextExpiry, basis); err != nil {
			return fmt.Errorf("record run basis: %w", err)
		}
		return nil
	})
}

// MarkRunClean records that the run finished complete and clean: a later run may stand on it.
func (s *Store) MarkRunClean(ctx context.Context, runID string) error {
	if _, err := s.pool.Exec(ctx, `UPDATE runs SET clean=true WHERE run_id=$1`, runID); err != nil {
		return fmt.Errorf("mark run clean: %w", err)
	}
	return nil
}

// PendingWork counts the organization's users with a current failure (to be retried by the
// next plan) and its open write intents (writes whose outcome is unknown).
func (s *Store) PendingWork(ctx context.Context, org string) (failures, intents int, err error) {
	err = s.pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM failures WHERE org=$1),
		(SELECT count(*) FROM write_intents WHERE org=$1)`, org).Scan(&failures, &intents)
	if err != nil {
		return 0, 0, fmt.Errorf("count pending work: %w", err)
	}
	return failures, intents, nil
}
