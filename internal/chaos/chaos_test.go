package chaos

import (
	"os"
	"strconv"
	"testing"
	"time"
)

func TestMain(m *testing.M) {
	code := m.Run()
	RemoveWorkerBinary()
	os.Exit(code)
}

// TestFaultMatrix runs every fault of issue #9 against an initial sync and a resync with
// changes, and checks the invariants on the target's own state after each. Short by default
// (one run of a few hundred users per fault); USERSYNC_CHAOS=full runs each
// USERSYNC_CHAOS_RUNS times (default 3) with a few thousand users. USERSYNC_CHAOS_SEED
// replays a run; USERSYNC_CHAOS_FAULT picks one fault by name.
func TestFaultMatrix(t *testing.T) {
	full := os.Getenv("USERSYNC_CHAOS") == "full"
	users, runs := 300, 1
	if full {
		users, runs = 3000, 3
		if n, err := strconv.Atoi(os.Getenv("USERSYNC_CHAOS_RUNS")); err == nil && n > 0 {
			runs = n
		}
	}
	if n, err := strconv.Atoi(os.Getenv("USERSYNC_CHAOS_USERS")); err == nil && n > 0 {
		users = n
	}
	for _, f := range Matrix() {
		if only := os.Getenv("USERSYNC_CHAOS_FAULT"); only != "" && only != f.Name {
			continue
		}
		t.Run(f.Name, func(t *testing.T) {
			for i := range runs {
				seed := uint64(time.Now().UnixNano())
				if s, err := strconv.ParseUint(os.Getenv("USERSYNC_CHAOS_SEED"), 10, 64); err == nil {
					seed = s + uint64(i)
				}
				res := Execute(t, f, users, seed, full)
				t.Logf("chaos: %s seed %d: %d users, %d requests, %d injected, %d runs, %d invariants checked, %d violations, %s",
					f.Name, seed, res.Users, res.Requests, res.Injected, res.Runs, res.Checked, len(res.Violations), res.Duration)
				for _, v := range res.Violations {
					t.Errorf("violation (seed %d): %s", seed, v)
				}
			}
		})
	}
}
