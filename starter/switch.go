package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"
	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

	"github.com/usersync/usersync/internal/config"
	"github.com/usersync/usersync/internal/vocab"
	"github.com/usersync/usersync/workflows"
)

var errSyncOff = errors.New("user sync is off; run `starter enable` first")

// queryTimeout bounds one query: without a worker, a query would wait long.
const queryTimeout = 15 * time.Second

func enableCmd(a *app) *cobra.Command {
	var interval string
	var watch bool
	cmd := &cobra.Command{
		Use:   "enable",
		Short: "Turn user sync on: sync now, then on the schedule",
		Long: `enable turns the organization's user sync on (starting its sync workflow if needed). A sync
starts at once, then every --interval (default: the interval set before, else 15m). Enabling
when already on starts no sync; with --interval it changes the interval.

With --watch (watch mode), a change in the directory also starts a sync at once: the worker
polls the directory's change mark every 2 s (Active Directory's highestCommittedUSN, OpenLDAP's
contextCSN, which needs the syncprov overlay) and starts one sync per burst of changes (2 s
quiet, 10 s at most), queued behind a running one; the schedule keeps running. --watch=false
turns it off; without the flag it stays as it was.`,
		Example: `  starter enable
  starter enable --interval 1h
  starter enable --interval 1h --watch`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var d time.Duration // 0: keep the organization's interval
			if cmd.Flags().Changed("interval") {
				var err error
				if d, err = config.ParseInterval(interval); err != nil {
					return fmt.Errorf("--interval: %w", err)
				}
			}
			var w *bool // nil: keep the organization's
			if cmd.Flags().Changed("watch") {
				w = &watch
			}
			return a.enable(cmd, d, w)
		},
	}
	cmd.Flags().StringVar(&interval, "interval", "15m", "time between scheduled syncs (at least 30s), e.g. 15m, 1h; unset keeps the current one")
	cmd.Flags().BoolVar(&watch, "watch", false, "also sync at once when the directory changes (watch mode); --watch=false turns it off, unset keeps it")
	return cmd
}

func disableCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "disable",
		Short: "Turn user sync off: no new syncs, a running one stops cleanly",
		Long: `disable turns user sync off. No new sync starts and a running sync is cancelled cleanly;
nothing already provisioned changes.`,
		Example: `  starter disable`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			res, err := a.update(cmd.Context(), workflows.SignalDisable, vocab.EventSwitch, workflows.SwitchSignal{Actor: a.actor})
			if errors.Is(err, errNoWorkflow) {
				res, err = workflows.ActionResult{Outcome: workflows.OutcomeOff, Message: "sync was already off"}, nil
			}
			if err != nil {
				return err
			}
			return a.emit(cmd, res, func(w io.Writer) {
				switch {
				case res.Message != "":
					fmt.Fprintf(w, "User sync of %s was already off.\n", a.Org)
				case res.RunID != "":
					fmt.Fprintf(w, "User sync of %s is off; run %s stops cleanly.\n", a.Org, res.RunID)
				default:
					fmt.Fprintf(w, "User sync of %s is off.\n", a.Org)
				}
			})
		},
	}
}

