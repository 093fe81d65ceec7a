package bench

import (
	"context"
	"os"
	"strconv"

	"github.com/usersync/usersync/internal/steps"
	"github.com/usersync/usersync/internal/vocab"
	"github.com/usersync/usersync/workflows"
)

// emptySteps stands in for activities.Activities with the same method names, doing nothing:
// what is left is the cost of the fan-out itself on the Temporal server and worker.
type emptySteps struct{ items int }

func (e *emptySteps) SnapshotDirectory(context.Context, steps.SnapshotInput) (steps.SnapshotResult, error) {
	return steps.SnapshotResult{Users: e.items, InScope: e.items}, nil
}

func (e *emptySteps) PlanRun(context.Context, steps.PlanInput) (steps.PlanResult, error) {
	return steps.PlanResult{Items: e.items, Creates: e.items, InScope: e.items}, nil
}

func (e *emptySteps) EvaluatePage(_ context.Context, in steps.PageRef) (steps.PageEvaluation, error) {
	ev := steps.PageEvaluation{}
	for seq := in.From; seq < in.To; seq++ {
		ev.Users = append(ev.Users, steps.UserPlan{Seq: seq, ExternalID: "x", Seats: []string{"Meeting"}})
	}
	return ev, nil
}

func (e *emptySteps) CheckLicenses(_ context.Context, in steps.SeatsInput) (steps.StepResult, error) {
	return steps.StepResult{Continue: true, Outcome: steps.UserOutcome{Seq: in.Seq}}, nil
}

func (e *emptySteps) ProvisionUser(_ context.Context, in steps.UserStep) (steps.UserOutcome, error) {
	return steps.UserOutcome{Seq: in.Seq, Status: vocab.Created}, nil
}

func (e *emptySteps) DiscoverTarget(context.Context, steps.SnapshotInput) (steps.TargetCheck, error) {
	return steps.TargetCheck{Patch: true, Filter: true}, nil
}

func (e *emptySteps) ProbeTarget(context.Context, steps.UserStep) (bool, error) {
	return false, nil
}

func (e *emptySteps) RecordUserFailure(_ context.Context, in steps.UserFailureInput) (steps.UserOutcome, error) {
	return steps.UserOutcome{Seq: in.Seq, Status: vocab.Failed, FailureType: in.Failure.Type}, nil
}

func (e *emptySteps) ReleaseUnsentSeats(context.Context, steps.UserStep) error { return nil }

func (e *emptySteps) RecordEvent(context.Context, vocab.Event) error { return nil }

func (e *emptySteps) CheckAction(context.Context, steps.ActionCheck) (steps.ActionVerdict, error) {
	return steps.ActionVerdict{}, nil
}

func (e *emptySteps) SyncGroups(context.Context, steps.RunRef) (steps.GroupsResult, error) {
	return steps.GroupsResult{}, nil
}

func (e *emptySteps) FinishRun(_ context.Context, in steps.FinishInput) (steps.RunSummary, error) {
	return steps.RunSummary{FinishInput: in}, nil
}

// RunSettings matches an unthrottled worker with the same environment: SCIM steps on the
// main queue (eagerly), fan-out shape from USERSYNC_PAGE_SIZE, _PAGE_WINDOW, _USERS_IN_FLIGHT.
func (e *emptySteps) RunSettings(context.Context, steps.RunRef) (steps.FanOut, error) {
	env := func(k string) int { n, _ := strconv.Atoi(os.Getenv(k)); return n }
	return steps.FanOut{ProvisionQueue: workflows.TaskQueue, PageSize: env("USERSYNC_PAGE_SIZE"),
		PageWindow: env("USERSYNC_PAGE_WINDOW"), UsersInFlight: env("USERSYNC_USERS_IN_FLIGHT")}, nil
}

// WatchDirectory waits for nothing to change: the fan-out benchmark runs no watch.
func (e *emptySteps) WatchDirectory(ctx context.Context, in steps.WatchInput) (steps.WatchResult, error) {
	<-ctx.Done()
	return steps.WatchResult{Mark: in.Since}, ctx.Err()
}
