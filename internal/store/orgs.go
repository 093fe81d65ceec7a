package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/usersync/usersync/internal/orgs"
	"github.com/usersync/usersync/internal/vocab"
)

// The store keeps organizations' settings for package orgs, which seals their secrets before
// they get here (orgs.RecordStore).
var _ orgs.RecordStore = (*Store)(nil)

// noSettings reads "organization acme has no settings".
func noSettings(org string) error {
	return fmt.Errorf("organization %s has %w", org, orgs.ErrNotFound)
}

// OrgVersion is the organization's current settings version.
func (s *Store) OrgVersion(ctx context.Context, org string) (int64, error) {
	var v int64
	err := s.pool.QueryRow(ctx, `SELECT version FROM org_settings WHERE org=$1 AND settings IS NOT NULL`, org).Scan(&v)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, noSettings(org)
	}
	if err != nil {
		return 0, fmt.Errorf("read settings version of %s: %w", org, err)
	}
	return v, nil
}

// OrgRecord is the organization's current settings, secrets sealed.
func (s *Store) OrgRecord(ctx context.Context, org string) (orgs.Record, error) {
	recs, err := readOrgRecords(ctx, s.pool, org)
	if err != nil {
		return orgs.Record{}, err
	}
	if len(recs) == 0 {
		return orgs.Record{}, noSettings(org)
	}
	return recs[0], nil
}

// OrgRecords lists every organization's settings, by name.
func (s *Store) OrgRecords(ctx context.Context) ([]orgs.Record, error) {
	return readOrgRecords(ctx, s.pool, "")
}

// readOrgRecords reads one organization's record ("" for all).
func readOrgRecords(ctx context.Context, db dbtx, org string) ([]orgs.Record, error) {
	rows, err := db.Query(ctx, `SELECT o.org, o.version, o.settings, s.field, s.key_id, s.ciphertext
		FROM org_settings o LEFT JOIN org_secrets s ON s.org = o.org
		WHERE o.settings IS NOT NULL AND ($1 = '' OR o.org = $1) ORDER BY o.org, s.field`, org)
	if err != nil {
		return nil, fmt.Errorf("read organization settings: %w", err)
	}
	defer rows.Close()
	var out []orgs.Record
	for rows.Next() {
		var (
			name, settings string
			version        int64
			field, keyID   *string
			ciphertext     []byte
		)
		if err := rows.Scan(&name, &version, &settings, &field, &keyID, &ciphertext); err != nil {
			return nil, err
		}
		if len(out) == 0 || out[len(out)-1].Org != name {
			r := orgs.Record{Org: name, Version: version, Secrets: map[string]orgs.Sealed{}}
			if err := json.Unmarshal([]byte(settings), &r.Settings); err != nil {
				return nil, fmt.Errorf("organization %s: settings version %d: %w", name, version, err)
			}
			out = append(out, r)
		}
		if field != nil {
			out[len(out)-1].Secrets[*field] = orgs.Sealed{KeyID: *keyID, Ciphertext: ciphertext}
		}
	}
	return out, rows.Err()
}

