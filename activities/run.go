package activities

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/usersync/usersync/internal/directory"
	"github.com/usersync/usersync/internal/steps"
	"github.com/usersync/usersync/internal/vocab"
)

// RecordEvent writes to the administrative activity history.
func (a *Activities) RecordEvent(ctx context.Context, e vocab.Event) error {
	return a.Store.AddEvent(ctx, e)
}

// SnapshotDirectory reads the users of the ruled groups into the run's snapshot. A failed read
// fails the activity (Temporal retries it); it is never taken as "everyone left".
func (a *Activities) SnapshotDirectory(ctx context.Context, in steps.SnapshotInput) (steps.SnapshotResult, error) {
	defer keepAlive(ctx)()
	if err := a.Store.BeginRun(ctx, in.Org, in.RunID, in.Kind, in.DryRun); err != nil {
		return steps.SnapshotResult{}, err
	}
	rs, err := a.Store.Rules(ctx, in.Org)
	if err != nil {
		return steps.SnapshotResult{}, err
	}
	ms, err := a.Store.Mappings(ctx, in.Org)
	if err != nil {
		return steps.SnapshotResult{}, err
	}
	groupDNs, attrs := SnapshotScope(rs, ms)
	var res steps.SnapshotResult
	if len(groupDNs) == 0 {
		return res, nil
	}
	dir, err := a.DialDirectory(ctx)
	if err != nil {
		return res, fmt.Errorf("directory: %w", err)
	}
	defer dir.Close()
	batch := a.SnapshotBatch
	if batch <= 0 {
		batch = 1000
	}
	// Batches are written on their own goroutine while the directory read goes on.
	w := startWriter(func(us []directory.User) error { return a.Store.WriteSnapshot(ctx, in.RunID, us) })
	stats, err := dir.SnapshotWith(ctx, a.Store.MembershipIndex(attemptKey(ctx, in.RunID)), groupDNs, attrs, batch, func(us []directory.User) error {
		for _, u := range us {
			if !u.Disabled {
				res.InScope++
			}
		}
		return w.put(us)
	})
	if werr := w.close(); err == nil {
		err = werr
	}
	if err != nil {
		return steps.SnapshotResult{}, fmt.Errorf("directory read: %w", err)
	}
	if err := a.Store.AnalyzeSnapshot(ctx); err != nil {
		return steps.SnapshotResult{}, err
	}
	res.Users, res.Disabled, res.Groups, res.MissingGroups = stats.Users, stats.Disabled, stats.Groups, stats.MissingGroups
	return res, nil
}

// FinishRun records the run's outcome and history, and returns its summary with the
// organization's current banners.
func (a *Activities) FinishRun(ctx context.Context, in steps.FinishInput) (steps.RunSummary, error) {
	sum := steps.RunSummary{FinishInput: in, InScope: in.Plan.InScope, FinishedAt: time.Now().UTC()}
	// This run's own run-level failure, not the last recorded one: it is recorded below.
	banners, err := a.Store.BannersWith(ctx, in.Org, in.FailureType)
	if err != nil {
		return sum, err
	}
	sum.Banners = banners
	if err := a.Store.FinishRun(ctx, in.RunID, in.Status, vocab.Failure{Type: in.FailureType, Message: in.Error}, sum.InScope, sum); err != nil {
		return sum, err
	}
	action := "sync"
	if in.DryRun {
		action = "dry-run"
	}
	status := "ok"
	if in.Status != vocab.RunSucceeded {
		status = in.Status
	}
	err = a.Store.AddEvent(ctx, vocab.Event{Org: in.Org, Type: vocab.EventSync, Action: action + " finished", Status: status,
		Details: map[string]any{"run": in.RunID, "kind": in.Kind, "outcomes": in.Outcomes, "failures": in.Failures,
			"unchanged": in.Plan.Unchanged, "inScope": in.Plan.InScope, "warnings": in.Plan.Warnings, "error": in.Error}})
	return sum, err
}

// writer writes batches on one goroutine, at most two waiting: the caller goes on producing
// while a batch is written, and memory stays bounded.
type writer struct {
	ch   chan []directory.User
	done chan error
	mu   sync.Mutex
	err  error
}

func startWriter(write func([]directory.User) error) *writer {
	w := &writer{ch: make(chan []directory.User, 2), done: make(chan error, 1)}
	go func() {
		var err error
		for us := range w.ch {
			if err == nil {
				if err = write(us); err != nil {
					w.mu.Lock()
					w.err = err
					w.mu.Unlock()
				}
			}
		}
		w.done <- err
	}()
	return w
}

// put queues a batch; it returns the error of an earlier write, if any, so the read stops.
func (w *writer) put(us []directory.User) error {
	w.mu.Lock()
	err := w.err
	w.mu.Unlock()
	if err != nil {
		return err
	}
	w.ch <- us
	return nil
}

// close waits for the queued batches and returns the first write error.
func (w *writer) close() error {
	close(w.ch)
	return <-w.done
}
