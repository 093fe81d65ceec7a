package activities

import (
	"context"
	"crypto/rand"
	"fmt"
	"slices"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/usersync/usersync/internal/plan"
	"github.com/usersync/usersync/internal/scim"
	"github.com/usersync/usersync/internal/steps"
	"github.com/usersync/usersync/internal/store"
	"github.com/usersync/usersync/internal/vocab"
)

// EvaluatePage is the rule-evaluation step for a page of users: the plan already resolved
// each user's rules; this records the users it failed before provisioning (domain not
// validated, invalid data, out of licenses, suspension held) and hands the others on with
// the seats they need. One store read per page instead of one per user.
func (a *Activities) EvaluatePage(ctx context.Context, in steps.PageRef) (steps.PageEvaluation, error) {
	items, err := a.Store.WorkItemRange(ctx, in.RunID, in.From, in.To)
	if err != nil {
		return steps.PageEvaluation{}, err
	}
	ev := steps.PageEvaluation{Failures: map[string]int{}}
	unsettled, err := a.openIntentsOfFailed(ctx, in.Org, items)
	if err != nil {
		return steps.PageEvaluation{}, err
	}
	for i, it := range items {
		step := steps.UserStep{RunRef: in.RunRef, Seq: in.From + i}
		if it.Action == plan.Fail && it.Failure != nil && !unsettled[it.ExternalID] {
			// Seats held without an account or a write (a reservation never used) go back.
			if len(it.ReleaseSeats) > 0 {
				if err := a.Store.ReleaseUnsent(ctx, in.Org, it.ExternalID, it.ReleaseSeats); err != nil {
					return steps.PageEvaluation{}, err
				}
			}
			if _, err := a.fail(ctx, step, it, *it.Failure, false); err != nil {
				return steps.PageEvaluation{}, err
			}
			ev.Failures[it.Failure.Type]++
			continue
		}
		// A failed user whose earlier write's outcome is unknown goes on too, without seats:
		// the provisioning step reads the target for that write first (settleFailed).
		ev.Users = append(ev.Users, steps.UserPlan{Seq: step.Seq, ExternalID: it.ExternalID, Seats: it.NewSeats,
			Action: string(it.Action)})
	}
	return ev, nil
}

// openIntentsOfFailed returns which of the users the plan failed have an open write intent
// (one query, none when nothing failed).
func (a *Activities) openIntentsOfFailed(ctx context.Context, org string, items []plan.Item) (map[string]bool, error) {
	var ids []string
	for _, it := range items {
		if it.Action == plan.Fail && it.Failure != nil {
			ids = append(ids, it.ExternalID)
		}
	}
	if len(ids) == 0 {
		return nil, nil
	}
	return a.Store.OpenIntentsAmong(ctx, org, ids)
}

// CheckLicenses takes the seats the plan granted, in one transaction that also checks they
// are still free (another run may have taken them).
func (a *Activities) CheckLicenses(ctx context.Context, in steps.SeatsInput) (steps.StepResult, error) {
	short, seats, err := a.Store.ReserveSeats(ctx, in.Org, in.ExternalID, in.Products)
	if err != nil {
		return steps.StepResult{}, err
	}
	if short == "" {
		return steps.StepResult{Continue: true, Outcome: steps.UserOutcome{Seq: in.Seq, ExternalID: in.ExternalID}}, nil
	}
	it, err := a.Store.WorkItem(ctx, in.RunID, in.Seq)
	if err != nil {
		return steps.StepResult{}, err
	}
	// The reservation is all or nothing: none was taken, nothing to give back (and an open
	// intent of an earlier write stays open).
	o, err := a.fail(ctx, in.UserStep, it, *plan.OutOfLicensesFailure(short, seats), false)
	return steps.StepResult{Outcome: o}, err
}

