package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

	"github.com/usersync/usersync/internal/config"
	"github.com/usersync/usersync/workflows"
)

var errSyncOff = errors.New("user sync is off; run `starter enable` first")

// queryTimeout bounds one query: without a worker, a query would wait long.
// switchQueryTimeout bounds the best-effort query before enable and disable.
const (
	queryTimeout       = 15 * time.Second
	switchQueryTimeout = 3 * time.Second
)

func enableCmd(a *app) *cobra.Command {
	var interval string
	cmd := &cobra.Command{
		Use:   "enable",
		Short: "Turn user sync on: sync now, then on the schedule",
		Long: `enable turns the organization's user sync on (starting its sync workflow if needed). A sync
starts at once, then every --interval (default: the interval set before, else 15m). Enabling
when already on starts no sync; with --interval it changes the interval.`,
		Example: `  starter enable
  starter enable --interval 1h`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var d time.Duration // 0: keep the organization's interval
			if cmd.Flags().Changed("interval") {
				var err error
				if d, err = config.ParseInterval(interval); err != nil {
					return fmt.Errorf("--interval: %w", err)
				}
			}
			return a.switchSync(cmd, workflows.SignalEnable, workflows.SwitchSignal{Actor: a.actor, Interval: d})
		},
	}
	cmd.Flags().StringVar(&interval, "interval", "15m", "time between scheduled syncs (at least 30s), e.g. 15m, 1h; unset keeps the current one")
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
			return a.switchSync(cmd, workflows.SignalDisable, workflows.SwitchSignal{Actor: a.actor})
		},
	}
}

// switchSync sends enable or disable, starting the org workflow when it does not run.
func (a *app) switchSync(cmd *cobra.Command, signal string, payload workflows.SwitchSignal) error {
	tc, err := a.temporal()
	if err != nil {
		return err
	}
	id := workflows.OrgWorkflowID(a.Org)
	// What the workflow had before, to say what the signal changes (best effort: without a
	// worker the query fails, and the signal is still delivered when one starts).
	qctx, cancel := context.WithTimeout(cmd.Context(), switchQueryTimeout)
	before, _ := a.queryStatus(qctx)
	cancel()
	interval := payload.Interval
	switch {
	case interval > 0:
	case before != nil && before.Interval > 0:
		interval = before.Interval
	default:
		interval = workflows.DefaultInterval
	}
	_, err = tc.SignalWithStartWorkflow(cmd.Context(), id, signal, payload,
		client.StartWorkflowOptions{ID: id, TaskQueue: workflows.TaskQueue},
		workflows.UserSyncWorkflow, workflows.SyncState{Org: a.Org, Interval: interval})
	if err != nil {
		return fmt.Errorf("%s %s: %w", signal, id, err)
	}
	wasOn := before != nil && before.Enabled
	return a.emit(cmd, map[string]any{"workflowId": id, "signal": signal, "interval": interval.String(), "wasOn": wasOn}, func(w io.Writer) {
		switch {
		case signal == workflows.SignalEnable && wasOn:
			fmt.Fprintf(w, "User sync of %s was already on (every %s); no sync started (use `starter sync-now`).\n", a.Org, interval)
		case signal == workflows.SignalEnable:
			fmt.Fprintf(w, "User sync of %s is on (every %s); a sync starts now. Follow it with `starter status --wait`.\n", a.Org, interval)
		case before != nil && !before.Enabled:
			fmt.Fprintf(w, "User sync of %s was already off.\n", a.Org)
		default:
			fmt.Fprintf(w, "User sync of %s is off; a running sync stops cleanly.\n", a.Org)
		}
	})
}

func syncNowCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:     "sync-now",
		Short:   "Ask the organization's sync workflow for a sync now (user sync must be on)",
		Example: `  starter sync-now && starter status --wait`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.signalWhileOn(cmd, workflows.SignalSyncNow, workflows.ActorSignal{Actor: a.actor}, "Sync requested.")
		},
	}
}

func approveCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "approve-suspensions",
		Short: "Approve the suspensions held by the safety threshold and sync",
		Long: `When a sync would suspend more users than the safety threshold, it holds them all as
suspension_held. After checking the directory, approve-suspensions runs a sync that applies them.`,
		Example: `  starter failures --type suspension_held
  starter approve-suspensions`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.signalWhileOn(cmd, workflows.SignalApproveSuspensions, workflows.ActorSignal{Actor: a.actor},
				"Suspensions approved; a sync applying them is queued.")
		},
	}
}

// signalWhileOn signals the org workflow after checking that user sync is on: the workflow
// would ignore the request otherwise.
func (a *app) signalWhileOn(cmd *cobra.Command, signal string, payload any, done string) error {
	ctx := cmd.Context()
	st, err := a.queryStatus(ctx)
	if err != nil {
		return err
	}
	if st == nil || !st.Enabled {
		return errSyncOff
	}
	tc, _ := a.temporal() // dialed by queryStatus
	if err := tc.SignalWorkflow(ctx, workflows.OrgWorkflowID(a.Org), "", signal, payload); err != nil {
		return fmt.Errorf("%s: %w", signal, err)
	}
	return a.emit(cmd, map[string]string{"workflowId": workflows.OrgWorkflowID(a.Org), "signal": signal}, func(w io.Writer) {
		fmt.Fprintln(w, done)
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
