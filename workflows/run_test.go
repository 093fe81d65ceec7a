package workflows

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/usersync/usersync/activities"
	"github.com/usersync/usersync/internal/steps"
	"github.com/usersync/usersync/internal/vocab"
)

// runEnv runs SyncRunWorkflow with its real page workflows and stubbed activities.
type runEnv struct {
	*testsuite.TestWorkflowEnvironment
	mu        sync.Mutex
	finished  steps.FinishInput
	provision map[int]int      // seq -> attempts
	seats     map[int][]string // seq -> products reserved
	// failProvision, when set, makes ProvisionUser fail for that user.
	failProvision func(seq int) error
}

func newRunEnv(t *testing.T, items int) *runEnv {
	var s testsuite.WorkflowTestSuite
	quiet(&s)
	e := &runEnv{TestWorkflowEnvironment: s.NewTestWorkflowEnvironment(), provision: map[int]int{}, seats: map[int][]string{}}
	e.RegisterWorkflow(SyncRunWorkflow)
	e.RegisterWorkflow(ProcessPageWorkflow)
	e.RegisterActivity(&activities.Activities{})
	e.OnActivity("DiscoverTarget", mock.Anything, mock.Anything).Return(steps.TargetCheck{Patch: true}, nil).Maybe()
	e.OnActivity("SnapshotDirectory", mock.Anything, mock.Anything).Return(steps.SnapshotResult{Users: items, InScope: items}, nil).Maybe()
	e.OnActivity("PlanRun", mock.Anything, mock.Anything).Return(steps.PlanResult{Items: items, Creates: items, InScope: items}, nil).Maybe()
	e.OnActivity("SyncGroups", mock.Anything, mock.Anything).Return(steps.GroupsResult{}, nil).Maybe()
	e.OnActivity("FinishRun", mock.Anything, mock.Anything).Return(func(_ context.Context, in steps.FinishInput) (steps.RunSummary, error) {
		e.finished = in
		return steps.RunSummary{FinishInput: in}, nil
	}).Maybe()
	e.OnActivity("EvaluatePage", mock.Anything, mock.Anything).Return(func(_ context.Context, in steps.PageRef) (steps.PageEvaluation, error) {
		ev := steps.PageEvaluation{Failures: map[string]int{}}
		for seq := in.From; seq < in.To; seq++ {
			if seq%10 == 9 { // every tenth user is in a domain that is not validated
				ev.Failures[vocab.DomainNotValidated]++
				continue
			}
			u := steps.UserPlan{Seq: seq, ExternalID: fmt.Sprint("ext-", seq)}
			if seq%2 == 0 {
				u.Seats = []string{"Meeting"}
			}
			ev.Users = append(ev.Users, u)
		}
		return ev, nil
	}).Maybe()
	e.OnActivity("CheckLicenses", mock.Anything, mock.Anything).Return(func(_ context.Context, in steps.SeatsInput) (steps.StepResult, error) {
		e.mu.Lock()
		e.seats[in.Seq] = in.Products
		e.mu.Unlock()
		return steps.StepResult{Continue: true, Outcome: steps.UserOutcome{Seq: in.Seq}}, nil
	}).Maybe()
	e.OnActivity("ProvisionUser", mock.Anything, mock.Anything).Return(func(_ context.Context, in steps.UserStep) (steps.UserOutcome, error) {
		e.mu.Lock()
		e.provision[in.Seq]++
		e.mu.Unlock()
		if e.failProvision != nil {
			if err := e.failProvision(in.Seq); err != nil {
				return steps.UserOutcome{}, err
			}
		}
		return steps.UserOutcome{Seq: in.Seq, Status: vocab.Created}, nil
	}).Maybe()
	return e
}

func TestRunFansOutEveryPlannedUserThroughPages(t *testing.T) {
	e := newRunEnv(t, 1000)
	e.ExecuteWorkflow(SyncRunWorkflow, RunInput{Org: "acme", RunID: "r1", Kind: vocab.KindManual, PageSize: 120, PageWindow: 3})
	require.NoError(t, e.GetWorkflowError())

	require.Len(t, e.provision, 900, "every user but the failed tenth is provisioned")
	for seq, n := range e.provision {
		require.Equal(t, 1, n, "user %d provisioned once", seq)
		require.NotEqual(t, 9, seq%10)
	}
	require.Equal(t, vocab.RunSucceeded, e.finished.Status)
	require.Equal(t, 900, e.finished.Outcomes[vocab.Created])
	require.Equal(t, 100, e.finished.Failures[vocab.DomainNotValidated])
	require.Equal(t, 500, len(e.seats), "licenses are checked only for the users taking new seats")
	for seq := range e.seats {
		require.Zero(t, seq%2)
	}
}

