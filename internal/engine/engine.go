// Package engine starts the Temporal workers that run usersync's workflows and activities.
// The worker command and the integration tests share it.
package engine

import (
	"context"
	"fmt"
	"runtime"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"

	"github.com/usersync/usersync/activities"
	"github.com/usersync/usersync/internal/steps"
	"github.com/usersync/usersync/internal/vocab"
	"github.com/usersync/usersync/workflows"
)

// Options shape the workers.
//
// There is no queue-wide rate limit: every organization's requests are paced toward its own
// target (store.Pacer keyed by organization, see package connect), so that one organization's
// slow target never throttles another's.
type Options struct {
	// SCIMActivities caps the SCIM steps this worker runs at once, over every organization
	// (0: DefaultSCIMActivities). Each organization's run has at most its page window times
	// users in flight (steps.FanOut) of them queued, so a large organization cannot hold all.
	SCIMActivities int
	// Pollers is the fewest task polls this worker keeps open on each of its lanes (the
	// workflow tasks of the main queue, its sticky queue, the activity tasks of both queues),
	// however idle it was (0: DefaultPollers). The SDK's autoscaling otherwise drops a lane to
	// one poll after a few empty ones, and every organization's workflow tasks then wait in
	// line for that one poll: a large organization's steady stream of page tasks took most
	// of it, and small organizations' runs waited seconds per workflow task (issue 10).
	Pollers int
	// Syncs caps the directory reads and plans this worker runs at once, over every
	// organization (0: DefaultSyncs). Pages caps its page evaluations (0: DefaultPages). Each
	// is the activity slots of its own lane (workflows.ReadTaskQueue, PageTaskQueue): what
	// exceeds the cap waits in the server's queue, in order, holding no slot of this worker
	// and counting against no timeout, and other workers of the fleet take it when they
	// have room. Those lanes never run eagerly (eager dispatch is for the workflow's own
	// queue), so the caps hold for every step of those kinds.
	Syncs, Pages int
}

// DefaultSyncs is the directory reads and plans one worker runs at once unless set: two per
// core (GOMAXPROCS). A read waits on the directory and PostgreSQL about as long as it computes
// and a plan is mostly PostgreSQL, so two per core keep the cores busy; more only make a
// thousand organizations' reads share the CPU, all slower, and flood PostgreSQL and the
// Temporal server with their writes at once.
func DefaultSyncs() int { return 2 * runtime.GOMAXPROCS(0) }

// DefaultPages is the page evaluations one worker runs at once unless set: four per core. An
// evaluation is one short store read and the rules in memory, shorter than a read, so more
// of them keep a core busy; the users they release are capped by the SCIM lane.
func DefaultPages() int { return 4 * runtime.GOMAXPROCS(0) }

// DatabaseConns is the PostgreSQL connections a worker with these caps may hold at once: a
// directory read holds three (the mirror's view, the snapshot writer, the membership index),
// a page evaluation one, and a few for the rest (per-user steps take one briefly each).
func DatabaseConns(syncs, pages int) int {
	return 3*firstSet(syncs, DefaultSyncs()) + firstSet(pages, DefaultPages()) + 4
}

// DefaultPollers is the poller floor of each lane unless set.
const DefaultPollers = 8

// DefaultSCIMActivities is the SCIM steps one worker runs at once unless set.
const DefaultSCIMActivities = 200

