package workflows_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/temporalproto"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"

	"github.com/usersync/usersync/internal/devstack/devstacktest"
	"github.com/usersync/usersync/internal/engine"
	"github.com/usersync/usersync/internal/steps"
	"github.com/usersync/usersync/internal/vocab"
	"github.com/usersync/usersync/workflows"
)

// slowGroups are steps that plan no user and whose group step takes patch (a PATCH in flight
// that cannot be interrupted) on the first run. They log what happens, in order.
type slowGroups struct {
	patch    time.Duration
	inFlight chan struct{} // closed when the first run's PATCH is in flight
	mu       sync.Mutex
	log      []string
	once     sync.Once
}

func (s *slowGroups) note(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.log = append(s.log, fmt.Sprintf(format, args...))
}

func (s *slowGroups) events() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.log...)
}

func (s *slowGroups) RunSettings(context.Context, steps.RunRef) (steps.FanOut, error) {
	return steps.FanOut{}, nil
}
func (s *slowGroups) DiscoverTarget(_ context.Context, in steps.SnapshotInput) (steps.TargetCheck, error) {
	return steps.TargetCheck{Patch: true}, nil
}
func (s *slowGroups) SnapshotDirectory(_ context.Context, in steps.SnapshotInput) (steps.SnapshotResult, error) {
	s.note("start %s", in.RunID) // every run's first step
	return steps.SnapshotResult{}, nil
}
func (s *slowGroups) PlanRun(context.Context, steps.PlanInput) (steps.PlanResult, error) {
	return steps.PlanResult{}, nil
}
func (s *slowGroups) EvaluatePage(context.Context, steps.PageRef) (steps.PageEvaluation, error) {
	return steps.PageEvaluation{}, errors.New("no page expected")
}
func (s *slowGroups) CheckLicenses(context.Context, steps.SeatsInput) (steps.StepResult, error) {
	return steps.StepResult{}, errors.New("no user expected")
}
func (s *slowGroups) ProvisionUser(context.Context, steps.UserStep) (steps.UserOutcome, error) {
	return steps.UserOutcome{}, errors.New("no user expected")
}
func (s *slowGroups) ProbeTarget(context.Context, steps.UserStep) (bool, error) { return false, nil }
func (s *slowGroups) RecordUserFailure(context.Context, steps.UserFailureInput) (steps.UserOutcome, error) {
	return steps.UserOutcome{}, errors.New("no user expected")
}
func (s *slowGroups) ReleaseUnsentSeats(context.Context, steps.UserStep) error {
	return errors.New("no user expected")
}

// SyncGroups writes one chunk: a PATCH that, once sent, runs to its end (as the real step's
// does), then the heartbeat through which a cancellation reaches the step.
func (s *slowGroups) SyncGroups(ctx context.Context, in steps.RunRef) (steps.GroupsResult, error) {
	first := false
	s.once.Do(func() { first = true })
	if first {
		s.note("patch sent %s", in.RunID)
		close(s.inFlight)
		time.Sleep(s.patch)
		s.note("patch done %s", in.RunID)
	}
	activity.RecordHeartbeat(ctx, 1)
	select { // the cancellation, if any, arrives with the heartbeat's answer
	case <-ctx.Done():
		return steps.GroupsResult{}, ctx.Err()
	case <-time.After(200 * time.Millisecond):
	}
	return steps.GroupsResult{Groups: 1, Added: 1}, nil
}

func (s *slowGroups) FinishRun(_ context.Context, in steps.FinishInput) (steps.RunSummary, error) {
	s.note("finish %s %s", in.RunID, in.Status)
	return steps.RunSummary{FinishInput: in}, nil
}
func (s *slowGroups) RecordEvent(context.Context, vocab.Event) error { return nil }

func (s *slowGroups) CheckAction(context.Context, steps.ActionCheck) (steps.ActionVerdict, error) {
	return steps.ActionVerdict{}, nil
}

func (s *slowGroups) WatchDirectory(ctx context.Context, in steps.WatchInput) (steps.WatchResult, error) {
	<-ctx.Done()
	return steps.WatchResult{}, ctx.Err()
}

