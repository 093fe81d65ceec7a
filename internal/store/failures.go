package store

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/usersync/usersync/internal/vocab"
)

// FailureRecord is one failed user.
type FailureRecord struct {
	ExternalID string `json:"externalId"`
	UserName   string `json:"userName"`
	vocab.Failure
	Since       string `json:"since"`
	LastAttempt string `json:"lastAttempt"`
	Attempts    int    `json:"attempts"`
	RunID       string `json:"runId"`
}

// RecordFailure stores a user's current failure (keeping "since" when the type is unchanged)
// and writes it to the history, in one transaction. It is idempotent per run, user and type:
// a repeated call (a retried or replayed step of the same run) finds the failure already
// recorded by this run and changes nothing, so the history holds one row and attempts count
// each run once.
func (s *Store) RecordFailure(ctx context.Context, org, runID, externalID, userName string, f vocab.Failure) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `INSERT INTO failures (org, external_id, user_name, type, product, message, run_id)
			VALUES ($1,$2,$3,$4,$5,$6,$7)
			ON CONFLICT (org, external_id) DO UPDATE SET user_name=EXCLUDED.user_name, product=EXCLUDED.product,
			message=EXCLUDED.message, run_id=EXCLUDED.run_id, last_attempt=now(), attempts=failures.attempts+1,
			since = CASE WHEN failures.type = EXCLUDED.type THEN failures.since ELSE now() END,
			type=EXCLUDED.type
			WHERE failures.run_id <> EXCLUDED.run_id OR failures.type <> EXCLUDED.type`,
			org, externalID, userName, f.Type, f.Product, f.Message, runID)
		if err != nil {
			return fmt.Errorf("record failure: %w", err)
		}
		if tag.RowsAffected() == 0 { // recorded by this run already
			return nil
		}
		return addEvent(ctx, tx, vocab.Event{Org: org, Type: vocab.EventFailure, Action: f.Type, Status: "failed",
			Details: map[string]any{"run": runID, "externalId": externalID, "userName": userName, "product": f.Product, "message": f.Message}})
	})
}

// ClearFailures resolves users that are now out of scope with nothing to do in the target
// (plan.Verdict.Resolved): it removes their failures, any approval to adopt an account for
// them, and their seats of products their linked account does not hold (reservations whose
// write never started).
func (s *Store) ClearFailures(ctx context.Context, org string, externalIDs []string) error {
	if len(externalIDs) == 0 {
		return nil
	}
	_, err := s.pool.Exec(ctx, `WITH f AS (DELETE FROM failures WHERE org=$1 AND external_id = ANY($2) RETURNING 1),
		a AS (DELETE FROM adoptions WHERE org=$1 AND external_id = ANY($2) RETURNING 1)
		DELETE FROM seats s WHERE org=$1 AND external_id = ANY($2)
		AND NOT EXISTS (SELECT 1 FROM user_state u WHERE u.org=$1 AND u.external_id=s.external_id AND s.product = ANY(u.products))`,
		org, externalIDs)
	return err
}

// Failures lists current failures, oldest first.
func (s *Store) Failures(ctx context.Context, org string, f vocab.Filter) ([]FailureRecord, error) {
	rows, err := s.pool.Query(ctx, `SELECT external_id, user_name, type, product, message,
		to_char(since AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
		to_char(last_attempt AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'), attempts, run_id
		FROM failures WHERE org=$1 AND ($2='' OR type=$2) AND ($3='' OR product=$3)
		AND ($4='' OR lower(user_name)=lower($4) OR external_id=$4) ORDER BY type, since, user_name`,
		org, f.Type, f.Product, f.User)
	if err != nil {
		return nil, fmt.Errorf("read failures: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (FailureRecord, error) {
		var x FailureRecord
		return x, r.Scan(&x.ExternalID, &x.UserName, &x.Type, &x.Product, &x.Message, &x.Since, &x.LastAttempt, &x.Attempts, &x.RunID)
	})
}

// FailedUsers returns current failures by externalId, for planning.
func (s *Store) FailedUsers(ctx context.Context, org string) (map[string]vocab.Failure, error) {
	rows, err := s.pool.Query(ctx, `SELECT external_id, type, product, message FROM failures WHERE org=$1`, org)
	if err != nil {
		return nil, fmt.Errorf("read failures: %w", err)
	}
	defer rows.Close()
	out := map[string]vocab.Failure{}
	for rows.Next() {
		var id string
		var f vocab.Failure
		if err := rows.Scan(&id, &f.Type, &f.Product, &f.Message); err != nil {
			return nil, err
		}
		out[id] = f
	}
	return out, rows.Err()
}

// Banners groups current failures by type. A run-level failure of the last finished sync
// (credentials refused, target down or incompatible) comes first, with no user count.
func (s *Store) Banners(ctx context.Context, org string) ([]vocab.Banner, error) {
	var last string
	err := s.pool.QueryRow(ctx, `SELECT failure_type FROM runs WHERE org=$1 AND NOT dry_run AND finished_at IS NOT NULL
		ORDER BY finished_at DESC LIMIT 1`, org).Scan(&last)
	if err != nil && err != pgx.ErrNoRows {
		return nil, fmt.Errorf("read banners: %w", err)
	}
	return s.BannersWith(ctx, org, last)
}

// BannersWith is the banners of the users' failures, after the banner of a run-level failure
// of type runFailure (none when "").
func (s *Store) BannersWith(ctx context.Context, org, runFailure string) ([]vocab.Banner, error) {
	var bs []vocab.Banner
	if runFailure != "" {
		bs = append(bs, vocab.RunBanner(runFailure))
	}
	rows, err := s.pool.Query(ctx, `SELECT type, product, count(*) FROM failures WHERE org=$1
		GROUP BY type, product ORDER BY type, product`, org)
	if err != nil {
		return nil, fmt.Errorf("read banners: %w", err)
	}
	users, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (vocab.Banner, error) {
		var typ, product string
		var users int
		err := r.Scan(&typ, &product, &users)
		return vocab.UserBanner(typ, product, users), err
	})
	return append(bs, users...), err
}

// KnownUser reports whether user (a userName, case-insensitively, or an externalId) is a user
// of the organization we manage or failed to: one a retry filter may name.
func (s *Store) KnownUser(ctx context.Context, org, user string) (bool, error) {
	var ok bool
	err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM failures WHERE org=$1 AND (external_id=$2 OR lower(user_name)=lower($2)))
		OR EXISTS (SELECT 1 FROM user_state WHERE org=$1 AND (external_id=$2 OR lower(user_name)=lower($2)))`, org, user).Scan(&ok)
	if err != nil {
		return false, fmt.Errorf("look up user: %w", err)
	}
	return ok, nil
}

// HeldSet is the organization's current held suspensions: how many, and their vocab.HeldDigest.
func (s *Store) HeldSet(ctx context.Context, org string) (count int, digest string, err error) {
	recs, err := s.Failures(ctx, org, vocab.Filter{Type: vocab.SuspensionHeld})
	if err != nil {
		return 0, "", err
	}
	return len(recs), HeldDigestOf(recs), nil
}

// HeldDigestOf is the vocab.HeldDigest of failure records (those of suspension_held).
func HeldDigestOf(recs []FailureRecord) string {
	ids := make([]string, len(recs))
	for i, r := range recs {
		ids[i] = r.ExternalID
	}
	return vocab.HeldDigest(ids)
}
