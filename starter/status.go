package main

import (
	"context"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/spf13/cobra"
	"go.temporal.io/sdk/client"

	"github.com/usersync/usersync/internal/store"
	"github.com/usersync/usersync/internal/vocab"
	"github.com/usersync/usersync/workflows"
)

const statusPollEvery = 500 * time.Millisecond

func statusCmd(a *app) *cobra.Command {
	var wait bool
	var timeout time.Duration
	var progress string
	cmd := listing(&cobra.Command{
		Use:   "status",
		Short: "Show whether user sync is on, the current and last run, failures and recent runs",
		Long: `status queries the organization's sync workflow (on/off, interval, next run, the running
sync's progress, a queued request, the last run) and reads the failure banners and the last
runs from the database. With --wait it first blocks until sync is on, a run has finished and
nothing is running or queued.`,
		Example: `  starter status
  starter enable && starter status --wait --timeout 5m
  starter status --wait --progress lines
  starter status --output json
  starter status --output csv   # the recent runs`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if timeout <= 0 {
				return fmt.Errorf("--timeout %s: must be above 0", timeout)
			}
			view, err := a.progressView(cmd, progress)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			db, err := a.store(ctx)
			if err != nil {
				return err
			}
			var st *workflows.Status
			var queryErr error
			if wait {
				if st, err = a.waitIdle(ctx, timeout, view); err != nil {
					return err
				}
			} else {
				st, queryErr = a.queryStatus(ctx)
			}
			var prog *workflows.Progress
			if st != nil && st.CurrentRun != nil {
				prog = a.runProgress(ctx, st.CurrentRun)
			}
			banners, err := db.Banners(ctx, a.Org)
			if err != nil {
				return err
			}
			runs, err := db.Runs(ctx, a.Org, 5)
			if err != nil {
				return err
			}
			out := map[string]any{"org": a.Org, "exists": st != nil, "status": st, "progress": prog, "banners": banners, "runs": runs}
			if queryErr != nil {
				out["exists"], out["error"] = nil, queryErr.Error()
			}
			// The CSV has the recent runs; the table is the whole status.
			if err := emitRows(a, cmd, rowSet[store.Run]{rows: runs, cols: runColumns, doc: out, text: func(w io.Writer) {
				if queryErr != nil {
					fmt.Fprintf(w, "User sync of %s: status unavailable (is Temporal up and a worker running?)\n", a.Org)
				}
				printStatus(w, a.Org, st, prog, banners, runs, queryErr == nil)
			}}); err != nil {
				return err
			}
			return queryErr // the store part was printed; the workflow part failed
		},
	})
	cmd.Flags().BoolVar(&wait, "wait", false, "block until sync is on, a run has finished and nothing runs or is queued")
	cmd.Flags().DurationVar(&timeout, "timeout", 10*time.Minute, "how long --wait may block")
	progressFlag(cmd, &progress)
	return cmd
}

// runProgress asks the running sync for its progress; the status' own copy is the fallback.
func (a *app) runProgress(ctx context.Context, cur *workflows.Progress) *workflows.Progress {
	tc, err := a.temporal()
	if err != nil {
		return cur
	}
	qctx, cancel := context.WithTimeout(ctx, queryTimeout)
	defer cancel()
	v, err := tc.QueryWorkflow(qctx, cur.RunID, "", workflows.QueryProgress)
	if err != nil {
		return cur
	}
	var p workflows.Progress
	if v.Get(&p) != nil {
		return cur
	}
	// The run counts a page's users when the page ends; the pages running count theirs so far.
	// A page that does not answer (ended meanwhile, or an older worker) adds nothing.
	for _, r := range a.pages.running(ctx, tc, p.RunID, p.PagesRunning) {
		for _, c := range r.Outcomes {
			p.UsersDone += c
		}
		p.UsersFailed += r.Outcomes[vocab.Failed]
	}
	return &p
}

// pageQueryTimeout bounds a page's progress query. A page whose SCIM writes are local
// activities answers only when its workflow task ends (every 5 s or so, once its writes in
// flight end), longer than a progress line may wait for it.
const pageQueryTimeout = 30 * time.Second

// pageAnswerWait is how long a progress line waits for the pages' answers; a page that
// answers later counts in a later line.
const pageAnswerWait = time.Second

// pageCounts are the last answers of the running pages' progress queries: each query runs
// in the background (one per page at a time), and a line shows the last answer of each page.
type pageCounts struct {
	mu      sync.Mutex
	answers map[string]workflows.PageResult // by page workflow ID
	asking  map[string]chan struct{}        // queries in flight, closed when answered
}

// running returns the last answers of the pages running of run, after asking each again
// (waiting at most pageAnswerWait).
func (pc *pageCounts) running(ctx context.Context, tc client.Client, run string, pages []int) []workflows.PageResult {
	pc.mu.Lock()
	if pc.answers == nil {
		pc.answers, pc.asking = map[string]workflows.PageResult{}, map[string]chan struct{}{}
	}
	var waits []chan struct{}
	for _, n := range pages {
		id := workflows.PageWorkflowID(run, n)
		done, ok := pc.asking[id]
		if !ok {
			done = make(chan struct{})
			pc.asking[id] = done
			go pc.ask(ctx, tc, id, done)
		}
		waits = append(waits, done)
	}
	pc.mu.Unlock()
	wctx, cancel := context.WithTimeout(ctx, pageAnswerWait)
	defer cancel()
	for _, done := range waits {
		select {
		case <-done:
		case <-wctx.Done():
		}
	}
	pc.mu.Lock()
	defer pc.mu.Unlock()
	var out []workflows.PageResult
	for _, n := range pages {
		if r, ok := pc.answers[workflows.PageWorkflowID(run, n)]; ok {
			out = append(out, r)
		}
	}
	return out
}

