package store

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/usersync/usersync/internal/vocab"
)

// License is a product's seat pool.
type License struct {
	Product string `json:"product"`
	Seats   int    `json:"seats"`
	Used    int    `json:"used"`
}

// Licenses lists seat pools with the seats in use.
func (s *Store) Licenses(ctx context.Context, org string) ([]License, error) {
	rows, err := s.pool.Query(ctx, `SELECT product, seats, used FROM licenses WHERE org=$1 ORDER BY product`, org)
	if err != nil {
		return nil, fmt.Errorf("read licenses: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (License, error) {
		var l License
		return l, r.Scan(&l.Product, &l.Seats, &l.Used)
	})
}

// SetLicense sets a product's seat count. Lowering it below the seats in use is refused:
// nobody loses access because of a typo.
func (s *Store) SetLicense(ctx context.Context, org, actor, product string, seats int) error {
	if seats < 0 {
		return fmt.Errorf("seats: must be 0 or more, got %d", seats)
	}
	return s.change(ctx, vocab.Event{Org: org, Actor: actor, Type: vocab.EventLicense, Action: "set",
		Details: map[string]any{"product": product, "seats": seats}}, func(tx pgx.Tx) error {
		var used int
		err := tx.QueryRow(ctx, `SELECT used FROM licenses WHERE org=$1 AND product=$2 FOR UPDATE`, org, product).Scan(&used)
		if err != nil && err != pgx.ErrNoRows {
			return err
		}
		if used > seats {
			return fmt.Errorf("seats: %d is below the %d seats of %q in use; suspend users or remove the product from rules first", seats, used, product)
		}
		_, err = tx.Exec(ctx, `INSERT INTO licenses (org, product, seats) VALUES ($1,$2,$3)
			ON CONFLICT (org, product) DO UPDATE SET seats=EXCLUDED.seats`, org, product, seats)
		return err
	})
}

// SeatState returns seat counts and current holders per product, for planning.
func (s *Store) SeatState(ctx context.Context, org string) (map[string]int, map[string]map[string]bool, error) {
	seats := map[string]int{}
	held := map[string]map[string]bool{}
	ls, err := s.Licenses(ctx, org)
	if err != nil {
		return nil, nil, err
	}
	for _, l := range ls {
		seats[l.Product] = l.Seats
	}
	rows, err := s.pool.Query(ctx, `SELECT product, external_id FROM seats WHERE org=$1`, org)
	if err != nil {
		return nil, nil, fmt.Errorf("read seats: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var p, id string
		if err := rows.Scan(&p, &id); err != nil {
			return nil, nil, err
		}
		if held[p] == nil {
			held[p] = map[string]bool{}
		}
		held[p][id] = true
	}
	return seats, held, rows.Err()
}

// ReserveSeats takes a seat of each product for one user, all or nothing, in one statement.
// The database refuses a seat beyond the count bought (a CHECK on the license row's counter,
// kept by a trigger: migration 003), so two syncs racing cannot over-allocate. Seats the user
// already holds are kept. It returns the first product without a free seat ("" when all were
// taken) and that product's seat count.
func (s *Store) ReserveSeats(ctx context.Context, org, externalID string, products []string) (short string, seats int, err error) {
	if len(products) == 0 {
		return "", 0, nil
	}
	ps := append([]string(nil), products...)
	sort.Strings(ps) // license rows lock in a fixed order: no deadlock between two reservations
	_, err = s.pool.Exec(ctx, `INSERT INTO seats (org, product, external_id)
		SELECT $1, p, $3 FROM unnest($2::text[]) WITH ORDINALITY AS t(p, i) ORDER BY i
		ON CONFLICT DO NOTHING`, org, ps, externalID)
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "23514" { // check_violation: a product is full
		if err != nil {
			return "", 0, fmt.Errorf("take seats: %w", err)
		}
		return "", 0, nil
	}
	// Which one? The first product the user does not hold whose seats are all used.
	err = s.pool.QueryRow(ctx, `SELECT t.p, COALESCE(l.seats, 0) FROM unnest($2::text[]) AS t(p)
		LEFT JOIN licenses l ON l.org=$1 AND l.product=t.p
		WHERE NOT EXISTS (SELECT 1 FROM seats s WHERE s.org=$1 AND s.product=t.p AND s.external_id=$3)
		  AND (l.product IS NULL OR l.used >= l.seats)
		ORDER BY t.p LIMIT 1`, org, ps, externalID).Scan(&short, &seats)
	if err == pgx.ErrNoRows { // freed meanwhile: report the first product, the retry will take it
		return ps[0], 0, nil
	}
	return short, seats, err
}

// DeleteLicense removes a product's seat pool, refused while any of its seats is in use.
func (s *Store) DeleteLicense(ctx context.Context, org, actor, product string) error {
	return s.change(ctx, vocab.Event{Org: org, Actor: actor, Type: vocab.EventLicense, Action: "remove",
		Details: map[string]any{"product": product}}, func(tx pgx.Tx) error {
		var used int
		err := tx.QueryRow(ctx, `DELETE FROM licenses WHERE org=$1 AND product=$2 RETURNING used`, org, product).Scan(&used)
		if err == pgx.ErrNoRows {
			return fmt.Errorf("license %q: %w", product, ErrNotFound)
		}
		if err != nil {
			return err
		}
		if used > 0 {
			return fmt.Errorf("license %q: %d seats in use; suspend users or remove the product from rules first", product, used)
		}
		return nil
	})
}