func TestDryRunPlansButProvisionsNothing(t *testing.T) {
	e := newRunEnv(t, 50)
	e.ExecuteWorkflow(SyncRunWorkflow, RunInput{Org: "acme", RunID: "r1", Kind: vocab.KindManual, DryRun: true})
	require.NoError(t, e.GetWorkflowError())
	require.Empty(t, e.provision)
	require.True(t, e.finished.DryRun)
	require.Equal(t, 50, e.finished.Plan.Creates)
}

func TestFailedDirectoryReadFailsTheRunWithoutPlanning(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	quiet(&s)
	env := s.NewTestWorkflowEnvironment()
	env.RegisterWorkflow(SyncRunWorkflow)
	env.RegisterActivity(&activities.Activities{})
	env.OnActivity("DiscoverTarget", mock.Anything, mock.Anything).Return(steps.TargetCheck{Patch: true}, nil).Maybe()
	env.OnActivity("SnapshotDirectory", mock.Anything, mock.Anything).Return(steps.SnapshotResult{},
		temporal.NewNonRetryableApplicationError("directory read: connection refused", "ldap", nil))
	var fin steps.FinishInput
	env.OnActivity("FinishRun", mock.Anything, mock.Anything).Return(func(_ context.Context, in steps.FinishInput) (steps.RunSummary, error) {
		fin = in
		return steps.RunSummary{FinishInput: in}, nil
	})
	env.ExecuteWorkflow(SyncRunWorkflow, RunInput{Org: "acme", RunID: "r1", Kind: vocab.KindScheduled})

	require.Error(t, env.GetWorkflowError())
	require.Equal(t, vocab.RunFailed, fin.Status)
	require.Contains(t, fin.Error, "connection refused")
	env.AssertNotCalled(t, "PlanRun", mock.Anything, mock.Anything)
}

func TestTargetDownRecordsTargetUnavailableAfterRetries(t *testing.T) {
	e := newRunEnv(t, 3)
	e.failProvision = func(seq int) error {
		if seq == 1 {
			return errors.New("scim: 503 Service Unavailable")
		}
		return nil
	}
	var recorded steps.UserFailureInput
	e.OnActivity("RecordUserFailure", mock.Anything, mock.Anything).Return(func(_ context.Context, in steps.UserFailureInput) (steps.UserOutcome, error) {
		recorded = in
		return steps.UserOutcome{Seq: in.Seq, Status: vocab.Failed, FailureType: in.Failure.Type}, nil
	})
	e.OnActivity("ProbeTarget", mock.Anything, mock.Anything).Return(false, nil).Once()
	e.ExecuteWorkflow(SyncRunWorkflow, RunInput{Org: "acme", RunID: "r1", Kind: vocab.KindManual})
	require.NoError(t, e.GetWorkflowError())

	require.Equal(t, int(provisionOptions.RetryPolicy.MaximumAttempts)+1, e.provision[1], "the local first write, the activity's retries, then given up")
	require.Contains(t, recorded.Failure.Message, fmt.Sprintf("after %d attempts", provisionOptions.RetryPolicy.MaximumAttempts+1))
	require.Equal(t, 1, recorded.Seq)
	require.Equal(t, vocab.TargetUnavailable, recorded.Failure.Type)
	require.Contains(t, recorded.Failure.Message, "503")
	require.Equal(t, 1, e.finished.Failures[vocab.TargetUnavailable])
	require.Equal(t, 2, e.finished.Outcomes[vocab.Created])
}

