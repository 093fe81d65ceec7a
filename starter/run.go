package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"go.temporal.io/sdk/client"

	"github.com/usersync/usersync/internal/plan"
	"github.com/usersync/usersync/internal/steps"
	"github.com/usersync/usersync/internal/vocab"
	"github.com/usersync/usersync/workflows"
)

// dryRunItemLimit bounds the per-user changes a dry run prints; dryRunCountLimit the items
// it reads to count the planned failures by type.
const (
	dryRunItemLimit  = 200
	dryRunCountLimit = 20000
)

func runCmd(a *app) *cobra.Command {
	var dryRun, noWait bool
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Start one sync now, outside the schedule, and print its summary",
		Long: `run starts one sync workflow directly (it works whether user sync is on or off) and waits
for it. With --dry-run nothing is written to the target: the planned per-user changes are
printed instead. A failed run exits non-zero.`,
		Example: `  starter run --dry-run
  starter run
  starter run --no-wait --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			tc, err := a.temporal()
			if err != nil {
				return err
			}
			id := workflows.RunWorkflowID(a.Org, "manual-"+time.Now().UTC().Format("20060102T150405.000Z"))
			in := workflows.RunInput{Org: a.Org, RunID: id, Kind: vocab.KindManual, DryRun: dryRun, Actor: a.actor}
			run, err := tc.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: workflows.TaskQueue},
				workflows.SyncRunWorkflow, in)
			if err != nil {
				return fmt.Errorf("start run %s: %w", id, err)
			}
			if noWait {
				return a.emit(cmd, map[string]string{"workflowId": id, "runId": run.GetRunID()}, func(w io.Writer) {
					fmt.Fprintf(w, "Started run %s (follow it with `starter status` or the Temporal UI).\n", id)
				})
			}
			var sum steps.RunSummary
			if err := run.Get(ctx, &sum); err != nil {
				// The workflow failed: show what it recorded before failing, if anything.
				if rec, ok := a.recordedRun(ctx, id); ok && !a.json {
					printSummary(cmd.OutOrStdout(), rec)
				}
				return fmt.Errorf("run %s: %w", id, err)
			}
			var items []plan.Item
			if dryRun && sum.Status == vocab.RunSucceeded {
				db, err := a.store(ctx)
				if err != nil {
					return err
				}
				if items, err = db.WorkItems(ctx, id, dryRunCountLimit); err != nil {
					return fmt.Errorf("run %s: read planned changes: %w", id, err)
				}
			}
			planned := plannedFailures(items)
			shown := items[:min(len(items), dryRunItemLimit)]
			err = a.emit(cmd, map[string]any{"summary": sum, "items": shown, "plannedFailures": planned}, func(w io.Writer) {
				printSummary(w, sum)
				if !dryRun {
					printBanners(w, sum.Banners)
					return
				}
				// A dry run records no failure: show the ones it would record instead.
				fmt.Fprintf(w, "  planned failures by type: %s", counts(planned))
				if len(items) < sum.Plan.Items {
					fmt.Fprintf(w, " (among the first %d planned changes)", len(items))
				}
				fmt.Fprintln(w)
				printItems(w, shown, sum.Plan.Items)
			})
			if err != nil {
				return err
			}
			if sum.Status != vocab.RunSucceeded {
				return fmt.Errorf("run %s: %s %s", id, sum.Status, sum.Error)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "plan only: show what would change, write nothing")
	cmd.Flags().BoolVar(&noWait, "no-wait", false, "start the run and return at once")
	return cmd
}

// plannedFailures counts the planned failures by type.
func plannedFailures(items []plan.Item) map[string]int {
	out := map[string]int{}
	for _, it := range items {
		if it.Failure != nil {
			out[it.Failure.Type]++
		}
	}
	return out
}

// printItems shows a dry run's planned changes per user.
func printItems(w io.Writer, items []plan.Item, total int) {
	if len(items) == 0 {
		fmt.Fprintln(w, "No per-user changes planned.")
		return
	}
	fmt.Fprintln(w, "Planned changes:")
	tw := table(w, "ACTION", "USER", "CHANGED", "FAILURE")
	for _, it := range items {
		failure := ""
		if it.Failure != nil {
			failure = it.Failure.Type
			if it.Failure.Product != "" {
				failure += " (" + it.Failure.Product + ")"
			}
			if it.Failure.Message != "" {
				failure += ": " + it.Failure.Message
			}
		}
		row(tw, it.Action, it.UserName, strings.Join(it.Changed, ","), failure)
	}
	tw.Flush()
	if total > len(items) {
		fmt.Fprintf(w, "... and %d more\n", total-len(items))
	}
}

// recordedRun reads a run's summary from the store (best effort).
func (a *app) recordedRun(ctx context.Context, runID string) (steps.RunSummary, bool) {
	var sum steps.RunSummary
	db, err := a.store(ctx)
	if err != nil {
		return sum, false
	}
	runs, err := db.Runs(ctx, a.Org, 20)
	if err != nil {
		return sum, false
	}
	for _, r := range runs {
		if r.RunID == runID && len(r.Summary) > 2 && json.Unmarshal(r.Summary, &sum) == nil && sum.RunID != "" {
			return sum, true
		}
	}
	return sum, false
}
