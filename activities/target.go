package activities

import (
	"context"
	"errors"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/usersync/usersync/internal/plan"
	"github.com/usersync/usersync/internal/scim"
	"github.com/usersync/usersync/internal/steps"
	"github.com/usersync/usersync/internal/vocab"
)

// DiscoverTarget reads the target's /ServiceProviderConfig, /Schemas and /ResourceTypes once
// per run, and refuses the run (a non-retryable target_incompatible error, before anything
// is read or written) when the target cannot take what this organization writes. The per-user
// steps of the run use the extension recorded here.
func (a *Activities) DiscoverTarget(ctx context.Context, in steps.SnapshotInput) (steps.TargetCheck, error) {
	// The run is recorded (a workflow of before discover-when-writing has not recorded it
	// yet), so that a run the target stops is in the history too; its snapshot and plan stay.
	if err := a.Store.RecordRun(ctx, in.Org, in.RunID, in.Kind, in.DryRun); err != nil {
		return steps.TargetCheck{}, err
	}
	ext, err := a.Store.TargetExtension(ctx, in.Org)
	if err != nil {
		return steps.TargetCheck{}, err
	}
	o, err := a.org(ctx, in.Org)
	if err != nil {
		return steps.TargetCheck{}, err
	}
	d, err := o.Target.Discover(ctx)
	switch {
	case err == nil:
	case scim.IsAuth(err):
		return steps.TargetCheck{}, targetError(err)
	case scim.IsRetryable(err):
		// Retried by Temporal; once retries run out the run stops as target_unavailable.
		return steps.TargetCheck{}, retryLater(err, 0)
	default: // a 4xx, or answers that are not what RFC 7644 section 4 says
		return steps.TargetCheck{}, temporal.NewNonRetryableApplicationError(
			"the target's discovery endpoints answered what usersync cannot use: "+err.Error(), vocab.TargetIncompatible, nil)
	}
	if !in.DryRun {
		// What the target is, whatever this organization writes: edits are checked against it.
		if err := a.Store.SaveTargetProfile(ctx, in.Org, in.RunID, ext, d); err != nil {
			return steps.TargetCheck{}, err
		}
	}
	rs, err := a.Store.Rules(ctx, in.Org)
	if err != nil {
		return steps.TargetCheck{}, err
	}
	ms, err := a.Store.Mappings(ctx, in.Org)
	if err != nil {
		return steps.TargetCheck{}, err
	}
	custom, template, enterprise := plan.ExtensionUse(rs, ms)
	if err := d.Check(ext, custom, template, enterprise); err != nil {
		return steps.TargetCheck{}, temporal.NewNonRetryableApplicationError(err.Error(), vocab.TargetIncompatible, nil)
	}
	// The run's per-user steps write this extension, whatever the settings become meanwhile.
	if err := a.Store.SetRunExtension(ctx, in.RunID, ext); err != nil {
		return steps.TargetCheck{}, err
	}
	return steps.TargetCheck{CustomSchema: ext.URN, Patch: d.Patch, Filter: d.Filter, MaxResults: d.MaxResults, ETag: d.ETag}, nil
}

// targetError turns refused credentials into a non-retryable target_auth error: retrying
// cannot help, and the workflow stops the run with one run-level failure. Other errors pass.
func targetError(err error) error {
	if scim.IsAuth(err) {
		return temporal.NewNonRetryableApplicationError(err.Error(), vocab.TargetAuth, nil)
	}
	return err
}

// retryLater turns a SCIM failure worth retrying (429, 5xx, network) into a retryable
// target_unavailable error for Temporal's retry policy. When the target said when to come back
// (Retry-After on a 429 or 503), the next attempt waits that long (NextRetryDelay), but not
// less than floor: the policy's own backoff, so that a short Retry-After repeated through a
// long outage or a 429 storm does not spend the attempts in seconds. Other errors pass.
func retryLater(err error, floor time.Duration) error {
	if !scim.IsRetryable(err) {
		return err
	}
	var delay time.Duration
	if after := scim.RetryAfter(err); after > 0 {
		delay = max(after, floor)
	}
	return temporal.NewApplicationErrorWithOptions(err.Error(), vocab.TargetUnavailable,
		temporal.ApplicationErrorOptions{NextRetryDelay: delay})
}

// probeTimeout bounds the one request of ProbeTarget, from its slot: a hung target is a down
// target, a long request queue is not.
const probeTimeout = 15 * time.Second

// ProbeTarget tells whether the target is down as a whole, once a user's write ran out of
// retries: one read that needs nothing of any user. When it is down, the workflow stops the
// run instead of failing the user, and the user's new seats go back unless the outcome of
// its write is unknown (an open write intent: they stay, and the next sync reads the account).
func (a *Activities) ProbeTarget(ctx context.Context, in steps.UserStep) (down bool, err error) {
	o, err := a.org(ctx, in.Org)
	if err != nil {
		return false, err
	}
	perr := o.Target.Ping(scim.WithRequestTimeout(ctx, probeTimeout))
	// Down: no answer in time, a network error, a 5xx or 429. Any other answer is an answer.
	if perr == nil || !(scim.IsRetryable(perr) || errors.Is(perr, context.DeadlineExceeded)) {
		return false, nil
	}
	w, err := a.Store.UserWork(ctx, in.Org, in.RunID, in.Seq)
	if err != nil || w.Intent != nil { // an unknown outcome keeps its seats
		return true, err
	}
	return true, a.Store.ReleaseUnsent(ctx, in.Org, w.Item.ExternalID, w.Item.NewSeats)
}
