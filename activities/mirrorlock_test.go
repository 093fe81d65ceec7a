package activities

import (
	"context"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"
	"github.com/stretchr/testify/require"

	"github.com/usersync/usersync/internal/demo"
	"github.com/usersync/usersync/internal/devstack"
	"github.com/usersync/usersync/internal/devstack/devstacktest"
	"github.com/usersync/usersync/internal/directory"
	"github.com/usersync/usersync/internal/steps"
	"github.com/usersync/usersync/internal/store"
	"github.com/usersync/usersync/internal/vocab"
)

// mirrorRace is an organization read incrementally from a slapd of its own into the real
// store, with hooks at the racy points of SnapshotDirectory.
type mirrorRace struct {
	t     *testing.T
	ctx   context.Context
	st    *store.Store
	slapd *devstack.Slapd
	acts  *Activities
	// beforeLock runs before an attempt takes the mirror (LockMirror); beforeDelta before
	// the delta snapshot is read (after the run's read and its stand-still check);
	// afterDelta once it is. Each runs once, then is cleared.
	mu                                  sync.Mutex
	beforeLock, beforeDelta, afterDelta func()
}

const raceOrg, raceAdmin, racePW = "acme", "cn=admin," + demo.Suffix, "admin-pw"

func newMirrorRace(t *testing.T) *mirrorRace {
	if _, err := os.Stat(devstack.SlapdBinary); err != nil {
		devstacktest.SkipUnlessRequired(t, "slapd not installed: %v", err)
	}
	ctx := context.Background()
	st, err := store.Open(ctx, devstacktest.Database(t))
	require.NoError(t, err)
	t.Cleanup(st.Close)
	d := demo.Generate(20, 5)
	require.NoError(t, demo.Seed(ctx, st, raceOrg, "test", d))
	sl := &devstack.Slapd{Dir: t.TempDir(), Suffix: d.Suffix, AdminDN: raceAdmin, AdminPassword: racePW}
	require.NoError(t, sl.Start(ctx))
	t.Cleanup(func() { _ = sl.Stop() })
	require.NoError(t, devstack.LoadEntries(ctx, sl.URL(), raceAdmin, racePW, d.Entries))
	r := &mirrorRace{t: t, ctx: ctx, st: st, slapd: sl}
	dial := func(ctx context.Context) (Directory, error) {
		rd, err := directory.Dial(ctx, directory.Config{URL: sl.URL(), BindDN: raceAdmin, BindPassword: racePW,
			BaseDN: d.Suffix, AllowPlaintextBind: true})
		if err != nil {
			return nil, err
		}
		return hookedReader{Reader: rd, r: r}, nil
	}
	r.acts = &Activities{Store: hookedStore{Store: st, r: r}, Orgs: Single(raceOrg, Org{Dial: dial, Incremental: true})}
	return r
}

// take returns the hook *h and clears it.
func (r *mirrorRace) take(h *func()) func() {
	r.mu.Lock()
	defer r.mu.Unlock()
	f := *h
	*h = nil
	return f
}

type hookedStore struct {
	*store.Store
	r *mirrorRace
}

func (s hookedStore) LockMirror(ctx context.Context, org string, wait func()) (directory.MirrorStore, func(), error) {
	if f := s.r.take(&s.r.beforeLock); f != nil {
		f()
	}
	return s.Store.LockMirror(ctx, org, wait)
}

type hookedReader struct {
	*directory.Reader
	r *mirrorRace
}

func (d hookedReader) SnapshotChanges(ctx context.Context, m directory.MirrorStore, groupDNs, extraAttrs []string,
	batchSize int, ch *directory.Changes, emit func([]directory.User) error) (directory.Stats, []string, error) {
	if f := d.r.take(&d.r.beforeDelta); f != nil {
		f()
	}
	stats, touched, err := d.Reader.SnapshotChanges(ctx, m, groupDNs, extraAttrs, batchSize, ch, emit)
	if f := d.r.take(&d.r.afterDelta); f != nil {
		f()
	}
	return stats, touched, err
}

// snapshot runs SnapshotDirectory for run (a real run that may stand still, or a dry run).
func (r *mirrorRace) snapshot(run string, dry bool) (steps.SnapshotResult, error) {
	kind := vocab.KindScheduled
	if dry {
		kind = vocab.KindManual
	}
	return r.acts.SnapshotDirectory(r.ctx, steps.SnapshotInput{RunRef: steps.RunRef{Org: raceOrg, RunID: run},
		Kind: kind, DryRun: dry, MayStandStill: !dry})
}

