package store

import (
	"context"
	"fmt"
	"time"
)

// Pacer spaces requests evenly across every process sharing the database: each Wait takes
// the next free slot (one row update) and sleeps until it. Unlike one limiter per worker,
// it holds the target's rate whatever the number of workers, and unlike a server-side
// dispatch limit it has no bursts, so a target enforcing the same rate never answers 429.
type Pacer struct {
	st       *Store
	key      string
	interval time.Duration
}

// Pacer returns a pacer for key at perSecond requests per second.
func (s *Store) Pacer(key string, perSecond float64) *Pacer {
	return &Pacer{st: s, key: key, interval: time.Duration(float64(time.Second) / perSecond)}
}

// Wait blocks until this caller's slot.
func (p *Pacer) Wait(ctx context.Context) error {
	var slot time.Time
	err := p.st.pool.QueryRow(ctx, `INSERT INTO request_slots (key, next_at) VALUES ($1, clock_timestamp() + $2)
		ON CONFLICT (key) DO UPDATE SET next_at = GREATEST(request_slots.next_at, clock_timestamp()) + $2
		RETURNING next_at - $2`, p.key, p.interval).Scan(&slot)
	if err != nil {
		return fmt.Errorf("request slot: %w", err)
	}
	wait := time.Until(slot)
	if wait <= 0 {
		return nil
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
