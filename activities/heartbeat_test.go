package activities

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/usersync/usersync/internal/devstack/devstacktest"
	"github.com/usersync/usersync/internal/directory"
	"github.com/usersync/usersync/internal/plan"
	"github.com/usersync/usersync/internal/plan/plantest"
	"github.com/usersync/usersync/internal/rules"
	"github.com/usersync/usersync/internal/scim"
	"github.com/usersync/usersync/internal/steps"
	"github.com/usersync/usersync/internal/store"
)

// stepOptions are the bulk steps' options scaled down: a four-second heartbeat
// timeout (a stalled attempt stops itself at 3 s; its last heartbeat may be an eighth of the
// timeout older than its last progress and the watch ticks every fortieth, which leaves the
// cancelled operation 0.4 s to return before the server's timeout, also under CI's load), a StartToClose long
// enough that a test which waits for it is a failed test, quick retries.
var stepOptions = workflow.ActivityOptions{
	StartToCloseTimeout: 20 * time.Second,
	HeartbeatTimeout:    4 * time.Second,
	RetryPolicy: &temporal.RetryPolicy{
		InitialInterval:    10 * time.Millisecond,
		BackoffCoefficient: 1,
		MaximumAttempts:    3,
	},
}

// stepRun runs one step of acts, by name, in a test workflow with opts (retries included), as
// SyncRunWorkflow schedules it, and decodes its result into out. heartbeats, when set, sees
// every heartbeat that reaches the (test) server.
func stepRun(t *testing.T, acts *Activities, name string, opts workflow.ActivityOptions, in, out any,
	heartbeats func(*activity.Info, converter.EncodedValues)) error {
	t.Helper()
	var s testsuite.WorkflowTestSuite
	s.SetLogger(log.NewStructuredLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	env := s.NewTestWorkflowEnvironment()
	env.SetTestTimeout(time.Minute)
	env.RegisterActivity(acts)
	env.RegisterWorkflowWithOptions(func(ctx workflow.Context, in any) (converter.RawValue, error) {
		var res converter.RawValue
		err := workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, opts), name, in).Get(ctx, &res)
		return res, err
	}, workflow.RegisterOptions{Name: "step"})
	if heartbeats != nil {
		env.SetOnActivityHeartbeatListener(heartbeats)
	}
	env.ExecuteWorkflow("step", in)
	require.True(t, env.IsWorkflowCompleted())
	if err := env.GetWorkflowError(); err != nil {
		return err
	}
	var raw converter.RawValue
	require.NoError(t, env.GetWorkflowResult(&raw))
	return converter.GetDefaultDataConverter().FromPayload(raw.Payload(), out)
}

// attemptLog records when each attempt of a step began and ended, and why it ended.
type attemptLog struct {
	mu    sync.Mutex
	start map[int32]time.Time
	end   map[int32]time.Time
	cause map[int32]error
}

func newAttemptLog() *attemptLog {
	return &attemptLog{start: map[int32]time.Time{}, end: map[int32]time.Time{}, cause: map[int32]error{}}
}

func (l *attemptLog) begin(ctx context.Context) int32 {
	n := activity.GetInfo(ctx).Attempt
	l.mu.Lock()
	defer l.mu.Unlock()
	l.start[n] = time.Now()
	return n
}

func (l *attemptLog) finish(ctx context.Context, n int32) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.end[n], l.cause[n] = time.Now(), context.Cause(ctx)
}

// snapshotStore is the store as SnapshotDirectory uses it, in memory: one ruled group.
type snapshotStore struct {
	Store // nil: SnapshotDirectory uses only what is below
	mu    sync.Mutex
	users map[string]int // users written, by attempt key of the run
}

func (s *snapshotStore) BeginRun(context.Context, string, string, string, bool) (int64, error) {
	return 1, nil
}
func (s *snapshotStore) CheckAttempt(context.Context, string, int64) error { return nil }
func (s *snapshotStore) Rules(context.Context, string) ([]rules.Rule, error) {
	return []rules.Rule{{ID: 1, Priority: 1, GroupDN: "cn=staff,dc=example,dc=com", Role: "Member"}}, nil
}
func (s *snapshotStore) Mappings(context.Context, string) ([]plan.Mapping, error) { return nil, nil }

