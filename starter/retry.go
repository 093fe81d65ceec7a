package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/usersync/usersync/internal/vocab"
	"github.com/usersync/usersync/workflows"
)

const (
	retryPollEvery = 500 * time.Millisecond
	retryMaxWait   = 10 * time.Minute
)

// failureFilterFlags are --type, --product and --user of retry and failures.
func failureFilterFlags(cmd *cobra.Command, f *vocab.Filter) {
	cmd.Flags().StringVar(&f.Type, "type", "", "failure type: "+strings.Join(vocab.FailureTypes, ", "))
	cmd.Flags().StringVar(&f.Product, "product", "", "product (for out_of_licenses)")
	cmd.Flags().StringVar(&f.User, "user", "", "userName or externalId")
}

func checkFailureType(t string) error {
	if t != "" && !vocab.IsFailureType(t) {
		return fmt.Errorf("--type %q: unknown failure type (valid: %s)", t, strings.Join(vocab.FailureTypes, ", "))
	}
	return nil
}

func describeFilter(f vocab.Filter) string {
	var parts []string
	for _, p := range []struct{ k, v string }{{"type", f.Type}, {"product", f.Product}, {"user", f.User}} {
		if p.v != "" {
			parts = append(parts, p.k+"="+p.v)
		}
	}
	if len(parts) == 0 {
		return "all failures"
	}
	return strings.Join(parts, " ")
}

func retryCmd(a *app) *cobra.Command {
	var f vocab.Filter
	var noWait bool
	cmd := &cobra.Command{
		Use:   "retry",
		Short: "Re-attempt the currently failed users: all, or by type, product or user",
		Long: `retry asks the organization's sync workflow to re-attempt failed users now. Without filters
every failed user is retried. When no current failure matches, nothing is sent. The workflow
answers with the retry run (started, or queued behind the running sync); unless --no-wait,
retry waits for that run to finish and prints its summary and what still fails.`,
		Example: `  starter licenses set Webinar 120
  starter retry --type out_of_licenses --product Webinar
  starter retry --user anna.schmidt@example.com --no-wait`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkFailureType(f.Type); err != nil {
				return err
			}
			ctx := cmd.Context()
			db, err := a.store(ctx)
			if err != nil {
				return err
			}
			matching, err := db.Failures(ctx, a.Org, f)
			if err != nil {
				return err
			}
			if len(matching) == 0 {
				return a.emit(cmd, map[string]any{"matching": 0, "signalled": false}, func(w io.Writer) {
					fmt.Fprintf(w, "No current failure matches %s: nothing to retry.\n", describeFilter(f))
				})
			}
			if f.User != "" {
				// The signal, the run's input and the history carry the directory's opaque ID,
				// not the user's name or email.
				f.User = matching[0].ExternalID
			}
			return a.retryNow(cmd, f, len(matching), noWait)
		},
	}
	failureFilterFlags(cmd, &f)
	cmd.Flags().BoolVar(&noWait, "no-wait", false, "signal and return at once")
	return cmd
}

// retryNow asks for a retry of the failures matching f (matching of them) and, unless noWait,
// waits for the run the workflow answered with and prints its summary and what still fails.
func (a *app) retryNow(cmd *cobra.Command, f vocab.Filter, matching int, noWait bool) error {
	ctx := cmd.Context()
	res, err := a.update(ctx, workflows.SignalRetry, vocab.EventRetry, workflows.RetrySignal{Actor: a.actor, Filter: f})
	if errors.Is(err, errNoWorkflow) {
		return errSyncOff
	}
	if err != nil {
		return err
	}
	if noWait {
		return a.emit(cmd, map[string]any{"matching": matching, "runId": res.RunID, "outcome": res.Outcome}, func(w io.Writer) {
			fmt.Fprintf(w, "Retry of %d failed users (%s) requested: %s.\n", matching, describeFilter(f), describeRun(res))
		})
	}
	if !a.json {
		fmt.Fprintf(cmd.OutOrStdout(), "Retrying %d failed users (%s): %s...\n", matching, describeFilter(f), describeRun(res))
	}
	done, err := a.waitForRun(ctx, res.RunID)
	if err != nil {
		return err
	}
	db, err := a.store(ctx)
	if err != nil {
		return err
	}
	banners, err := db.Banners(ctx, a.Org)
	if err != nil {
		return err
	}
	return a.emit(cmd, map[string]any{"matching": matching, "runId": res.RunID, "lastRun": done.LastRun, "banners": banners}, func(w io.Writer) {
		printSummary(w, *done.LastRun)
		printBanners(w, banners)
	})
}

func lastRunID(st *workflows.Status) string {
	if st == nil || st.LastRun == nil {
		return ""
	}
	return st.LastRun.RunID
}

// waitForRun polls the status until run runID has finished.
func (a *app) waitForRun(ctx context.Context, runID string) (*workflows.Status, error) {
	ctx, cancel := context.WithTimeout(ctx, retryMaxWait)
	defer cancel()
	tick := time.NewTicker(retryPollEvery)
	defer tick.Stop()
	for {
		st, err := a.queryStatus(ctx)
		if err != nil {
			return nil, err
		}
		if st == nil || !st.Enabled {
			return nil, errSyncOff
		}
		if lastRunID(st) == runID {
			return st, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("waited %s for the retry run to finish: %w (see `starter status`)", retryMaxWait, ctx.Err())
		case <-tick.C:
		}
	}
}
