package activities

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.temporal.io/sdk/activity"

	"github.com/usersync/usersync/internal/orgs"
	"github.com/usersync/usersync/internal/plan"
	"github.com/usersync/usersync/internal/rules"
	"github.com/usersync/usersync/internal/steps"
	"github.com/usersync/usersync/internal/store"
	"github.com/usersync/usersync/internal/vocab"
)

// Standing still (issues 13 and 10): a run whose inputs did not change since the last clean
// run has that run's outcome, which left nothing to do. It reads the directory's changes
// (none), records that it found nothing to do, and skips the snapshot, the plan, the pages
// and the group step: an unchanged resync of 100,000 users costs a read of nothing, not a
// snapshot of the mirror and a plan of every user.

// unchangedCheck is everything UnchangedSince decides on.
type unchangedCheck struct {
	// MayStandStill: the run is neither dry, a retry nor an approval (SnapshotInput).
	MayStandStill bool
	// FirstAttempt: this is the step's first attempt (an earlier one may have read changes
	// into the mirror and failed after: the retry then reads nothing new).
	FirstAttempt bool
	Read         *steps.DirectoryRead // nil: not an incremental read
	Inputs       string               // this run's planInputs hash
	Previous     *store.RunBasis      // the organization's newest run before this one; nil: none
	Failures     int                  // users with a current failure
	Intents      int                  // open write intents
	Now          time.Time
}

// UnchangedSince returns the run whose outcome still holds for this one, or "" and why not.
// Every condition is required; each alone sends the run the long way:
//  1. the run may stand still: not dry (a dry run shows a plan), not a retry (it plans the
//     failed users), not an approval of held suspensions (it applies them);
//  2. the directory read was incremental, read no entry and dropped none, and was not a
//     full read (a scheduled full read always goes the long way), on the step's first
//     attempt;
//  3. the newest run before this one finished clean: succeeded, not dry, not a retry, no
//     user failure, no held suspension, its group step done (store.MarkRunClean). Any run
//     in between (a dry run, a failed or unfinished one) may have read the directory's
//     changes into the mirror without applying them, so it must be that one, and no other
//     run that did not finish clean may have overlapped it (finished after it started, or
//     not finished): a dry run racing it could have read changes after its read;
//  4. the plan's other inputs are the ones that run saw (planInputs: rules, mappings,
//     validated domains, seat counts, settings version, thresholds, read scope, target
//     extension);
//  5. no user failure is left to retry and no write intent is open (their users are
//     re-planned whatever the directory says);
//  6. no user that run saw has an account expiring since its read (AD's accountExpires
//     disables a user without any directory change): its next expiry is after now.
func UnchangedSince(c unchangedCheck) (since, why string) { return standsOn(c, false) }

// DeltaSince returns the run whose outcome still holds for every user the directory's
// changes did not touch, or "" and why not: every condition of UnchangedSince, but that the
// directory changed (an incremental read that read or deleted entries). The run is then a
// delta run: it snapshots and plans only the touched users (SnapshotDirectory), and the
// plan counts the others as that run left them (plan.Input.Delta). A run that took the
// full snapshot meanwhile is its own basis, so every user was settled by a full plan or by
// a delta plan that decided what a full one would.
func DeltaSince(c unchangedCheck) (since, why string) { return standsOn(c, true) }

// standsOn is UnchangedSince (changed false) and DeltaSince (changed true).
func standsOn(c unchangedCheck, changed bool) (since, why string) {
	p := c.Previous
	switch {
	case !c.MayStandStill:
		return "", "a dry run, retry or approval plans"
	case c.Read == nil:
		return "", "not an incremental read"
	case c.Read.Full:
		return "", "a full read"
	case !changed && (c.Read.Entries > 0 || c.Read.Deleted > 0):
		return "", "the directory changed"
	case changed && c.Read.Entries == 0 && c.Read.Deleted == 0:
		return "", "the directory did not change"
	case !c.FirstAttempt:
		return "", "a retried read"
	case p == nil:
		return "", "no earlier run"
	case !p.Finished || p.Status != vocab.RunSucceeded || p.DryRun || p.Kind == vocab.KindRetry || !p.Clean:
		return "", "the last run " + p.RunID + " was not complete and clean"
	case p.Overlapping > 0:
		return "", "another run overlapped the last run and did not finish clean"
	case p.Inputs == "" || p.Basis == "":
		return "", "the last run recorded no inputs"
	case p.Inputs != c.Inputs:
		return "", "rules, mappings, domains, licenses or settings changed"
	case c.Failures > 0:
		return "", "user failures to retry"
	case c.Intents > 0:
		return "", "writes with an unknown outcome"
	case p.NextExpiry != nil && !p.NextExpiry.After(c.Now):
		return "", "an account expired since"
	}
	return p.Basis, ""
}

