package workflows

import (
	"errors"
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/usersync/usersync/internal/steps"
	"github.com/usersync/usersync/internal/vocab"
)

// stepOptions are for the pure-ish per-user steps (store reads and writes only).
var stepOptions = workflow.LocalActivityOptions{
	StartToCloseTimeout:    30 * time.Second,
	ScheduleToCloseTimeout: 10 * time.Minute,
	RetryPolicy: &temporal.RetryPolicy{
		InitialInterval:    500 * time.Millisecond,
		BackoffCoefficient: 2,
		MaximumInterval:    30 * time.Second,
	},
}

// provisionOptions are for the SCIM step. When attempts run out the user fails with
// target_unavailable and the next sync or a retry picks it up again.
//
// Temporal owns the retries: the worker's SCIM client sends each request once, and the step
// returns a target's Retry-After as the next retry delay (never less than the backoff below).
// The numbers:
//   - StartToClose 3 min: one attempt is at most 4 requests (create, find on a conflict,
//     find by userName to adopt, PATCH), each queueing some 5-15 s at most for its slot (an
//     attempt starts only when the shared pace's queue is at most activities.paceWithin = 5 s
//     long, 10 s for one coming back at its turn; else it is sent away with its turn as the
//     retry delay, outside this timeout) and taking at most the client's 30 s HTTP timeout.
//   - Heartbeat 90 s: the attempt shows progress after each store step and each answered
//     request (a heartbeat at most every 90/8 s: none for an attempt that ends sooner, as a
//     paced one waiting for its slot does), whose slot and HTTP timeout stay well under it
//     (a 409's create and lookup, both at their limits, may not: the attempt is then
//     retried, its write intent kept). An attempt
//     that stops progressing, or whose start was recorded but never reached a worker (a lost
//     dispatch on an overloaded server), ends after 90 s instead of the whole StartToClose.
//   - Backoff 2 s doubling, capped at 1 min (2, 4, 8, 16, 32, then 60 s).
//   - MaximumAttempts 20: nineteen retries wait 2+4+8+16+32+14x60 s = 15 min in all, so a
//     target unavailable for 5 minutes recovers with room to spare. A step sent away by the
//     pace uses an attempt too, usually once before an attempt that sends (the user goes
//     before newcomers at its turn): even with one before each, 10 sending attempts span
//     4+16+7x60 s = 7.3 min.
//
// Changing these options does not change the workflow's commands: histories still replay.
var provisionOptions = workflow.ActivityOptions{
	TaskQueue:           SCIMTaskQueue,
	StartToCloseTimeout: 3 * time.Minute,
	HeartbeatTimeout:    90 * time.Second,
	WaitForCancellation: true, // a cancelled run ends after its in-flight writes, not before
	RetryPolicy: &temporal.RetryPolicy{
		InitialInterval:    2 * time.Second,
		BackoffCoefficient: 2,
		MaximumInterval:    time.Minute,
		MaximumAttempts:    20,
	},
}

// evaluateOptions are for the page evaluation on its lane, where it may wait for a worker's
// slot as long as it takes: no ScheduleToStart or ScheduleToClose timeout, so the wait is never
// a failure. An attempt is one store read and the rules (the local activity's 30 s, with room);
// attempts span about the local activity's 10 minutes of retries.
var evaluateOptions = workflow.ActivityOptions{
	TaskQueue:           PageTaskQueue,
	StartToCloseTimeout: time.Minute,
	RetryPolicy: &temporal.RetryPolicy{
		InitialInterval:    500 * time.Millisecond,
		BackoffCoefficient: 2,
		MaximumInterval:    30 * time.Second,
		MaximumAttempts:    25,
	},
}

// probeOptions are for the one-request check of whether the target is up at all.
var probeOptions = workflow.ActivityOptions{
	StartToCloseTimeout: time.Minute,
	RetryPolicy:         &temporal.RetryPolicy{MaximumAttempts: 3},
}