// A target down for every request in the middle of a run stops the run with one run-level
// target_unavailable failure: the users it could not reach are not failed one by one, and no
// further user is started.
func TestTargetDownForEveryRequestStopsTheRun(t *testing.T) {
	e := newRunEnv(t, 200)
	e.failProvision = func(seq int) error { return errors.New("scim: 503 Service Unavailable") }
	e.OnActivity("ProbeTarget", mock.Anything, mock.Anything).Return(true, nil)
	e.ExecuteWorkflow(SyncRunWorkflow, RunInput{Org: "acme", RunID: "r1", Kind: vocab.KindManual, PageSize: 50, PageWindow: 1, UsersInFlight: 5})

	require.Error(t, e.GetWorkflowError())
	require.Equal(t, vocab.RunFailed, e.finished.Status)
	require.Equal(t, vocab.TargetUnavailable, e.finished.FailureType, e.finished.Error)
	require.Contains(t, e.finished.Error, "503")
	e.AssertNotCalled(t, "RecordUserFailure", mock.Anything, mock.Anything)
	require.LessOrEqual(t, len(e.provision), 5, "no user is started once the target is found down")
}

// A run whose history grows long (a very large directory) starts no new page past the limit,
// lets its pages in flight finish, and continues as new; the continued run neither re-reads
// nor re-plans, provisions the remaining users once each and reports the totals.
func TestLongRunContinuesAsNewBetweenPages(t *testing.T) {
	e, next := runPastHistoryLimit(t, RunInput{Org: "acme", RunID: "r1", Kind: vocab.KindManual, PageSize: 10, PageWindow: 2})
	require.Equal(t, 2, next.Resume.NextPage, "one window of pages per execution, then continue as new")
	require.Equal(t, 18, next.Resume.Finish.Outcomes[vocab.Created])
	require.Len(t, e.provision, 18)
	require.Empty(t, e.finished.RunID, "the run is not finished yet")

	cont := newRunEnv(t, 100)
	cont.ExecuteWorkflow(SyncRunWorkflow, next)
	require.NoError(t, cont.GetWorkflowError())
	cont.AssertNotCalled(t, "SnapshotDirectory", mock.Anything, mock.Anything)
	cont.AssertNotCalled(t, "PlanRun", mock.Anything, mock.Anything)
	require.Len(t, cont.provision, 72)
	for seq := range cont.provision {
		require.GreaterOrEqual(t, seq, 20, "users of the first execution are not provisioned again")
	}
	require.Equal(t, vocab.RunSucceeded, cont.finished.Status)
	require.Equal(t, 90, cont.finished.Outcomes[vocab.Created], "totals span both executions")
	require.Equal(t, 10, cont.finished.Failures[vocab.DomainNotValidated])
}

// A run whose first execution had no failure at all continues as new and still counts the
// failures of later pages (the counts cross continue-as-new through JSON).
func TestContinuedRunCountsFailuresAfterACleanStart(t *testing.T) {
	_, next := runPastHistoryLimit(t, RunInput{Org: "acme", RunID: "r1", Kind: vocab.KindManual, PageSize: 9, PageWindow: 1})
	require.Equal(t, 1, next.Resume.NextPage)
	require.Empty(t, next.Resume.Finish.Failures, "users 0-8: no failure yet")

	cont := newRunEnv(t, 100)
	cont.ExecuteWorkflow(SyncRunWorkflow, next)
	require.NoError(t, cont.GetWorkflowError())
	require.Equal(t, 10, cont.finished.Failures[vocab.DomainNotValidated])
	require.Equal(t, 90, cont.finished.Outcomes[vocab.Created])
}

// runPastHistoryLimit runs a 100-user run whose history is past the limit from the start; it
// must continue as new, and returns the environment and the continued run's input.
func runPastHistoryLimit(t *testing.T, in RunInput) (*runEnv, RunInput) {
	t.Helper()
	e := newRunEnv(t, 100)
	e.SetCurrentHistoryLength(maxRunEvents + 1)
	e.ExecuteWorkflow(SyncRunWorkflow, in)
	var can *workflow.ContinueAsNewError
	require.ErrorAs(t, e.GetWorkflowError(), &can)
	var next RunInput
	require.NoError(t, converter.GetDefaultDataConverter().FromPayloads(can.Input, &next))
	require.NotNil(t, next.Resume)
	return e, next
}

