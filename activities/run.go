package activities

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/usersync/usersync/internal/directory"
	"github.com/usersync/usersync/internal/rules"
	"github.com/usersync/usersync/internal/steps"
	"github.com/usersync/usersync/internal/store"
	"github.com/usersync/usersync/internal/vocab"
	"go.temporal.io/sdk/temporal"
)

// RecordEvent writes to the administrative activity history.
func (a *Activities) RecordEvent(ctx context.Context, e vocab.Event) error {
	err := a.Store.AddEvent(ctx, e)
	if errors.Is(err, store.ErrInvalidValue) {
		// Writing it again cannot succeed: the caller must not wait on it.
		return temporal.NewNonRetryableApplicationError(err.Error(), "invalid_value", nil)
	}
	return err
}

// snapshotProgress is SnapshotDirectory's heartbeat details.
type snapshotProgress struct {
	Groups  int64 `json:"groups"`  // directory groups read into the membership index
	Read    int64 `json:"read"`    // users read from the directory
	Written int64 `json:"written"` // users written to the snapshot
}

// SnapshotDirectory reads the users of the ruled groups into the run's snapshot. A failed read
// fails the activity (Temporal retries it); it is never taken as "everyone left".
//
// It heartbeats as groups and users are read and written (progress), so a hung search or
// statement is timed out by the heartbeat timeout. A retried attempt starts over (BeginRun
// clears what an earlier attempt wrote): the snapshot must be one consistent read, a paged
// search cannot be resumed on another connection, and the membership index it reads users
// through is the attempt's own (attemptKey), rebuilt from the groups by each read. An
// earlier attempt still running (timed out by the server, not by itself) can write nothing
// more to the run once the retry began: each write carries BeginRun's attempt (a fencing
// token) and fails with store.ErrSuperseded. That error is an ordinary one: Temporal drops
// a timed-out attempt's result anyway, and were it ever a live attempt's, its retry begins
// anew and writes.
func (a *Activities) SnapshotDirectory(ctx context.Context, in steps.SnapshotInput) (_ steps.SnapshotResult, err error) {
	var groups, read, written atomic.Int64
	ctx, p := startProgress(ctx, func() any {
		return snapshotProgress{Groups: groups.Load(), Read: read.Load(), Written: written.Load()}
	})
	defer p.end(&err)
	attempt, err := a.Store.BeginRun(ctx, in.Org, in.RunID, in.Kind, in.DryRun)
	if err != nil {
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
	p.tick()
	var res steps.SnapshotResult
	if len(rs) == 0 {
		return res, nil
	}
	o, err := a.org(ctx, in.Org)
	if err != nil {
		return res, err
	}
	dir, err := o.Dial(ctx)
	if err != nil {
		return res, fmt.Errorf("directory: %w", err)
	}
	defer dir.Close()
	p.tick()
	if loc, ok := dir.(GroupLocator); ok {
		// Before the read: the plan matches users' groups with the rules' DNs, which must
		// be where the groups are now.
		if rs, err = a.relocateRuleGroups(ctx, in.Org, loc, rs); err != nil {
			return res, err
		}
		p.tick()
	}
	groupDNs, attrs := SnapshotScope(rs, ms)
	inputs, err := a.runInputs(ctx, in.Org, o, rs, ms)
	if err != nil {
		return res, err
	}
	batch := a.SnapshotBatch
	if batch <= 0 {
		batch = 1000
	}
	// Batches are written on their own goroutine while the directory read goes on.
	w := startWriter(func(us []directory.User) error {
		if err := a.Store.WriteSnapshot(ctx, in.RunID, attempt, us); err != nil {
			return err
		}
		written.Add(int64(len(us)))
		p.tick()
		return nil
	})
	index := func() directory.MembershipIndex {
		return progressIndex{MembershipIndex: a.Store.MembershipIndex(attemptKey(ctx, in.RunID)), p: p, groups: &groups}
	}
	emit := func(us []directory.User) error {
		for _, u := range us {
			if !u.Disabled {
				res.InScope++
			}
		}
		read.Add(int64(len(us)))
		p.tick()
		return w.put(us)
	}
	var stats directory.Stats
	var c unchangedCheck // an incremental read's (runCheck)
	if inc, ok := dir.(IncrementalDirectory); ok && o.Incremental && inc.SupportsIncremental() {
		// Only what changed since the last run is read; the snapshot is then taken from
		// the mirror exactly as from the directory.
		// err is the function's: a failed read must fail the step (it was once shadowed
		// here, and a read cut mid-way "succeeded" with nobody in scope).
		var ss directory.SyncStats
		var m directory.MirrorStore
		var release func()
		if m, release, err = a.lockMirror(ctx, in.RunID, in.Org, attempt, p); err == nil {
			defer func() { release() }()
			ss, err = inc.SyncMirror(ctx, m, attrs, o.FullReadEvery)
		}
		switch {
		case errors.Is(err, directory.ErrNoContentSync):
			// The full read below does not use the mirror: others need not wait for it.
			release()
			release = func() {}
			// A directory without syncprov (or an AD account blind to deleted objects) is
			// read in full, as before incremental reads; said once per reason, not every run.
			if _, seen := fullReadsSaid.LoadOrStore(in.Org+"\x00"+err.Error(), true); !seen {
				slog.Warn("directory: no incremental reads, every sync reads the directory in full", "org", in.Org, "why", err.Error())
			} else {
				slog.Debug("directory: no incremental reads, reading in full", "org", in.Org, "why", err.Error())
			}
			stats, err = dir.SnapshotWith(ctx, index(), groupDNs, attrs, batch, emit)
		case err == nil:
			p.tick()
			res.Read = &steps.DirectoryRead{Full: ss.Full, Reason: ss.Reason, Entries: ss.Entries, Deleted: ss.Deleted, Checked: ss.Checked}
			var still *steps.SnapshotResult
			if c, err = a.runCheck(ctx, in, attempt, res.Read, inputs); err == nil {
				still, err = a.standStill(ctx, in, attempt, c)
			}
			if still != nil || err != nil {
				if werr := w.close(); err == nil {
					err = werr
				}
				if err != nil {
					return steps.SnapshotResult{}, err
				}
				return *still, nil
			}
			delta := func() (directory.Stats, []string, error) {
				return inc.SnapshotChanges(ctx, m, groupDNs, attrs, batch, ss.Changes, emit)
			}
			if res.Delta, stats, err = a.deltaSnapshot(ctx, in, attempt, c, delta); err == nil && res.Delta == nil {
				stats, err = inc.SnapshotFromMirror(ctx, m, index(), groupDNs, attrs, batch, emit)
			}
		}
	} else {
		stats, err = dir.SnapshotWith(ctx, index(), groupDNs, attrs, batch, emit)
	}
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
	res.Skipped, res.Invalid, res.Unreadable = stats.Skipped, stats.Invalid, stats.Unreadable
	var expiry *time.Time
	if !stats.NextExpiry.IsZero() {
		expiry = &stats.NextExpiry
	}
	if res.Delta != nil {
		// The untouched users' accounts expire as the basis run saw them.
		if prev := c.Previous.NextExpiry; prev != nil && (expiry == nil || prev.Before(*expiry)) {
			expiry = prev
		}
	}
	if err := a.Store.SetRunBasis(ctx, in.RunID, attempt, inputs, expiry, in.RunID); err != nil {
		return steps.SnapshotResult{}, err
	}
	return res, nil
}

// deltaSnapshot takes, when the run may be a delta run (DeltaSince), the snapshot of only
// the users the directory's changes touched (read: IncrementalDirectory.SnapshotChanges) and
// marks the run's snapshot so (plan.Input.Delta). It returns a nil Delta, having written
// nothing, when the run takes the full snapshot instead: not a delta run, changes not known
// or touching too many users, or a snapshot that would hold nobody while no account is
// left untouched (a plan that reads nobody takes the read for a wrong one; the full read
// may hold users out of scope).
func (a *Activities) deltaSnapshot(ctx context.Context, in steps.SnapshotInput, attempt int64, c unchangedCheck,
	read func() (directory.Stats, []string, error)) (*steps.Delta, directory.Stats, error) {
	since, _ := DeltaSince(c)
	if since == "" {
		return nil, directory.Stats{}, nil
	}
	stats, touched, err := read()
	if errors.Is(err, directory.ErrTooManyChanges) {
		return nil, directory.Stats{}, nil
	}
	if err != nil {
		return nil, directory.Stats{}, err
	}
	if err := a.Store.MarkDelta(ctx, in.RunID, attempt, touched); err != nil {
		return nil, directory.Stats{}, err
	}
	if stats.InScope+stats.Disabled == 0 {
		n, err := a.Store.Planning(in.Org, in.RunID).Untouched(ctx)
		if err != nil {
			return nil, directory.Stats{}, err
		}
		if n == 0 {
			// Unmarked (as BeginRun leaves the run's snapshot): nothing was written to it.
			return nil, directory.Stats{}, a.Store.ResetSnapshot(ctx, in.RunID, attempt)
		}
	}
	return &steps.Delta{Since: since, Touched: len(touched)}, stats, nil
}

// lockMirror makes the organization's mirror this attempt's until release (Store.LockMirror),
// so that its read (SyncMirror) and the snapshot taken from the mirror are one unit: a read
// by another run (a dry run beside it) or attempt cannot commit between them, where its
// changes would be in neither this run's changes nor its delta snapshot. The wait for the
// holder heartbeats: it is not a stall.
func (a *Activities) lockMirror(ctx context.Context, runID, org string, attempt int64, p *progress) (directory.MirrorStore, func(), error) {
	m, release, err := a.Store.LockMirror(ctx, org, p.tick)
	if err != nil {
		return nil, nil, err
	}
	// With the lock held: a superseded attempt must not read into the mirror after its retry
	// read it (what it read would be in no run's changes). One that passes here reads before
	// its retry, which takes the full snapshot (a retried read: DeltaSince).
	if err := a.Store.CheckAttempt(ctx, runID, attempt); err != nil {
		release()
		return nil, nil, err
	}
	return m, release, nil
}

// fullReadsSaid: the organizations and reasons whose lack of incremental reads was logged
// (a sync every few minutes would say it every time).
var fullReadsSaid sync.Map

// GroupLocator finds ruled groups by their immutable ID (*directory.Reader).
type GroupLocator interface {
	LocateGroups(ctx context.Context, refs []directory.GroupRef) (located []directory.GroupRef, found []bool, err error)
}

// relocateRuleGroups finds the ruled groups where they are now (by ID, else by DN) and
// stores their current DN and ID in the rules, so that a group renamed or moved keeps its
// members' accounts and entitlements. It returns the rules as stored after.
func (a *Activities) relocateRuleGroups(ctx context.Context, org string, loc GroupLocator, rs []rules.Rule) ([]rules.Rule, error) {
	var refs []directory.GroupRef
	seen := map[directory.GroupRef]bool{}
	for _, r := range rs {
		ref := directory.GroupRef{DN: r.GroupDN, ID: r.GroupID}
		if !seen[ref] {
			seen[ref] = true
			refs = append(refs, ref)
		}
	}
	located, found, err := loc.LocateGroups(ctx, refs)
	if err != nil {
		return nil, fmt.Errorf("directory: %w", err)
	}
	var moves []store.RuleGroupMove
	for i, ref := range refs {
		if found[i] && located[i] != ref {
			moves = append(moves, store.RuleGroupMove{From: ref, To: located[i]})
		}
	}
	if len(moves) == 0 {
		return rs, nil
	}
	return a.Store.RefreshRuleGroups(ctx, org, moves)
}

// progressIndex is a membership index whose every step done is progress: the group read
// (AddGroups), the nesting resolved, each page of users looked up.
type progressIndex struct {
	directory.MembershipIndex
	p      *progress
	groups *atomic.Int64
}

func (x progressIndex) AddGroups(ctx context.Context, groups []directory.GroupMembers) error {
	if err := x.MembershipIndex.AddGroups(ctx, groups); err != nil {
		return err
	}
	x.groups.Add(int64(len(groups)))
	x.p.tick()
	return nil
}

func (x progressIndex) Resolve(ctx context.Context, requested []string) ([]string, error) {
	missing, err := x.MembershipIndex.Resolve(ctx, requested)
	if err == nil {
		x.p.tick()
	}
	return missing, err
}

func (x progressIndex) Lookup(ctx context.Context, dns []string) (map[string][]int, error) {
	held, err := x.MembershipIndex.Lookup(ctx, dns)
	if err == nil {
		x.p.tick()
	}
	return held, err
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
	if cleanRun(in) {
		if err := a.Store.MarkRunClean(ctx, in.RunID); err != nil {
			return sum, err
		}
	}
	action := "sync"
	if in.DryRun {
		action = "dry-run"
	}
	status := "ok"
	if in.Status != vocab.RunSucceeded {
		status = in.Status
	}
	e := vocab.Event{Org: in.Org, Type: vocab.EventSync, Action: action + " finished", Status: status,
		Details: map[string]any{"run": in.RunID, "kind": in.Kind, "outcomes": in.Outcomes, "failures": in.Failures,
			"unchanged": in.Plan.Unchanged, "inScope": in.Plan.InScope, "warnings": in.Plan.Warnings, "error": in.Error}}
	if u := in.Directory.Unchanged; u != nil {
		e.Details["note"] = u.Note()
	}
	err = a.Store.AddEvent(ctx, e)
	if err == nil && !in.DryRun {
		// Counted once the run is recorded: a retried FinishRun counts it at its success.
		a.Metrics.Run(in.Org, in.Kind, in.Status, in.FailureType, in.Outcomes, in.Failures)
	}
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
