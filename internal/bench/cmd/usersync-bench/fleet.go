package main

import (
	"context"
	"flag"
	"time"

	"github.com/usersync/usersync/internal/bench"
)

// fleetFlags are the fleet scenario's flags (with -orgs).
func fleetFlags() *bench.FleetOptions {
	o := &bench.FleetOptions{}
	flag.IntVar(&o.Users, "org-users", 100, "fleet: users per organization")
	flag.IntVar(&o.ChangedEvery, "changed-every", 10, "fleet: every n-th organization gets 1% of its users renamed")
	flag.IntVar(&o.BigUsers, "big-users", 50000, "fleet fairness: users of the large organization (0 skips fairness)")
	flag.Float64Var(&o.BigRate, "big-rate", 5, "fleet fairness: request rate of the large organization's target")
	flag.IntVar(&o.Small, "small-orgs", 100, "fleet fairness: small organizations resynced beside the large one")
	flag.IntVar(&o.Repeats, "repeats", 3, "fleet fairness: resyncs per case (median reported)")
	flag.DurationVar(&o.BigSettle, "big-settle", 30*time.Second, "fleet fairness: how long the large organization provisions before it is measured (its run's start, and PostgreSQL's autovacuum after its plan, are not its steady load)")
	flag.IntVar(&o.InFlight, "in-flight", 100, "fleet: organizations whose sync is signalled and not finished, at most (0: all at once)")
	flag.DurationVar(&o.Timeout, "phase-timeout", time.Hour, "fleet: longest wait for one phase")
	return o
}

// runFleet runs the fleet scenario on a fresh stack in dir.
func runFleet(ctx context.Context, dir, workerBin string, orgs int, o bench.FleetOptions, probe *bench.Probe,
	log func(string, ...any)) ([]bench.Row, error) {
	s, err := bench.Start(ctx, dir, probe)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	o.Orgs = orgs
	return bench.Fleet(ctx, s, workerBin, o, log)
}