// ProcessPageWorkflow runs the three steps of the items [From, To) of a run: evaluate rules
// (one activity for the page on the page lane, recording the users the plan failed), then per user check
// licenses (a local activity, only for users taking new seats) and provision SCIM (an
// activity), a bounded number of users at a time.
func ProcessPageWorkflow(ctx workflow.Context, in PageInput) (PageResult, error) {
	res := PageResult{Outcomes: map[string]int{}, Failures: map[string]int{}}
	// A query handler adds no command: histories replay as before.
	if err := workflow.SetQueryHandler(ctx, QueryPageProgress, func() (PageResult, error) { return res, nil }); err != nil {
		return res, err
	}
	if in.UsersInFlight <= 0 {
		in.UsersInFlight = DefaultUsersInFlight
	}
	var ev steps.PageEvaluation
	summary := fmt.Sprintf("evaluate users %d-%d", in.From, in.To-1)
	page := steps.PageRef{RunRef: in.RunRef, From: in.From, To: in.To}
	var eval workflow.Future
	if workflow.GetVersion(ctx, changeCappedLanes, workflow.DefaultVersion, 1) == 1 {
		o := evaluateOptions
		o.Summary = summary
		eval = workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, o), steps.EvaluatePage, page)
	} else {
		eval = workflow.ExecuteLocalActivity(workflow.WithLocalActivityOptions(ctx, summarized(stepOptions, summary)),
			steps.EvaluatePage, page)
	}
	if err := eval.Get(ctx, &ev); err != nil {
		return res, err
	}
	for typ, n := range ev.Failures {
		res.Outcomes[vocab.Failed] += n
		res.Failures[typ] += n
	}
	running := 0
	var stop *RunStop // the run stops: no further user is started
	st := &pageState{
		localAll: workflow.GetVersion(ctx, changeLocalWrites, workflow.DefaultVersion, 1) == 1,
		since:    workflow.Now(ctx),
	}
	for _, u := range ev.Users {
		if err := workflow.Await(ctx, func() bool { return running < in.UsersInFlight }); err != nil || stop != nil {
			break
		}
		if st.localAll && workflow.Now(ctx).Sub(st.since) >= localChainLimit {
			// The writes it waits for may stop the run.
			if err := st.endTask(ctx); err != nil || stop != nil {
				break
			}
		}
		running++
		workflow.Go(ctx, func(ctx workflow.Context) {
			defer func() { running-- }()
			o, s := processUser(ctx, st, in.RunRef, u, in.ProvisionQueue)
			if s != nil {
				if stop == nil {
					stop = s
				}
				return
			}
			res.Outcomes[o.Status]++
			if o.FailureType != "" {
				res.Failures[o.FailureType]++
			}
		})
	}
	// Also when cancelled (sync disabled): let the users in flight finish, so that the run
	// ends only once nothing more will be written.
	dctx, _ := workflow.NewDisconnectedContext(ctx)
	_ = workflow.Await(dctx, func() bool { return running == 0 })
	res.Stopped = stop
	return res, ctx.Err()
}

