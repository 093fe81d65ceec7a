package chaos

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/usersync/usersync/internal/vocab"
	"github.com/usersync/usersync/workflows"
)

// Fault is one row of the matrix: the parts of the stack it needs of its own, and what it
// does to the initial sync and to the resync.
type Fault struct {
	Name  string
	Stack StackOptions
	// Arm is called before each phase ("initial", then "resync") has its sync started;
	// Disarm after the phase's syncs are done, before the invariants are checked.
	Arm    func(r *Run, phase string)
	Disarm func(r *Run)
	// Known names a violation the product has today (issue #9's write intent): the short run
	// skips when it shows up, saying so.
	Known string
}

// Run is one run of a fault: a stack, an initial sync under the fault and a resync after
// directory changes under the fault, each followed by the invariants' check.
type Run struct {
	T      testing.TB
	S      *Stack
	Fault  Fault
	Seed   uint64
	Users  int
	Full   bool
	Rng    *rand.Rand // the fault's own choices (kill points, windows, ...)
	Phase  string
	Result Result

	mu      sync.Mutex
	actions []Action
	seq     int
	notes   []string
	last    string // the last finished run's ID
	start   time.Time
	bg      sync.WaitGroup
}

// Result is what a run reports for the table.
type Result struct {
	Fault      string        `json:"fault"`
	Target     string        `json:"target"`
	Seed       uint64        `json:"seed"`
	Users      int           `json:"users"`
	Requests   int           `json:"requests"`
	Injected   int           `json:"injected"`
	Runs       int           `json:"runs"`
	Checked    int           `json:"invariantsChecked"`
	Violations []string      `json:"violations"`
	Notes      []string      `json:"notes"`
	Duration   time.Duration `json:"duration"`
}

// Execute runs fault f once on a stack of users users.
func Execute(t testing.TB, f Fault, users int, seed uint64, full bool) Result {
	start := time.Now()
	r := &Run{T: t, Fault: f, Seed: seed, Users: users, Full: full, Rng: rand.New(rand.NewPCG(seed, 2)), start: start}
	target := f.Stack.Target
	if target == "" {
		target = Sandbox
	}
	r.Result = Result{Fault: f.Name, Target: target, Seed: seed, Users: users}
	t.Logf("chaos: fault %s, %d users, seed %d (replay: USERSYNC_CHAOS_SEED=%d)", f.Name, users, seed, seed)
	r.S = NewStack(t, Org(users, seed), seed, f.Stack)
	r.Note("stack ready")

	r.phase("initial", func() { r.Signal(workflows.SignalEnable, map[string]any{"actor": r.actor("enable")}) })

	conn, err := ldap.DialURL(r.S.LDAPURL())
	must(t, err)
	must(t, conn.Bind(r.S.Slapd.AdminDN, ldapSecret))
	ch, err := ChangeDirectory(context.Background(), conn, r.S.Org, rand.New(rand.NewPCG(seed, 3)))
	conn.Close()
	must(t, err)
	r.Note("resync changes: %d renamed, %d moved, %d disabled, %d added", ch.Renamed, ch.Moved, ch.Disabled, ch.Added)

	r.phase("resync", func() { r.Signal(workflows.SignalSyncNow, map[string]any{"actor": r.actor("sync-now")}) })

	r.Result.Requests = r.S.Proxy.Requests()
	for k, v := range r.S.Proxy.Injected() {
		r.Result.Injected += v
		r.Note("injected %s: %d", k, v)
	}
	r.Result.Notes = r.notes
	r.Result.Duration = time.Since(start).Round(time.Second)
	return r.Result
}

// phase arms the fault, starts a sync, drives syncs until one succeeds, disarms the fault and
// checks the invariants.
func (r *Run) phase(name string, start func()) {
	r.T.Helper()
	r.Phase = name
	if r.Fault.Arm != nil {
		r.Fault.Arm(r, name)
	}
	start()
	r.settle()
	if r.Fault.Disarm != nil {
		r.Fault.Disarm(r)
	}
	r.bg.Wait() // the fault's own goroutines (restarts) are done
	r.check(name)
}