// ProvisionUser brings one account in the target to its desired state: create, PATCH what
// changed, or suspend. Business refusals become failures; transient errors are returned for
// Temporal to retry (a retryable target_unavailable error, after the target's Retry-After
// when it sent one); refused credentials stop the run (a non-retryable target_auth error).
// An account the target holds is always linked, also when a later step for it failed: seats
// then follow what the target holds.
//
// Every write is accounted for (write intents, migration 022): before its first request an
// attempt records its intent (in the statement that reads its work); the save of the outcome
// closes it. A write
// whose outcome is unknown (an error worth retrying: a lost answer, a 5xx after the target
// committed, a timeout, a crash) leaves it open, and the user's seats stay. An attempt that
// finds an open intent first reads what the target holds (reconcile) and continues from
// there: an account created by a lost write is linked, never created twice. Seats go back
// only for a write that provably did not happen: refused by the target, or not found in it.
//
// Each request is sent once (the worker's client makes one try per call): Temporal owns the
// retries. An attempt starts only when the shared request pace has room for it (see admit),
// so that no attempt spends its StartToClose waiting for slots.
//
// The attempt shows progress (each store step and each request answered; a heartbeat at most
// every eighth of the heartbeat timeout, so most attempts send none): an attempt that stops
// progressing (a hung statement or request, a wait that never ends) is stopped within
// provisionOptions' HeartbeatTimeout and retried, and one that never ran at all (its start
// was recorded by the server but the task never reached a worker: a lost dispatch on an
// overloaded server, a worker gone) times out after the HeartbeatTimeout, not after the
// whole StartToClose. Cancellation (disable) does not stop a write once sent:
// the requests run on the progress's write context.
func (a *Activities) ProvisionUser(ctx context.Context, in steps.UserStep) (_ steps.UserOutcome, err error) {
	ctx, p := startProgress(ctx, func() any { return nil })
	defer p.end(&err)
	wctx, cancel := p.writeContext(ctx)
	defer cancel()
	return a.provisionUser(wctx, in, p)
}

func (a *Activities) provisionUser(ctx context.Context, in steps.UserStep, p *progress) (_ steps.UserOutcome, err error) {
	o, err := a.org(ctx, in.Org)
	if err != nil {
		return steps.UserOutcome{}, err
	}
	ctx, later, err := admit(ctx, o.Target, in)
	if err != nil {
		return steps.UserOutcome{}, err
	}
	p.tick()
	if later > 0 {
		// Nothing was sent: the seats stay reserved for the attempt at the user's turn.
		return steps.UserOutcome{}, temporal.NewApplicationErrorWithOptions(fmt.Sprintf(
			"the target's request pace is taken for now; this user's turn is in %v", later.Round(time.Millisecond)),
			RequestPaced, temporal.ApplicationErrorOptions{NextRetryDelay: later})
	}
	// From here on a write may be sent: the read opens its intent (when there was none).
	w, release, err := a.beginWrite(ctx, in)
	if err != nil {
		return steps.UserOutcome{}, err
	}
	defer release(&err)
	p.tick()
	target := tickingTarget{Target: o.Target, p: p}
	if w.Item.Action == plan.Fail {
		return a.settleFailed(ctx, target, in, w)
	}
	if w.Intent != nil {
		// The outcome of an earlier write is unknown: what the target holds comes first.
		if err := a.reconcile(ctx, target, in, &w); err != nil {
			// Still unknown: the intent and the seats stay for the next attempt.
			if scim.IsAuth(err) {
				return steps.UserOutcome{}, targetError(err)
			}
			return steps.UserOutcome{}, retryLater(err, provisionBackoff(ctx))
		}
	}
	if w.Item.Action == plan.Suspend && w.Applied == nil {
		// The user left, and the write we could not account for never landed: nothing in
		// the target to suspend, nothing left to do.
		return a.settle(ctx, in, w.Item)
	}
	it := w.Item
	if w.Intent != nil {
		// Reconciled: this write replaces the earlier one.
		if err := a.Store.OpenIntent(ctx, in.Org, it.ExternalID, it.Desired.UserName, in.RunID, string(it.Action)); err != nil {
			return steps.UserOutcome{}, err
		}
	}
	r, err := a.provision(ctx, target, in.Org, w)
	if r.holds != nil {
		// The target holds an account for this user that we have not linked yet (created or
		// adopted, then a later step failed): link it with the state it has.
		// Its seats stay reserved while the write is unfinished (its intent stays open): a
		// retried attempt finishes it; a refusal gives back those the account does not hold.
		if serr := a.Store.SaveLinked(ctx, in.Org, r.scimID, *r.holds, keepFor(*r.holds, it), in.RunID, r.status); serr != nil {
			return steps.UserOutcome{}, serr
		}
	}
	failure := r.failure
	switch {
	case err == nil:
	case scim.IsAuth(err):
		// The request was refused: it wrote nothing. The new seats go back (not those the
		// linked account holds), the intent closes, no failure is recorded.
		if rerr := a.Store.ReleaseUnsent(ctx, in.Org, it.ExternalID, it.NewSeats); rerr != nil {
			return steps.UserOutcome{}, rerr
		}
		return steps.UserOutcome{}, targetError(err)
	case scim.IsRejected(err) || scim.IsConflict(err):
		// A conflict left here is an update's (a create's is resolved by provision): the new
		// userName is another account's. Retrying cannot change that.
		failure = &vocab.Failure{Type: vocab.TargetRejected, Message: err.Error()}
		if r.holds != nil {
			failure.Message = fmt.Sprintf("the account was %s and linked, but the target refused the rest: %v", r.status, err)
		}
	default:
		// The outcome is unknown (the target may have committed): the intent stays open and
		// the next attempt reads the account first.
		activity.GetLogger(ctx).Warn("provisioning failed, will retry", "externalId", it.ExternalID, "error", err)
		return steps.UserOutcome{}, retryLater(err, provisionBackoff(ctx))
	}
	if failure != nil {
		// Refused by the target: the write did not happen.
		return a.fail(ctx, in, it, *failure, true)
	}
	if err := a.Store.SaveProvisioned(ctx, in.Org, r.scimID, it.Desired, in.RunID, r.status); err != nil {
		return steps.UserOutcome{}, err
	}
	return steps.UserOutcome{Seq: in.Seq, ExternalID: it.ExternalID, Status: r.status}, nil
}

