// Command devstack runs the usersync demo stack on this machine, without
// Docker: PostgreSQL, OpenLDAP (slapd) loaded with the demo directory, the
// Temporal dev server, the SCIM sandbox and the worker, all under one folder
// (default ./.stack) and listening on 127.0.0.1 only.
//
//	go run ./internal/devstack/cmd/devstack up       # start (again: reuses what runs)
//	go run ./internal/devstack/cmd/devstack status
//	go run ./internal/devstack/cmd/devstack down [--purge]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/usersync/usersync/internal/devstack"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "devstack:", err)
		os.Exit(1)
	}
}

const usage = `usage: devstack <command> [flags]

commands:
  up      start the demo stack (safe to re-run: running parts are reused)
  status  show what runs and where
  down    stop everything; --purge also deletes the stack folder

for docker-compose (configuration from the worker's environment variables):
  load-directory  load the demo organization into LDAP_URL
  wait-temporal   wait until TEMPORAL_ADDRESS answers
  seed-sandbox    give the SCIM sandbox at SCIM_URL the demo's seats and pre-existing accounts

run "devstack <command> -h" for the flags of a command`

func run(args []string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Println(usage)
		return nil
	}
	cmd, args := args[0], args[1:]
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	switch cmd {
	case "load-directory":
		return loadDirectory(ctx, args)
	case "wait-temporal":
		return waitTemporal(ctx, args)
	case "seed-sandbox":
		return seedSandbox(ctx, args)
	}
	fs := flag.NewFlagSet("devstack "+cmd, flag.ContinueOnError)
	var s stack
	s.bind(fs)
	purge := false
	if cmd == "down" {
		fs.BoolVar(&purge, "purge", false, "also delete the stack folder (data, logs, secrets, binaries)")
	}
	if cmd == "up" {
		fs.BoolVar(&s.infraOnly, "infra-only", false, "start the services only: no worker, no seeding (run the worker yourself)")
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if err := s.resolve(); err != nil {
		return err
	}
	switch cmd {
	case "up":
		ctx, cancel := context.WithTimeout(ctx, 15*time.Minute)
		defer cancel()
		return s.up(ctx)
	case "down":
		return s.down(purge)
	case "status":
		s.status(os.Stdout)
		return nil
	default:
		return fmt.Errorf("unknown command %q\n%s", cmd, usage)
	}
}

// repoRoot is the repository binaries are built from.
func repoRoot() (string, error) {
	dir, err := devstack.ModuleRoot()
	if err != nil {
		return "", fmt.Errorf("run devstack inside the usersync repository: %w", err)
	}
	return dir, nil
}
