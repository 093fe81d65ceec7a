package activities

import (
	"context"
	"fmt"
	"time"

	"go.temporal.io/sdk/activity"

	"github.com/usersync/usersync/internal/directory"
	"github.com/usersync/usersync/internal/plan"
	"github.com/usersync/usersync/internal/store"
)

// RecordEvent writes to the administrative activity history.
func (a *Activities) RecordEvent(ctx context.Context, e store.Event) error {
	return a.Store.AddEvent(ctx, e)
}

// SnapshotDirectory reads the users of the ruled groups into the run's snapshot. A failed read
// fails the activity (Temporal retries it); it is never taken as "everyone left".
func (a *Activities) SnapshotDirectory(ctx context.Context, in SnapshotInput) (SnapshotResult, error) {
	if err := a.Store.BeginRun(ctx, in.Org, in.RunID, in.Kind, in.DryRun); err != nil {
		return SnapshotResult{}, err
	}
	rs, err := a.Store.Rules(ctx, in.Org)
	if err != nil {
		return SnapshotResult{}, err
	}
	ms, err := a.Store.Mappings(ctx, in.Org)
	if err != nil {
		return SnapshotResult{}, err
	}
	groupDNs, attrs := SnapshotScope(rs, ms)
	var res SnapshotResult
	if len(groupDNs) == 0 {
		return res, nil
	}
	dir, err := a.DialDirectory(ctx)
	if err != nil {
		return res, fmt.Errorf("directory: %w", err)
	}
	defer dir.Close()
	batch := a.SnapshotBatch
	if batch <= 0 {
		batch = 1000
	}
	stats, err := dir.Snapshot(ctx, groupDNs, attrs, batch, func(us []directory.User) error {
		for _, u := range us {
			if !u.Disabled {
				res.InScope++
			}
		}
		activity.RecordHeartbeat(ctx, res.InScope)
		return a.Store.WriteSnapshot(ctx, in.RunID, us)
	})
	if err != nil {
		return SnapshotResult{}, fmt.Errorf("directory read: %w", err)
	}
	res.Users, res.Disabled, res.Groups, res.MissingGroups = stats.Users, stats.Disabled, stats.Groups, stats.MissingGroups
	return res, nil
}

// PlanRun computes the run's per-user work from its snapshot and stores it.
func (a *Activities) PlanRun(ctx context.Context, in PlanInput) (PlanResult, error) {
	pin, err := loadPlanConfig(ctx, a.Store, in.Org)
	if err != nil {
		return PlanResult{}, err
	}
	pin.Retry, pin.ApproveSuspensions = in.Retry, in.ApproveSuspensions
	pin.SuspendThresholdPercent, pin.SuspendThresholdMax = a.SuspendThresholdPercent, a.SuspendThresholdMax
	hashes, err := a.Store.AppliedHashes(ctx, in.Org)
	if err != nil {
		return PlanResult{}, err
	}
	// Users whose applied state already matches are counted, not kept: memory follows the
	// changes, not the directory. (A retry plans only failed users: nothing to leave out.)
	settler := plan.NewSettler(pin)
	inSnapshot, kept := map[string]bool{}, map[string]bool{}
	if err := a.Store.SnapshotUsers(ctx, in.RunID, func(u directory.User) error {
		inSnapshot[u.ExternalID] = true
		if in.Retry == nil && settler.Settled(u, hashes[u.ExternalID]) {
			pin.Settled++
			return nil
		}
		kept[u.ExternalID] = true
		pin.Users = append(pin.Users, u)
		return nil
	}); err != nil {
		return PlanResult{}, err
	}
	// Applied states are needed for the users kept and for linked users the read did not
	// return (suspension candidates).
	if pin.Applied, err = a.Store.AppliedStatesWhere(ctx, in.Org, func(id string) bool {
		return kept[id] || !inSnapshot[id]
	}); err != nil {
		return PlanResult{}, err
	}
	out := plan.Plan(pin)
	if err := a.Store.WriteWork(ctx, in.RunID, out.Items); err != nil {
		return PlanResult{}, err
	}
	if !in.DryRun {
		if err := a.Store.ClearFailures(ctx, in.Org, out.Resolved); err != nil {
			return PlanResult{}, err
		}
	}
	res := PlanResult{Items: len(out.Items), Unchanged: out.Unchanged, InScope: out.InScope,
		SuspensionsHeld: out.SuspensionsHeld, Warnings: out.Warnings}
	for _, it := range out.Items {
		switch it.Action {
		case plan.Create:
			res.Creates++
		case plan.Update:
			res.Updates++
		case plan.Suspend:
			res.Suspends++
		case plan.Fail:
			res.Fails++
		}
	}
	return res, nil
}

// FinishRun records the run's outcome and history, and returns its summary with the
// organization's current banners.
func (a *Activities) FinishRun(ctx context.Context, in FinishInput) (RunSummary, error) {
	sum := RunSummary{FinishInput: in, InScope: in.Plan.InScope, FinishedAt: time.Now().UTC()}
	banners, err := a.Store.Banners(ctx, in.Org)
	if err != nil {
		return sum, err
	}
	sum.Banners = banners
	if err := a.Store.FinishRun(ctx, in.RunID, in.Status, sum); err != nil {
		return sum, err
	}
	action := "sync"
	if in.DryRun {
		action = "dry-run"
	}
	status := "ok"
	if in.Status != store.RunSucceeded {
		status = in.Status
	}
	err = a.Store.AddEvent(ctx, store.Event{Org: in.Org, Type: store.EventSync, Action: action + " finished", Status: status,
		Details: map[string]any{"run": in.RunID, "kind": in.Kind, "outcomes": in.Outcomes, "failures": in.Failures,
			"unchanged": in.Plan.Unchanged, "inScope": in.Plan.InScope, "warnings": in.Plan.Warnings, "error": in.Error}})
	return sum, err
}