// finish records run as finished: clean (a later run may stand on it) unless dry.
func (r *mirrorRace) finish(run string, dry bool) {
	require.NoError(r.t, r.st.FinishRun(r.ctx, run, vocab.RunSucceeded, vocab.Failure{}, 0, steps.RunSummary{}))
	if !dry {
		require.NoError(r.t, r.st.MarkRunClean(r.ctx, run))
	}
}

// users is run's snapshot, by externalId.
func (r *mirrorRace) users(run string) map[string]directory.User {
	us := map[string]directory.User{}
	require.NoError(r.t, r.st.PlanRows(r.ctx, raceOrg, run, func(row store.PlanRow) error {
		us[row.User.ExternalID] = row.User
		return nil
	}))
	return us
}

// rename changes u's displayName in the directory.
func (r *mirrorRace) rename(u directory.User, name string) {
	conn, err := ldap.DialURL(r.slapd.URL())
	require.NoError(r.t, err)
	defer conn.Close()
	require.NoError(r.t, conn.Bind(raceAdmin, racePW))
	m := ldap.NewModifyRequest(u.DN, nil)
	m.Replace("displayName", []string{name})
	require.NoError(r.t, conn.Modify(m))
}

// mirrored is u's displayName in the organization's mirror now.
func (r *mirrorRace) mirrored(u directory.User) string {
	v, err := r.st.Mirror(raceOrg).View(r.ctx)
	require.NoError(r.t, err)
	defer v.Close(r.ctx)
	var name string
	require.NoError(r.t, v.Some(r.ctx, directory.MirrorUsers, []string{u.ExternalID}, func(es []directory.MirrorEntry) error {
		for _, e := range es {
			for k, vs := range e.Attrs {
				if k == "displayName" && len(vs) > 0 {
					name = string(vs[0])
				}
			}
		}
		return nil
	}))
	return name
}

// baseline runs a first, clean run (a full read) and returns two users in scope.
func (r *mirrorRace) baseline() (a, b directory.User) {
	_, err := r.snapshot("acme/run/1", false)
	require.NoError(r.t, err)
	var in []directory.User
	for _, u := range r.users("acme/run/1") {
		if !u.Disabled {
			in = append(in, u)
		}
	}
	require.GreaterOrEqual(r.t, len(in), 2)
	r.finish("acme/run/1", false)
	return in[0], in[1]
}

// A dry run started while a run reads the directory (issue 13: starter run --dry-run beside
// a sync) never commits its own read of the mirror between the run's read and the run's
// delta snapshot, where the change it read would be in the mirror the run snapshotted but in
// none of the changes the run planned: it waits for the run's snapshot. The change it read
// reaches the next run.
func TestDryRunReadWaitsForTheRunsSnapshot(t *testing.T) {
	r := newMirrorRace(t)
	a, b := r.baseline()
	r.rename(a, "Ann Changed")

	dryDone := make(chan error, 1)
	var dry steps.SnapshotResult
	var bMirroredAtDelta string
	r.beforeDelta = func() {
		// The racy point: after the run's read and stand-still check, before its delta
		// snapshot. Another change, and a dry run that reads it.
		r.rename(b, "Bob Changed")
		go func() {
			var err error
			dry, err = r.snapshot("acme/run/dry", true)
			dryDone <- err
		}()
		select {
		case err := <-dryDone: // it did not wait
			dryDone <- err
		case <-time.After(3 * time.Second): // it waits for the run's snapshot
		}
	}
	r.afterDelta = func() { bMirroredAtDelta = r.mirrored(b) }
	res, err := r.snapshot("acme/run/2", false)
	require.NoError(t, err)
	require.NotNil(t, res.Delta, "a delta run: %+v", res)
	got := r.users("acme/run/2")
	require.Equal(t, "Ann Changed", got[a.ExternalID].DisplayName, "the run's own change")
	if bMirroredAtDelta == "Bob Changed" {
		require.Equal(t, "Bob Changed", got[b.ExternalID].DisplayName,
			"the mirror the run's delta snapshot was taken from held the dry run's change, and the snapshot lacks it")
	}

	require.NoError(t, <-dryDone)
	require.Equal(t, "Bob Changed", r.users("acme/run/dry")[b.ExternalID].DisplayName, "the dry run read the change")
	require.Positive(t, dry.InScope)
	r.finish("acme/run/2", false)
	r.finish("acme/run/dry", true)

	// The next run plans it: it does not stand on the run before the dry run's read.
	_, err = r.snapshot("acme/run/3", false)
	require.NoError(t, err)
	require.Equal(t, "Bob Changed", r.users("acme/run/3")[b.ExternalID].DisplayName)
}