// PutOrgRecord stores r as the organization's next version if its current one is still prev
// (0: none), with e in the history, in one transaction.
func (s *Store) PutOrgRecord(ctx context.Context, r orgs.Record, prev int64, e vocab.Event) (int64, error) {
	settings, err := json.Marshal(r.Settings)
	if err != nil {
		return 0, err
	}
	var next int64
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		// The row lock (or, for a new organization, the primary key) orders concurrent puts.
		var version int64
		var live, exists bool
		err := tx.QueryRow(ctx, `SELECT version, settings IS NOT NULL FROM org_settings WHERE org=$1 FOR UPDATE`, r.Org).Scan(&version, &live)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
		case err != nil:
			return fmt.Errorf("read settings version of %s: %w", r.Org, err)
		default:
			exists = true
		}
		current := version
		if !live {
			current = 0
		}
		if current != prev {
			return fmt.Errorf("organization %s: version %d, not %d: %w", r.Org, current, prev, orgs.ErrConflict)
		}
		next = version + 1
		if exists {
			_, err = tx.Exec(ctx, `UPDATE org_settings SET version=$2, settings=$3, updated_at=now(), updated_by=$4 WHERE org=$1`,
				r.Org, next, settings, e.Actor)
		} else {
			// Two first puts: the primary key lets one in, the other gets a conflict.
			_, err = tx.Exec(ctx, `INSERT INTO org_settings (org, version, settings, updated_by) VALUES ($1,$2,$3,$4)`,
				r.Org, next, settings, e.Actor)
		}
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "23505" { // unique_violation
			return fmt.Errorf("organization %s: created meanwhile: %w", r.Org, orgs.ErrConflict)
		}
		if err != nil {
			return fmt.Errorf("write settings of %s: %w", r.Org, err)
		}
		if err := writeSecrets(ctx, tx, r.Org, r.Secrets); err != nil {
			return err
		}
		e.Details = withVersion(e.Details, next)
		return addEvent(ctx, tx, e)
	})
	if err != nil {
		return 0, err
	}
	return next, nil
}

// ResealOrgSecrets replaces the sealed secrets of the organization's version.
func (s *Store) ResealOrgSecrets(ctx context.Context, org string, version int64, secrets map[string]orgs.Sealed, e vocab.Event) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var current int64
		err := tx.QueryRow(ctx, `SELECT version FROM org_settings WHERE org=$1 AND settings IS NOT NULL FOR UPDATE`, org).Scan(&current)
		if errors.Is(err, pgx.ErrNoRows) {
			return noSettings(org)
		}
		if err != nil {
			return fmt.Errorf("read settings version of %s: %w", org, err)
		}
		if current != version {
			return fmt.Errorf("organization %s: version %d, not %d: %w", org, current, version, orgs.ErrConflict)
		}
		if err := writeSecrets(ctx, tx, org, secrets); err != nil {
			return err
		}
		return addEvent(ctx, tx, e)
	})
}

// DeleteOrgRecord clears the organization's settings and deletes its secrets; the row keeps
// the version, so that a re-created organization continues the count.
func (s *Store) DeleteOrgRecord(ctx context.Context, org string, e vocab.Event) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var version int64
		err := tx.QueryRow(ctx, `UPDATE org_settings SET settings=NULL, updated_at=now(), updated_by=$2
			WHERE org=$1 AND settings IS NOT NULL RETURNING version`, org, e.Actor).Scan(&version)
		if errors.Is(err, pgx.ErrNoRows) {
			return noSettings(org)
		}
		if err != nil {
			return fmt.Errorf("delete settings of %s: %w", org, err)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM org_secrets WHERE org=$1`, org); err != nil {
			return fmt.Errorf("delete secrets of %s: %w", org, err)
		}
		e.Details = withVersion(e.Details, version)
		return addEvent(ctx, tx, e)
	})
}

// writeSecrets makes the organization's sealed secrets exactly secrets.
func writeSecrets(ctx context.Context, tx pgx.Tx, org string, secrets map[string]orgs.Sealed) error {
	if _, err := tx.Exec(ctx, `DELETE FROM org_secrets WHERE org=$1 AND NOT (field = ANY($2))`,
		org, nonNil(slices.Collect(maps.Keys(secrets)))); err != nil {
		return fmt.Errorf("write secrets of %s: %w", org, err)
	}
	for field, sealed := range secrets {
		if _, err := tx.Exec(ctx, `INSERT INTO org_secrets (org, field, key_id, ciphertext) VALUES ($1,$2,$3,$4)
			ON CONFLICT (org, field) DO UPDATE SET key_id=EXCLUDED.key_id, ciphertext=EXCLUDED.ciphertext`,
			org, field, sealed.KeyID, sealed.Ciphertext); err != nil {
			return fmt.Errorf("write secret %s of %s: %w", field, org, err)
		}
	}
	return nil
}

func withVersion(details map[string]any, version int64) map[string]any {
	out := maps.Clone(details)
	if out == nil {
		out = map[string]any{}
	}
	out["version"] = version
	return out
}
