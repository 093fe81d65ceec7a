// Command usersync-bench measures syncs on the real local stack and prints a table.
//
//	go run ./internal/bench/cmd/usersync-bench -n 1000,10000 -rate 10
//	go run ./internal/bench/cmd/usersync-bench -orgs 1000   # the fleet (issue 10): see fleet.go
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/usersync/usersync/internal/bench"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "usersync-bench:", err)
		os.Exit(1)
	}
}

func run() error {
	sizes := flag.String("n", "1000,10000", "directory sizes, comma separated")
	rate := flag.Float64("rate", 10, "SCIM request rate of the rate-limited scenario (run with the first size); 0 skips it")
	keep := flag.Bool("keep", false, "keep the stack folder")
	fleetOrgs := flag.Int("orgs", 0, "instead of -n: the fleet scenario (issue 10) with this many organizations of -org-users users on one worker")
	fleetOpts := fleetFlags()
	// Measures of the initial sync that a busy machine does not move (see bench.Probe).
	var probe bench.Probe
	flag.BoolVar(&probe.Report, "probe", false, "report each initial sync's CPU time per process and step durations (on stderr)")
	flag.BoolVar(&probe.InProcess, "inprocess", false, "run the worker in this process; adds its Temporal calls to the report (RSS is then this process's)")
	flag.StringVar(&probe.CPUProfile, "cpuprofile", "", "write each initial sync's CPU profile to `file`-N (worker in process)")
	flag.StringVar(&probe.MemProfile, "memprofile", "", "write allocation profiles before and after each initial sync to `file`-N.base and file-N (worker in process)")
	flag.BoolVar(&probe.PGStats, "pgstats", false, "add each initial sync's SQL statements to the report (pg_stat_statements); with -orgs, those of the fairness cost minutes")
	flag.StringVar(&probe.Scenario, "probe-scenario", "initial sync", "the scenario the probe measures (\"initial sync\", \"unchanged resync\", \"1% changed\", ...)")
	flag.BoolVar(&probe.InitialOnly, "initial-only", false, "measure only the initial sync of each size")
	incremental := flag.Bool("ldap-incremental", true, "the worker reads only the directory's changes (its default); false: full reads every sync")
	laggingMark := flag.Bool("lagging-mark", false, "after the load, add one entry beyond slapd's sync mark (as a parallel load sometimes leaves it)")
	resyncsOnly := flag.Bool("resyncs-only", false, "after each initial sync measure only the unchanged resync and 1% changed (LDAP entries read in the note)")
	adUsers := flag.Int("ad-users", 0, "instead of -n: the directory reads of a Samba AD DC (ports 389, 636) with this many users: full read, incremental reads of the unchanged directory and of 1% changed")
	watch := flag.Bool("watch", false, fmt.Sprintf("instead of the sync scenarios: watch mode's change-to-target latency (p50, p95) over %d changes after an initial sync of each -n", bench.WatchChanges))
	flag.Parse()
	var ns []int
	for _, f := range strings.Split(*sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 100 {
			return fmt.Errorf("-n: %q is not a size of at least 100", f)
		}
		ns = append(ns, n)
	}
	// Interrupted, it still stops what it started (slapd runs detached).
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	dir, err := os.MkdirTemp("", "usersync-bench-")
	if err != nil {
		return err
	}
	if !*keep {
		defer os.RemoveAll(dir)
	}
	_ = os.Chmod(dir, 0o755) // PostgreSQL runs as the postgres user when we are root
	workerBin := filepath.Join(dir, "worker")
	if out, err := exec.Command("go", "build", "-o", workerBin, "./worker").CombinedOutput(); err != nil {
		return fmt.Errorf("build worker: %v\n%s", err, out)
	}
	log := func(f string, a ...any) { fmt.Fprintf(os.Stderr, time.Now().Format("15:04:05 ")+f+"\n", a...) }
	var rows []bench.Row
	if *fleetOrgs > 0 {
		ns = nil // the fleet replaces the single-organization sizes
		got, err := runFleet(ctx, filepath.Join(dir, "fleet"), workerBin, *fleetOrgs, *fleetOpts, &bench.Probe{PGStats: probe.PGStats}, log)
		rows = append(rows, got...)
		if err != nil {
			return err
		}
	}
	if *adUsers > 0 {
		ns = nil
		s, err := bench.Start(ctx, filepath.Join(dir, "ad"), &probe)
		if err != nil {
			return err
		}
		got, err := bench.ADReads(ctx, s, *adUsers, log)
		s.Close()
		rows = append(rows, got...)
		if err != nil {
			return err
		}
	}
	for i, n := range ns {
		s, err := bench.Start(ctx, filepath.Join(dir, strconv.Itoa(n)), &probe)
		if err != nil {
			return err
		}
		r := 0.0
		if i == 0 {
			r = *rate
		}
		s.FullReads, s.ResyncsOnly, s.LaggingMark = !*incremental, *resyncsOnly, *laggingMark
		var got []bench.Row
		if *watch {
			got, err = bench.WatchLatency(ctx, s, n, workerBin, log)
		} else {
			got, err = bench.Run(ctx, s, n, workerBin, r, log)
		}
		s.Close()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		rows = append(rows, got...)
		if err != nil {
			return err
		}
	}
	host, _ := os.Hostname()
	fmt.Printf("\nusersync benchmark, %s, %s, %d cores, %s\n\n", time.Now().UTC().Format("2006-01-02"), host,
		runtime.NumCPU(), runtime.Version())
	bench.Markdown(os.Stdout, rows)
	return nil
}
