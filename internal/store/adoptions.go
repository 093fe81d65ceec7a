package store

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/usersync/usersync/internal/vocab"
)

// ApproveAdoption records that an admin chose to adopt the unlinked target account that has
// this user's userName (spec 7): the user's next attempt links the account and manages it
// instead of failing existing_account. It goes to the history.
func (s *Store) ApproveAdoption(ctx context.Context, org, actor, externalID, userName string) error {
	return s.change(ctx, vocab.Event{Org: org, Actor: actor, Type: vocab.EventAdoption, Action: "approve",
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

// AdoptionApproved reports whether an admin approved adopting the account with this userName
// for this user (an approval given for another userName does not count).
func (s *Store) AdoptionApproved(ctx context.Context, org, externalID, userName string) (bool, error) {
	var ok bool
	err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM adoptions WHERE org=$1 AND external_id=$2
		AND lower(user_name)=lower($3))`, org, externalID, userName).Scan(&ok)
	return ok, err
}