// WriteHeld is the type of ProvisionUser's error when an earlier attempt for the user may
// still be writing (a local attempt that outlived its workflow task holds the user's write):
// retryable, with the end of that hold as NextRetryDelay.
const WriteHeld = vocab.WriteHeld

// holdMargin is added to a local attempt's remaining time for its hold: the database's
// clock counts it from a moment a little after the attempt's start.
const holdMargin = 5 * time.Second

// beginWrite opens the user's write (store.BeginUserWrite). A local attempt (the first write,
// run inside the page workflow's task) may outlive that task: the task lost, its results
// dropped, the task replayed with a new attempt for the same user. So it holds the intent it
// opens until it ends (release), and writes only when it opened it: an earlier write is
// reconciled by the activity, one attempt at a time. Any attempt that finds a live hold
// waits for its end. A local write also starts only while no other step decided about the
// item (store.CloseLocal): one that starts late, its task replayed meanwhile, writes nothing.
func (a *Activities) beginWrite(ctx context.Context, in steps.UserStep) (store.UserWork, func(*error), error) {
	noRelease := func(*error) {}
	if !activity.IsActivity(ctx) || !activity.GetInfo(ctx).IsLocalActivity {
		// A local write of this item may have been scheduled: from now on none starts, and
		// the read below sees the one that did.
		if err := a.Store.CloseLocal(ctx, in.RunID, in.Seq); err != nil {
			return store.UserWork{}, noRelease, err
		}
		w, err := a.Store.BeginUserWrite(ctx, in.Org, in.RunID, in.Seq)
		if err == nil && w.Intent != nil && w.Intent.HeldFor > 0 {
			return w, noRelease, heldError(w.Intent.HeldFor)
		}
		return w, noRelease, err
	}
	h := store.Hold{By: rand.Text(), For: time.Until(activity.GetInfo(ctx).Deadline) + holdMargin}
	w, err := a.Store.BeginHeldWrite(ctx, in.Org, in.RunID, in.Seq, h)
	switch {
	case err != nil:
		return w, noRelease, err
	case w.Intent != nil && w.Intent.HeldFor > 0:
		return w, noRelease, heldError(w.Intent.HeldFor)
	case w.Intent != nil:
		return w, noRelease, fmt.Errorf("item %d: an earlier write's outcome is unknown: the activity reconciles it", in.Seq)
	case w.Item.Action == plan.Fail:
		return w, noRelease, nil // nothing opened, nothing held
	}
	// A success closes the intent, and the hold with it; an attempt that ends otherwise
	// releases its hold: it writes no more (the intent stays open for the next attempt).
	return w, func(err *error) {
		if *err == nil {
			return
		}
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if rerr := a.Store.ReleaseHold(rctx, in.Org, w.Item.ExternalID, h.By); rerr != nil {
			activity.GetLogger(ctx).Warn("write hold not released: the next attempt waits for its end", "seq", in.Seq, "error", rerr)
		}
	}, nil
}

