// Package watch tells when a directory changed, without a replication right, and once it
// did, waits for the burst of changes to end (Wait) so that one sync serves it all. It
// says that something changed, not what: the sync reads the directory.
//
// OpenLDAP: a persistent RFC 4533 content synchronization (refreshAndPersist) of the base
// DN, requesting no attributes, tells of each added, modified, deleted or moved entry the
// moment the server commits it; its cookie is the mark to resume from, so a change made
// while no watcher ran is reported at once. A server that refuses the control (no syncprov
// overlay on that database) is polled instead: the contextCSN of its suffix.
//
// Active Directory: the rootDSE's highestCommittedUSN is polled (every Timing.Poll). AD's
// own change feed, DirSync, needs the "Replicating Directory Changes" right, which a sync's
// service account should not hold; the USN is readable by anyone. It moves with every write
// to the DC, also outside the base DN: such a write costs one sync that finds nothing.
package watch

import (
	"context"
	"errors"
	"time"
)

// Timing shapes Wait. Zero values take the defaults.
type Timing struct {
	// Poll: between two reads of a polled mark, and between two heartbeats (beat) of a
	// persistent watch (default 2s).
	Poll  time.Duration
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
	Changed bool   // the directory changed
	Changes int    // how many notices of a change came (a burst of writes may be one)
	Mark    string // the last mark: where the next Wait starts
}

// ErrNoMark is returned when the directory keeps no change mark.
var ErrNoMark = errors.New("the directory keeps no change mark")

// Source is a directory's changes as Wait reads them.
type Source interface {
	// Start begins at since (a mark from an earlier Wait; empty: now) and returns the mark
	// then and whether the directory changed after since. A source that polls reads its
	// mark every poll.
	Start(ctx context.Context, since string, poll time.Duration) (mark string, changed bool, err error)
	// Next returns with the mark when something changed (changed) or the mark moved, or
	// at until at the latest (then unchanged). ctx only cancels: it may close the
	// connection.
	Next(ctx context.Context, until time.Time) (mark string, changed bool, err error)
}

// Wait returns once the source tells of a change after since and then no other for
// t.Quiet (or t.Max after the first), or unchanged after t.Give. beat is called at least
// every t.Poll with the mark to resume from (a Temporal heartbeat). An error of the
// source ends Wait with that error.
func Wait(ctx context.Context, src Source, since string, t Timing, beat func(mark string)) (Result, error) {
	t = t.withDefaults()
	res := Result{Mark: since}
	start := time.Now()
	var first, last time.Time
	note := func(m string, changed bool) {
		res.Mark = m
		if !changed {
			return
		}
		now := time.Now()
		if !res.Changed {
			first = now
		}
		res.Changed, last = true, now
		res.Changes++
	}
	m, changed, err := src.Start(ctx, since, t.Poll)
	if err != nil {
		return res, err
	}
	note(m, changed)
	beat(res.Mark)
	for {
		// Wake for the next heartbeat or the end of the burst (or of the watch).
		now := time.Now()
		end := start.Add(t.Give)
		if res.Changed {
			end = earlier(last.Add(t.Quiet), first.Add(t.Max))
		}
		if !now.Before(end) {
			return res, nil
		}
		m, changed, err := src.Next(ctx, earlier(end, now.Add(t.Poll)))
		if ctx.Err() != nil {
			return res, ctx.Err()
		}
		if err != nil {
			return res, err
		}
		note(m, changed)
		beat(res.Mark)
	}
}

// MarkFunc reads the directory's change mark.
type MarkFunc func(ctx context.Context) (string, error)

// Poller is a Source that reads a mark now and then: a change is a mark that moved.
type Poller struct {
	Mark  MarkFunc
	Reads int // reads of the mark so far

	every time.Duration
	last  string
	next  time.Time // the next read is due
}

// Start reads the mark: changed when it is not since (a non-empty one).
func (p *Poller) Start(ctx context.Context, since string, poll time.Duration) (string, bool, error) {
	p.every = max(poll, time.Millisecond)
	m, err := p.read(ctx)
	if err != nil {
		return "", false, err
	}
	return m, since != "" && m != since, nil
}

// Next reads the mark when its turn comes before until (the turns keep their pace: Wait's
// heartbeats and ends do not make it read more often).
func (p *Poller) Next(ctx context.Context, until time.Time) (string, bool, error) {
	due := !p.next.After(until)
	tm := time.NewTimer(time.Until(earlier(p.next, until)))
	defer tm.Stop()
	select {
	case <-ctx.Done():
		return p.last, false, ctx.Err()
	case <-tm.C:
	}
	if !due {
		return p.last, false, nil
	}
	prev := p.last
	m, err := p.read(ctx)
	if err != nil {
		return prev, false, err
	}
	return m, m != prev, nil
}

func (p *Poller) read(ctx context.Context) (string, error) {
	p.next = time.Now().Add(p.every)
	m, err := p.Mark(ctx)
	if err != nil {
		return "", err
	}
	p.Reads++
	p.last = m
	return m, nil
}

func earlier(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
