package workflows

import (
	"errors"
	"slices"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/usersync/usersync/internal/steps"
	"github.com/usersync/usersync/internal/vocab"
)

// ioOptions are for the bulk steps (directory read, plan, finish, groups).
var ioOptions = workflow.ActivityOptions{
	StartToCloseTimeout: 30 * time.Minute,
	HeartbeatTimeout:    2 * time.Minute,
	RetryPolicy: &temporal.RetryPolicy{
		InitialInterval:    time.Second,
		BackoffCoefficient: 2,
		MaximumInterval:    time.Minute,
		MaximumAttempts:    10,
	},
}

// discoveryOptions retry a target that does not answer for a short while only: a target
// down at the start of a run fails the run (target_unavailable), the next sync tries again.
var discoveryOptions = workflow.ActivityOptions{
	StartToCloseTimeout: 2 * time.Minute,
	RetryPolicy: &temporal.RetryPolicy{
		InitialInterval:    time.Second,
		BackoffCoefficient: 2,
		MaximumInterval:    10 * time.Second,
		MaximumAttempts:    5,
	},
}

// runFailureType names a run-level failure (spec 9): refused credentials, an incompatible
// target, or a target that did not answer the discovery or, mid-run, any request. Other
// errors have no type.
func runFailureType(err error) string {
	var ae *temporal.ApplicationError
	if errors.As(err, &ae) && vocab.IsRunLevel(ae.Type()) {
		return ae.Type()
	}
	return ""
}

// SyncRunWorkflow is one sync: read the directory into a snapshot, plan, fan the users that
// need work out to page workflows, write group memberships, record the outcome.
func SyncRunWorkflow(ctx workflow.Context, in RunInput) (steps.RunSummary, error) {
	ref := steps.RunRef{Org: in.Org, RunID: in.RunID}
	prog := Progress{RunID: in.RunID, Phase: "reading directory", StartedAt: workflow.Now(ctx), DryRun: in.DryRun}
	if err := workflow.SetQueryHandler(ctx, QueryProgress, func() (Progress, error) { return prog, nil }); err != nil {
		return steps.RunSummary{}, err
	}
	publishRun(ctx, in, nil)
	actx := workflow.WithActivityOptions(ctx, ioOptions)
	var fin steps.FinishInput
	var queue string
	var err error
	if r := in.Resume; r != nil { // continued as new during the fan-out
		fin, queue = r.Finish, r.ProvisionQueue
		if fin.Outcomes == nil { // empty maps do not survive the trip through JSON
			fin.Outcomes = map[string]int{}
		}
		if fin.Failures == nil {
			fin.Failures = map[string]int{}
		}
		prog.StartedAt, prog.Phase, prog.Items = fin.StartedAt, "provisioning", fin.Plan.Items
		prog.PagesDone, prog.UsersDone = r.NextPage, r.UsersDone
		prog.UsersFailed = fin.Outcomes[vocab.Failed]
	} else {
		fin, queue, err = readAndPlan(ctx, &in, ref, &prog)
	}
	// A run that found nothing changed since the last clean run has nothing to do.
	still := fin.Directory.Unchanged != nil
	if err == nil && !in.DryRun && !still {
		var next *RunResume
		next, err = fanOut(ctx, in, queue, &prog, &fin)
		if err == nil && next != nil {
			in.Resume = next
			return steps.RunSummary{}, workflow.NewContinueAsNewError(ctx, SyncRunWorkflow, in)
		}
	}
	if err == nil && !in.DryRun && !still {
		prog.Phase = "groups"
		gopts := onQueue(ioOptions, queue)
		if workflow.GetVersion(ctx, changeGroupsWaitForCancel, workflow.DefaultVersion, 1) == 1 {
			// Cancelled (disable) while writing groups: the run ends once the step has
			// stopped, its PATCH in flight finished and recorded, so that the next run never
			// writes beside it.
			gopts.WaitForCancellation = true
		}
		gctx := workflow.WithActivityOptions(ctx, gopts)
		err = workflow.ExecuteActivity(gctx, steps.SyncGroups, ref).Get(ctx, &fin.Groups)
	}

	fin.Status = vocab.RunSucceeded
	finishCtx := actx
	switch {
	case temporal.IsCanceledError(err) || errors.Is(ctx.Err(), workflow.ErrCanceled):
		fin.Status = vocab.RunCancelled
		// Record the cancelled run even though this workflow is being cancelled.
		dctx, _ := workflow.NewDisconnectedContext(ctx)
		finishCtx = workflow.WithActivityOptions(dctx, ioOptions)
	case err != nil:
		fin.Status, fin.Error, fin.FailureType = vocab.RunFailed, rootCause(err).Error(), runFailureType(err)
	}
	prog.Phase = "done"
	var sum steps.RunSummary
	if ferr := workflow.ExecuteActivity(finishCtx, steps.FinishRun, fin).Get(finishCtx, &sum); ferr != nil && err == nil {
		err = ferr
	}
	published := sum
	if published.RunID == "" { // not recorded: what the run knows
		published.FinishInput = fin
	}
	publishRun(finishCtx, in, &published)
	return sum, err
}