// What the stand-still reads and records: an organization with no domains, licenses or
// settings, and no earlier run to stand on.
func (s *snapshotStore) Domains(context.Context, string) ([]store.Domain, error)   { return nil, nil }
func (s *snapshotStore) Licenses(context.Context, string) ([]store.License, error) { return nil, nil }
func (s *snapshotStore) OrgVersion(context.Context, string) (int64, error)         { return 0, nil }
func (s *snapshotStore) TargetExtension(context.Context, string) (scim.Extension, error) {
	return scim.Extension{}, nil
}
func (s *snapshotStore) SetRunBasis(context.Context, string, int64, string, *time.Time, string) error {
	return nil
}
func (s *snapshotStore) PreviousRun(context.Context, string, string) (store.RunBasis, bool, error) {
	return store.RunBasis{}, false, nil
}
func (s *snapshotStore) PendingWork(context.Context, string) (int, int, error) { return 0, 0, nil }
func (s *snapshotStore) MembershipIndex(string) directory.MembershipIndex {
	return directory.NewMemoryIndex()
}
func (s *snapshotStore) AnalyzeSnapshot(context.Context) error { return nil }
func (s *snapshotStore) WriteSnapshot(_ context.Context, runID string, _ int64, us []directory.User) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.users[runID] += len(us)
	return nil
}

// scriptedDirectory reads batches users, one batch every pace; on attempt stallOn it hangs
// after the first batch (a search that never answers) until its context ends.
type scriptedDirectory struct {
	log     *attemptLog
	batches int
	pace    time.Duration
	stallOn int32
}

func (d *scriptedDirectory) dial(ctx context.Context) (Directory, error) { return d, nil }
func (d *scriptedDirectory) Close() error                                { return nil }
func (d *scriptedDirectory) SnapshotWith(ctx context.Context, _ directory.MembershipIndex, _, _ []string, _ int,
	emit func([]directory.User) error) (directory.Stats, error) {
	n := d.log.begin(ctx)
	defer d.log.finish(ctx, n)
	var stats directory.Stats
	for i := range d.batches {
		if i > 0 {
			select {
			case <-ctx.Done():
				return stats, ctx.Err()
			case <-time.After(d.pace):
			}
		}
		u := directory.User{ExternalID: fmt.Sprintf("u%d", i), DN: fmt.Sprintf("uid=u%d,dc=example,dc=com", i)}
		if err := emit([]directory.User{u}); err != nil {
			return stats, err
		}
		stats.Users++
		if n == d.stallOn {
			<-ctx.Done() // hung: only the attempt's end stops it
			return stats, ctx.Err()
		}
	}
	return stats, nil
}

// A directory read that stops progressing is timed out by the heartbeat timeout: its attempt
// is stopped within the timeout (not held until StartToClose) and retried, and the retry
// does not start beside it.
func TestStalledDirectoryReadIsStoppedWithinTheHeartbeatTimeoutAndRetried(t *testing.T) {
	log := newAttemptLog()
	dir := &scriptedDirectory{log: log, batches: 3, pace: 10 * time.Millisecond, stallOn: 1}
	st := &snapshotStore{users: map[string]int{}}
	acts := &Activities{Store: st, Orgs: Single("acme", Org{Dial: dir.dial})}
	began := time.Now()
	var res steps.SnapshotResult
	err := stepRun(t, acts, steps.SnapshotDirectory, stepOptions,
		steps.SnapshotInput{RunRef: steps.RunRef{Org: "acme", RunID: "run-1"}}, &res, nil)
	require.NoError(t, err)
	require.Equal(t, 3, res.Users, "the retried attempt read the directory")
	require.Less(t, time.Since(began), 8*time.Second, "the stalled attempt was not held until its StartToClose")

	log.mu.Lock()
	defer log.mu.Unlock()
	require.Len(t, log.start, 2, "one stalled attempt, one retry")
	stalledFor := log.end[1].Sub(log.start[1])
	require.Less(t, stalledFor, 2*stepOptions.HeartbeatTimeout, "stopped within the heartbeat timeout")
	require.ErrorIs(t, log.cause[1], errStalled, "stopped for want of progress")
	require.False(t, log.start[2].Before(log.end[1]), "the retry never runs beside the stalled attempt")
}