// countWrites counts each user's ProvisionUser attempts, local ones in local and the
// activity's in remote, under mu.
func countWrites(t *testing.T, e *runEnv, mu *sync.Mutex, local, remote map[int]int) {
	e.SetOnLocalActivityStartedListener(func(info *activity.Info, _ context.Context, args []any) {
		if info.ActivityType.Name == steps.ProvisionUser {
			mu.Lock()
			local[args[0].(steps.UserStep).Seq]++
			mu.Unlock()
		}
	})
	e.SetOnActivityStartedListener(func(info *activity.Info, _ context.Context, args converter.EncodedValues) {
		if info.ActivityType.Name == steps.ProvisionUser {
			var in steps.UserStep
			require.NoError(t, args.Get(&in))
			mu.Lock()
			remote[in.Seq]++
			mu.Unlock()
		}
	})
}

// An unpaced target's SCIM steps run on the workflows' own queue: each user's first write is
// a local activity (no task through the server), and a failed first write is retried by the
// activity, which reconciles what the attempt may have written. Each user ends provisioned
// once, and the activity runs only for the user whose local attempt failed.
func TestUnpacedTargetWritesFirstAsLocalActivity(t *testing.T) {
	e := newRunEnv(t, 30)
	e.SetStartWorkflowOptions(client.StartWorkflowOptions{TaskQueue: TaskQueue})
	e.OnActivity("RunSettings", mock.Anything, mock.Anything).Return(steps.FanOut{ProvisionQueue: TaskQueue}, nil)
	var mu sync.Mutex
	local, remote := map[int]int{}, map[int]int{}
	e.failProvision = func(seq int) error {
		mu.Lock()
		defer mu.Unlock()
		if seq == 7 && local[7] == 1 && remote[7] == 0 {
			return errors.New("scim: connection reset by peer")
		}
		return nil
	}
	countWrites(t, e, &mu, local, remote)
	e.ExecuteWorkflow(SyncRunWorkflow, RunInput{Org: "acme", RunID: "r1", Kind: vocab.KindManual, PageSize: 10})
	require.NoError(t, e.GetWorkflowError())

	require.Equal(t, vocab.RunSucceeded, e.finished.Status)
	require.Equal(t, 27, e.finished.Outcomes[vocab.Created], "every user but the failed tenth is created")
	require.Len(t, local, 27, "every user's first write is local")
	for seq, n := range local {
		require.Equal(t, 1, n, "user %d: one local attempt", seq)
	}
	require.Equal(t, map[int]int{7: 1}, remote, "the activity runs only after a failed local attempt")
	require.Equal(t, 2, e.provision[7])
}

// Sync disabled while a user's local first write is in flight: the page waits for the write
// to end before it stops, as it waits for the activity, so that the seats reserved for the user
// are never given back while the write may still be sent.
func TestCancelledPageWaitsForTheLocalWrite(t *testing.T) {
	e := newRunEnv(t, 10)
	e.SetStartWorkflowOptions(client.StartWorkflowOptions{TaskQueue: TaskQueue})
	e.OnActivity("RunSettings", mock.Anything, mock.Anything).Return(steps.FanOut{ProvisionQueue: TaskQueue}, nil)
	var mu sync.Mutex
	var events []string
	note := func(s string) { mu.Lock(); events = append(events, s); mu.Unlock() }
	e.failProvision = func(seq int) error {
		if seq == 0 {
			e.CancelWorkflow() // the admin disables sync while the write is in flight
			time.Sleep(300 * time.Millisecond)
			note("write 0 done")
		}
		return nil
	}
	e.OnActivity("ReleaseUnsentSeats", mock.Anything, mock.Anything).Return(func(_ context.Context, in steps.UserStep) error {
		note(fmt.Sprint("release ", in.Seq))
		return nil
	}).Maybe()
	e.SetOnLocalActivityStartedListener(func(info *activity.Info, _ context.Context, args []any) {
		if info.ActivityType.Name == steps.ProvisionUser {
			note("local write started")
		}
	})
	e.ExecuteWorkflow(SyncRunWorkflow, RunInput{Org: "acme", RunID: "r1", Kind: vocab.KindManual, PageSize: 10, PageWindow: 1, UsersInFlight: 1})
	var canceled *temporal.CanceledError
	require.ErrorAs(t, e.GetWorkflowError(), &canceled)

	require.Equal(t, []string{"local write started", "write 0 done"}, events, "the write ends, and its seats are kept")
	require.Len(t, e.provision, 1, "no user is started after the cancellation")
}

