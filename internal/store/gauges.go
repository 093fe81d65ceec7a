package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// OrgLicense is one organization's seat pool of a product.
type OrgLicense struct {
	Org string
	License
}

// AllLicenses lists every organization's seat pools (the seats gauges, read at each scrape so
// that every worker reports the database's counts, not what it last touched).
func (s *Store) AllLicenses(ctx context.Context) ([]OrgLicense, error) {
	rows, err := s.pool.Query(ctx, `SELECT org, product, seats, used FROM licenses ORDER BY org, product`)
	if err != nil {
		return nil, fmt.Errorf("read licenses: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (OrgLicense, error) {
		var l OrgLicense
		return l, r.Scan(&l.Org, &l.Product, &l.Seats, &l.Used)
	})
}

// LastSucceeded returns when each organization's last run that completed (not dry-run)
// finished.
func (s *Store) LastSucceeded(ctx context.Context) (map[string]time.Time, error) {
	rows, err := s.pool.Query(ctx, `SELECT org, max(finished_at) FROM runs
		WHERE status='succeeded' AND NOT dry_run AND finished_at IS NOT NULL GROUP BY org`)
	if err != nil {
		return nil, fmt.Errorf("read runs: %w", err)
	}
	defer rows.Close()
	out := map[string]time.Time{}
	for rows.Next() {
		var org string
		var at time.Time
		if err := rows.Scan(&org, &at); err != nil {
			return nil, err
		}
		out[org] = at
	}
	return out, rows.Err()
}

// Ping checks that PostgreSQL answers.
func (s *Store) Ping(ctx context.Context) error { return s.own.Ping(ctx) }