// processUser runs one user's license and SCIM steps. It fails the page only when the target
// refused our credentials (the run stops with one target_auth failure); otherwise a user whose
// steps could not complete keeps its previous state and is planned again by the next sync.
func processUser(ctx workflow.Context, st *pageState, run steps.RunRef, u steps.UserPlan, queue string) (steps.UserOutcome, *RunStop) {
	step := steps.UserStep{RunRef: run, Seq: u.Seq}
	lctx := workflow.WithLocalActivityOptions(ctx, summarized(stepOptions, userStepSummary("check seats of", u)))
	if len(u.Seats) > 0 {
		var r steps.StepResult
		seats := steps.SeatsInput{UserStep: step, ExternalID: u.ExternalID, Products: u.Seats}
		if err := st.local(ctx, workflow.ExecuteLocalActivity(lctx, steps.CheckLicenses, seats), &r); err != nil {
			releaseUnsent(ctx, st, step)
			return errored(ctx, step, err), nil
		}
		if !r.Continue {
			return r.Outcome, nil
		}
	}
	var o steps.UserOutcome
	attempts := provisionOptions.RetryPolicy.MaximumAttempts
	local := queue == workflow.GetInfo(ctx).TaskQueueName &&
		workflow.GetVersion(ctx, changeLocalFirstWrite, workflow.DefaultVersion, 1) == 1
	local = local || st.localAll
	for try := 1; local && ctx.Err() == nil; try++ {
		lo, err := firstWriteLocally(ctx, st, step, u)
		if err == nil {
			return lo, nil
		}
		attempts++
		var ae *temporal.ApplicationError
		if errors.As(err, &ae) && ae.Type() == vocab.TargetAuth {
			return lo, &RunStop{Type: vocab.TargetAuth, Message: ae.Error()}
		}
		if errors.As(err, &ae) && ae.NextRetryDelay() > 0 {
			// A Retry-After, an earlier attempt's hold, or the user's turn in the pace: the
			// next attempt starts when it comes.
			_ = workflow.Sleep(ctx, ae.NextRetryDelay())
		}
		if !st.localAll || ae == nil || ae.Type() != vocab.RequestPaced || try >= localTurns {
			break
		}
		// Sent away by the pace before sending anything: at its turn the user tries locally
		// again (it goes before newcomers then), not as an activity through the server.
	}
	popts := onQueue(provisionOptions, queue)
	popts.Summary = userStepSummary("provision", u)
	err := workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, popts), steps.ProvisionUser, step).Get(ctx, &o)
	if err == nil {
		return o, nil
	}
	var ae *temporal.ApplicationError
	if errors.As(err, &ae) && ae.Type() == vocab.TargetAuth {
		return o, &RunStop{Type: vocab.TargetAuth, Message: ae.Error()}
	}
	if ctx.Err() != nil {
		if len(u.Seats) > 0 || local {
			// Also without seats for a local write: it closes the item to a local write
			// scheduled by a task this cancellation replaced, which would write after the run.
			releaseUnsent(ctx, st, step)
		}
		return errored(ctx, step, err), nil
	}
	if workflow.GetVersion(ctx, "probe-before-user-failure", workflow.DefaultVersion, 1) >= 1 {
		// Is it this user, or the whole target? A target down for every request stops the run
		// with one run-level failure; the users' state stays as it was.
		var down bool
		probe := onQueue(probeOptions, queue)
		probe.Summary = fmt.Sprintf("probe the target after item %d failed", u.Seq)
		pctx := workflow.WithActivityOptions(ctx, probe)
		if perr := workflow.ExecuteActivity(pctx, steps.ProbeTarget, step).Get(ctx, &down); perr == nil && down {
			return o, &RunStop{Type: vocab.TargetUnavailable, Message: fmt.Sprintf("the target did not answer for the whole run: %v", rootCause(err))}
		}
	}
	f := vocab.Failure{Type: vocab.TargetUnavailable, Message: fmt.Sprintf("the target did not accept the change after %d attempts: %v",
		attempts, rootCause(err))}
	rctx := workflow.WithLocalActivityOptions(ctx, summarized(stepOptions, fmt.Sprintf("record item %d failed: %s", u.Seq, f.Type)))
	if err := st.local(ctx, workflow.ExecuteLocalActivity(rctx, steps.RecordUserFailure, steps.UserFailureInput{UserStep: step, Failure: f}), &o); err != nil {
		return errored(ctx, step, err), nil
	}
	return o, nil
}

// localWriteOptions are for a user's first SCIM attempt as a local activity: one attempt.
// 30 s (the client's HTTP timeout) is plenty for a target that answers (most attempts take
// milliseconds); a slower one times the attempt out and the activity, with its heartbeat
// and 3 minutes, takes over. The attempt holds the user's write until it ends, at most this
// long after its start (activities.beginWrite): a worker that died in it delays that user's
// retry by at most this.
var localWriteOptions = workflow.LocalActivityOptions{
	StartToCloseTimeout: 30 * time.Second,
	RetryPolicy:         &temporal.RetryPolicy{MaximumAttempts: 1},
}

// localTurns is how many local attempts a user sent away by the pace makes before the
// activity takes over (each waits for its turn; the pace lets a user in at its turn).
const localTurns = 5

// localChainLimit is how long a page lets its local writes keep its workflow task going.
// While a task has local activities in flight the SDK keeps it open, completing it and asking
// for the next at once every 8 s (a workflow task heartbeat), and such a chain of tasks
// answers no query (the page's progress, which `starter status` shows) until it ends; the
// server also fails a chain that lasts 30 minutes (history.workflowTaskHeartbeatTimeout),
// which a paced page of 1,000 users would reach. So a page whose task has run this long
// (workflow time, which moves with each local result and replays from its marker) lets its
// writes in flight end and its task complete (endTask), before any heartbeat: queries are
// answered then. A paced organization's writes lose little by it (its other pages take the
// pace meanwhile).
const localChainLimit = 5 * time.Second