// enable sends enable as an update-with-start: the org workflow is started when it does not
// run, and the answer says whether a sync started. When no worker answers in time the
// workflow is started all the same and enable is sent as a signal (durable, applied when a
// worker comes): a second enable is a no-op, so a late answer to the update does no harm.
func (a *app) enable(cmd *cobra.Command, interval time.Duration, watch *bool) error {
	ctx := cmd.Context()
	tc, err := a.temporal()
	if err != nil {
		return err
	}
	id := workflows.OrgWorkflowID(a.Org)
	// The interval as a Go duration string: readable in the UI's history.
	payload := map[string]any{"actor": a.actor}
	start := workflows.SyncState{Org: a.Org, Interval: workflows.DefaultInterval}
	if interval > 0 {
		payload["interval"], start.Interval = interval.String(), interval
	}
	if watch != nil {
		payload["watch"] = *watch
	}
	op := tc.NewWithStartWorkflowOperation(client.StartWorkflowOptions{ID: id, TaskQueue: workflows.TaskQueue,
		WorkflowIDConflictPolicy: enums.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING}, workflows.UserSyncWorkflow, start)
	uctx, cancel := context.WithTimeout(ctx, a.answerTimeout)
	defer cancel()
	h, err := tc.UpdateWithStartWorkflow(uctx, client.UpdateWithStartWorkflowOptions{StartWorkflowOperation: op,
		UpdateOptions: client.UpdateWorkflowOptions{WorkflowID: id, UpdateName: workflows.SignalEnable, Args: []any{payload},
			WaitForStage: client.WorkflowUpdateStageCompleted}})
	var res workflows.ActionResult
	if err == nil {
		err = h.Get(uctx, &res)
	}
	if err != nil && ctx.Err() == nil && uctx.Err() != nil {
		if serr := tc.SignalWorkflow(ctx, id, "", workflows.SignalEnable, payload); serr == nil {
			return a.emit(cmd, map[string]any{"workflowId": id, "signalled": true}, func(w io.Writer) {
				fmt.Fprintf(w, "No worker answered within %s: enable was sent to %s as a signal; it takes effect when a worker runs.\n", a.answerTimeout, id)
			})
		}
	}
	if err = a.updateError(ctx, workflows.SignalEnable, vocab.EventSwitch, err); err != nil {
		return err
	}
	return a.emit(cmd, res, func(w io.Writer) {
		if res.Outcome == workflows.OutcomeNoOp {
			fmt.Fprintf(w, "User sync of %s was already on (every %s%s); no sync started (use `starter sync-now`).\n", a.Org, res.Interval, watchNote(res.Watch))
			return
		}
		fmt.Fprintf(w, "User sync of %s is on (every %s%s); %s. Follow it with `starter status --wait`.\n", a.Org, res.Interval, watchNote(res.Watch), describeRun(res))
	})
}

func syncNowCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:     "sync-now",
		Short:   "Ask the organization's sync workflow for a sync now (user sync must be on)",
		Example: `  starter sync-now && starter status --wait`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.requestWhileOn(cmd, workflows.SignalSyncNow, vocab.EventSync, workflows.ActorSignal{Actor: a.actor}, "Sync requested")
		},
	}
}

func approveCmd(a *app) *cobra.Command {
	var held int
	var digest string
	cmd := &cobra.Command{
		Use:   "approve-suspensions",
		Short: "Approve the suspensions held by the safety threshold and sync",
		Long: `When a sync would suspend more users than the safety threshold, it holds them all as
suspension_held. After checking the directory, approve-suspensions runs a sync that applies them.
The approval names the held set, by the count and digest that ` + "`starter failures --type suspension_held`" + `
shows; it is refused when the held set has changed since.`,
		Example: `  starter failures --type suspension_held
  starter approve-suspensions --held 12 --digest 3f2a9c0d1b7e`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if digest == "" || !cmd.Flags().Changed("held") {
				return errors.New("--held and --digest: name the held set you approve, as `starter failures --type suspension_held` shows it")
			}
			return a.requestWhileOn(cmd, workflows.SignalApproveSuspensions, vocab.EventSync,
				workflows.ApproveSignal{Actor: a.actor, Held: held, Digest: digest}, "Suspensions approved")
		},
	}
	cmd.Flags().IntVar(&held, "held", 0, "how many suspensions are held (from starter failures --type suspension_held)")
	cmd.Flags().StringVar(&digest, "digest", "", "digest of the held set (from starter failures --type suspension_held)")
	return cmd
}

// requestWhileOn sends an action that asks for a run (user sync must be on) and says which.
func (a *app) requestWhileOn(cmd *cobra.Command, name, eventType string, payload any, done string) error {
	res, err := a.update(cmd.Context(), name, eventType, payload)
	if errors.Is(err, errNoWorkflow) {
		return errSyncOff
	}
	if err != nil {
		return err
	}
	return a.emit(cmd, res, func(w io.Writer) {
		fmt.Fprintf(w, "%s: %s.\n", done, describeRun(res))
	})
}

// queryStatus asks the org workflow for its status; nil (and no error) when it never ran.
func (a *app) queryStatus(ctx context.Context) (*workflows.Status, error) {
	tc, err := a.temporal()
	if err != nil {
		return nil, err
	}
	qctx, cancel := context.WithTimeout(ctx, queryTimeout)
	defer cancel()
	v, err := tc.QueryWorkflow(qctx, workflows.OrgWorkflowID(a.Org), "", workflows.QueryStatus)
	var notFound *serviceerror.NotFound
	if errors.As(err, &notFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("query status of %s: %w", workflows.OrgWorkflowID(a.Org), err)
	}
	var st workflows.Status
	if err := v.Get(&st); err != nil {
		return nil, fmt.Errorf("decode status: %w", err)
	}
	return &st, nil
}