// changeDiscoverWhenWriting: the target is discovered after the plan, and only when the run
// has users to write (before, first thing in every run): an organization with nothing to do
// sends its target no request at all (issue 10: 1,000 idle organizations sent 3,000 GETs
// per interval).
const changeDiscoverWhenWriting = "discover-when-writing"

// changeStandStill: a run may end after its directory read when nothing it depends on
// changed since the last clean run (activities.UnchangedSince): no plan, pages or group
// step (issues 13 and 10). Before, every run planned every user.
const changeStandStill = "stand-still-when-unchanged"

// readAndPlan reads the run's settings, snapshots the directory, plans the run and, when it
// has users to write, checks the target.
func readAndPlan(ctx workflow.Context, in *RunInput, ref steps.RunRef, prog *Progress) (steps.FinishInput, string, error) {
	fin := steps.FinishInput{RunRef: ref, Kind: in.Kind, DryRun: in.DryRun, StartedAt: prog.StartedAt,
		Outcomes: map[string]int{}, Failures: map[string]int{}}
	var rs steps.FanOut
	lctx := workflow.WithLocalActivityOptions(ctx, stepOptions)
	if err := workflow.ExecuteLocalActivity(lctx, steps.RunSettings, steps.RunRef{Org: in.Org, RunID: in.RunID}).Get(ctx, &rs); err != nil {
		return fin, "", err
	}
	in.PageSize = firstPositive(in.PageSize, rs.PageSize, DefaultPageSize)
	in.PageWindow = firstPositive(in.PageWindow, rs.PageWindow, DefaultPageWindow)
	in.UsersInFlight = firstPositive(in.UsersInFlight, rs.UsersInFlight, DefaultUsersInFlight)
	queue := rs.ProvisionQueue
	if queue == "" {
		queue = SCIMTaskQueue
	}
	actx := workflow.WithActivityOptions(ctx, ioOptions)
	// A target that refuses our credentials, is down or cannot take what this organization
	// writes stops the run with one failure, before anything is written to it.
	discover := func() error {
		dctx := workflow.WithActivityOptions(ctx, discoveryOptions)
		var tc steps.TargetCheck
		return workflow.ExecuteActivity(dctx, steps.DiscoverTarget,
			steps.SnapshotInput{RunRef: ref, Kind: in.Kind, DryRun: in.DryRun}).Get(ctx, &tc)
	}
	whenWriting := workflow.GetVersion(ctx, changeDiscoverWhenWriting, workflow.DefaultVersion, 1) == 1
	if !whenWriting && workflow.GetVersion(ctx, "target-discovery", workflow.DefaultVersion, 1) >= 1 {
		if err := discover(); err != nil {
			return fin, queue, err
		}
	}
	// The read and the plan wait their turn on the read lane (no ScheduleToStart: waiting is
	// never a failure; their timeouts count from the start of an attempt).
	rctx := actx
	if workflow.GetVersion(ctx, changeCappedLanes, workflow.DefaultVersion, 1) == 1 {
		rctx = workflow.WithTaskQueue(actx, ReadTaskQueue)
	}
	// Never a dry run (it shows a plan), a retry (it plans the failed users) or an approval
	// (it applies the held suspensions).
	mayStandStill := workflow.GetVersion(ctx, changeStandStill, workflow.DefaultVersion, 1) == 1 &&
		!in.DryRun && in.Retry == nil && !in.ApproveSuspensions
	err := workflow.ExecuteActivity(rctx, steps.SnapshotDirectory,
		steps.SnapshotInput{RunRef: ref, Kind: in.Kind, DryRun: in.DryRun, MayStandStill: mayStandStill}).Get(ctx, &fin.Directory)
	if u := fin.Directory.Unchanged; err == nil && u != nil && mayStandStill {
		// The counts are the earlier run's: in scope and unchanged, as its plan left them.
		fin.Plan = steps.PlanResult{InScope: u.InScope, Unchanged: u.InScope}
		return fin, queue, nil
	}
	fin.Directory.Unchanged = nil // only a run that asked stands still
	if err == nil {
		prog.Phase = "planning"
		err = workflow.ExecuteActivity(rctx, steps.PlanRun, steps.PlanInput{RunRef: ref, DryRun: in.DryRun,
			Retry: in.Retry, ApproveSuspensions: in.ApproveSuspensions, ApprovedHeld: in.ApprovedHeld}).Get(ctx, &fin.Plan)
	}
	if err == nil && whenWriting && fin.Plan.Creates+fin.Plan.Updates+fin.Plan.Suspends > 0 {
		err = discover()
	}
	if err == nil && !in.DryRun {
		prog.Phase, prog.Items = "provisioning", fin.Plan.Items
	}
	return fin, queue, err
}