// pageState is what a page's users share: whether every first write is local, and the local
// activities in flight.
type pageState struct {
	localAll bool
	locals   int
	since    time.Time // when the page last let its task end
}

// local waits for the local activity f, counted as in flight meanwhile.
func (st *pageState) local(ctx workflow.Context, f workflow.Future, out any) error {
	st.locals++
	defer func() { st.locals-- }()
	return f.Get(ctx, out)
}

// endTask lets the page's task end: no new user starts until the local activities in flight
// have ended, then a timer (the next task starts a new chain).
func (st *pageState) endTask(ctx workflow.Context) error {
	if err := workflow.Await(ctx, func() bool { return st.locals == 0 }); err != nil {
		return err
	}
	if err := workflow.Sleep(ctx, time.Millisecond); err != nil {
		return err
	}
	st.since = workflow.Now(ctx)
	return nil
}

// firstWriteLocally makes a user's first SCIM attempt as a local activity: no task through the
// server and three history events fewer per user, the most of a small run's time (issue 13:
// 1,000 changed users were 5.7 s of fan-out) and of a paced organization's cost on the
// machine every organization shares (issue 10). A paced attempt waits for its slot in the
// shared pace inside the attempt (activities.paceWithin, twice that for a user back at its
// turn; a later turn sends it away before it sends anything; each further request of the
// attempt waits for its own slot, and an attempt that outlasts localWriteOptions leaves its
// write to the activity). When the attempt failed (err),
// the activity with its retries, heartbeat and reconciliation of the attempt's open write
// intent takes over, as it does after a failed attempt of its own.
//
// The attempt runs on a disconnected context: a cancelled page (sync disabled) waits for it
// as it waits for the activity (WaitForCancellation), so that no seat is given back while a
// write may still be sent.
func firstWriteLocally(ctx workflow.Context, st *pageState, step steps.UserStep, u steps.UserPlan) (steps.UserOutcome, error) {
	var o steps.UserOutcome
	dctx, _ := workflow.NewDisconnectedContext(ctx)
	lctx := workflow.WithLocalActivityOptions(dctx, summarized(localWriteOptions, userStepSummary("provision", u)))
	err := st.local(dctx, workflow.ExecuteLocalActivity(lctx, steps.ProvisionUser, step), &o)
	if err != nil {
		workflow.GetLogger(ctx).Debug("first write attempt failed; the activity retries it", "seq", step.Seq, "error", err)
	}
	return o, err
}

// releaseUnsent gives back, when the page was cancelled (sync disabled), the seats reserved
// for a user whose write never started; the step keeps them when a write was sent. It runs
// on a disconnected context: the cancellation is what it answers.
func releaseUnsent(ctx workflow.Context, st *pageState, step steps.UserStep) {
	if ctx.Err() == nil || workflow.GetVersion(ctx, "release-unsent-seats-on-cancel", workflow.DefaultVersion, 1) < 1 {
		return
	}
	dctx, _ := workflow.NewDisconnectedContext(ctx)
	lctx := workflow.WithLocalActivityOptions(dctx, stepOptions)
	if err := st.local(dctx, workflow.ExecuteLocalActivity(lctx, steps.ReleaseUnsentSeats, step), nil); err != nil {
		workflow.GetLogger(ctx).Warn("seats reserved for a user not written stay until the next sync", "seq", step.Seq, "error", err)
	}
}

func errored(ctx workflow.Context, step steps.UserStep, err error) steps.UserOutcome {
	if ctx.Err() == nil {
		workflow.GetLogger(ctx).Error("user step failed; the next sync retries it", "seq", step.Seq, "error", err)
	}
	return steps.UserOutcome{Seq: step.Seq, Status: vocab.Errored}
}

// rootCause strips Temporal's activity error wrapping for a readable failure message.
func rootCause(err error) error {
	for {
		u, ok := err.(interface{ Unwrap() error })
		if !ok || u.Unwrap() == nil {
			return err
		}
		err = u.Unwrap()
	}
}

// summarized is opts with the step's summary shown in the UI.
func summarized(opts workflow.LocalActivityOptions, summary string) workflow.LocalActivityOptions {
	opts.Summary = summary
	return opts
}
