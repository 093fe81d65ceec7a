package activities

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/usersync/usersync/internal/devstack/devstacktest"
	"github.com/usersync/usersync/internal/plan"
	"github.com/usersync/usersync/internal/scim"
	"github.com/usersync/usersync/internal/steps"
	"github.com/usersync/usersync/internal/store"
)

// groupTarget is a SCIM target for the group step: it creates groups on demand and logs each
// PATCH it took (by group name); fail may refuse one before it is taken.
type groupTarget struct {
	Target // nil: the group step uses only the calls below
	mu     sync.Mutex
	taken  []string
	fail   func(group string) error
	patch  func(ctx context.Context, group string) // runs while the PATCH is in flight
}

func (g *groupTarget) FindGroup(context.Context, string) (*scim.Group, error) { return nil, nil }
func (g *groupTarget) CreateGroup(_ context.Context, name string) (*scim.Group, error) {
	return &scim.Group{ID: "id-" + name, DisplayName: name}, nil
}
func (g *groupTarget) PatchGroupMembers(ctx context.Context, id string, _, _ []string) error {
	name := id[len("id-"):]
	if g.patch != nil {
		g.patch(ctx, name)
	}
	if err := ctx.Err(); err != nil {
		return err // the request was aborted: its outcome is unknown
	}
	if g.fail != nil {
		if err := g.fail(name); err != nil {
			return err
		}
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.taken = append(g.taken, name)
	return nil
}

func (g *groupTarget) log() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]string(nil), g.taken...)
}

// failingSave is the real store whose recording of one group's members fails once.
type failingSave struct {
	*store.Store
	mu     sync.Mutex
	group  string
	failed bool
}

func (s *failingSave) SaveGroupMembers(ctx context.Context, org, name string, add, remove []string) error {
	s.mu.Lock()
	fail := name == s.group && !s.failed
	s.failed = s.failed || fail
	s.mu.Unlock()
	if fail {
		return errors.New("connection reset by peer")
	}
	return s.Store.SaveGroupMembers(ctx, org, name, add, remove)
}

// groupsOrg stores two active users whose groups make four chunks, one per group, written in
// name order: Alpha, Bravo, Charlie, Delta.
func groupsOrg(t *testing.T) (*store.Store, context.Context) {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, devstacktest.Database(t))
	require.NoError(t, err)
	t.Cleanup(st.Close)
	for _, u := range []plan.Desired{
		{ExternalID: "u1", UserName: "ann@acme.test", Active: true, UserGroup: "Alpha", DeviceGroups: []string{"Bravo", "Charlie", "Delta"}},
		{ExternalID: "u2", UserName: "bob@acme.test", Active: true, UserGroup: "Charlie", DeviceGroups: []string{"Delta"}},
	} {
		require.NoError(t, st.SaveProvisioned(ctx, "acme", "s-"+u.ExternalID, u, "", ""))
	}
	return st, ctx
}

var allGroups = steps.GroupsResult{Groups: 4, Added: 6}

// pendingGroups are the memberships still to write.
func pendingGroups(t *testing.T, ctx context.Context, st *store.Store) []store.GroupDelta {
	var out []store.GroupDelta
	require.NoError(t, st.GroupDeltas(ctx, "acme", "check", 0, func(d store.GroupDelta) error {
		out = append(out, d)
		return nil
	}))
	return out
}

// The group step retried after the target refused chunk k resumes there: the chunks before k
// are not sent again, and its result counts the whole step, not the last attempt's part.
func TestGroupStepRetriedAfterAFailedChunkResumesThere(t *testing.T) {
	st, ctx := groupsOrg(t)
	refused := false
	target := &groupTarget{fail: func(group string) error {
		if group == "Charlie" && !refused {
			refused = true
			return errors.New("503 Service Unavailable")
		}
		return nil
	}}
	var res steps.GroupsResult
	err := stepRun(t, &Activities{Store: st, Orgs: Single("acme", Org{Target: target})}, steps.SyncGroups, stepOptions,
		steps.RunRef{Org: "acme", RunID: "run-1"}, &res, nil)
	require.NoError(t, err)
	require.Equal(t, []string{"Alpha", "Bravo", "Charlie", "Delta"}, target.log(), "each chunk taken once")
	require.Equal(t, allGroups, res, "the counts of every attempt")
	require.Empty(t, pendingGroups(t, ctx, st))
}

