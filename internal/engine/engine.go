// Package engine starts the Temporal workers that run usersync's workflows and activities.
// The worker command and the integration tests share it.
package engine

import (
	"fmt"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"

	"github.com/usersync/usersync/activities"
	"github.com/usersync/usersync/workflows"
)

// Options shape the workers.
type Options struct {
	// SCIMRate is the target's request budget per second, enforced by the Temporal server
	// across all workers polling the SCIM queue.
	SCIMRate float64
}

// RateHeadroom keeps dispatch just under the target's limit: at exactly the limit, normal
// jitter between workers and the network lands some requests in an empty bucket (429).
const RateHeadroom = 0.98

// Start runs two workers on c: the main queue (workflows, store and directory steps) and the
// SCIM queue (rate limited). Stop them with the returned function.
func Start(c client.Client, acts *activities.Activities, opts Options) (stop func(), err error) {
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
		TaskQueueActivitiesPerSecond: opts.SCIMRate * RateHeadroom,
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
