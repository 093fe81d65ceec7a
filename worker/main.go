// Command worker runs usersync's Temporal workers: one worker serves every organization,
// each with the directory and target of its settings in PostgreSQL.
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

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"

	"github.com/usersync/usersync/activities"
	"github.com/usersync/usersync/internal/config"
	"github.com/usersync/usersync/internal/connect"
	"github.com/usersync/usersync/internal/engine"
	"github.com/usersync/usersync/internal/metrics"
	"github.com/usersync/usersync/internal/orgs"
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

// keepUnsaid keeps in o (the organization the environment describes) what the environment
// cannot say or leaves unset, from the organization's current settings cur: the target's TLS
// files (they have no variable) and a secret the environment does not set. The rest is the
// environment's: with the shortcut, it is the source of the settings it names.
func keepUnsaid(o *orgs.Org, cur orgs.Org) {
	t, c := &o.Settings.Target, cur.Settings.Target
	t.CAFile, t.ClientCertFile, t.ClientKeyFile = c.CAFile, c.ClientCertFile, c.ClientKeyFile
	if o.Secrets.Token == "" {
		o.Secrets.Token = cur.Secrets.Token
	}
	if o.Secrets.BindPassword == "" && o.Settings.Directory.BindDN == cur.Settings.Directory.BindDN {
		o.Secrets.BindPassword = cur.Secrets.BindPassword
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
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	temporalOptions, err := cfg.TemporalOptions(tlog.NewStructuredLogger(logger))
	if err != nil {
		return err
	}
	if warning := config.DatabaseTLSWarning(cfg.DatabaseURL); warning != "" {
		logger.Warn(warning)
	}
	keys, err := orgs.LoadKeyring(cfg.SecretsKeyFile)
	if err != nil {
		return err
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		// A sync of a large directory allocates in bursts (planning holds the snapshot and the
		// applied states); a soft limit makes the GC work harder instead of doubling the heap.
		debug.SetMemoryLimit(defaultMemoryLimit)
	}
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()

	st, err := store.OpenFor(ctx, cfg.DatabaseURL, engine.DatabaseConns(cfg.Syncs, cfg.Pages))
	if err != nil {
		return err
	}
	defer st.Close()
	// The SDK's metrics and ours, in one registry of this process (no global state).
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	sdkMetrics := metrics.NewSDK()
	reg.MustRegister(sdkMetrics, metrics.Database{Store: st})
	ours := metrics.New(reg)
	temporalOptions.MetricsHandler = sdkMetrics.Handler()
	repo := orgs.Repo{Store: st, Keys: keys}
	if cfg.SingleOrg() {
		// The single-organization shortcut: the environment's directory and target become
		// that organization's settings (a new version only when they changed).
		o, err := cfg.OrgFromEnv()
		if err != nil {
			return err
		}
		if cur, err := repo.Get(ctx, o.Name); err == nil {
			keepUnsaid(&o, cur)
		} else if !errors.Is(err, orgs.ErrNotFound) {
			return err
		}
		v, err := repo.Put(ctx, "worker", o)
		if err != nil {
			return fmt.Errorf("organization %q settings from the environment: %w", o.Name, err)
		}
		logger.Info("organization settings from the environment", "org", o.Name, "version", v)
	}
	acts := &activities.Activities{
		Store: st,
		// Every organization's connections come from its settings, by the organization in
		// each step's input: this worker serves them all.
		Orgs: &connect.Orgs{Settings: repo, Pacers: func(key string, perSecond float64) scim.Pacer {
			return st.Pacer(key, perSecond)
		}, Metrics: ours},
		Metrics: ours,
		Settings: steps.FanOut{ProvisionQueue: workflows.SCIMTaskQueue, PageSize: cfg.PageSize,
			PageWindow: cfg.PageWindow, UsersInFlight: cfg.UsersInFlight},
		UnpacedQueue: workflows.TaskQueue,
	}
	c, err := client.DialContext(ctx, temporalOptions)
	if err != nil {
		return fmt.Errorf("connect to Temporal at %s: %w", cfg.TemporalAddress, err)
	}
	defer c.Close()
	if cfg.MetricsAddr != "" {
		h := metrics.Handler(reg,
			metrics.Check{Name: "temporal", Ping: func(ctx context.Context) error {
				_, err := c.CheckHealth(ctx, &client.CheckHealthRequest{})
				return err
			}},
			metrics.Check{Name: "postgresql", Ping: st.Ping})
		addr, err := metrics.Serve(ctx, cfg.MetricsAddr, h, logger)
		if err != nil {
			return err
		}
		logger.Info("metrics and health endpoints", "addr", addr.String(), "paths", "/metrics /healthz")
	}
	stop, err := engine.Start(c, acts, engine.Options{SCIMActivities: cfg.SCIMActivities, Pollers: cfg.Pollers,
		Syncs: cfg.Syncs, Pages: cfg.Pages})
	if err != nil {
		return err
	}
	logger.Info("usersync worker started: serving every organization", "temporal", cfg.TemporalAddress,
		"temporalTLS", temporalOptions.ConnectionOptions.TLS != nil)
	<-ctx.Done()
	stop()
	return nil
}