// A chunk the target took but the failed attempt could not record (the database dropped the
// connection) is recorded by the retry from the heartbeat details, not sent again; nor are
// the chunks before it.
func TestGroupStepRetriedAfterAnUnrecordedChunkDoesNotSendItAgain(t *testing.T) {
	st, ctx := groupsOrg(t)
	target := &groupTarget{}
	var res steps.GroupsResult
	err := stepRun(t, &Activities{Store: &failingSave{Store: st, group: "Charlie"}, Orgs: Single("acme", Org{Target: target})}, steps.SyncGroups,
		stepOptions, steps.RunRef{Org: "acme", RunID: "run-1"}, &res, nil)
	require.NoError(t, err)
	require.Equal(t, []string{"Alpha", "Bravo", "Charlie", "Delta"}, target.log(), "each chunk taken once")
	require.Equal(t, allGroups, res)
	require.Empty(t, pendingGroups(t, ctx, st), "Charlie's members recorded by the retry")
}

// Cancelled while a PATCH is in flight (disable during the group step), the step lets that
// PATCH finish and records it, then stops: it sends nothing more, and what the target took
// is known.
func TestCancelledGroupStepFinishesItsPatchInFlightAndStops(t *testing.T) {
	st, ctx := groupsOrg(t)
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	target := &groupTarget{patch: func(ctx context.Context, group string) {
		if group == "Bravo" {
			cancel() // disable arrives while Bravo's PATCH is in flight
			time.Sleep(50 * time.Millisecond)
		}
	}}
	_, err := (&Activities{Store: st, Orgs: Single("acme", Org{Target: target})}).SyncGroups(sctx, steps.RunRef{Org: "acme", RunID: "run-1"})
	require.ErrorIs(t, err, context.Canceled)
	require.Equal(t, []string{"Alpha", "Bravo"}, target.log(), "the PATCH in flight finished; none started after")
	var left []string
	for _, d := range pendingGroups(t, ctx, st) {
		left = append(left, d.Name)
	}
	require.Equal(t, []string{"Charlie", "Delta"}, left, "Bravo's PATCH is recorded")
}

// A PATCH that hangs (the target never answers) is a stall: the attempt is stopped within
// the heartbeat timeout, the request with it, and the retry sends that chunk again.
func TestHungGroupPatchIsStoppedWithinTheHeartbeatTimeoutAndRetried(t *testing.T) {
	st, ctx := groupsOrg(t)
	var hung sync.Once
	var cause error
	var stalledFor time.Duration
	target := &groupTarget{patch: func(ctx context.Context, group string) {
		if group == "Bravo" {
			hung.Do(func() {
				began := time.Now()
				<-ctx.Done()
				stalledFor, cause = time.Since(began), context.Cause(ctx)
			})
		}
	}}
	began := time.Now()
	var res steps.GroupsResult
	err := stepRun(t, &Activities{Store: st, Orgs: Single("acme", Org{Target: target})}, steps.SyncGroups, stepOptions,
		steps.RunRef{Org: "acme", RunID: "run-1"}, &res, nil)
	require.NoError(t, err)
	require.Less(t, time.Since(began), 8*time.Second, "the hung attempt was not held until its StartToClose")
	require.ErrorIs(t, cause, errStalled)
	require.Less(t, stalledFor, 2*stepOptions.HeartbeatTimeout)
	require.Equal(t, []string{"Alpha", "Bravo", "Charlie", "Delta"}, target.log())
	require.Equal(t, allGroups, res)
	require.Empty(t, pendingGroups(t, ctx, st))
}
