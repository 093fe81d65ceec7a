package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Write intents (migration 022): a SCIM write to a user's account is recorded before its
// first request and closed when its outcome is recorded. An open intent is a write whose
// outcome is unknown; what to do about one is decided by the provisioning step, not here.

// Intent is an open write: its outcome is not recorded yet.
type Intent struct {
	RunID    string    `json:"runId"`
	Action   string    `json:"action"` // plan.Action
	UserName string    `json:"userName"`
	OpenedAt time.Time `json:"openedAt"`
	// Age is how long ago the intent was opened, by the database's clock (set by UserWork and
	// BeginUserWrite only).
	Age time.Duration `json:"-"`
	// HeldFor is how much longer the attempt that opened it may still write (BeginHeldWrite),
	// by the database's clock; 0 when it is not held (set by UserWork and BeginUserWrite only).
	HeldFor time.Duration `json:"-"`
}

// OpenIntent records that run runID is about to write to the account of externalID (action
// is a plan.Action; the seats reserved for the write are the user's seat rows). It replaces
// the user's open intent, if any: the caller has read the target for that one first.
func (s *Store) OpenIntent(ctx context.Context, org, externalID, userName, runID, action string) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO write_intents (org, external_id, user_name, run_id, action)
		VALUES ($1,$2,$3,$4,$5)
		ON CONFLICT (org, external_id) DO UPDATE SET user_name=EXCLUDED.user_name, run_id=EXCLUDED.run_id,
		action=EXCLUDED.action, opened_at=now(), held_by=NULL, held_until=NULL`,
		org, externalID, userName, runID, action)
	if err != nil {
		return fmt.Errorf("record write intent: %w", err)
	}
	return nil
}

// OpenIntentOf returns the user's open write, or nil.
func (s *Store) OpenIntentOf(ctx context.Context, org, externalID string) (*Intent, error) {
	var i Intent
	err := s.pool.QueryRow(ctx, `SELECT run_id, action, user_name, opened_at FROM write_intents
		WHERE org=$1 AND external_id=$2`, org, externalID).Scan(&i.RunID, &i.Action, &i.UserName, &i.OpenedAt)
	if err == pgx.ErrNoRows {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read write intent: %w", err)
	}
	return &i, nil
}

// ReleaseUnsent records that the user's write did not happen (the target refused it, or it
// was never sent): its intent, if any, is closed and the user's seats of products go back,
// except those of products its linked account holds (ReleaseSeats), in one statement.
func (s *Store) ReleaseUnsent(ctx context.Context, org, externalID string, products []string) error {
	_, err := s.pool.Exec(ctx, `WITH
		closed AS (DELETE FROM write_intents WHERE org=$1 AND external_id=$2 RETURNING 1)
		DELETE FROM seats s WHERE org=$1 AND external_id=$2 AND product = ANY($3)
		AND NOT EXISTS (SELECT 1 FROM user_state u WHERE u.org=$1 AND u.external_id=$2 AND s.product = ANY(u.products))`,
		org, externalID, nonNil(products))
	if err != nil {
		return fmt.Errorf("close write intent: %w", err)
	}
	return nil
}

// SettleUnsent records that the user's open write did not happen (the target does not hold
// what it sent) and that nothing else is written for the user in this run: its intent, if
// any, is closed and every seat it holds goes back but those of products its linked account
// holds, in one statement.
func (s *Store) SettleUnsent(ctx context.Context, org, externalID string) error {
	_, err := s.pool.Exec(ctx, `WITH
		closed AS (DELETE FROM write_intents WHERE org=$1 AND external_id=$2 RETURNING 1)
		DELETE FROM seats s WHERE org=$1 AND external_id=$2
		AND NOT EXISTS (SELECT 1 FROM user_state u WHERE u.org=$1 AND u.external_id=$2 AND s.product = ANY(u.products))`,
		org, externalID)
	if err != nil {
		return fmt.Errorf("settle write intent: %w", err)
	}
	return nil
}

// OpenIntentsAmong returns which of the users externalIDs have an open write.
func (s *Store) OpenIntentsAmong(ctx context.Context, org string, externalIDs []string) (map[string]bool, error) {
	rows, err := s.pool.Query(ctx, `SELECT external_id FROM write_intents WHERE org=$1 AND external_id = ANY($2)`,
		org, nonNil(externalIDs))
	if err != nil {
		return nil, fmt.Errorf("read write intents: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("read write intents: %w", err)
	}
	out := make(map[string]bool, len(ids))
	for _, id := range ids {
		out[id] = true
	}
	return out, nil
}

// OpenIntents returns the users with an open write, by externalId, with the userName it
// sent (plan.Input.Reconcile).
func (s *Store) OpenIntents(ctx context.Context, org string) (map[string]string, error) {
	rows, err := s.pool.Query(ctx, `SELECT external_id, user_name FROM write_intents WHERE org=$1`, org)
	if err != nil {
		return nil, fmt.Errorf("read write intents: %w", err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var id, name string
		if err := rows.Scan(&id, &name); err != nil {
			return nil, fmt.Errorf("read write intents: %w", err)
		}
		out[id] = name
	}
	return out, rows.Err()
}
