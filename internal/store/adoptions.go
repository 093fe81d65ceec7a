package store

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// ApproveAdoption records that an admin chose to adopt the unlinked target account that has
// this user's userName (spec 7): the user's next attempt links the account and manages it
// instead of failing existing_account. It goes to the history.
func (s *Store) ApproveAdoption(ctx context.Context, org, actor, externalID, userName string) error {
	return s.change(ctx, Event{Org: org, Actor: actor, Type: EventAdoption, Action: "approve",
		Details: map[string]any{"externalId": externalID, "userName": userName}}, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO adoptions (org, external_id, user_name, approved_by) VALUES ($1,$2,$3,$4)
			ON CONFLICT (org, external_id) DO UPDATE SET user_name=EXCLUDED.user_name,
			approved_by=EXCLUDED.approved_by, approved_at=now()`, org, externalID, userName, actor)
		if err != nil {
			return fmt.Errorf("approve adoption: %w", err)
		}
		return nil
	})
}

// AdoptionApproved reports whether an admin approved adopting an account for this user.
func (s *Store) AdoptionApproved(ctx context.Context, org, externalID string) (bool, error) {
	var ok bool
	err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM adoptions WHERE org=$1 AND external_id=$2)`,
		org, externalID).Scan(&ok)
	return ok, err
}

// AdoptionDone drops the approval once the account is linked, and records it in the history
// in the approving admin's name.
func (s *Store) AdoptionDone(ctx context.Context, org, externalID, scimID string) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var userName, actor string
		err := tx.QueryRow(ctx, `DELETE FROM adoptions WHERE org=$1 AND external_id=$2 RETURNING user_name, approved_by`,
			org, externalID).Scan(&userName, &actor)
		if err == pgx.ErrNoRows {
			return nil // already done (a retried step)
		}
		if err != nil {
			return fmt.Errorf("adoption done: %w", err)
		}
		return addEvent(ctx, tx, Event{Org: org, Actor: actor, Type: EventAdoption, Action: "adopted",
			Details: map[string]any{"externalId": externalID, "userName": userName, "scimId": scimID}})
	})
}