// The target refuses our credentials to a local first write: the run stops with one
// target_auth failure, as after the activity's refusal, and no further request is sent for
// the user (the activity does not try again with the refused credentials).
func TestLocalWriteRefusedByTheTargetStopsTheRun(t *testing.T) {
	e := newRunEnv(t, 10)
	e.SetStartWorkflowOptions(client.StartWorkflowOptions{TaskQueue: TaskQueue})
	e.OnActivity("RunSettings", mock.Anything, mock.Anything).Return(steps.FanOut{ProvisionQueue: TaskQueue}, nil)
	e.failProvision = func(seq int) error {
		return temporal.NewNonRetryableApplicationError("scim: 401 Unauthorized", vocab.TargetAuth, nil)
	}
	e.ExecuteWorkflow(SyncRunWorkflow, RunInput{Org: "acme", RunID: "r1", Kind: vocab.KindManual, PageSize: 10, PageWindow: 1, UsersInFlight: 1})
	require.Error(t, e.GetWorkflowError())

	require.Equal(t, vocab.RunFailed, e.finished.Status)
	require.Equal(t, vocab.TargetAuth, e.finished.FailureType, e.finished.Error)
	require.Equal(t, map[int]int{0: 1}, e.provision, "one request, then the run stops")
}

// A local first write sent away with a delay (a Retry-After, or an earlier attempt's hold on
// the user's write): the activity's first attempt starts when the delay is over, not at once.
func TestLocalWriteDelayIsWaitedBeforeTheActivity(t *testing.T) {
	e := newRunEnv(t, 1)
	e.SetStartWorkflowOptions(client.StartWorkflowOptions{TaskQueue: TaskQueue})
	e.OnActivity("RunSettings", mock.Anything, mock.Anything).Return(steps.FanOut{ProvisionQueue: TaskQueue}, nil)
	var first, second time.Time
	e.failProvision = func(seq int) error {
		if first.IsZero() {
			first = e.Now()
			return temporal.NewApplicationErrorWithOptions("held", activities.WriteHeld,
				temporal.ApplicationErrorOptions{NextRetryDelay: 40 * time.Second})
		}
		second = e.Now()
		return nil
	}
	e.ExecuteWorkflow(SyncRunWorkflow, RunInput{Org: "acme", RunID: "r1", Kind: vocab.KindManual})
	require.NoError(t, e.GetWorkflowError())

	require.Equal(t, 1, e.finished.Outcomes[vocab.Created])
	require.GreaterOrEqual(t, second.Sub(first), 40*time.Second, "the activity waited for the delay")
}

// A paced target's first writes are local too: a user sent away by the pace (nothing sent)
// waits for its turn and tries locally again; only a user sent away localTurns times goes to
// the activity. Every user ends created, with no ProvisionUser task through the server but
// that one user's.
func TestPacedTargetWritesLocallyAtTheUsersTurn(t *testing.T) {
	e := newRunEnv(t, 6) // RunSettings' default queue: the SCIM queue of paced targets
	var mu sync.Mutex
	local, remote := map[int]int{}, map[int]int{}
	var turns []time.Time
	e.failProvision = func(seq int) error {
		mu.Lock()
		defer mu.Unlock()
		if remote[seq] == 0 && (local[seq] == 1 || seq == 4 && local[seq] <= localTurns) {
			turns = append(turns, e.Now())
			return temporal.NewApplicationErrorWithOptions("the target's request pace is taken for now", vocab.RequestPaced,
				temporal.ApplicationErrorOptions{NextRetryDelay: 3 * time.Second})
		}
		return nil
	}
	countWrites(t, e, &mu, local, remote)
	start := e.Now()
	e.ExecuteWorkflow(SyncRunWorkflow, RunInput{Org: "acme", RunID: "r1", Kind: vocab.KindManual})
	require.NoError(t, e.GetWorkflowError())

	require.Equal(t, vocab.RunSucceeded, e.finished.Status)
	require.Equal(t, 6, e.finished.Outcomes[vocab.Created])
	require.Equal(t, map[int]int{0: 2, 1: 2, 2: 2, 3: 2, 4: localTurns, 5: 2}, local, "sent away once: a second local attempt at the turn")
	require.Equal(t, map[int]int{4: 1}, remote, "only the user sent away localTurns times goes to the activity")
	require.GreaterOrEqual(t, e.Now().Sub(start), time.Duration(localTurns)*3*time.Second, "each turn was waited for")
	require.Len(t, turns, 5+localTurns, "the five others once, user 4 each time")
}

