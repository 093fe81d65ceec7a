package activities

import (
	"context"
	"sync/atomic"

	"github.com/usersync/usersync/internal/plan"
	"github.com/usersync/usersync/internal/steps"
)

// planProgress is PlanRun's heartbeat details.
type planProgress struct {
	Users  int64 `json:"users"`  // snapshot users planned
	Absent int64 `json:"absent"` // users the read did not return, planned
	Items  int64 `json:"items"`  // work items written
	Seats  int64 `json:"seats"`  // seat candidates handed a seat or not
}

// PlanRun computes the run's per-user work from its snapshot and stores it: plan.Stream
// drives the same decisions plan.Plan makes over the store's streams (store.RunPlanning,
// which selects, streams and writes, and decides nothing). Memory holds a batch and the IDs
// of users who left scope, never the directory. Failures no longer relevant are cleared
// unless the run is dry.
//
// It heartbeats as users are planned and items written (progress), so a hung statement is
// timed out by the heartbeat timeout. A retried attempt starts over (DeleteWork): the
// decisions depend on what the stream has seen so far (seats handed out in order, the users
// who left, the safety threshold over the whole read), which the work table alone does not
// hold, so resuming mid-way could hand out seats twice or suspend by a partial count.
func (a *Activities) PlanRun(ctx context.Context, in steps.PlanInput) (_ steps.PlanResult, err error) {
	var c planCounts
	ctx, p := startProgress(ctx, func() any {
		return planProgress{Users: c.users.Load(), Absent: c.absent.Load(), Items: c.items.Load(), Seats: c.seats.Load()}
	})
	defer p.end(&err)
	pin, err := loadPlanConfig(ctx, a.Store, in.Org)
	if err != nil {
		return steps.PlanResult{}, err
	}
	p.tick()
	pin.Retry, pin.ApproveSuspensions, pin.ApprovedHeld = in.Retry, in.ApproveSuspensions, in.ApprovedHeld
	o, err := a.org(ctx, in.Org)
	if err != nil {
		return steps.PlanResult{}, err
	}
	pin.SuspendThresholdPercent, pin.SuspendThresholdMax = o.SuspendThresholdPercent, o.SuspendThresholdMax
	if pin.Delta, err = a.Store.DeltaSnapshot(ctx, in.RunID); err != nil {
		return steps.PlanResult{}, err
	}
	if err := a.Store.DeleteWork(ctx, in.RunID); err != nil { // an earlier attempt's items
		return steps.PlanResult{}, err
	}
	p.tick()
	pl := a.Store.Planning(in.Org, in.RunID)
	pl.Delta = pin.Delta
	sum, err := plan.Stream(ctx, pin, progressPlanning{Store: pl, p: p, c: &c})
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

// planCounts are PlanRun's progress counters.
type planCounts struct{ users, absent, items, seats atomic.Int64 }

// progressPlanning is a plan store whose every row read or written is progress.
type progressPlanning struct {
	plan.Store
	p *progress
	c *planCounts
}

func (s progressPlanning) Users(ctx context.Context, fn func(plan.UserRow) error) error {
	return s.Store.Users(ctx, func(u plan.UserRow) error {
		s.c.users.Add(1)
		s.p.tick()
		return fn(u)
	})
}

func (s progressPlanning) Absent(ctx context.Context, fn func(plan.Known) error) error {
	return s.Store.Absent(ctx, func(k plan.Known) error {
		s.c.absent.Add(1)
		s.p.tick()
		return fn(k)
	})
}

func (s progressPlanning) AppliedStates(ctx context.Context, externalIDs []string) (map[string]plan.Applied, error) {
	m, err := s.Store.AppliedStates(ctx, externalIDs)
	if err == nil {
		s.p.tick()
	}
	return m, err
}

func (s progressPlanning) Seats(ctx context.Context) (map[string]int, map[string]int, error) {
	seats, used, err := s.Store.Seats(ctx)
	if err == nil {
		s.p.tick()
	}
	return seats, used, err
}

func (s progressPlanning) Untouched(ctx context.Context) (int, error) {
	n, err := s.Store.Untouched(ctx)
	if err == nil {
		s.p.tick()
	}
	return n, err
}

func (s progressPlanning) ActiveLinked(ctx context.Context) (int, error) {
	n, err := s.Store.ActiveLinked(ctx)
	if err == nil {
		s.p.tick()
	}
	return n, err
}

func (s progressPlanning) AddWork(ctx context.Context, it plan.Item, key plan.SeatKey) error {
	if err := s.Store.AddWork(ctx, it, key); err != nil {
		return err
	}
	s.c.items.Add(1)
	s.p.tick()
	return nil
}

func (s progressPlanning) FlushWork(ctx context.Context) error {
	if err := s.Store.FlushWork(ctx); err != nil {
		return err
	}
	s.p.tick()
	return nil
}

func (s progressPlanning) SeatCandidates(ctx context.Context, fn func(plan.Work) error) error {
	return s.Store.SeatCandidates(ctx, func(w plan.Work) error {
		s.c.seats.Add(1)
		s.p.tick()
		return fn(w)
	})
}

func (s progressPlanning) ReplaceWork(ctx context.Context, ws []plan.Work) error {
	if err := s.Store.ReplaceWork(ctx, ws); err != nil {
		return err
	}
	s.p.tick()
	return nil
}