// settle waits for the run, and starts the next sync while the last one did not succeed
// (the target refused our credentials for a while, ...), as the schedule would.
func (r *Run) settle() {
	r.T.Helper()
	// Generous: on a loaded machine a run of a few hundred users can take minutes; a hang is
	// go test's -timeout to catch.
	within := 15 * time.Minute
	if r.Full {
		within = 45 * time.Minute
	}
	deadline := time.Now().Add(within)
	for attempt := 0; ; attempt++ {
		st, err := r.S.WaitRun(r.last, time.Until(deadline))
		must(r.T, err)
		r.last = st.LastRun.RunID
		r.Result.Runs++
		if st.LastRun.Status == vocab.RunSucceeded {
			r.Note("%s: run %s succeeded: %v", r.Phase, shortRun(st.LastRun.RunID), outcomes(st.LastRun.Outcomes))
			return
		}
		r.Note("%s: run %s %s (%s: %s)", r.Phase, shortRun(st.LastRun.RunID), st.LastRun.Status, st.LastRun.FailureType, clip(st.LastRun.Error, 120))
		if attempt >= 40 || time.Now().After(deadline) {
			r.T.Fatalf("%s: no run succeeded after %d runs", r.Phase, attempt+1)
		}
		time.Sleep(time.Second)
		r.Signal(workflows.SignalSyncNow, map[string]any{"actor": r.actor("sync-now")})
	}
}

// check reads the facts and records the violations.
func (r *Run) check(phase string) {
	r.T.Helper()
	// Generous: SCIMMY lists a few thousand accounts slowly on a loaded machine (2 minutes
	// were not enough for 2,000 at a load average of 37), and a timeout here is the
	// harness's failure, not a violation.
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	r.mu.Lock()
	actions := append([]Action(nil), r.actions...)
	r.mu.Unlock()
	var f Facts
	err := r.S.retry(time.Minute, func(context.Context) error {
		var err error
		f, err = r.S.Gather(ctx, actions)
		return err
	})
	must(r.T, err)
	vs := Check(f)
	r.Result.Checked += len(Invariants)
	for _, v := range vs {
		r.Result.Violations = append(r.Result.Violations, phase+": "+v.String())
	}
	r.Note("%s: checked %d invariants over %d accounts, %d directory users, %d failures: %d violations",
		phase, len(Invariants), len(f.Accounts), len(f.Directory), len(f.Failures), len(vs))
}

// actor is a fresh actor name for one admin action of the harness.
func (r *Run) actor(what string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seq++
	return fmt.Sprintf("%s%s-%d", actorPrefix, what, r.seq)
}

// Signal sends a well-formed signal whose payload names its actor, and expects one history
// row for it.
func (r *Run) Signal(name string, payload map[string]any) {
	r.S.Signal(name, payload)
	r.mu.Lock()
	r.actions = append(r.actions, Action{Actor: payload["actor"].(string), Signal: name})
	r.mu.Unlock()
}

// SignalMalformed sends a payload the workflow must reject (and record once as rejected).
func (r *Run) SignalMalformed(name string, payload map[string]any) {
	r.S.Signal(name, payload)
	r.mu.Lock()
	r.actions = append(r.actions, Action{Actor: payload["actor"].(string), Signal: name, Rejected: true})
	r.mu.Unlock()
}

// must reports err from a fault's background goroutine (where t.Fatal must not be called):
// the run fails, and says why.
func (r *Run) must(err error) {
	if err != nil {
		r.Note("%s: the fault's own step failed: %v", r.Phase, err)
		r.T.Errorf("%s: %v", r.Phase, err)
	}
}

// Go runs fn in the background; the phase waits for it before its check.
func (r *Run) Go(fn func()) {
	r.bg.Add(1)
	go func() { defer r.bg.Done(); fn() }()
}

// Note adds a line to the run's report.
func (r *Run) Note(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	line := fmt.Sprintf("[%5.1fs] ", time.Since(r.start).Seconds()) + fmt.Sprintf(format, args...)
	r.notes = append(r.notes, line)
	r.T.Log(line)
}

func shortRun(id string) string { return id[strings.LastIndex(id, "/")+1:] }

func outcomes(m map[string]int) string {
	var parts []string
	for k, v := range m {
		parts = append(parts, fmt.Sprintf("%s %d", k, v))
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}

func clip(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}