// A page whose local writes keep its workflow task going longer than localChainLimit lets the
// task end (a chain of heartbeating tasks answers no query, and the server fails one that
// lasts 30 minutes): it waits until no local activity is in flight, then a timer. Every user
// is still written locally.
func TestPageLetsItsTaskEndDuringLongLocalWrites(t *testing.T) {
	e := newRunEnv(t, 20)
	var mu sync.Mutex
	local, inFlight := map[int]int{}, 0
	var breaks []int // local activities in flight when each break's timer was scheduled
	e.failProvision = func(seq int) error {
		mu.Lock()
		defer mu.Unlock()
		if local[seq] == 1 { // each user waits 2 minutes for its turn
			return temporal.NewApplicationErrorWithOptions("paced", vocab.RequestPaced,
				temporal.ApplicationErrorOptions{NextRetryDelay: 2 * time.Minute})
		}
		return nil
	}
	e.SetOnLocalActivityStartedListener(func(info *activity.Info, _ context.Context, args []any) {
		mu.Lock()
		defer mu.Unlock()
		inFlight++
		if info.ActivityType.Name == steps.ProvisionUser {
			local[args[0].(steps.UserStep).Seq]++
		}
	})
	e.SetOnLocalActivityCompletedListener(func(*activity.Info, converter.EncodedValue, error) {
		mu.Lock()
		inFlight--
		mu.Unlock()
	})
	e.SetOnTimerScheduledListener(func(_ string, d time.Duration) {
		if d == time.Millisecond {
			mu.Lock()
			breaks = append(breaks, inFlight)
			mu.Unlock()
		}
	})
	e.ExecuteWorkflow(SyncRunWorkflow, RunInput{Org: "acme", RunID: "r1", Kind: vocab.KindManual, PageSize: 20, UsersInFlight: 3})
	require.NoError(t, e.GetWorkflowError())

	require.Equal(t, 18, e.finished.Outcomes[vocab.Created])
	require.Len(t, local, 18)
	for seq, n := range local {
		require.Equal(t, 2, n, "user %d: sent away once, then written locally", seq)
	}
	require.NotEmpty(t, breaks, "12 minutes of writes: the task ended between them")
	for _, n := range breaks {
		require.Zero(t, n, "the task ends with no local activity in flight")
	}
}

// The writes a task break waits for can stop the run (the target refused our credentials):
// then no further user starts after the break.
func TestRunStoppedDuringATaskBreakStartsNoFurtherUser(t *testing.T) {
	e := newRunEnv(t, 8)
	var mu sync.Mutex
	calls := map[int]int{}
	e.failProvision = func(seq int) error {
		mu.Lock()
		calls[seq]++
		n := calls[seq]
		mu.Unlock()
		switch {
		case n == 1: // users 0 and 1 wait 10 s for their turn, together
			return temporal.NewApplicationErrorWithOptions("paced", vocab.RequestPaced,
				temporal.ApplicationErrorOptions{NextRetryDelay: 10 * time.Second})
		case seq == 1: // still in flight when user 0 is done and the page breaks its task
			time.Sleep(300 * time.Millisecond)
			return temporal.NewNonRetryableApplicationError("scim: 401 Unauthorized", vocab.TargetAuth, nil)
		}
		return nil
	}
	e.ExecuteWorkflow(SyncRunWorkflow, RunInput{Org: "acme", RunID: "r1", Kind: vocab.KindManual, PageSize: 8, UsersInFlight: 2})
	require.Error(t, e.GetWorkflowError())

	require.Equal(t, vocab.TargetAuth, e.finished.FailureType, e.finished.Error)
	mu.Lock()
	defer mu.Unlock()
	require.Equal(t, map[int]int{0: 2, 1: 2}, calls, "no user started after the run stopped")
}
