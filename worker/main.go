// Command worker runs usersync's Temporal workers for one organization.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"

	"github.com/usersync/usersync/activities"
	"github.com/usersync/usersync/internal/config"
	"github.com/usersync/usersync/internal/engine"
	"github.com/usersync/usersync/internal/scim"
	"github.com/usersync/usersync/internal/steps"
	"github.com/usersync/usersync/internal/store"
	"github.com/usersync/usersync/workflows"
)

func main() {
	if err := run(os.Args[1:], os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		fmt.Fprintln(os.Stderr, "worker:", err)
		os.Exit(1)
	}
}

// defaultMemoryLimit is the worker's soft memory limit unless GOMEMLIMIT is set.
const defaultMemoryLimit = 200 << 20

// run parses args (help and flag errors go to stderr), then runs the worker until SIGINT or
// SIGTERM.
func run(args []string, stderr io.Writer) error {
	var cfg config.Worker
	flags := cfg.Settings()
	fs := flag.NewFlagSet("worker", flag.ContinueOnError)
	fs.SetOutput(stderr)
	flags.BindFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := flags.Load(); err != nil {
		return err
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	ldapPassword, err := cfg.BindPassword()
	if err != nil {
		return err
	}
	token, err := config.Secret("SCIM_TOKEN", cfg.SCIMTokenFile)
	if err != nil {
		return err
	}
	dirCfg := cfg.Directory(ldapPassword)
	if err := dirCfg.Validate(); err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	temporalOptions, err := cfg.TemporalOptions(tlog.NewStructuredLogger(logger))
	if err != nil {
		return err
	}
	if warning := config.DatabaseTLSWarning(cfg.DatabaseURL); warning != "" {
		logger.Warn(warning)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		// A sync of a large directory allocates in bursts (planning holds the snapshot and the
		// applied states); a soft limit makes the GC work harder instead of doubling the heap.
		debug.SetMemoryLimit(defaultMemoryLimit)
	}
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()

	st, err := store.Open(ctx, cfg.DatabaseURL)
	if err != nil {
		return err
	}
	defer st.Close()

	// One request per call: Temporal owns the retries (the steps turn a Retry-After into the
	// next retry delay), so no call outlives its activity attempt.
	scimConfig := scim.Config{BaseURL: cfg.SCIMURL, Token: token, MaxAttempts: 1}
	settings := steps.FanOut{ProvisionQueue: workflows.TaskQueue, PageSize: cfg.PageSize,
		PageWindow: cfg.PageWindow, UsersInFlight: cfg.UsersInFlight}
	if cfg.SCIMRate > 0 {
		settings.ProvisionQueue = workflows.SCIMTaskQueue
		// Every worker of the organization shares one request pace, kept in the database.
		scimConfig.Pacer = st.Pacer("scim/"+cfg.Org, cfg.SCIMRate*engine.RateHeadroom)
	}
	acts := &activities.Activities{
		Store: st,
		Orgs: activities.Single(cfg.Org, activities.Org{
			Dial:                    activities.LDAP(dirCfg),
			Target:                  scim.New(scimConfig),
			SuspendThresholdPercent: cfg.SuspendThresholdPercent,
			SuspendThresholdMax:     cfg.SuspendThresholdMax,
		}),
		Settings: settings,
	}
	c, err := client.DialContext(ctx, temporalOptions)
	if err != nil {
		return fmt.Errorf("connect to Temporal at %s: %w", cfg.TemporalAddress, err)
	}
	defer c.Close()
	stop, err := engine.Start(c, acts, engine.Options{SCIMRate: cfg.SCIMRate})
	if err != nil {
		return err
	}
	logger.Info("usersync worker started", "org", cfg.Org, "temporal", cfg.TemporalAddress,
		"temporalTLS", temporalOptions.ConnectionOptions.TLS != nil, "scimRate", cfg.SCIMRate)
	<-ctx.Done()
	stop()
	return nil
}