// An attempt of a run's snapshot that the server timed out and retried, still running, reads
// nothing into the mirror once its retry began (it would have taken a change there that no
// run plans: the next run's read finds nothing new and stands still) and writes nothing into
// the run's snapshot: it fails as superseded, and the change reaches the next run.
func TestSupersededAttemptReadsAndWritesNothing(t *testing.T) {
	r := newMirrorRace(t)
	a, b := r.baseline()
	r.rename(a, "Ann Changed")

	resume := make(chan struct{})
	r.beforeLock = func() { <-resume } // the first attempt, stalled on its way to the read
	stale := make(chan error, 1)
	go func() {
		_, err := r.snapshot("acme/run/2", false)
		stale <- err
	}()
	require.Eventually(t, func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		return r.beforeLock == nil
	}, 10*time.Second, 10*time.Millisecond, "the first attempt reached its read")

	// The retry runs to its end: the run's second snapshot attempt (BeginRun), a retried
	// read, takes the full snapshot (the first attempt's read may be in the mirror already).
	res, err := r.snapshot("acme/run/2", false)
	require.NoError(t, err)
	require.Nil(t, res.Delta, "a retried read takes the full snapshot")
	retried := r.users("acme/run/2")

	// A change after the retry's read; then the stale attempt goes on.
	r.rename(b, "Bob Changed")
	close(resume)
	err = <-stale
	require.ErrorIs(t, err, store.ErrSuperseded)
	require.ErrorContains(t, err, "snapshot attempt 1 was superseded by attempt 2")
	require.Equal(t, retried, r.users("acme/run/2"), "the run's snapshot is the retry's")
	require.Equal(t, "Ann Changed", retried[a.ExternalID].DisplayName)
	r.finish("acme/run/2", false)

	res, err = r.snapshot("acme/run/3", false)
	require.NoError(t, err)
	require.Nil(t, res.Unchanged, "the next run reads the change: it does not stand still")
	require.Equal(t, "Bob Changed", r.users("acme/run/3")[b.ExternalID].DisplayName)
}

// lockingSnapshotStore is mirrorSnapshotStore whose mirror lock is the real store's.
type lockingSnapshotStore struct {
	mirrorSnapshotStore
	db    *store.Store
	locks *atomic.Int32
}

func (s lockingSnapshotStore) LockMirror(ctx context.Context, org string, wait func()) (directory.MirrorStore, func(), error) {
	s.locks.Add(1)
	return s.db.LockMirror(ctx, org, wait)
}

// A run waiting for the organization's mirror (a dry run's read and snapshot under way) longer
// than its heartbeat timeout is not taken for a stalled one: it heartbeats while it waits,
// and reads once the mirror is free, in its first attempt.
func TestMirrorWaitIsNotAStall(t *testing.T) {
	ctx := context.Background()
	db, err := store.Open(ctx, devstacktest.Database(t))
	require.NoError(t, err)
	t.Cleanup(db.Close)
	holder, err := db.Pool().Acquire(ctx)
	require.NoError(t, err)
	defer holder.Release()
	_, err = holder.Exec(ctx, `SELECT pg_advisory_lock(hashtext('directory_mirror:' || $1))`, "acme")
	require.NoError(t, err)
	const held = 5 * time.Second // beyond the 4 s heartbeat timeout
	go func() {
		time.Sleep(held)
		_, _ = holder.Exec(ctx, `SELECT pg_advisory_unlock_all()`)
	}()

	var locks atomic.Int32
	st := lockingSnapshotStore{mirrorSnapshotStore{&snapshotStore{users: map[string]int{}}}, db, &locks}
	dir := &incrementalDirectory{}
	acts := &Activities{Store: st, Orgs: Single("acme", Org{Dial: dir.dial, Incremental: true})}
	began := time.Now()
	var res steps.SnapshotResult
	require.NoError(t, stepRun(t, acts, steps.SnapshotDirectory, stepOptions,
		steps.SnapshotInput{RunRef: steps.RunRef{Org: "acme", RunID: "run-1"}}, &res, nil))
	require.Equal(t, 1, res.InScope)
	require.GreaterOrEqual(t, time.Since(began), held, "it waited for the mirror")
	require.Equal(t, int32(1), locks.Load(), "in one attempt")
}
