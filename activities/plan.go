package activities

import (
	"context"

	"github.com/usersync/usersync/internal/plan"
	"github.com/usersync/usersync/internal/store"
)

// PlanRun computes the run's per-user work from its snapshot and stores it, streaming: it
// drives plan.Planner over the snapshot joined with the store's per-user state, writes items
// as they are decided, then hands out seats in seat order from the work table, then plans
// the users who left. Memory holds a batch and the IDs of users who left scope, never the
// directory. It decides exactly what plan.Plan decides for the same input.
func (a *Activities) PlanRun(ctx context.Context, in PlanInput) (PlanResult, error) {
	defer keepAlive(ctx)()
	pin, err := loadPlanConfig(ctx, a.Store, in.Org)
	if err != nil {
		return PlanResult{}, err
	}
	pin.Retry, pin.ApproveSuspensions = in.Retry, in.ApproveSuspensions
	pin.SuspendThresholdPercent, pin.SuspendThresholdMax = a.SuspendThresholdPercent, a.SuspendThresholdMax
	p := plan.NewPlanner(pin)
	if err := a.Store.DeleteWork(ctx, in.RunID); err != nil { // an earlier attempt's items
		return PlanResult{}, err
	}
	pr := planRun{ctx: ctx, st: a.Store, runID: in.RunID, w: a.Store.NewWorkWriter(in.RunID)}

	// 1. Every user the read returned. Users not settled by their hash wait in small batches
	// for their applied states, read together.
	read := 0
	var outOfScope, resolved []string
	var pending []store.PlanRow
	decide := func() error {
		var ids []string
		for _, r := range pending {
			if r.AppliedHash != "" {
				ids = append(ids, r.User.ExternalID)
			}
		}
		states, err := a.Store.AppliedStatesOf(ctx, in.Org, ids)
		if err != nil {
			return err
		}
		for _, r := range pending {
			row := plan.Row{User: r.User, Failure: r.Failure, Held: r.Held}
			if ap, ok := states[r.User.ExternalID]; ok {
				row.Applied = &ap
			}
			v := p.User(row)
			if v.InScope {
				pr.res.InScope++
			}
			switch {
			case v.Unchanged:
				pr.res.Unchanged++
			case v.Item != nil:
				if err := pr.add(*v.Item, v.SeatKey); err != nil {
					return err
				}
			case v.Suspend:
				outOfScope = append(outOfScope, r.User.ExternalID)
			case v.Resolved:
				resolved = append(resolved, r.User.ExternalID)
			}
		}
		pending = pending[:0]
		return nil
	}
	err = a.Store.PlanRows(ctx, in.Org, in.RunID, func(r store.PlanRow) error {
		read++
		if p.Settled(r.User, r.AppliedHash, r.Failure != nil, r.Held) {
			pr.res.InScope++
			pr.res.Unchanged++
			return nil
		}
		if pending = append(pending, r); len(pending) == planBatch {
			return decide()
		}
		return nil
	})
	if err == nil {
		err = decide()
	}
	if err == nil {
		err = pr.w.Flush(ctx)
	}
	if err != nil {
		return PlanResult{}, err
	}

	// 2. Seats, in seat order: the losers fail out_of_licenses.
	seats, used, err := a.Store.SeatCounts(ctx, in.Org)
	if err != nil {
		return PlanResult{}, err
	}
	ledger := plan.NewSeatLedger(seats, used)
	err = a.Store.SeatCandidates(ctx, in.RunID, func(seq int, action plan.Action, products []string) error {
		if f := ledger.Take(products); f != nil {
			return pr.fail(seq, action, *f)
		}
		return nil
	})
	if err == nil {
		err = pr.flushFailures()
	}
	if err != nil {
		return PlanResult{}, err
	}

	// 3. Users who left scope, unless the read looks wrong.
	if warning := p.SuspiciousRead(read, pr.res.InScope); warning != "" {
		pr.res.Warnings = append(pr.res.Warnings, warning)
		return pr.res, nil
	}
	if err := pr.leavers(p, in, outOfScope); err != nil {
		return PlanResult{}, err
	}
	err = a.Store.FailedLeavers(ctx, in.Org, in.RunID, func(id, userName string, f plan.Failure) error {
		if p.Left(id, userName, nil, &f).Resolved {
			resolved = append(resolved, id)
		}
		return nil
	})
	if err == nil && !in.DryRun {
		err = a.Store.ClearFailures(ctx, in.Org, resolved)
	}
	return pr.res, err
}

// planBatch is how many users wait for their applied states at a time.
const planBatch = 500

// planRun accumulates one streaming plan's writes and counts.
type planRun struct {
	ctx      context.Context
	st       *store.Store
	runID    string
	w        *store.WorkWriter
	res      PlanResult
	failures []store.WorkFailure
}

func (pr *planRun) add(it plan.Item, key plan.SeatKey) error {
	pr.res.Items++
	pr.count(it.Action, 1)
	return pr.w.Add(pr.ctx, it, key)
}

func (pr *planRun) count(action plan.Action, n int) {
	switch action {
	case plan.Create:
		pr.res.Creates += n
	case plan.Update:
		pr.res.Updates += n
	case plan.Suspend:
		pr.res.Suspends += n
	case plan.Fail:
		pr.res.Fails += n
	}
}

// fail turns an item already written into a failure (batched).
func (pr *planRun) fail(seq int, action plan.Action, f plan.Failure) error {
	pr.count(action, -1)
	pr.count(plan.Fail, 1)
	pr.failures = append(pr.failures, store.WorkFailure{Seq: seq, Failure: f})
	if len(pr.failures) >= 1000 {
		return pr.flushFailures()
	}
	return nil
}

func (pr *planRun) flushFailures() error {
	err := pr.st.FailWork(pr.ctx, pr.runID, pr.failures)
	pr.failures = pr.failures[:0]
	return err
}

// leavers plans the suspension of linked active users out of scope: the ones the read
// returned (outOfScope, decided already) and the ones it did not. All are held as
// suspension_held when there are more than the safety threshold allows.
func (pr *planRun) leavers(p *plan.Planner, in PlanInput, outOfScope []string) error {
	decided := make(map[string]bool, len(outOfScope))
	for _, id := range outOfScope {
		decided[id] = true
	}
	first := pr.w.Count()
	err := pr.st.Leavers(pr.ctx, in.Org, in.RunID, outOfScope, func(ap plan.Applied, f *plan.Failure, held []string) error {
		if !decided[ap.ExternalID] && !p.Left(ap.ExternalID, "", &ap, f).Suspend {
			return nil
		}
		return pr.add(plan.SuspendItem(ap, held), plan.SeatKey{})
	})
	if err == nil {
		err = pr.w.Flush(pr.ctx)
	}
	if err != nil {
		return err
	}
	n := pr.w.Count() - first
	if n == 0 {
		return nil
	}
	active, err := pr.st.ActiveLinked(pr.ctx, in.Org)
	if err != nil {
		return err
	}
	msg := p.HoldSuspensions(n, active)
	if msg == "" {
		return nil
	}
	pr.res.SuspensionsHeld = true
	pr.res.Warnings = append(pr.res.Warnings, msg)
	for seq := first; seq < first+n; seq++ {
		if err := pr.fail(seq, plan.Suspend, plan.Failure{Type: plan.SuspensionHeld, Message: msg}); err != nil {
			return err
		}
	}
	return pr.flushFailures()
}