// planInputs is what a plan depends on besides the directory and the per-user state that
// runs write (applied states, failures, intents, seat holders): settings an admin changes.
type planInputs struct {
	Rules            []rules.Rule   `json:"rules"`
	Mappings         []plan.Mapping `json:"mappings"`
	ValidatedDomains []string       `json:"validatedDomains"`
	Seats            map[string]int `json:"seats"`
	SettingsVersion  int64          `json:"settingsVersion"`
	ThresholdPercent int            `json:"thresholdPercent"`
	ThresholdMax     int            `json:"thresholdMax"`
	FullReadEvery    time.Duration  `json:"fullReadEvery"`
	GroupDNs         []string       `json:"groupDns"`
	Attributes       []string       `json:"attributes"`
	Extension        any            `json:"extension"`
}

// hash is the inputs' fingerprint, stored on the run (runs.inputs).
func (p planInputs) hash() (string, error) {
	b, err := json.Marshal(p)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}

// runInputs reads the organization's planInputs and returns their hash.
func (a *Activities) runInputs(ctx context.Context, org string, o *Org, rs []rules.Rule, ms []plan.Mapping) (string, error) {
	p := planInputs{Rules: rs, Mappings: ms, Seats: map[string]int{}, ThresholdPercent: o.SuspendThresholdPercent,
		ThresholdMax: o.SuspendThresholdMax, FullReadEvery: o.FullReadEvery}
	p.GroupDNs, p.Attributes = SnapshotScope(rs, ms)
	ds, err := a.Store.Domains(ctx, org)
	if err != nil {
		return "", err
	}
	for _, d := range ds {
		if d.Validated {
			p.ValidatedDomains = append(p.ValidatedDomains, strings.ToLower(d.Name))
		}
	}
	slices.Sort(p.ValidatedDomains)
	ls, err := a.Store.Licenses(ctx, org)
	if err != nil {
		return "", err
	}
	for _, l := range ls {
		p.Seats[l.Product] = l.Seats
	}
	// An organization without stored settings (a worker for one organization given in
	// code: tests, the benchmark) has version 0.
	if p.SettingsVersion, err = a.Store.OrgVersion(ctx, org); err != nil && !errors.Is(err, orgs.ErrNotFound) {
		return "", err
	}
	if p.Extension, err = a.Store.TargetExtension(ctx, org); err != nil {
		return "", err
	}
	return p.hash()
}

// runCheck reads what UnchangedSince and DeltaSince decide on.
// attempt is the run's snapshot attempt (BeginRun): a run's step executed again at Temporal's
// first attempt (a workflow reset) is a retried read too.
func (a *Activities) runCheck(ctx context.Context, in steps.SnapshotInput, attempt int64, read *steps.DirectoryRead, inputs string) (unchangedCheck, error) {
	c := unchangedCheck{MayStandStill: in.MayStandStill, Read: read, Inputs: inputs, Now: time.Now(), FirstAttempt: attempt <= 1}
	if activity.IsActivity(ctx) && activity.GetInfo(ctx).Attempt > 1 {
		c.FirstAttempt = false
	}
	if c.MayStandStill && read != nil && !read.Full {
		prev, ok, err := a.Store.PreviousRun(ctx, in.Org, in.RunID)
		if err != nil {
			return c, err
		}
		if ok {
			c.Previous = &prev
		}
		if c.Failures, c.Intents, err = a.Store.PendingWork(ctx, in.Org); err != nil {
			return c, err
		}
	}
	return c, nil
}

// standStill decides whether the run stands on an earlier one (UnchangedSince) and, when it
// does, records so and returns the earlier run's directory counts, carried over.
func (a *Activities) standStill(ctx context.Context, in steps.SnapshotInput, attempt int64, c unchangedCheck) (*steps.SnapshotResult, error) {
	inputs := c.Inputs
	since, _ := UnchangedSince(c)
	if since == "" {
		return nil, nil
	}
	var prev steps.RunSummary
	if err := json.Unmarshal(c.Previous.Summary, &prev); err != nil {
		return nil, fmt.Errorf("read run %s's summary: %w", c.Previous.RunID, err)
	}
	if err := a.Store.SetRunBasis(ctx, in.RunID, attempt, inputs, c.Previous.NextExpiry, since); err != nil {
		return nil, err
	}
	res := prev.Directory
	res.Read = c.Read
	res.Delta = nil // this run read and planned nobody, whatever its basis did
	res.Unchanged = &steps.Unchanged{Since: since, InScope: prev.InScope}
	return &res, nil
}

// cleanRun reports whether a finished run may be stood on by the next (UnchangedSince,
// DeltaSince): complete, succeeded, not dry, not a retry, no user failure, no user whose steps
// errored (it has neither a failure nor an open write to send it back to the plan), no held
// suspension, and no warning: a read that looked wrong suspended nobody (and the next full
// plan compares with its in-scope count), a read that listed users twice planned one copy.
func cleanRun(in steps.FinishInput) bool {
	if in.Status != vocab.RunSucceeded || in.DryRun || in.Kind == vocab.KindRetry || in.Error != "" ||
		in.FailureType != "" || in.Plan.SuspensionsHeld || in.Plan.Fails > 0 || in.Outcomes[vocab.Failed] > 0 ||
		in.Outcomes[vocab.Errored] > 0 || len(in.Plan.Warnings) > 0 {
		return false
	}
	for _, n := range in.Failures {
		if n > 0 {
			return false
		}
	}
	return true
}