// Disabling user sync while the group step has a PATCH in flight ends the run only once that
// PATCH has finished, so that the next run (sync enabled again at once) never writes beside
// it. On a real Temporal server: the test environment cannot tell WaitForCancellation.
func TestDisableDuringGroupWritesWaitsForThePatchInFlight(t *testing.T) {
	hostPort := devstacktest.Temporal(t)
	logger := tlog.NewStructuredLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))
	c, err := client.Dial(client.Options{HostPort: hostPort, Logger: logger})
	require.NoError(t, err)
	t.Cleanup(c.Close)
	s := &slowGroups{patch: 2 * time.Second, inFlight: make(chan struct{})}
	stop, err := engine.Start(c, s, engine.Options{})
	require.NoError(t, err)
	t.Cleanup(stop)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const org = "acme"
	id := workflows.OrgWorkflowID(org)
	signal := func(name string) {
		_, err := c.SignalWithStartWorkflow(ctx, id, name, workflows.SwitchSignal{Actor: "test"},
			client.StartWorkflowOptions{ID: id, TaskQueue: workflows.TaskQueue},
			workflows.UserSyncWorkflow, workflows.SyncState{Org: org, Interval: time.Hour})
		require.NoError(t, err)
	}
	signal(workflows.SignalEnable)
	select {
	case <-s.inFlight:
	case <-ctx.Done():
		t.Fatalf("the group step never started: %v", s.events())
	}
	signal(workflows.SignalDisable)
	signal(workflows.SignalEnable)

	// Wait for the second run to finish.
	for {
		v, err := c.QueryWorkflow(ctx, id, "", workflows.QueryStatus)
		require.NoError(t, err)
		var st workflows.Status
		require.NoError(t, v.Get(&st))
		if st.Runs >= 2 && st.CurrentRun == nil && st.Queued == nil {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the second run never finished: %v", s.events())
		case <-time.After(100 * time.Millisecond):
		}
	}
	// A run requested while sync is off (`starter run`) runs too, then the org workflow idles.
	signal(workflows.SignalDisable)
	_, err = c.SignalWithStartWorkflow(ctx, id, workflows.SignalRun, workflows.RunSignal{Actor: "test", Request: "r1"},
		client.StartWorkflowOptions{ID: id, TaskQueue: workflows.TaskQueue},
		workflows.UserSyncWorkflow, workflows.SyncState{Org: org, Interval: time.Hour})
	require.NoError(t, err)
	var requested string
	for requested == "" {
		v, err := c.QueryWorkflow(ctx, id, "", workflows.QueryStatus)
		require.NoError(t, err)
		var st workflows.Status
		require.NoError(t, v.Get(&st))
		for _, tk := range st.Tickets {
			if tk.Request == "r1" && st.LastRun != nil && st.LastRun.RunID == tk.RunID && st.CurrentRun == nil {
				requested = tk.RunID
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the requested run never finished: %v", s.events())
		case <-time.After(100 * time.Millisecond):
		}
	}
	if os.Getenv(recordHistoriesEnv) == "1" {
		// Replayed by TestReplayRecordedHistories: the run cancelled in its group step, and the
		// org workflow with a run request while off.
		first := regexp.MustCompile(`^start (\S+)$`).FindStringSubmatch(s.events()[0])[1]
		writeHistory(t, c, first, "sync-run-cancelled-in-groups")
		writeHistory(t, c, id, "usersync-org-run-request")
	}

	// The first run: its PATCH finishes before the run ends (cancelled), and only then does
	// the next run start.
	ev := s.events()
	want := []string{`^start (\S+)$`, `^patch sent \S+$`, `^patch done \S+$`, `^finish \S+ ` + vocab.RunCancelled + `$`,
		`^start \S+$`, `^finish \S+ ` + vocab.RunSucceeded + `$`,
		`^start ` + regexp.QuoteMeta(requested) + `$`, `^finish ` + regexp.QuoteMeta(requested) + ` ` + vocab.RunSucceeded + `$`}
	require.Len(t, ev, len(want), "%q", ev)
	for i, w := range want {
		require.Regexp(t, w, ev[i], "%q", ev)
	}
}

// recordHistoriesEnv is internal/e2e's RecordHistoriesEnv: set to 1, the tests that can
// (re)write histories for TestReplayRecordedHistories do.
const recordHistoriesEnv = "USERSYNC_RECORD_HISTORIES"

// writeHistory writes the current run's history of a workflow to testdata/histories/<name>.json
// in the format of `temporal workflow show --output json`, once no workflow task is in flight.
func writeHistory(t *testing.T, c client.Client, workflowID, name string) {
	t.Helper()
	var hist *historypb.History
	require.Eventually(t, func() bool {
		hist = &historypb.History{}
		it := c.GetWorkflowHistory(context.Background(), workflowID, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
		for it.HasNext() {
			e, err := it.Next()
			require.NoError(t, err, workflowID)
			hist.Events = append(hist.Events, e)
		}
		for i := len(hist.Events) - 1; i >= 0; i-- {
			switch hist.Events[i].GetEventType() {
			case enumspb.EVENT_TYPE_WORKFLOW_TASK_COMPLETED, enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED,
				enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED:
				return true
			case enumspb.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED, enumspb.EVENT_TYPE_WORKFLOW_TASK_STARTED:
				return false
			}
		}
		return false
	}, time.Minute, 200*time.Millisecond, "history of %s settles", workflowID)
	b, err := temporalproto.CustomJSONMarshalOptions{Indent: "  "}.Marshal(hist)
	require.NoError(t, err)
	path := filepath.Join("testdata", "histories", name+".json")
	require.NoError(t, os.WriteFile(path, append(b, '\n'), 0o644))
	t.Logf("%s: %d events (%s)", path, len(hist.Events), workflowID)
}
