package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/usersync/usersync/internal/scim"
)

var _ scim.Admitter = (*Pacer)(nil)

// Pacer spaces requests evenly across every process sharing the database: each Wait takes
// the next free slot (one row update) and sleeps until it. Unlike one limiter per worker,
// it holds the target's rate whatever the number of workers, and unlike a server-side
// dispatch limit it has no bursts, so a target enforcing the same rate never answers 429.
//
// Admit keeps that queue short, so that no caller with a deadline (a Temporal attempt) spends
// it queueing: a caller arriving when the slots taken reach further ahead than it may wait is
// given a turn instead of a slot, and comes back then. Turns are spaced turnSpacing slots
// apart from when the queue will have room, so the callers sent away come back in order, at
// about the pace the queue drains; one coming back at its turn goes before newcomers (it is
// let in with a queue up to twice as long), so it is rarely sent away twice. Rows of
// request_slots: key (the next free slot), key+"/turns" (the last turn given) and
// key+"/turn/"+holder (a holder's turn until it comes back).
type Pacer struct {
	st       *Store
	key      string
	interval time.Duration
}

// staleTurn is how long a turn is kept for a holder that never comes back (its run was
// cancelled): far beyond any retry delay.
const staleTurn = time.Hour

// turnSpacing is how many slots apart turns are: callers let in may make more than one
// request each (a create and its PATCH), and newcomers fill the slots that turns leave.
const turnSpacing = 2

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

// Admit decides whether holder (one user's provisioning step of a run) may start its
// requests now. When the next free slot is at most within from now (2*within when holder
// comes back at the turn it was given), it takes that slot for holder's first request and
// returns admitted with the wait until the slot (the following requests Wait as usual).
// Otherwise it takes no slot and returns holder's turn: how long until the queue has room for
// it (the next free slot within/2 ahead), after the callers sent away before it.
func (p *Pacer) Admit(ctx context.Context, holder string, within time.Duration) (wait time.Duration, admitted bool, err error) {
	err = pgx.BeginFunc(ctx, p.st.pool, func(tx pgx.Tx) error {
		// The queue's row, locked: the admissions and turns of one key are decided one at a
		// time. Times are the database's, as Wait's are.
		var next, now time.Time
		if err := tx.QueryRow(ctx, `INSERT INTO request_slots AS r (key, next_at) VALUES ($1, clock_timestamp())
			ON CONFLICT (key) DO UPDATE SET next_at = r.next_at
			RETURNING r.next_at, clock_timestamp()`, p.key).Scan(&next, &now); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `DELETE FROM request_slots WHERE key = $1`, p.key+"/turn/"+holder)
		if err != nil {
			return err
		}
		// A caller at its turn goes before newcomers: it is let in with a queue up to twice as
		// long (the callers let in before it may have made more than one request each).
		if ahead := next.Sub(now); ahead <= within || tag.RowsAffected() > 0 && ahead <= 2*within {
			if err := tx.QueryRow(ctx, `UPDATE request_slots SET next_at = GREATEST(next_at, clock_timestamp()) + $2::interval
				WHERE key = $1 RETURNING next_at, clock_timestamp()`, p.key, p.interval).Scan(&next, &now); err != nil {
				return err
			}
			wait, admitted = max(next.Add(-p.interval).Sub(now), 0), true // the slot before the next free one
			return nil
		}
		var turn time.Time
		if err := tx.QueryRow(ctx, `INSERT INTO request_slots AS r (key, next_at) VALUES ($1, $2)
			ON CONFLICT (key) DO UPDATE SET next_at = GREATEST(r.next_at + $3::interval, EXCLUDED.next_at)
			RETURNING next_at`, p.key+"/turns", next.Add(-within/2), turnSpacing*p.interval).Scan(&turn); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO request_slots (key, next_at) VALUES ($1, $2)
			ON CONFLICT (key) DO UPDATE SET next_at = EXCLUDED.next_at`, p.key+"/turn/"+holder, turn); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM request_slots WHERE starts_with(key, $1) AND next_at < $2`,
			p.key+"/turn/", now.Add(-staleTurn)); err != nil {
			return err
		}
		wait, admitted = max(turn.Sub(now), time.Millisecond), false // a turn is never "now"
		return nil
	})
	if err != nil {
		return 0, false, fmt.Errorf("request slot: %w", err)
	}
	return wait, admitted, nil
}
