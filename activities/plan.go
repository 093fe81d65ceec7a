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
	if err := a.Store.DeleteWork(ctx, in.RunID); err != nil { // an earlier attempt's items
		return PlanResult{}, err
	}
	pr := &planRun{ctx: ctx, st: a.Store, in: in, p: plan.NewPlanner(pin), w: a.Store.NewWorkWriter(in.RunID)}
	if err := pr.users(); err != nil {
		return PlanResult{}, err
	}
	if err := pr.seats(); err != nil {
		return PlanResult{}, err
	}
	if warning := pr.p.SuspiciousRead(pr.read, pr.res.InScope); warning != "" {
		pr.res.Warnings = append(pr.res.Warnings, warning)
		return pr.res, nil // no suspension, no failure cleared
	}
	if err := pr.leavers(); err != nil {
		return PlanResult{}, err
	}
	if err := pr.failedLeavers(); err != nil {
		return PlanResult{}, err
	}
	if !in.DryRun {
		err = a.Store.ClearFailures(ctx, in.Org, pr.resolved)
	}
	return pr.res, err
}

// planBatch is how many users wait for their applied states at a time.
const planBatch = 500

// planRun is one streaming plan: its writes, counts, and the IDs of users out of scope.
type planRun struct {
	ctx context.Context
	st  *store.Store
	in  PlanInput
	p   *plan.Planner
	w   *store.WorkWriter

	res        PlanResult
	read       int                 // users the directory read returned
	outOfScope []string            // returned, linked, active and out of scope: to suspend
	resolved   []string            // failed users whose failure no longer matters
	pending    []store.PlanRow     // users waiting for their applied states
	failures   []store.WorkFailure // items to turn into failures
}

// users decides for every user the read returned. Users the hash does not settle wait in
// small batches for their applied states, read together.
func (pr *planRun) users() error {
	err := pr.st.PlanRows(pr.ctx, pr.in.Org, pr.in.RunID, func(r store.PlanRow) error {
		pr.read++
		if pr.p.Settled(r.User, r.AppliedHash, r.Failure != nil, r.Held) {
			pr.res.InScope++
			pr.res.Unchanged++
			return nil
		}
		if pr.pending = append(pr.pending, r); len(pr.pending) == planBatch {
			return pr.decidePending()
		}
		return nil
	})
	if err == nil {
		err = pr.decidePending()
	}
	if err == nil {
		err = pr.w.Flush(pr.ctx)
	}
	return err
}

func (pr *planRun) decidePending() error {
	var ids []string
	for _, r := range pr.pending {
		if r.AppliedHash != "" {
			ids = append(ids, r.User.ExternalID)
		}
	}
	states, err := pr.st.AppliedStatesOf(pr.ctx, pr.in.Org, ids)
	if err != nil {
		return err
	}
	for _, r := range pr.pending {
		row := plan.Row{User: r.User, Failure: r.Failure, Held: r.Held}
		if ap, ok := states[r.User.ExternalID]; ok {
			row.Applied = &ap
		}
		v := pr.p.User(row)
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
			pr.outOfScope = append(pr.outOfScope, r.User.ExternalID)
		case v.Resolved:
			pr.resolved = append(pr.resolved, r.User.ExternalID)
		}
	}
	pr.pending = pr.pending[:0]
	return nil
}

// seats hands out seats to the items that need new ones, in seat order; the losers fail
// out_of_licenses.
func (pr *planRun) seats() error {
	seats, used, err := pr.st.SeatCounts(pr.ctx, pr.in.Org)
	if err != nil {
		return err
	}
	ledger := plan.NewSeatLedger(seats, used)
	err = pr.st.SeatCandidates(pr.ctx, pr.in.RunID, func(seq int, action plan.Action, products []string) error {
		if f := ledger.Take(products); f != nil {
			return pr.fail(seq, action, *f)
		}
		return nil
	})
	if err != nil {
		return err
	}
	return pr.flushFailures()
}

// leavers plans the suspension of linked active users out of scope: the ones the read
// returned (decided already) and the ones it did not. All are held as suspension_held when
// there are more than the safety threshold allows.
func (pr *planRun) leavers() error {
	decided := make(map[string]bool, len(pr.outOfScope))
	for _, id := range pr.outOfScope {
		decided[id] = true
	}
	first := pr.w.Count()
	err := pr.st.Leavers(pr.ctx, pr.in.Org, pr.in.RunID, pr.outOfScope, func(ap plan.Applied, f *plan.Failure, held []string) error {
		if !decided[ap.ExternalID] && !pr.p.Left(ap.ExternalID, "", &ap, f).Suspend {
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
	active, err := pr.st.ActiveLinked(pr.ctx, pr.in.Org)
	if err != nil {
		return err
	}
	msg := pr.p.HoldSuspensions(n, active)
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

// failedLeavers finds the failed users the read did not return whose failure no longer
// matters.
func (pr *planRun) failedLeavers() error {
	return pr.st.FailedLeavers(pr.ctx, pr.in.Org, pr.in.RunID, func(id, userName string, f plan.Failure) error {
		if pr.p.Left(id, userName, nil, &f).Resolved {
			pr.resolved = append(pr.resolved, id)
		}
		return nil
	})
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
	err := pr.st.FailWork(pr.ctx, pr.in.RunID, pr.failures)
	pr.failures = pr.failures[:0]
	return err
}
