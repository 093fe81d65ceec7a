// Package watch tells when a directory changed, cheaply and without a replication right:
// it polls one value the server bumps on every write (Active Directory's rootDSE
// highestCommittedUSN, OpenLDAP's contextCSN of the suffix, kept by the syncprov overlay)
// and, once it moved, waits for the burst of changes to end (Wait) so that one sync
// serves it all. It says that something changed, not what: the sync reads the directory.
package watch

import (
	"context"
	"errors"
	"time"
)

// Timing shapes Wait. Zero values take the defaults.
type Timing struct {
	Poll  time.Duration // between two reads of the mark (default 2s)
	Quiet time.Duration // a burst ends after this long without a change (default 2s)
	Max   time.Duration // ... or this long after its first change (default 10s)
	// Give: with no change for this long, Wait returns unchanged (default 30m), so that
	// the caller's attempt ends now and then (a Temporal activity's start-to-close).
	Give time.Duration
}

// Defaults of Timing.
const (
	DefaultPoll  = 2 * time.Second
	DefaultQuiet = 2 * time.Second
	DefaultMax   = 10 * time.Second
	DefaultGive  = 30 * time.Minute
)

func (t Timing) withDefaults() Timing {
	if t.Poll <= 0 {
		t.Poll = DefaultPoll
	}
	if t.Quiet <= 0 {
		t.Quiet = DefaultQuiet
	}
	if t.Max <= 0 {
		t.Max = DefaultMax
	}
	if t.Give <= 0 {
		t.Give = DefaultGive
	}
	return t
}

// Result is what Wait saw.
type Result struct {
	Changed bool   // the mark moved
	Changes int    // how many reads saw it move (a burst of writes may be one)
	Mark    string // the last mark read: where the next Wait starts
}

// ErrNoMark is returned by a MarkFunc when the directory keeps no change mark.
var ErrNoMark = errors.New("the directory keeps no change mark")

// MarkFunc reads the directory's change mark.
type MarkFunc func(ctx context.Context) (string, error)

// Wait reads the mark every t.Poll until it differs from since (empty: the mark read
// first), then until the changes stop for t.Quiet or t.Max has passed since the first.
// beat is called after every read with the mark to resume from (a Temporal heartbeat).
// A read error ends Wait with that error.
func Wait(ctx context.Context, mark MarkFunc, since string, t Timing, beat func(mark string)) (Result, error) {
	t = t.withDefaults()
	res := Result{Mark: since}
	if res.Mark == "" {
		m, err := mark(ctx)
		if err != nil {
			return res, err
		}
		res.Mark = m
		beat(m)
	}
	start := time.Now()
	var first, last time.Time
	tick := time.NewTicker(t.Poll)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return res, ctx.Err()
		case <-tick.C:
		}
		m, err := mark(ctx)
		if err != nil {
			return res, err
		}
		now := time.Now()
		if m != res.Mark {
			if !res.Changed {
				first = now
			}
			res.Changed, res.Mark, last = true, m, now
			res.Changes++
		}
		beat(res.Mark)
		switch {
		case res.Changed && (now.Sub(last) >= t.Quiet || now.Sub(first) >= t.Max):
			return res, nil
		case !res.Changed && now.Sub(start) >= t.Give:
			return res, nil
		}
	}
}