func heldError(d time.Duration) error {
	return temporal.NewApplicationErrorWithOptions(fmt.Sprintf(
		"an earlier attempt for this user may still be writing; it holds the write for %v more", d.Round(time.Millisecond)),
		WriteHeld, temporal.ApplicationErrorOptions{NextRetryDelay: d})
}

// tickingTarget is the target of one ProvisionUser attempt: each answered request is
// progress (a heartbeat).
type tickingTarget struct {
	Target
	p *progress
}

func (t tickingTarget) CreateUser(ctx context.Context, ext scim.Extension, d plan.Desired) (*scim.User, error) {
	defer t.p.tick()
	return t.Target.CreateUser(ctx, ext, d)
}

func (t tickingTarget) FindUserByExternalID(ctx context.Context, ext scim.Extension, externalID string) (*scim.User, error) {
	defer t.p.tick()
	return t.Target.FindUserByExternalID(ctx, ext, externalID)
}

func (t tickingTarget) FindUserByUserName(ctx context.Context, ext scim.Extension, userName string) (*scim.User, error) {
	defer t.p.tick()
	return t.Target.FindUserByUserName(ctx, ext, userName)
}

func (t tickingTarget) UpdateUser(ctx context.Context, ext scim.Extension, id string, from, to plan.Desired) error {
	defer t.p.tick()
	return t.Target.UpdateUser(ctx, ext, id, from, to)
}

// reconcile reads what the target holds for a user whose last write's outcome is unknown
// (w.Intent): the account with the user's externalId, else the one with the userName that
// write sent when it is ours (our externalId, or the account we linked). A found account is
// linked with the state it holds (its seats: the products it holds and those reserved for
// this run's write) and w continues from it; a suspension is recomputed from it. Not found:
// the write never landed, and w is unchanged (a create creates, a linked account is
// written as last saved). The intent stays open either way: the caller's write replaces it.
// (Seats reserved for products the account does not hold stay too: the write gives them.)
func (a *Activities) reconcile(ctx context.Context, t Target, in steps.UserStep, w *store.UserWork) error {
	it := w.Item
	u, err := findWritten(ctx, t, *w)
	if err != nil {
		return err
	}
	if u == nil {
		return notFoundYet(*w)
	}
	holds := heldBy(u, *w)
	if err := a.Store.SaveLinked(ctx, in.Org, u.ID, holds, keepFor(holds, it), in.RunID, ""); err != nil {
		return err
	}
	w.Applied = &plan.Applied{ExternalID: it.ExternalID, ScimID: u.ID, State: holds}
	if it.Action == plan.Suspend {
		w.Item.Desired = plan.SuspendItem(*w.Applied, nil).Desired
	}
	return nil
}

// findWritten looks up the account the user's open write (w.Intent) may have written: the
// one with the user's externalId, else the one with the userName the write sent when it is
// ours (our externalId, or the account we linked). nil: not found.
func findWritten(ctx context.Context, t Target, w store.UserWork) (*scim.User, error) {
	it := w.Item
	u, err := t.FindUserByExternalID(ctx, w.Extension, it.ExternalID)
	if err == nil && u == nil && w.Intent.UserName != "" {
		u, err = t.FindUserByUserName(ctx, w.Extension, w.Intent.UserName)
		if u != nil && u.ExternalID != it.ExternalID && (w.Applied == nil || u.ID != w.Applied.ScimID) {
			u = nil // someone else's account
		}
	}
	if err != nil {
		return nil, err
	}
	return u, nil
}

// searchSettle is how long after a write whose outcome is unknown a search that does not
// find its account is not yet taken for "it did not land". Targets whose search index lags
// behind their writes (eventually consistent stores) read a just-created account by id and
// refuse its userName, but do not find it by filter yet: trusting that "not found" would
// create the account again (a duplicate, or a 409 we cannot match to our externalId and
// report as someone else's account) or give back the seats of an account that exists.
// Within it the outcome stays unknown: the attempt is retried once the write is that old
// (one attempt more, a few seconds later; no request is sent for it).
var searchSettle = 10 * time.Second

