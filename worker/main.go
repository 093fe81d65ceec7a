// Command worker runs usersync's Temporal workers for one organization.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"

	"github.com/usersync/usersync/activities"
	"github.com/usersync/usersync/internal/config"
	"github.com/usersync/usersync/internal/directory"
	"github.com/usersync/usersync/internal/engine"
	"github.com/usersync/usersync/internal/scim"
	"github.com/usersync/usersync/internal/store"
	"github.com/usersync/usersync/workflows"
)

func main() {
	if err := run(); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		fmt.Fprintln(os.Stderr, "worker:", err)
		os.Exit(1)
	}
}

// defaultMemoryLimit is the worker's soft memory limit unless GOMEMLIMIT is set.
const defaultMemoryLimit = 200 << 20

func run() error {
	var cfg config.Worker
	fs := flag.NewFlagSet("worker", flag.ContinueOnError)
	cfg.Bind(fs)
	if err := fs.Parse(os.Args[1:]); err != nil {
		return err
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	ldapPassword, err := config.Secret("LDAP_BIND_PASSWORD", cfg.LDAPBindPasswordFile)
	if err != nil {
		return err
	}
	token, err := config.Secret("SCIM_TOKEN", cfg.SCIMTokenFile)
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

	st, err := store.Open(ctx, cfg.DatabaseURL)
	if err != nil {
		return err
	}
	defer st.Close()

	dirCfg := directory.Config{URL: cfg.LDAPURL, BindDN: cfg.LDAPBindDN, BindPassword: ldapPassword, BaseDN: cfg.LDAPBaseDN,
		Profile: cfg.LDAPProfile, UserNameAttribute: cfg.LDAPUserNameAttribute, DisabledAttribute: cfg.LDAPDisabledAttribute,
		DisabledValue: cfg.LDAPDisabledValue, PageSize: cfg.LDAPPageSize}
	if err := dirCfg.Validate(); err != nil {
		return err
	}
	scimConfig := scim.Config{BaseURL: cfg.SCIMURL, Token: token}
	settings := activities.RunSettings{ProvisionQueue: workflows.TaskQueue, PageSize: cfg.PageSize,
		PageWindow: cfg.PageWindow, UsersInFlight: cfg.UsersInFlight}
	if cfg.SCIMRate > 0 {
		settings.ProvisionQueue = workflows.SCIMTaskQueue
		// Every worker of the organization shares one request pace, kept in the database.
		scimConfig.Pacer = st.Pacer("scim/"+cfg.Org, cfg.SCIMRate*engine.RateHeadroom)
	}
	acts := &activities.Activities{
		Store:                   st,
		DialDirectory:           activities.LDAP(dirCfg),
		Target:                  scim.New(scimConfig),
		SuspendThresholdPercent: cfg.SuspendThresholdPercent,
		SuspendThresholdMax:     cfg.SuspendThresholdMax,
		Settings:                settings,
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	c, err := client.DialContext(ctx, client.Options{HostPort: cfg.TemporalAddress, Namespace: cfg.Namespace,
		Logger: tlog.NewStructuredLogger(logger)})
	if err != nil {
		return fmt.Errorf("connect to Temporal at %s: %w", cfg.TemporalAddress, err)
	}
	defer c.Close()
	stop, err := engine.Start(c, acts, engine.Options{SCIMRate: cfg.SCIMRate})
	if err != nil {
		return err
	}
	logger.Info("usersync worker started", "org", cfg.Org, "temporal", cfg.TemporalAddress, "scimRate", cfg.SCIMRate)
	<-ctx.Done()
	stop()
	return nil
}
