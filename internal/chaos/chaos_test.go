package chaos

import (
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"sync"
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
// (one run of a few hundred users per fault, a few faults at once); USERSYNC_CHAOS=full runs
// each USERSYNC_CHAOS_RUNS times (default 3) with a few thousand users (USERSYNC_CHAOS_USERS)
// and appends each result to USERSYNC_CHAOS_REPORT (JSON lines) for scripts/chaos.sh.
// USERSYNC_CHAOS_SEED replays a run; USERSYNC_CHAOS_FAULT picks one fault by name.
func TestFaultMatrix(t *testing.T) {
	t.Parallel() // beside the checker's test on a real stack
	full := os.Getenv("USERSYNC_CHAOS") == "full"
	users, runs, parallel := 200, 1, 4
	if full {
		users, runs, parallel = 3000, 3, 3
		if n, err := strconv.Atoi(os.Getenv("USERSYNC_CHAOS_RUNS")); err == nil && n > 0 {
			runs = n
		}
	}
	if n, err := strconv.Atoi(os.Getenv("USERSYNC_CHAOS_USERS")); err == nil && n > 0 {
		users = n
	}
	if n, err := strconv.Atoi(os.Getenv("USERSYNC_CHAOS_PARALLEL")); err == nil && n > 0 {
		parallel = n
	}
	if _, err := WorkerBinary(); err != nil { // once, before the subtests race for it
		t.Fatal(err)
	}
	// Runs start in the matrix's order (the longest first), parallel at a time: each is a
	// subtest run from its own goroutine (not t.Parallel, which go test caps at GOMAXPROCS;
	// these runs mostly wait).
	slots := make(chan struct{}, parallel)
	var wg sync.WaitGroup
	var report sync.Mutex
	// Round by round: a run cut short still has every fault in its report.
	for i := range runs {
		for _, f := range Matrix() {
			if only := os.Getenv("USERSYNC_CHAOS_FAULT"); only != "" && only != f.Name {
				continue
			}
			name := f.Name
			if runs > 1 {
				name = fmt.Sprintf("%s/run-%d", f.Name, i+1)
			}
			slots <- struct{}{}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { <-slots }()
				t.Run(name, func(t *testing.T) {
					seed := uint64(time.Now().UnixNano())
					if s, err := strconv.ParseUint(os.Getenv("USERSYNC_CHAOS_SEED"), 10, 64); err == nil {
						seed = s + uint64(i)
					}
					res := Execute(t, f, users, seed, full)
					t.Logf("chaos: %s seed %d: %d users, %d requests, %d injected, %d runs, %d invariants checked, %d violations, %s",
						f.Name, seed, res.Users, res.Requests, res.Injected, res.Runs, res.Checked, len(res.Violations), res.Duration)
					if path := os.Getenv("USERSYNC_CHAOS_REPORT"); path != "" {
						report.Lock()
						appendReport(t, path, res)
						report.Unlock()
					}
					if len(res.Violations) > 0 && f.Known != "" && !full {
						for _, v := range res.Violations {
							t.Logf("violation (seed %d): %s", seed, v)
						}
						t.Skipf("known violation: %s (seed %d)", f.Known, seed)
					}
					for _, v := range res.Violations {
						t.Errorf("violation (seed %d, replay with USERSYNC_CHAOS_SEED=%d USERSYNC_CHAOS_FAULT=%s): %s", seed, seed, f.Name, v)
					}
				})
			}()
		}
	}
	wg.Wait()
}

func appendReport(t *testing.T, path string, res Result) {
	b, err := json.Marshal(res)
	must(t, err)
	fh, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	must(t, err)
	defer fh.Close()
	_, err = fh.Write(append(b, '\n'))
	must(t, err)
}
