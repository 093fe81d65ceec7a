package activities

import (
	"context"

	"github.com/usersync/usersync/internal/plan"
	"github.com/usersync/usersync/internal/steps"
)

// PlanRun computes the run's per-user work from its snapshot and stores it: plan.Stream
// drives the same decisions plan.Plan makes over the store's streams (store.RunPlanning,
// which selects, streams and writes, and decides nothing). Memory holds a batch and the IDs
// of users who left scope, never the directory. Failures no longer relevant are cleared
// unless the run is dry.
func (a *Activities) PlanRun(ctx context.Context, in steps.PlanInput) (steps.PlanResult, error) {
	defer keepAlive(ctx)()
	pin, err := loadPlanConfig(ctx, a.Store, in.Org)
	if err != nil {
		return steps.PlanResult{}, err
	}
	pin.Retry, pin.ApproveSuspensions = in.Retry, in.ApproveSuspensions
	pin.SuspendThresholdPercent, pin.SuspendThresholdMax = a.SuspendThresholdPercent, a.SuspendThresholdMax
	if err := a.Store.DeleteWork(ctx, in.RunID); err != nil { // an earlier attempt's items
		return steps.PlanResult{}, err
	}
	sum, err := plan.Stream(ctx, pin, a.Store.Planning(in.Org, in.RunID))
	if err != nil {
		return steps.PlanResult{}, err
	}
	if !in.DryRun {
		if err := a.Store.ClearFailures(ctx, in.Org, sum.Resolved); err != nil {
			return steps.PlanResult{}, err
		}
	}
	return steps.PlanResult{Items: sum.Items, Creates: sum.Creates, Updates: sum.Updates, Suspends: sum.Suspends,
		Fails: sum.Fails, Unchanged: sum.Unchanged, InScope: sum.InScope,
		SuspensionsHeld: sum.SuspensionsHeld, Warnings: sum.Warnings}, nil
}
