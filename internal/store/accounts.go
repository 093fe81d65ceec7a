package store

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/usersync/usersync/internal/plan"
	"github.com/usersync/usersync/internal/vocab"
)

// SaveProvisioned records what the target holds for a user after run runID wrote it (outcome:
// created, updated, adopted, ...), releases the seats of products it no longer has, clears
// its failure and closes its write intent: the write's outcome is known. One statement (one
// round trip per provisioned user).
func (s *Store) SaveProvisioned(ctx context.Context, org, scimID string, d plan.Desired, runID, outcome string) error {
	return s.saveLinked(ctx, org, scimID, d, d.Products, runID, outcome, true)
}

// SaveLinked is SaveProvisioned keeping the seats of the products in keep (those d holds,
// and those of a write still in progress for the user) instead of those d holds only, and
// leaving the user's write intent open: the write is not finished.
func (s *Store) SaveLinked(ctx context.Context, org, scimID string, d plan.Desired, keep []string, runID, outcome string) error {
	return s.saveLinked(ctx, org, scimID, d, keep, runID, outcome, false)
}

func (s *Store) saveLinked(ctx context.Context, org, scimID string, d plan.Desired, keep []string, runID, outcome string, done bool) error {
	// An adoption approval is used up by the save, whatever the outcome (an adopted account,
	// or a create after the admin removed the other account instead): it closes in the history,
	// in the approving admin's name, in the same statement.
	_, err := s.pool.Exec(ctx, `WITH
		saved AS (INSERT INTO user_state (org, external_id, scim_id, user_name, active, state, hash, products, groups)
			VALUES ($1,$2,$3,$4,$5,$6,$7,$12,$13)
			ON CONFLICT (org, external_id) DO UPDATE SET scim_id=EXCLUDED.scim_id, user_name=EXCLUDED.user_name,
			active=EXCLUDED.active, state=EXCLUDED.state, hash=EXCLUDED.hash, products=EXCLUDED.products,
			groups=EXCLUDED.groups, updated_at=now() RETURNING 1),
		released AS (DELETE FROM seats WHERE org=$1 AND external_id=$2 AND NOT (product = ANY($8)) RETURNING 1),
		cleared AS (DELETE FROM failures WHERE org=$1 AND external_id=$2 RETURNING 1),
		written AS (DELETE FROM write_intents WHERE $14 AND org=$1 AND external_id=$2 RETURNING 1),
		approval AS (DELETE FROM adoptions WHERE org=$1 AND external_id=$2 RETURNING user_name, approved_by),
		closed AS (INSERT INTO history (org, actor, type, action, status, details)
			SELECT $1, a.approved_by, $11, CASE WHEN $10 = 'adopted' THEN 'adopted' ELSE 'closed' END, 'ok',
				jsonb_build_object('externalId', $2::text, 'userName', a.user_name, 'scimId', $3::text, 'outcome', $10::text, 'run', $9::text)
			FROM approval a RETURNING 1)
		SELECT 1`,
		org, d.ExternalID, scimID, d.UserName, d.Active, d, d.Hash(), nonNil(keep), runID, outcome, vocab.EventAdoption,
		nonNil(d.Products), nonNil(plan.GroupsOf(d)), done)
	if err != nil {
		return fmt.Errorf("save user state: %w", err)
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

// LinkedTo returns the externalId of the directory user linked to target account scimID, or "".
func (s *Store) LinkedTo(ctx context.Context, org, scimID string) (string, error) {
	var id string
	err := s.pool.QueryRow(ctx, `SELECT external_id FROM user_state WHERE org=$1 AND scim_id=$2 LIMIT 1`, org, scimID).Scan(&id)
	if err == pgx.ErrNoRows {
		return "", nil
	}
	return id, err
}