// notFoundYet is nil when the account of the open write w.Intent not being found can be
// trusted (the write is older than searchSettle), else a retryable error whose next retry
// comes when it can.
func notFoundYet(w store.UserWork) error {
	if w.Intent == nil || w.Intent.Age >= searchSettle {
		return nil
	}
	wait := searchSettle - w.Intent.Age
	return temporal.NewApplicationErrorWithOptions(fmt.Sprintf(
		"the account of the %s sent %v ago is not found by the target's search yet: searched again in %v, as the target's index may lag",
		w.Intent.Action, w.Intent.Age.Round(time.Millisecond), wait.Round(time.Millisecond)),
		vocab.TargetUnavailable, temporal.ApplicationErrorOptions{NextRetryDelay: wait})
}

// heldBy is the state account u holds as the user's linked account.
func heldBy(u *scim.User, w store.UserWork) plan.Desired {
	holds := u.State()
	holds.ExternalID = w.Item.ExternalID
	if w.Applied != nil { // memberships are not user attributes: the applied ones stand
		holds.UserGroup, holds.DeviceGroups = w.Applied.State.UserGroup, w.Applied.State.DeviceGroups
	}
	return holds
}

// settleFailed is the step of a user the plan failed before provisioning (a check: domain
// not validated, invalid data, out of licenses; or its suspension held) whose earlier write's
// outcome is unknown: EvaluatePage hands such a user on instead of recording its failure, so
// that the failure neither keeps seats for a write that never landed nor leaves an account
// that write created outside our records (and out of the leavers pass's reach). It writes
// nothing to the account. What the target holds is read first (as reconcile does):
//   - found: the account is linked as it is, with the seats of what it holds (the others go
//     back) and the intent closed. It is not suspended: a linked user who fails a check keeps
//     its account as it is until it leaves scope, and this one is treated the same; a held
//     suspension stays held, for the admin's approval.
//   - not found: the write never landed. The intent closes and the seats go back; a held
//     suspension has nothing to suspend (settled, as a leaver's would be).
//
// Then the plan's failure is recorded. An attempt that finds no intent (an earlier attempt
// settled it) only records the failure.
func (a *Activities) settleFailed(ctx context.Context, t Target, in steps.UserStep, w store.UserWork) (steps.UserOutcome, error) {
	it := w.Item
	if w.Intent != nil {
		u, err := findWritten(ctx, t, w)
		if err != nil { // still unknown: the intent and the seats stay for the next attempt
			if scim.IsAuth(err) {
				return steps.UserOutcome{}, targetError(err)
			}
			return steps.UserOutcome{}, retryLater(err, provisionBackoff(ctx))
		}
		if u == nil {
			if err := notFoundYet(w); err != nil {
				return steps.UserOutcome{}, err
			}
			if err := a.Store.SettleUnsent(ctx, in.Org, it.ExternalID); err != nil {
				return steps.UserOutcome{}, err
			}
		} else {
			holds := heldBy(u, w)
			if err := a.Store.SaveProvisioned(ctx, in.Org, u.ID, holds, in.RunID, vocab.Reconciled); err != nil {
				return steps.UserOutcome{}, err
			}
			w.Applied = &plan.Applied{ExternalID: it.ExternalID, ScimID: u.ID, State: holds}
		}
	} else if len(it.ReleaseSeats) > 0 {
		if err := a.Store.ReleaseUnsent(ctx, in.Org, it.ExternalID, it.ReleaseSeats); err != nil {
			return steps.UserOutcome{}, err
		}
	}
	if it.Failure == nil { // a failed item always carries its failure
		return steps.UserOutcome{}, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("run %s item %d: failed without a failure", in.RunID, in.Seq), "invalid_work", nil)
	}
	if it.Failure.Type == vocab.SuspensionHeld && w.Applied == nil {
		return a.settle(ctx, in, it)
	}
	return a.fail(ctx, in, it, *it.Failure, false)
}

// keepFor is the seats a user keeps while its write is unfinished: those of the products its
// account holds, and those reserved for the write (the products it is to have: this run's
// new seats and those reserved before).
func keepFor(holds plan.Desired, it plan.Item) []string {
	return append(append(slices.Clone(holds.Products), it.Desired.Products...), it.NewSeats...)
}