// A directory read that progresses is never timed out, however much longer than the
// heartbeat timeout it takes, and its heartbeats carry its progress.
func TestProgressingDirectoryReadHeartbeatsItsProgress(t *testing.T) {
	log := newAttemptLog()
	dir := &scriptedDirectory{log: log, batches: 48, pace: 250 * time.Millisecond}
	st := &snapshotStore{users: map[string]int{}}
	acts := &Activities{Store: st, Orgs: Single("acme", Org{Dial: dir.dial})}
	var mu sync.Mutex
	var seen []snapshotProgress
	var res steps.SnapshotResult
	err := stepRun(t, acts, steps.SnapshotDirectory, stepOptions,
		steps.SnapshotInput{RunRef: steps.RunRef{Org: "acme", RunID: "run-1"}}, &res,
		func(_ *activity.Info, d converter.EncodedValues) {
			var p snapshotProgress
			if d.HasValues() && d.Get(&p) == nil {
				mu.Lock()
				seen = append(seen, p)
				mu.Unlock()
			}
		})
	require.NoError(t, err)
	require.Equal(t, 48, res.Users)
	require.Len(t, log.start, 1, "12 s of progress in one attempt, with a 4 s heartbeat timeout")

	mu.Lock()
	defer mu.Unlock()
	require.GreaterOrEqual(t, len(seen), 3, "a heartbeat per heartbeat timeout at least: %v", seen)
	for i := 1; i < len(seen); i++ {
		require.GreaterOrEqual(t, seen[i].Read, seen[i-1].Read, "progress only grows: %v", seen)
	}
	require.Greater(t, seen[len(seen)-1].Read, int64(5), "the details are the users read: %v", seen)
}

// attemptStore is the real store, with a hook at the start of each PlanRun attempt (the
// first thing it reads is the rules).
type attemptStore struct {
	*store.Store
	onAttempt func(ctx context.Context)
}

func (s attemptStore) Rules(ctx context.Context, org string) ([]rules.Rule, error) {
	s.onAttempt(ctx)
	return s.Store.Rules(ctx, org)
}

// A plan whose SQL statement hangs (a table locked by another session) is stopped within the
// heartbeat timeout and retried; the retry plans the whole run again, exactly.
func TestHungPlanStatementIsStoppedWithinTheHeartbeatTimeoutAndRetried(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(ctx, devstacktest.Database(t))
	require.NoError(t, err)
	t.Cleanup(st.Close)
	in, names := plantest.RandomOrg(rand.New(rand.NewSource(7)))
	const org, runID = "acme", "acme/run/1"
	loadOrg(t, ctx, st, org, runID, in, names)

	// Another session holds the snapshot locked until the second attempt starts.
	lock, err := st.Pool().Begin(ctx)
	require.NoError(t, err)
	defer func() { _ = lock.Rollback(ctx) }()
	_, err = lock.Exec(ctx, `LOCK TABLE snapshot_users IN ACCESS EXCLUSIVE MODE`)
	require.NoError(t, err)
	var mu sync.Mutex
	starts := map[int32]time.Time{}
	acts := &Activities{Store: attemptStore{Store: st, onAttempt: func(ctx context.Context) {
		n := activity.GetInfo(ctx).Attempt
		mu.Lock()
		starts[n] = time.Now()
		mu.Unlock()
		if n == 2 {
			require.NoError(t, lock.Rollback(context.Background()))
		}
	}}, Orgs: Single(org, Org{SuspendThresholdPercent: in.SuspendThresholdPercent, SuspendThresholdMax: in.SuspendThresholdMax})}

	began := time.Now()
	var got steps.PlanResult
	err = stepRun(t, acts, steps.PlanRun, stepOptions, steps.PlanInput{RunRef: steps.RunRef{Org: org, RunID: runID},
		Retry: in.Retry, ApproveSuspensions: in.ApproveSuspensions}, &got, nil)
	require.NoError(t, err)
	require.Less(t, time.Since(began), 8*time.Second, "the hung attempt was not held until its StartToClose")
	mu.Lock()
	require.Len(t, starts, 2)
	require.Less(t, starts[2].Sub(starts[1]), 2*stepOptions.HeartbeatTimeout, "stopped within the heartbeat timeout")
	mu.Unlock()

	want := plan.Plan(in)
	require.Equal(t, summarize(want), got)
	items, err := st.WorkItems(ctx, runID, 1000)
	require.NoError(t, err)
	require.Equal(t, normalized(t, want.Items), items, "the retry planned the run again, once")
}

// The stall is the error of a step stopped for want of progress, whatever its cancelled
// operation returned.
func TestStallErrorNamesTheHeartbeatTimeout(t *testing.T) {
	var p progress
	ctx, cancel := context.WithCancelCause(context.Background())
	cancel(fmt.Errorf("%w (1s): attempt 1 abandoned", errStalled))
	p.ctx, p.cancel, p.done = ctx, func(error) {}, make(chan struct{})
	p.writes, p.writeCancel = context.WithCancelCause(context.Background())
	err := errors.New("read: context canceled")
	p.end(&err)
	require.ErrorIs(t, err, errStalled)
	require.Contains(t, err.Error(), "read: context canceled")
}
