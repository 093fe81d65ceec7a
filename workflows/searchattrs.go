package workflows

import (
	"slices"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/usersync/usersync/internal/steps"
	"github.com/usersync/usersync/internal/vocab"
)

// Search attributes the workflows upsert, so that ops can list "organizations with failed
// users" or "partial runs" in the UI. They carry names, counts and types, never personal
// data. The server must know them before a workflow upserts them (else its task fails until
// they are): the dev server takes DevServerSearchAttributeArgs, compose registers them with
// the admin tools.
var (
	SAOrg             = temporal.NewSearchAttributeKeyKeyword("UsersyncOrg")
	SASyncOn          = temporal.NewSearchAttributeKeyBool("UsersyncSyncOn")
	SAFailedUsers     = temporal.NewSearchAttributeKeyInt64("UsersyncFailedUsers")
	SAFailureTypes    = temporal.NewSearchAttributeKeyKeywordList("UsersyncFailureTypes")
	SAHeldSuspensions = temporal.NewSearchAttributeKeyInt64("UsersyncHeldSuspensions")
	SARunKind         = temporal.NewSearchAttributeKeyKeyword("UsersyncRunKind")
	SARunOutcome      = temporal.NewSearchAttributeKeyKeyword("UsersyncRunOutcome")
	SALastRun         = temporal.NewSearchAttributeKeyTime("UsersyncLastRun")
)

// SearchAttribute is one search attribute as `temporal operator search-attribute create`
// and `temporal server start-dev --search-attribute` name it.
type SearchAttribute struct{ Name, Type string }

// SearchAttributes lists every search attribute the workflows upsert.
var SearchAttributes = []SearchAttribute{
	{"UsersyncOrg", "Keyword"}, {"UsersyncSyncOn", "Bool"}, {"UsersyncFailedUsers", "Int"},
	{"UsersyncFailureTypes", "KeywordList"}, {"UsersyncHeldSuspensions", "Int"},
	{"UsersyncRunKind", "Keyword"}, {"UsersyncRunOutcome", "Keyword"}, {"UsersyncLastRun", "Datetime"},
}

// DevServerSearchAttributeArgs registers SearchAttributes with `temporal server start-dev`.
func DevServerSearchAttributeArgs() []string {
	var args []string
	for _, a := range SearchAttributes {
		args = append(args, "--search-attribute", a.Name+"="+a.Type)
	}
	return args
}

// Run outcomes (UsersyncRunOutcome).
const (
	OutcomeClean   = "clean"   // succeeded, no user failed
	OutcomePartial = "partial" // succeeded with failed users, or stopped (cancelled) before its end
	OutcomeFailed  = "failed"  // the run failed as a whole
)

// RunOutcome sums up a finished run for UsersyncRunOutcome.
func RunOutcome(sum steps.RunSummary) string {
	switch sum.Status {
	case vocab.RunSucceeded:
		for _, n := range sum.Failures {
			if n > 0 {
				return OutcomePartial
			}
		}
		return OutcomeClean
	case vocab.RunCancelled:
		return OutcomePartial
	}
	return OutcomeFailed
}

// changeSearchAttributes: the workflows upsert search attributes; before, none. The org
// workflow's first upsert has its own change ID, so that one replaying a history from before
// (which takes the default at its start) still upserts at its next change.
const (
	changeSearchAttributes      = "search-attributes"
	changeSearchAttributesStart = "search-attributes-start"
)

// orgAttrs is what the org workflow publishes as search attributes.
type orgAttrs struct {
	org            string
	on             bool
	failed, held   int
	types          string // failureTypeSet comma-joined: comparable
	kind, outcome  string
	lastRun        time.Time
	hasRun         bool
	failureTypeSet []string
}

func (o *orgLoop) attrs() orgAttrs {
	a := orgAttrs{org: o.st.Org, on: o.st.Enabled}
	if r := o.st.LastRun; r != nil {
		a.hasRun, a.kind, a.outcome, a.lastRun = true, r.Kind, RunOutcome(*r), r.FinishedAt
		for _, b := range r.Banners {
			if !b.RunLevel {
				a.failed += b.Users
			}
			if b.Type == vocab.SuspensionHeld {
				a.held += b.Users
			}
			if !slices.Contains(a.failureTypeSet, b.Type) {
				a.failureTypeSet = append(a.failureTypeSet, b.Type)
			}
		}
		slices.Sort(a.failureTypeSet)
		for _, t := range a.failureTypeSet {
			a.types += t + ","
		}
	}
	return a
}

func (a orgAttrs) same(b orgAttrs) bool {
	return a.org == b.org && a.on == b.on && a.failed == b.failed && a.held == b.held && a.types == b.types &&
		a.kind == b.kind && a.outcome == b.outcome && a.lastRun.Equal(b.lastRun) && a.hasRun == b.hasRun
}

// publish upserts the org workflow's search attributes when they changed.
func (o *orgLoop) publish(ctx workflow.Context, change string) {
	a := o.attrs()
	if o.published != nil && o.published.same(a) {
		return
	}
	if workflow.GetVersion(ctx, change, workflow.DefaultVersion, 1) == workflow.DefaultVersion {
		return
	}
	updates := []temporal.SearchAttributeUpdate{SAOrg.ValueSet(a.org), SASyncOn.ValueSet(a.on)}
	if a.hasRun {
		updates = append(updates, SAFailedUsers.ValueSet(int64(a.failed)), SAHeldSuspensions.ValueSet(int64(a.held)),
			SAFailureTypes.ValueSet(append([]string{}, a.failureTypeSet...)), SARunKind.ValueSet(a.kind),
			SARunOutcome.ValueSet(a.outcome), SALastRun.ValueSet(a.lastRun))
	}
	if err := workflow.UpsertTypedSearchAttributes(ctx, updates...); err != nil {
		workflow.GetLogger(ctx).Error("search attributes not upserted", "error", err)
		return
	}
	o.published = &a
}

// publishRun upserts a sync run's search attributes: at its start (organization, kind) and
// at its end (outcome, failed users and their types).
func publishRun(ctx workflow.Context, in RunInput, sum *steps.RunSummary) {
	if workflow.GetVersion(ctx, changeSearchAttributes, workflow.DefaultVersion, 1) == workflow.DefaultVersion {
		return
	}
	updates := []temporal.SearchAttributeUpdate{SAOrg.ValueSet(in.Org), SARunKind.ValueSet(in.Kind)}
	if sum != nil {
		failed, types := 0, []string{}
		for t, n := range sum.Failures {
			if n > 0 {
				failed += n
				types = append(types, t)
			}
		}
		if sum.FailureType != "" {
			types = append(types, sum.FailureType)
		}
		slices.Sort(types)
		finished := sum.FinishedAt
		if finished.IsZero() {
			finished = workflow.Now(ctx)
		}
		updates = append(updates, SARunOutcome.ValueSet(RunOutcome(*sum)), SAFailedUsers.ValueSet(int64(failed)),
			SAFailureTypes.ValueSet(types), SALastRun.ValueSet(finished))
	}
	if err := workflow.UpsertTypedSearchAttributes(ctx, updates...); err != nil {
		workflow.GetLogger(ctx).Error("search attributes not upserted", "error", err)
	}
}