// onQueue moves activities to another task queue (the SCIM queue is rate limited).
func onQueue(o workflow.ActivityOptions, queue string) workflow.ActivityOptions {
	o.TaskQueue = queue
	return o
}

func firstPositive(vs ...int) int {
	for _, v := range vs {
		if v > 0 {
			return v
		}
	}
	return 0
}

// maxRunEvents is the history length past which a run starts no new page and, once its pages
// in flight are done, continues as new: a run's history stays bounded at any directory size.
var maxRunEvents = 4000

// fanOut runs the planned items as page child workflows, at most PageWindow at a time. It
// returns where to resume when the run should continue as new (nil when all pages ran).
func fanOut(ctx workflow.Context, in RunInput, queue string, prog *Progress, fin *steps.FinishInput) (*RunResume, error) {
	canContinue := workflow.GetVersion(ctx, "run-continue-as-new", workflow.DefaultVersion, 1) >= 1
	items := fin.Plan.Items
	pages := (items + in.PageSize - 1) / in.PageSize
	prog.Pages = pages
	var firstErr error
	running, next, started := 0, prog.PagesDone, 0
	long := func() bool { // at least one window per execution, so that a resumed run progresses
		return canContinue && started >= in.PageWindow && workflow.GetInfo(ctx).GetCurrentHistoryLength() > maxRunEvents
	}
	sel := workflow.NewSelector(ctx)
	for prog.PagesDone < pages {
		for running < in.PageWindow && next < pages && firstErr == nil && ctx.Err() == nil && !long() {
			from := next * in.PageSize
			to := min(from+in.PageSize, items)
			cctx := workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{
				WorkflowID:          PageWorkflowID(in.RunID, next),
				WaitForCancellation: true,
				StaticSummary:       pageSummary(next, from, to),
			})
			f := workflow.ExecuteChildWorkflow(cctx, ProcessPageWorkflow, PageInput{
				RunRef: steps.RunRef{Org: in.Org, RunID: in.RunID}, From: from, To: to, UsersInFlight: in.UsersInFlight,
				ProvisionQueue: queue})
			page := next
			prog.PagesRunning = append(prog.PagesRunning, page)
			sel.AddFuture(f, func(f workflow.Future) {
				prog.PagesRunning = slices.DeleteFunc(prog.PagesRunning, func(n int) bool { return n == page })
				var r PageResult
				if err := f.Get(ctx, &r); err != nil && firstErr == nil {
					firstErr = err
				}
				if s := r.Stopped; s != nil && firstErr == nil {
					firstErr = temporal.NewNonRetryableApplicationError(s.Message, s.Type, nil)
				}
				running--
				prog.PagesDone++
				for k, v := range r.Outcomes {
					fin.Outcomes[k] += v
					prog.UsersDone += v
				}
				// Only the query reads it: no command changes, histories replay as before.
				prog.UsersFailed = fin.Outcomes[vocab.Failed]
				for k, v := range r.Failures {
					fin.Failures[k] += v
				}
			})
			running++
			next++
			started++
		}
		if running == 0 {
			break
		}
		sel.Select(ctx)
	}
	if firstErr == nil && ctx.Err() != nil {
		firstErr = temporal.NewCanceledError()
	}
	if firstErr == nil && next < pages {
		return &RunResume{Finish: *fin, ProvisionQueue: queue, NextPage: next, UsersDone: prog.UsersDone}, nil
	}
	return nil, firstErr
}
