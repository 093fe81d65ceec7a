// Package engine starts the Temporal workers that run usersync's workflows and activities.
// The worker command and the integration tests share it.
package engine

import (
	"fmt"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"

	"github.com/usersync/usersync/workflows"
)

// Options shape the workers.
type Options struct {
	// SCIMRate is the target's request budget per second, enforced by the Temporal server
	// across all workers polling the SCIM queue.
	SCIMRate float64
}

// RateHeadroom keeps the request pace (see store.Pacer) just under the target's limit, so
// that network jitter never lands a request in an empty bucket (429).
const RateHeadroom = 0.98

// dispatchSlack lets the server dispatch SCIM activities somewhat faster than the pace: the
// pacer spaces the requests exactly; two limiters at the same rate in series would leave
// slots unused whenever dispatch jitters. The server-side limit only keeps the backlog small.
const dispatchSlack = 1.5

// Start runs two workers on c: the main queue (workflows, store and directory steps) and the
// SCIM queue (rate limited). acts is an *activities.Activities (or, for the benchmark
// ceiling, a stand-in with the same method names). Stop them with the returned function.
func Start(c client.Client, acts any, opts Options) (stop func(), err error) {
	autoscale := worker.NewPollerBehaviorAutoscaling(worker.PollerBehaviorAutoscalingOptions{})
	main := worker.New(c, workflows.TaskQueue, worker.Options{
		WorkflowTaskPollerBehavior: autoscale,
		ActivityTaskPollerBehavior: autoscale,
	})
	main.RegisterWorkflow(workflows.UserSyncWorkflow)
	main.RegisterWorkflow(workflows.SyncRunWorkflow)
	main.RegisterWorkflow(workflows.ProcessPageWorkflow)
	main.RegisterActivity(acts)

	scim := worker.New(c, workflows.SCIMTaskQueue, worker.Options{
		TaskQueueActivitiesPerSecond: opts.SCIMRate * dispatchSlack,
		ActivityTaskPollerBehavior:   autoscale,
		DisableWorkflowWorker:        true,
	})
	scim.RegisterActivity(acts)

	if err := main.Start(); err != nil {
		return nil, fmt.Errorf("start worker on %s: %w", workflows.TaskQueue, err)
	}
	if err := scim.Start(); err != nil {
		main.Stop()
		return nil, fmt.Errorf("start worker on %s: %w", workflows.SCIMTaskQueue, err)
	}
	return func() { scim.Stop(); main.Stop() }, nil
}
