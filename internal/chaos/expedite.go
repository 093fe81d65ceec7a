package chaos

import (
	"context"
	"time"

	activitypb "go.temporal.io/api/activity/v1"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	commonpb "go.temporal.io/api/common/v1"
)

// orphan is an activity attempt a killed worker held.
type orphan struct {
	exec     *commonpb.WorkflowExecution
	id, typ  string
	started  time.Time
	original *durationpb.Duration
}

// Expedite shortens the wait for the activity attempts that a killed worker (or a restarted
// server) left started before since: Temporal retries them only once their start-to-close
// timeout passes (3 minutes for a SCIM step), which is what an operator sees after a crash,
// and what no test can wait for five times. Each such attempt's timeout is set to 1 s, and
// given back once the attempt was retried. Nothing else changes: the retry is Temporal's.
func (r *Run) Expedite(since time.Time) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	svc := r.S.Client.WorkflowService()
	var orphans []orphan
	_ = r.S.retry(30*time.Second, func(ctx context.Context) error {
		orphans = nil
		list, err := svc.ListWorkflowExecutions(ctx, &workflowservice.ListWorkflowExecutionsRequest{
			Namespace: "default", PageSize: 1000, Query: "ExecutionStatus='Running'"})
		if err != nil {
			return err
		}
		for _, w := range list.Executions {
			d, err := svc.DescribeWorkflowExecution(ctx, &workflowservice.DescribeWorkflowExecutionRequest{
				Namespace: "default", Execution: w.Execution})
			if err != nil {
				return err
			}
			for _, pa := range d.PendingActivities {
				if pa.State != enumspb.PENDING_ACTIVITY_STATE_STARTED || !pa.LastStartedTime.AsTime().Before(since) {
					continue
				}
				o := orphan{exec: w.Execution, id: pa.ActivityId, typ: pa.ActivityType.GetName(), started: pa.LastStartedTime.AsTime()}
				if pa.ActivityOptions != nil {
					o.original = pa.ActivityOptions.StartToCloseTimeout
				}
				orphans = append(orphans, o)
			}
		}
		return nil
	})
	set := func(o orphan, d *durationpb.Duration) error {
		_, err := svc.UpdateActivityOptions(ctx, &workflowservice.UpdateActivityOptionsRequest{
			Namespace: "default", Execution: o.exec, Identity: "chaos-harness",
			Activity:        &workflowservice.UpdateActivityOptionsRequest_Id{Id: o.id},
			ActivityOptions: &activitypb.ActivityOptions{StartToCloseTimeout: d},
			UpdateMask:      &fieldmaskpb.FieldMask{Paths: []string{"start_to_close_timeout"}},
		})
		return err
	}
	var shortened []orphan
	for _, o := range orphans {
		if o.original == nil {
			continue
		}
		if err := set(o, durationpb.New(time.Second)); err != nil {
			r.Note("%s: expedite activity %s of %s: %v", r.Phase, o.id, o.exec.WorkflowId, err)
			continue
		}
		shortened = append(shortened, o)
	}
	// Give each its timeout back once its orphaned attempt is over.
	for _, o := range shortened {
		for ctx.Err() == nil {
			d, err := svc.DescribeWorkflowExecution(ctx, &workflowservice.DescribeWorkflowExecutionRequest{Namespace: "default", Execution: o.exec})
			if err != nil {
				time.Sleep(200 * time.Millisecond)
				continue
			}
			still := false
			for _, pa := range d.PendingActivities {
				if pa.ActivityId == o.id && pa.State == enumspb.PENDING_ACTIVITY_STATE_STARTED && pa.LastStartedTime.AsTime().Equal(o.started) {
					still = true
				}
			}
			if !still {
				_ = set(o, o.original)
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	if len(shortened) > 0 {
		types := map[string]int{}
		for _, o := range shortened {
			types[o.typ]++
		}
		r.Note("%s: activity attempts held by the dead worker retried without waiting for their timeout: %v", r.Phase, types)
	}
}