func (pc *pageCounts) ask(ctx context.Context, tc client.Client, id string, done chan struct{}) {
	qctx, cancel := context.WithTimeout(ctx, pageQueryTimeout)
	defer cancel()
	v, err := tc.QueryWorkflow(qctx, id, "", workflows.QueryPageProgress)
	var r workflows.PageResult
	ok := err == nil && v.Get(&r) == nil
	pc.mu.Lock()
	defer pc.mu.Unlock()
	if ok {
		pc.answers[id] = r
	}
	delete(pc.asking, id)
	close(done)
}

// waitIdle polls until sync is on, a last run exists and nothing runs or is queued. view
// shows the progress of the runs that it sees running, and their final counts.
func (a *app) waitIdle(ctx context.Context, timeout time.Duration, view *progressView) (*workflows.Status, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(statusPollEvery)
	defer tick.Stop()
	var lastErr error
	for {
		// A query fails while the worker is still starting: keep trying until the timeout.
		st, err := a.queryStatus(ctx)
		if err != nil {
			lastErr = err
		}
		a.showWaited(ctx, view, st)
		if st != nil && st.Enabled && st.LastRun != nil && st.CurrentRun == nil && st.Queued == nil {
			return st, nil
		}
		select {
		case <-ctx.Done():
			view.end()
			what := "user sync has never been enabled"
			switch {
			case st != nil && !st.Enabled:
				what = "user sync is off"
			case st != nil && (st.CurrentRun != nil || st.Queued != nil):
				what = "a sync is still running or queued"
			case st != nil:
				what = "no sync has finished yet"
			}
			if lastErr != nil && st == nil {
				what = lastErr.Error()
			}
			return nil, fmt.Errorf("status --wait: gave up after --timeout %s: %s", timeout, what)
		case <-tick.C:
		}
	}
}

func printStatus(w io.Writer, org string, st *workflows.Status, prog *workflows.Progress, banners []vocab.Banner, runs []store.Run, known bool) {
	w = toTerminal(w)
	switch {
	case !known:
	case st == nil:
		fmt.Fprintf(w, "User sync of %s: user sync has never been enabled (run `starter enable`).\n", org)
	case !st.Enabled:
		fmt.Fprintf(w, "User sync of %s: off (%d runs so far).\n", org, st.Runs)
	default:
		fmt.Fprintf(w, "User sync of %s: on, every %s%s (%d runs so far).\n", org, st.Interval, watchNote(st.Watch), st.Runs)
		if st.NextAt != nil && st.CurrentRun == nil {
			fmt.Fprintf(w, "Next run: %s\n", timeStr(*st.NextAt))
		}
	}
	if prog != nil {
		fmt.Fprintf(w, "Current run: %s, %s since %s", prog.RunID, prog.Phase, timeStr(prog.StartedAt))
		if prog.Pages > 0 {
			fmt.Fprintf(w, ", pages %d/%d", prog.PagesDone, prog.Pages)
		}
		if prog.Items > 0 {
			fmt.Fprintf(w, ", users %d/%d", prog.UsersDone, prog.Items)
		}
		if prog.Cancelling {
			fmt.Fprint(w, " (stopping)")
		}
		fmt.Fprintln(w)
	}
	if st != nil && st.Queued != nil {
		q := st.Queued
		fmt.Fprintf(w, "Queued: %s", q.Kind)
		if q.Retry != nil {
			fmt.Fprintf(w, " (%s)", describeFilter(*q.Retry))
		}
		if q.ApproveSuspensions {
			fmt.Fprint(w, ", approving held suspensions")
		}
		if q.Actor != "" {
			fmt.Fprintf(w, ", requested by %s", q.Actor)
		}
		fmt.Fprintln(w)
	}
	if st != nil && st.LastRun != nil {
		fmt.Fprint(w, "Last ")
		printSummary(w, *st.LastRun)
	}
	printBanners(w, banners)
	fmt.Fprintln(w, "Recent runs:")
	printRuns(w, runs)
}

// showWaited shows the running sync's progress and, once it has ended, its final counts.
func (a *app) showWaited(ctx context.Context, view *progressView, st *workflows.Status) {
	if view == nil || st == nil {
		return
	}
	// The run seen before has ended (the last run) or given way to the next one.
	if seen := view.run; seen != "" && (st.CurrentRun == nil || st.CurrentRun.RunID != seen) {
		if st.LastRun != nil && st.LastRun.RunID == seen {
			view.finish(snapOfSummary(*st.LastRun))
		} else {
			view.end()
		}
	}
	if st.CurrentRun != nil {
		// Not the status' own copy, whose phase is the run's kind: the run's answer only.
		if p := a.runProgress(ctx, st.CurrentRun); p != st.CurrentRun && p.Phase != "" && p.RunID == st.CurrentRun.RunID {
			view.show(snapOf(*p))
		}
	}
}

// watchNote says that watch mode is on.
func watchNote(on bool) string {
	if on {
		return " and at once when the directory changes (watch)"
	}
	return ""
}