// settle ends the work of a user who left scope and whose unaccounted write never landed:
// the intent closes, the seats go back, the failure is cleared.
func (a *Activities) settle(ctx context.Context, in steps.UserStep, it plan.Item) (steps.UserOutcome, error) {
	if err := a.Store.ReleaseUnsent(ctx, in.Org, it.ExternalID, it.ReleaseSeats); err != nil {
		return steps.UserOutcome{}, err
	}
	if err := a.Store.ClearFailures(ctx, in.Org, []string{it.ExternalID}); err != nil {
		return steps.UserOutcome{}, err
	}
	return steps.UserOutcome{Seq: in.Seq, ExternalID: it.ExternalID, Status: vocab.Reconciled}, nil
}

// RequestPaced is the type of ProvisionUser's error when the step was sent away by the shared
// request pace before sending anything: retryable, with the user's turn as NextRetryDelay.
const RequestPaced = vocab.RequestPaced

// paceWithin is how far ahead the taken request slots may reach for a ProvisionUser attempt
// to start: beyond, the attempt is sent away with a turn (store.Pacer.Admit) and the wait is
// Temporal's retry delay, not the attempt's time. An attempt's requests (at most 4: create,
// find on a conflict, find by userName for an adoption, PATCH) then queue a few times
// paceWithin at most each: the first up to 2*paceWithin, the next ones also behind the other
// requests of the attempts let in before. With the HTTP timeout (30s) that is within
// provisionOptions' StartToClose.
var paceWithin = 5 * time.Second

// provisionBackoff is the delay ProvisionUser's retry policy (provisionOptions in
// workflows/page.go: 2s doubling, at most 1 min) puts after this attempt: the least a
// Retry-After delay may be. Keep both in step.
func provisionBackoff(ctx context.Context) time.Duration {
	if !activity.IsActivity(ctx) {
		return 0
	}
	n := min(max(activity.GetInfo(ctx).Attempt, 1), 16)
	return min(2*time.Second<<(n-1), time.Minute)
}

// admit asks the request pace (when the target's client is paced by a store.Pacer) whether
// this user's attempt may start: it returns the context whose first request uses the slot
// taken for it, or how long until the user's turn.
func admit(ctx context.Context, target Target, in steps.UserStep) (context.Context, time.Duration, error) {
	t, ok := target.(interface {
		Admit(ctx context.Context, holder string, within time.Duration) (context.Context, time.Duration, error)
	})
	if !ok {
		return ctx, 0, nil
	}
	return t.Admit(ctx, fmt.Sprintf("%s/%d", in.RunID, in.Seq), paceWithin)
}

// provisioned is what provision did. holds is set when the target holds an account for the
// user that is not linked yet (created or adopted by this attempt): the state it holds.
type provisioned struct {
	scimID, status string
	holds          *plan.Desired
	failure        *vocab.Failure
}

func (a *Activities) provision(ctx context.Context, t Target, org string, w store.UserWork) (provisioned, error) {
	it, ext := w.Item, w.Extension
	r := provisioned{status: vocab.Updated}
	if it.Action == plan.Suspend {
		r.status = vocab.Suspended
	}
	if w.Applied != nil {
		if it.Action == plan.Create { // created by an earlier write whose answer was lost
			r.status = vocab.Created
		}
		r.scimID = w.Applied.ScimID
		return r, t.UpdateUser(ctx, ext, w.Applied.ScimID, w.Applied.State, it.Desired)
	}
	// Not linked: one POST. If an earlier attempt already created the account (crash, lost
	// response, racing run), the target answers 409 and the client returns the account that
	// carries this externalId; only then can its state differ, and one PATCH fixes it.
	u, err := t.CreateUser(ctx, ext, it.Desired)
	r.status = vocab.Created
	if scim.IsConflict(err) {
		if u, err = a.adoptable(ctx, t, org, it, ext); u == nil || err != nil {
			r.failure = &vocab.Failure{Type: vocab.ExistingAccount, Message: fmt.Sprintf(
				"userName %q is taken by an account not linked to this directory user (adopt it: starter adopt %s)",
				it.Desired.UserName, it.Desired.UserName)}
			return r, err
		}
		r.status = vocab.Adopted
	}
	if err != nil {
		return r, err
	}
	holds := u.State()
	holds.ExternalID = it.ExternalID // the link is ours from here on
	r.scimID = u.ID
	if plan.Diff(holds, it.Desired) != nil {
		if r.status == vocab.Created {
			r.holds = &holds
		}
		if err := t.UpdateUser(ctx, ext, u.ID, u.State(), it.Desired); err != nil {
			return r, err
		}
		r.holds = nil
	}
	return r, nil
}

