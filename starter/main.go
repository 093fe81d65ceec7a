// Command starter is usersync's admin CLI: it switches an organization's sync on and off,
// starts, retries and watches syncs through Temporal, and edits the configuration (rules,
// mappings, licenses, domains, catalog) in PostgreSQL.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"

	"github.com/usersync/usersync/internal/config"
	"github.com/usersync/usersync/internal/store"
)

// app holds the global flags and the clients, which are created on first use only: commands
// that edit the store never need Temporal and the other way round.
type app struct {
	config.Common
	settings *config.Settings // the common settings, bound to the global flags
	actor    string
	output   string    // --output: table, json or csv
	jsonFlag bool      // --json, deprecated: --output json
	json     bool      // the output is JSON (resolved from the two above)
	stderr   io.Writer // warnings
	// answerTimeout bounds the wait for the org workflow's answer to an update.
	answerTimeout time.Duration

	db    *store.Store
	tc    client.Client
	pages pageCounts // the running pages' last progress answers
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	root, a := newRoot()
	err := root.ExecuteContext(ctx)
	a.close()
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// newRoot builds the command tree. Tests execute it in-process.
func newRoot() (*cobra.Command, *app) {
	a := &app{stderr: os.Stderr}
	a.settings = a.Common.Settings()
	root := &cobra.Command{
		Use:   "starter",
		Short: "Administer usersync: switch user sync on and off, run, retry and configure it",
		Long: `starter is the admin CLI of usersync. It talks to Temporal (the organization's sync
workflow) for on/off, runs, retries and status, and to PostgreSQL for rules, attribute
mappings, licenses, validated domains, the catalog, failures and the activity history.`,
		Example: `  export DATABASE_URL=postgres://usersync@127.0.0.1:5432/usersync
  starter seed-demo
  starter enable --interval 15m
  starter status --wait
  starter failures --type out_of_licenses`,
		SilenceUsage:      true,
		SilenceErrors:     true,
		CompletionOptions: cobra.CompletionOptions{DisableDefaultCmd: true},
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			a.stderr = cmd.ErrOrStderr()
			if err := a.settings.Load(); err != nil {
				return err
			}
			if strings.TrimSpace(a.actor) == "" {
				return errors.New("--actor: empty")
			}
			return a.resolveOutput(cmd)
		},
	}
	pf := root.PersistentFlags()
	// The worker's common settings (internal/config): same flags, variables and validation.
	a.settings.BindPFlags(pf)
	pf.StringVar(&a.actor, "actor", envOr("USER", "cli"), "who is acting, recorded in the history (env USER)")
	pf.StringVarP(&a.output, "output", "o", outTable, "output format: table, json or csv (csv: listings only)")
	// Deprecated, kept working and without a warning: scripts that merge standard error into
	// the JSON they parse would break on one.
	pf.BoolVar(&a.jsonFlag, "json", false, "deprecated: same as --output json")
	pf.DurationVar(&a.answerTimeout, "answer-timeout", defaultAnswerTimeout, "how long to wait for the sync workflow to answer an action (needs a running worker)")

	root.AddCommand(
		runCmd(a), enableCmd(a), disableCmd(a), syncNowCmd(a), approveCmd(a), retryCmd(a), adoptCmd(a),
		statusCmd(a), failuresCmd(a), rulesCmd(a), mappingsCmd(a), licensesCmd(a), domainsCmd(a),
		catalogCmd(a), historyCmd(a), seedDemoCmd(a), explainCmd(a), targetCmd(a),
		orgsCmd(a), codecServerCmd(a), configCmd(a), migrateCmd(a),
	)
	return root, a
}

// store opens the database on first use.
func (a *app) store(ctx context.Context) (*store.Store, error) {
	if a.db != nil {
		return a.db, nil
	}
	if strings.TrimSpace(a.DatabaseURL) == "" {
		return nil, errors.New("--database-url: not set (set it or env DATABASE_URL)")
	}
	if warning := config.DatabaseTLSWarning(a.DatabaseURL); warning != "" {
		w := a.stderr
		if w == nil {
			w = os.Stderr
		}
		fmt.Fprintln(w, "warning:", warning)
	}
	db, err := store.Open(ctx, a.DatabaseURL)
	if err != nil {
		return nil, err
	}
	a.db = db
	return db, nil
}

// temporal dials Temporal on first use. The SDK's own logging is silenced: the CLI reports
// errors itself.
func (a *app) temporal() (client.Client, error) {
	if a.tc != nil {
		return a.tc, nil
	}
	opts, err := a.TemporalOptions(tlog.NewStructuredLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		return nil, err
	}
	c, err := client.Dial(opts)
	if err != nil {
		return nil, fmt.Errorf("temporal %s (namespace %s): %w", a.TemporalAddress, a.Namespace, err)
	}
	a.tc = c
	return c, nil
}

func (a *app) close() {
	if a.db != nil {
		a.db.Close()
		a.db = nil
	}
	if a.tc != nil {
		a.tc.Close()
		a.tc = nil
	}
}
