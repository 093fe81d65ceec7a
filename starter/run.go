package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"go.temporal.io/api/serviceerror"
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

// runQueryGrace is how long run keeps asking for the org workflow's status while the query
// fails (no worker yet) or the workflow has not taken the request, before it gives up.
const runQueryGrace = time.Minute

func runCmd(a *app) *cobra.Command {
	var dryRun, noWait bool
	var progress string
	cmd := listing(&cobra.Command{
		Use:   "run",
		Short: "Run one sync now, outside the schedule, and print its summary",
		Long: `run asks the organization's sync workflow for one sync now and waits for it. It works
whether user sync is on or off, and it never runs beside another sync of the organization:
while one runs, it is queued and starts when that one ends (run says which sync it waits
for). While sync is off, only this sync runs; disable drops it if it has not started yet.

With --dry-run nothing is written to the target: the planned per-user changes are printed
instead. A dry run starts at once, beside a running sync if there is one: it writes nothing
to the target nor to the organization's state (seats, accounts, failures), only its own
plan and its line in the history. A failed run exits non-zero.`,
		Example: `  starter run --dry-run
  starter run
  starter run --no-wait --output json
  starter run --progress lines | tee sync.log
  starter run --dry-run --output csv > planned.csv`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if a.output == outCSV && (!dryRun || noWait) {
				return errors.New("--output csv: run prints rows only with --dry-run, waiting (its planned changes); use --output table or json")
			}
			view, err := a.progressView(cmd, progress)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			tc, err := a.temporal()
			if err != nil {
				return err
			}
			var id string
			var run client.WorkflowRun
			if dryRun {
				id = workflows.RunWorkflowID(a.Org, "manual-"+time.Now().UTC().Format("20060102T150405.000Z"))
				in := workflows.RunInput{Org: a.Org, RunID: id, Kind: vocab.KindManual, DryRun: true, Actor: a.actor}
				if run, err = tc.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: workflows.TaskQueue},
					workflows.SyncRunWorkflow, in); err != nil {
					return fmt.Errorf("start run %s: %w", id, err)
				}
			} else {
				t, err := a.requestRun(cmd, noWait)
				if err != nil {
					return err
				}
				if t.RunID == "" { // --no-wait, and queued behind the running sync
					return nil
				}
				id = t.RunID
				if run, err = a.startedRun(ctx, id); err != nil {
					return err
				}
			}
			if noWait {
				return a.emit(cmd, map[string]string{"workflowId": id, "runId": run.GetRunID()}, func(w io.Writer) {
					fmt.Fprintf(w, "Started run %s (follow it with `starter status` or the Temporal UI).\n", id)
				})
			}
			var sum steps.RunSummary
			stop := a.followRun(ctx, view, id)
			err = run.Get(ctx, &sum)
			stop()
			if err != nil {
				// The workflow failed: show what it recorded before failing, if anything.
				rec, ok := a.recordedRun(ctx, id)
				if ok {
					view.finish(snapOfSummary(rec))
				}
				view.end()
				if ok && a.output == outTable {
					printSummary(cmd.OutOrStdout(), rec)
				}
				return fmt.Errorf("run %s: %w", id, err)
			}
			view.finish(snapOfSummary(sum))
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
			doc := map[string]any{"summary": sum, "items": shown, "plannedFailures": planned}
			err = emitRows(a, cmd, rowSet[plan.Item]{rows: shown, cols: itemColumns, doc: doc, text: func(w io.Writer) {
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
			}})
			if err != nil {
				return err
			}
			if sum.Status != vocab.RunSucceeded {
				return fmt.Errorf("run %s: %s %s", id, sum.Status, sum.Error)
			}
			return nil
		},
	})
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "plan only: show what would change, write nothing")
	cmd.Flags().BoolVar(&noWait, "no-wait", false, "request the run and return at once (once started, or queued behind the running sync)")
	progressFlag(cmd, &progress)
	return cmd
}

