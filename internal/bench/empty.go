package bench

import (
	"context"
	"os"
	"strconv"

	"github.com/usersync/usersync/activities"
	"github.com/usersync/usersync/internal/store"
	"github.com/usersync/usersync/workflows"
)

// emptySteps stands in for activities.Activities with the same method names, doing nothing:
// what is left is the cost of the fan-out itself on the Temporal server and worker.
type emptySteps struct{ items int }

func (e *emptySteps) SnapshotDirectory(context.Context, activities.SnapshotInput) (activities.SnapshotResult, error) {
	return activities.SnapshotResult{Users: e.items, InScope: e.items}, nil
}

func (e *emptySteps) PlanRun(context.Context, activities.PlanInput) (activities.PlanResult, error) {
	return activities.PlanResult{Items: e.items, Creates: e.items, InScope: e.items}, nil
}

func (e *emptySteps) EvaluatePage(_ context.Context, in activities.PageRef) (activities.PageEvaluation, error) {
	ev := activities.PageEvaluation{}
	for seq := in.From; seq < in.To; seq++ {
		ev.Users = append(ev.Users, activities.UserPlan{Seq: seq, ExternalID: "x", Seats: []string{"Meeting"}})
	}
	return ev, nil
}

func (e *emptySteps) CheckLicenses(_ context.Context, in activities.SeatsInput) (activities.StepResult, error) {
	return activities.StepResult{Continue: true, Outcome: activities.UserOutcome{Seq: in.Seq}}, nil
}

func (e *emptySteps) ProvisionUser(_ context.Context, in activities.UserStep) (activities.UserOutcome, error) {
	return activities.UserOutcome{Seq: in.Seq, Status: activities.Created}, nil
}

func (e *emptySteps) DiscoverTarget(context.Context, activities.SnapshotInput) (activities.TargetCheck, error) {
	return activities.TargetCheck{Patch: true, Filter: true}, nil
}

func (e *emptySteps) ProbeTarget(context.Context, activities.UserStep) (bool, error) {
	return false, nil
}

func (e *emptySteps) RecordUserFailure(_ context.Context, in activities.UserFailureInput) (activities.UserOutcome, error) {
	return activities.UserOutcome{Seq: in.Seq, Status: activities.Failed, FailureType: in.Failure.Type}, nil
}

func (e *emptySteps) RecordEvent(context.Context, store.Event) error { return nil }

func (e *emptySteps) SyncGroups(context.Context, activities.RunRef) (activities.GroupsResult, error) {
	return activities.GroupsResult{}, nil
}

func (e *emptySteps) FinishRun(_ context.Context, in activities.FinishInput) (activities.RunSummary, error) {
	return activities.RunSummary{FinishInput: in}, nil
}

// RunSettings matches an unthrottled worker with the same environment: SCIM steps on the
// main queue (eagerly), fan-out shape from USERSYNC_PAGE_SIZE, _PAGE_WINDOW, _USERS_IN_FLIGHT.
func (e *emptySteps) RunSettings(context.Context) (activities.RunSettings, error) {
	env := func(k string) int { n, _ := strconv.Atoi(os.Getenv(k)); return n }
	return activities.RunSettings{ProvisionQueue: workflows.TaskQueue, PageSize: env("USERSYNC_PAGE_SIZE"),
		PageWindow: env("USERSYNC_PAGE_WINDOW"), UsersInFlight: env("USERSYNC_USERS_IN_FLIGHT")}, nil
}