// Steps are the activities the workflows call, by method name (the names in package steps,
// which the workflows use): *activities.Activities, or the benchmark's stand-in that does
// nothing (the fan-out's own cost). Declared here so that a stand-in missing a step fails to
// compile instead of failing a run; engine_test checks that the names and the methods agree.
type Steps interface {
	RunSettings(context.Context, steps.RunRef) (steps.FanOut, error)
	DiscoverTarget(context.Context, steps.SnapshotInput) (steps.TargetCheck, error)
	SnapshotDirectory(context.Context, steps.SnapshotInput) (steps.SnapshotResult, error)
	PlanRun(context.Context, steps.PlanInput) (steps.PlanResult, error)
	EvaluatePage(context.Context, steps.PageRef) (steps.PageEvaluation, error)
	CheckLicenses(context.Context, steps.SeatsInput) (steps.StepResult, error)
	ProvisionUser(context.Context, steps.UserStep) (steps.UserOutcome, error)
	ProbeTarget(context.Context, steps.UserStep) (bool, error)
	RecordUserFailure(context.Context, steps.UserFailureInput) (steps.UserOutcome, error)
	ReleaseUnsentSeats(context.Context, steps.UserStep) error
	SyncGroups(context.Context, steps.RunRef) (steps.GroupsResult, error)
	FinishRun(context.Context, steps.FinishInput) (steps.RunSummary, error)
	RecordEvent(context.Context, vocab.Event) error
	CheckAction(context.Context, steps.ActionCheck) (steps.ActionVerdict, error)
	WatchDirectory(context.Context, steps.WatchInput) (steps.WatchResult, error)
}

var _ Steps = (*activities.Activities)(nil)

// Autoscaling is the poller behavior of every lane: it scales up with the load and down to
// floor (0: DefaultPollers) polls, not to one.
func Autoscaling(floor int) worker.PollerBehavior {
	if floor <= 0 {
		floor = DefaultPollers
	}
	return worker.NewPollerBehaviorAutoscaling(worker.PollerBehaviorAutoscalingOptions{
		InitialNumberOfPollers: floor,
		MinimumNumberOfPollers: floor,
		MaximumNumberOfPollers: max(100, floor),
	})
}

// Start runs four workers on c: the main queue (workflows, store steps), the SCIM queue, and
// the capped lanes of the directory reads and plans and of the page evaluations. Stop them
// with the returned function.
func Start(c client.Client, acts Steps, opts Options) (stop func(), err error) {
	autoscale := Autoscaling(opts.Pollers)
	main := worker.New(c, workflows.TaskQueue, worker.Options{
		WorkflowTaskPollerBehavior: autoscale,
		ActivityTaskPollerBehavior: autoscale,
	})
	main.RegisterWorkflow(workflows.UserSyncWorkflow)
	main.RegisterWorkflow(workflows.SyncRunWorkflow)
	main.RegisterWorkflow(workflows.ProcessPageWorkflow)
	main.RegisterActivity(acts)

	if opts.SCIMActivities <= 0 {
		opts.SCIMActivities = DefaultSCIMActivities
	}
	scim := worker.New(c, workflows.SCIMTaskQueue, worker.Options{
		MaxConcurrentActivityExecutionSize: opts.SCIMActivities,
		ActivityTaskPollerBehavior:         autoscale,
		DisableWorkflowWorker:              true,
	})
	scim.RegisterActivity(acts)

	workers := []worker.Worker{main, scim,
		capped(c, workflows.ReadTaskQueue, acts, firstSet(opts.Syncs, DefaultSyncs()), opts.Pollers),
		capped(c, workflows.PageTaskQueue, acts, firstSet(opts.Pages, DefaultPages()), opts.Pollers)}
	queues := []string{workflows.TaskQueue, workflows.SCIMTaskQueue, workflows.ReadTaskQueue, workflows.PageTaskQueue}
	stopAll := func(ws []worker.Worker) {
		for i := len(ws) - 1; i >= 0; i-- {
			ws[i].Stop()
		}
	}
	for i, w := range workers {
		if err := w.Start(); err != nil {
			stopAll(workers[:i])
			return nil, fmt.Errorf("start worker on %s: %w", queues[i], err)
		}
	}
	return func() { stopAll(workers) }, nil
}

// capped is an activity worker on queue that runs at most slots activities at once. Its polls
// need a free slot, so it keeps no more than slots open.
func capped(c client.Client, queue string, acts Steps, slots, pollers int) worker.Worker {
	w := worker.New(c, queue, worker.Options{
		MaxConcurrentActivityExecutionSize: slots,
		ActivityTaskPollerBehavior:         Autoscaling(min(firstSet(pollers, DefaultPollers), slots)),
		DisableWorkflowWorker:              true,
	})
	w.RegisterActivity(acts)
	return w
}

func firstSet(v, def int) int {
	if v > 0 {
		return v
	}
	return def
}