// requestRun asks the org workflow for one sync (SignalRun, starting the workflow when it does
// not run, sync off) and follows the request in its status until the run answering it has
// started: its ticket names the run. While another sync runs, the request is queued and
// run says so; with noWait it returns then, with no run ID (and having printed what it knows).
func (a *app) requestRun(cmd *cobra.Command, noWait bool) (workflows.RunTicket, error) {
	ctx := cmd.Context()
	tc, err := a.temporal()
	if err != nil {
		return workflows.RunTicket{}, err
	}
	req := newRunRequest()
	orgID := workflows.OrgWorkflowID(a.Org)
	if _, err := tc.SignalWithStartWorkflow(ctx, orgID, workflows.SignalRun, workflows.RunSignal{Actor: a.actor, Request: req},
		client.StartWorkflowOptions{ID: orgID, TaskQueue: workflows.TaskQueue},
		workflows.UserSyncWorkflow, workflows.SyncState{Org: a.Org, Interval: workflows.DefaultInterval}); err != nil {
		return workflows.RunTicket{}, fmt.Errorf("request a run of %s: %w", a.Org, err)
	}
	tick := time.NewTicker(statusPollEvery)
	defer tick.Stop()
	sent, seen := time.Now(), false
	var failingSince time.Time
	for {
		st, err := a.queryStatus(ctx)
		if err == nil && st == nil {
			err = fmt.Errorf("%s does not run", orgID)
		}
		switch {
		case err != nil: // no worker yet, or it restarts: the request waits in the workflow
			if failingSince.IsZero() {
				failingSince = time.Now()
			}
			if time.Since(failingSince) > runQueryGrace {
				return workflows.RunTicket{}, fmt.Errorf("run request %s: no status for %s (%v); the request stays with the workflow (see `starter status`)",
					req, runQueryGrace, err)
			}
		default:
			failingSince = time.Time{}
			if t, ok := findTicket(st.Tickets, req); ok {
				if t.Dropped != "" {
					return t, fmt.Errorf("run request %s dropped: %s", req, t.Dropped)
				}
				return t, nil
			}
			q, cur := st.Queued, st.CurrentRun
			if q == nil || !slices.Contains(q.Requests, req) {
				if !seen && time.Since(sent) > runQueryGrace {
					return workflows.RunTicket{}, fmt.Errorf("run request %s: the organization's sync workflow has not taken it within %s (is the worker up to date?)",
						req, runQueryGrace)
				}
				break
			}
			if !seen && cur != nil {
				// Queued behind the running sync (Phase holds a run's kind in the status).
				if noWait {
					return workflows.RunTicket{Request: req}, a.emit(cmd,
						map[string]any{"request": req, "queuedBehind": cur.RunID, "queuedBehindKind": cur.Phase},
						func(w io.Writer) {
							fmt.Fprintf(w, "Run requested: a %s sync (run %s) is running; this one starts when it ends. Follow it with `starter status`.\n",
								cur.Phase, cur.RunID)
						})
				}
				if !a.json {
					fmt.Fprintf(cmd.OutOrStdout(), "A %s sync (run %s) is running: this run is queued and starts when it ends.\n",
						cur.Phase, cur.RunID)
				}
			}
			seen = true
		}
		select {
		case <-ctx.Done():
			return workflows.RunTicket{}, fmt.Errorf("run request %s: stopped waiting (%w); the request stays queued (see `starter status`)", req, ctx.Err())
		case <-tick.C:
		}
	}
}

// startedRun is the run the org workflow started as id. Its ticket is in the status as soon
// as the workflow has decided to start it: the server may take a moment more to create it.
func (a *app) startedRun(ctx context.Context, id string) (client.WorkflowRun, error) {
	tc, err := a.temporal()
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(runQueryGrace)
	for {
		_, err := tc.DescribeWorkflowExecution(ctx, id, "")
		var notFound *serviceerror.NotFound
		switch {
		case err == nil:
			return tc.GetWorkflow(ctx, id, ""), nil
		case !errors.As(err, &notFound) || time.Now().After(deadline):
			return nil, fmt.Errorf("run %s: %w", id, err)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// newRunRequest names a run request: unique enough that two admins never share one.
func newRunRequest() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return "run-" + time.Now().UTC().Format("20060102T150405") + "-" + hex.EncodeToString(b[:])
}

func findTicket(ts []workflows.RunTicket, req string) (workflows.RunTicket, bool) {
	for _, t := range ts {
		if t.Request == req {
			return t, true
		}
	}
	return workflows.RunTicket{}, false
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
	writeTable(w, "", itemColumns, items)
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

// itemColumns are a dry run's planned changes.
var itemColumns = []column[plan.Item]{
	{"ACTION", func(it plan.Item) string { return string(it.Action) }},
	{"USER", func(it plan.Item) string { return it.UserName }},
	{"CHANGED", func(it plan.Item) string { return strings.Join(it.Changed, ",") }},
	{"FAILURE", func(it plan.Item) string {
		f := it.Failure
		if f == nil {
			return ""
		}
		s := f.Type
		if f.Product != "" {
			s += " (" + f.Product + ")"
		}
		if f.Message != "" {
			s += ": " + f.Message
		}
		return s
	}},
}

// followRun shows run id's progress until stop is called (nil view: nothing to show).
func (a *app) followRun(ctx context.Context, view *progressView, id string) (stop func()) {
	if view == nil {
		return func() {}
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(statusPollEvery)
		defer tick.Stop()
		for {
			if p := a.runProgress(ctx, &workflows.Progress{RunID: id}); p.Phase != "" && ctx.Err() == nil {
				view.show(snapOf(*p))
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	return func() { cancel(); <-done }
}