// adoptable returns the account that has the user's userName when an admin approved adopting
// it for this userName (spec 7), else nil: the caller then links it by writing the desired
// state over it, externalId included. Only an account nobody linked qualifies: no externalId
// (or already ours: a retried adoption), and no user of ours linked to it.
func (a *Activities) adoptable(ctx context.Context, t Target, org string, it plan.Item, ext scim.Extension) (*scim.User, error) {
	ok, err := a.Store.AdoptionApproved(ctx, org, it.ExternalID, it.Desired.UserName)
	if err != nil || !ok {
		return nil, err
	}
	u, err := t.FindUserByUserName(ctx, ext, it.Desired.UserName)
	if err != nil || u == nil || (u.ExternalID != "" && u.ExternalID != it.ExternalID) {
		return nil, err
	}
	if other, err := a.Store.LinkedTo(ctx, org, u.ID); err != nil || (other != "" && other != it.ExternalID) {
		return nil, err
	}
	return u, nil
}

// RecordUserFailure records a failure the workflow decided (the target stayed unavailable
// after every retry). The seats taken for the user go back when its write did not happen;
// when its outcome is unknown (an open write intent: the target may hold it), they stay, and
// the failure says that the user is to be reconciled: the next sync reads the account first.
func (a *Activities) RecordUserFailure(ctx context.Context, in steps.UserFailureInput) (steps.UserOutcome, error) {
	w, err := a.Store.UserWork(ctx, in.Org, in.RunID, in.Seq)
	if err != nil {
		return steps.UserOutcome{}, err
	}
	f := in.Failure
	if w.Item.Action == plan.Fail && w.Item.Failure != nil {
		// The plan's failure stands; the target could not be read for the earlier write.
		f = *w.Item.Failure
	}
	if w.Intent != nil {
		f.Message += fmt.Sprintf("; to reconcile: the outcome of the %s sent by run %s is unknown (the target may hold it), "+
			"so the user's seats are kept and the next sync reads the account in the target before anything else", w.Intent.Action, w.Intent.RunID)
	}
	return a.fail(ctx, in.UserStep, w.Item, f, w.Intent == nil)
}

// ReleaseUnsentSeats gives back the seats CheckLicenses reserved for a user whose write
// never started: the page was cancelled (sync disabled) between the reservation and the
// write. When a write was sent (an open intent: its outcome is unknown) they stay, for the
// next sync to reconcile; those the linked account holds always stay.
func (a *Activities) ReleaseUnsentSeats(ctx context.Context, in steps.UserStep) error {
	// A local write of the user that has not opened its intent yet (its task lost, replayed
	// as this cancellation) never will; one that did is seen by the read.
	if err := a.Store.CloseLocal(ctx, in.RunID, in.Seq); err != nil {
		return err
	}
	w, err := a.Store.UserWork(ctx, in.Org, in.RunID, in.Seq)
	if err != nil || w.Intent != nil {
		return err
	}
	return a.Store.ReleaseUnsent(ctx, in.Org, w.Item.ExternalID, w.Item.NewSeats)
}

// fail records a user's failure; release (the user's write did not happen) gives back the
// seats this run took for the user (those its linked account holds in the target stay) and
// closes its write intent.
// A store error is returned so that the step is retried: no failure is lost.
func (a *Activities) fail(ctx context.Context, in steps.UserStep, it plan.Item, f vocab.Failure, release bool) (steps.UserOutcome, error) {
	if release {
		if err := a.Store.ReleaseUnsent(ctx, in.Org, it.ExternalID, it.NewSeats); err != nil {
			return steps.UserOutcome{}, err
		}
	}
	if err := a.Store.RecordFailure(ctx, in.Org, in.RunID, it.ExternalID, it.UserName, f); err != nil {
		return steps.UserOutcome{}, err
	}
	return steps.UserOutcome{Seq: in.Seq, ExternalID: it.ExternalID, Status: vocab.Failed, FailureType: f.Type}, nil
}
