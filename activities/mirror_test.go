package activities

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/usersync/usersync/internal/directory"
	"github.com/usersync/usersync/internal/steps"
)

// incrementalDirectory reads incrementally: its mirror read fails with syncErr, else its
// snapshot from the mirror fails with snapErr, else it emits one user.
type incrementalDirectory struct {
	scriptedDirectory
	syncErr, snapErr error
	fullReads        int
}

func (d *incrementalDirectory) dial(context.Context) (Directory, error) { return d, nil }
func (d *incrementalDirectory) SupportsIncremental() bool               { return true }
func (d *incrementalDirectory) SyncMirror(context.Context, directory.MirrorStore, []string, time.Duration) (directory.SyncStats, error) {
	return directory.SyncStats{Full: true, Reason: "first read"}, d.syncErr
}
func (d *incrementalDirectory) SnapshotFromMirror(ctx context.Context, _ directory.MirrorStore, idx directory.MembershipIndex,
	_, _ []string, _ int, emit func([]directory.User) error) (directory.Stats, error) {
	_ = idx.Close(ctx)
	if d.snapErr != nil {
		return directory.Stats{}, d.snapErr
	}
	return directory.Stats{Users: 1, InScope: 1}, emit([]directory.User{{ExternalID: "u1", DN: "uid=u1,dc=example,dc=com"}})
}
func (d *incrementalDirectory) SnapshotChanges(context.Context, directory.MirrorStore, []string, []string, int,
	*directory.Changes, func([]directory.User) error) (directory.Stats, []string, error) {
	return directory.Stats{}, nil, directory.ErrTooManyChanges
}
func (d *incrementalDirectory) SnapshotWith(ctx context.Context, idx directory.MembershipIndex, _, _ []string, _ int,
	emit func([]directory.User) error) (directory.Stats, error) {
	d.fullReads++
	_ = idx.Close(ctx)
	return directory.Stats{Users: 1, InScope: 1}, emit([]directory.User{{ExternalID: "u1", DN: "uid=u1,dc=example,dc=com"}})
}

// mirrorSnapshotStore is snapshotStore with a mirror (the fake directory does not use it).
type mirrorSnapshotStore struct{ *snapshotStore }

func (mirrorSnapshotStore) LockMirror(context.Context, string, func()) (directory.MirrorStore, func(), error) {
	return nil, func() {}, nil
}

var oneAttempt = func() (o workflow.ActivityOptions) {
	o = stepOptions
	o.RetryPolicy = &temporal.RetryPolicy{MaximumAttempts: 1}
	return o
}()

// An incremental read that fails (the connection lost while the groups are read, slapd
// stopped mid-read) fails the step: the run never takes the read as "nobody in scope".
// Its error was once dropped (shadowed), so the step succeeded with no user read and the
// run suspended or left out everyone.
func TestFailedIncrementalReadFailsTheStep(t *testing.T) {
	for _, c := range []struct {
		name string
		dir  *incrementalDirectory
	}{
		{"mirror read", &incrementalDirectory{syncErr: errors.New("sync of \"(objectClass=groupOfNames)\": connection lost")}},
		{"snapshot from the mirror", &incrementalDirectory{snapErr: errors.New("directory mirror: read: connection reset")}},
	} {
		t.Run(c.name, func(t *testing.T) {
			st := mirrorSnapshotStore{&snapshotStore{users: map[string]int{}}}
			acts := &Activities{Store: st, Orgs: Single("acme", Org{Dial: c.dir.dial, Incremental: true})}
			var res steps.SnapshotResult
			err := stepRun(t, acts, steps.SnapshotDirectory, oneAttempt,
				steps.SnapshotInput{RunRef: steps.RunRef{Org: "acme", RunID: "run-1"}}, &res, nil)
			require.Error(t, err, "the step succeeded with %+v", res)
			require.ErrorContains(t, err, "connection")
			require.Zero(t, c.dir.fullReads)
		})
	}
}

// A directory without content synchronization (or an AD account blind to deleted objects)
// is read in full, every run, and the worker says why once, not every run.
func TestIncrementalReadWithoutContentSyncReadsInFull(t *testing.T) {
	why := fmt.Errorf("directory ldaps://dc: the bind account cannot see the Deleted Objects container: %w", directory.ErrNoContentSync)
	dir := &incrementalDirectory{syncErr: why}
	st := mirrorSnapshotStore{&snapshotStore{users: map[string]int{}}}
	acts := &Activities{Store: st, Orgs: Single("acme-blind", Org{Dial: dir.dial, Incremental: true})}
	var logs bytes.Buffer
	prev := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(&logs, nil)))
	defer slog.SetDefault(prev)
	for i := range 2 {
		var res steps.SnapshotResult
		require.NoError(t, stepRun(t, acts, steps.SnapshotDirectory, oneAttempt,
			steps.SnapshotInput{RunRef: steps.RunRef{Org: "acme-blind", RunID: fmt.Sprint("run-", i)}}, &res, nil))
		require.Equal(t, i+1, dir.fullReads)
		require.Equal(t, 1, res.InScope)
		require.Nil(t, res.Read, "not an incremental read")
	}
	require.Equal(t, 1, strings.Count(logs.String(), "level=WARN msg=\"directory: no incremental reads, every sync reads the directory in full\""), logs.String())
	require.Contains(t, logs.String(), "cannot see the Deleted Objects container")
}
