package bench

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/client"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/usersync/usersync/activities"
	"github.com/usersync/usersync/internal/connect"
	"github.com/usersync/usersync/internal/demo"
	"github.com/usersync/usersync/internal/devstack"
	"github.com/usersync/usersync/internal/directory"
	"github.com/usersync/usersync/internal/engine"
	"github.com/usersync/usersync/internal/scim"
	"github.com/usersync/usersync/internal/steps"
	"github.com/usersync/usersync/internal/store"
	"github.com/usersync/usersync/workflows"
)

// Probe measures each initial sync with what a busy machine moves little or not at all, to
// compare two versions of the code on a shared box where wall time is noise: CPU time per
// process of the stack, the run's step durations, and optionally the worker's requests to
// Temporal (calls and payload bytes per method, worker in process), its CPU and allocation
// profiles, and the SQL statements run (calls, buffer blocks and WAL bytes per statement).
type Probe struct {
	Report      bool   // report CPU per process and step durations
	InProcess   bool   // run the worker in this process (implied by the profiles)
	CPUProfile  string // file of the initial sync's CPU profile (-N appended)
	MemProfile  string // file of the allocation profile after the initial sync; file.base before it
	PGStats     bool   // load pg_stat_statements and report the initial sync's statements
	InitialOnly bool   // stop each size after its initial sync
	Scenario    string // the scenario measured ("" is the initial sync)

	rpc rpcCounts
}

func (p *Probe) inProcess() bool {
	return p != nil && (p.InProcess || p.CPUProfile != "" || p.MemProfile != "")
}

func (p *Probe) active() bool {
	return p != nil && (p.Report || p.PGStats || p.inProcess())
}

// around starts the measures of a sync; the returned func ends them and prints the report.
// Only one scenario is measured, the initial sync unless p.Scenario names another.
func (p *Probe) around(ctx context.Context, s *Stack, scenario, runID string, users int) (func(), error) {
	if !p.active() || scenario != cmp.Or(p.Scenario, "initial sync") {
		return func() {}, nil
	}
	suffix := fmt.Sprintf("-%d", users)
	if p.PGStats {
		if _, err := s.Store.Pool().Exec(ctx, "SELECT pg_stat_statements_reset()"); err != nil {
			return nil, err
		}
	}
	p.rpc.reset()
	if p.MemProfile != "" {
		runtime.GC()
		if err := writeAllocs(p.MemProfile + suffix + ".base"); err != nil {
			return nil, err
		}
	}
	var mem0 runtime.MemStats
	runtime.ReadMemStats(&mem0)
	cpu0 := processCPU()
	stopCPU := func() {}
	if p.CPUProfile != "" {
		f, err := os.Create(p.CPUProfile + suffix)
		if err != nil {
			return nil, err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			f.Close()
			return nil, err
		}
		stopCPU = func() { pprof.StopCPUProfile(); f.Close() }
	}
	return func() {
		stopCPU()
		cpu1 := processCPU()
		out := os.Stderr
		fmt.Fprintf(out, "\n== %s of %d users: probe ==\n", scenario, users)
		fmt.Fprint(out, "CPU seconds:")
		for _, k := range slices.Sorted(maps.Keys(cpu1)) {
			if d := cpu1[k] - cpu0[k]; d >= 0.05 {
				fmt.Fprintf(out, " %s %.2f", k, d)
			}
		}
		fmt.Fprintln(out)
		if p.inProcess() {
			var mem1 runtime.MemStats
			runtime.ReadMemStats(&mem1)
			allocs, bytes := mem1.Mallocs-mem0.Mallocs, mem1.TotalAlloc-mem0.TotalAlloc
			fmt.Fprintf(out, "bench process (worker, sandbox): %d allocations (%.0f/user), %d MB (%.1f KB/user), %d GCs\n",
				allocs, float64(allocs)/float64(users), bytes>>20, float64(bytes)/1024/float64(users), mem1.NumGC-mem0.NumGC)
			p.rpc.report(out, users)
		}
		timeline(ctx, s.Client, out, runID)
		if p.MemProfile != "" {
			if err := writeAllocs(p.MemProfile + suffix); err != nil {
				fmt.Fprintln(out, "memprofile:", err)
			}
		}
		if p.PGStats {
			reportStatements(ctx, s.Store, out, users)
		}
		fmt.Fprintln(out)
	}, nil
}

func writeAllocs(file string) error {
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	defer f.Close()
	return pprof.Lookup("allocs").WriteTo(f, 0)
}

// rpcCounts counts the in-process worker's requests to the Temporal server, per method.
type rpcCounts struct {
	mu    sync.Mutex
	calls map[string]*rpcCount
}

type rpcCount struct{ n, sent, received int }

func (r *rpcCounts) reset() {
	r.mu.Lock()
	r.calls = map[string]*rpcCount{}
	r.mu.Unlock()
}

func (r *rpcCounts) intercept(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn,
	invoke grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	err := invoke(ctx, method, req, reply, cc, opts...)
	name := method[strings.LastIndex(method, "/")+1:]
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.calls == nil {
		r.calls = map[string]*rpcCount{}
	}
	c := r.calls[name]
	if c == nil {
		c = &rpcCount{}
		r.calls[name] = c
	}
	c.n++
	if m, ok := req.(proto.Message); ok {
		c.sent += proto.Size(m)
	}
	if m, ok := reply.(proto.Message); ok && err == nil {
		c.received += proto.Size(m)
	}
	return err
}

func (r *rpcCounts) report(w io.Writer, users int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var total rpcCount
	for _, c := range r.calls {
		total.n += c.n
		total.sent += c.sent
		total.received += c.received
	}
	fmt.Fprintf(w, "worker -> Temporal: %d calls (%.2f per user), %d B sent, %d B received\n",
		total.n, float64(total.n)/float64(users), total.sent, total.received)
	names := slices.SortedFunc(maps.Keys(r.calls), func(a, b string) int { return r.calls[b].n - r.calls[a].n })
	for _, k := range names {
		if c := r.calls[k]; c.n >= 10 {
			fmt.Fprintf(w, "  %-32s %7d  %5.2f/user  sent %9d B  received %9d B\n",
				k, c.n, float64(c.n)/float64(users), c.sent, c.received)
		}
	}
}

// startInProcessWorker runs the worker's wiring (as worker/main.go does) in this process.
func (s *Stack) startInProcessWorker(ctx context.Context, orgName string, rate float64) error {
	// No soft memory limit (the worker binary's is 200 MB): this process also holds the
	// sandbox's accounts and the generated directory, and a limit below that live heap kept
	// the GC running all the time; the profiles measured that.
	debug.SetMemoryLimit(math.MaxInt64)
	st, err := store.Open(ctx, s.DBURL)
	if err != nil {
		return err
	}
	scimConfig := scim.Config{BaseURL: s.SCIMURL, Token: token, MaxAttempts: 1}
	if rate > 0 {
		scimConfig.Pacer = st.Pacer("scim/"+orgName, rate*connect.RateHeadroom)
	}
	acts := &activities.Activities{
		Store: st,
		Orgs: activities.Single(orgName, activities.Org{
			Dial: activities.LDAP(directory.Config{URL: s.Slapd.URL(), BindDN: s.Slapd.AdminDN,
				BindPassword: ldapSecret, BaseDN: demo.Suffix, Profile: directory.ProfileOpenLDAP, AllowPlaintextBind: true}),
			Target: scim.New(scimConfig),
			Paced:  rate > 0,
			// As the worker binary's default (StartWorker): a profile of another read path
			// would measure the wrong code.
			Incremental: !s.FullReads,
		}),
		Settings:     steps.FanOut{ProvisionQueue: workflows.SCIMTaskQueue},
		UnpacedQueue: workflows.TaskQueue,
	}
	c, err := client.Dial(client.Options{HostPort: s.HostPort, Logger: quiet(),
		ConnectionOptions: client.ConnectionOptions{DialOptions: []grpc.DialOption{
			grpc.WithChainUnaryInterceptor(s.Probe.rpc.intercept)}}})
	if err != nil {
		st.Close()
		return err
	}
	stop, err := engine.Start(c, acts, engine.Options{})
	if err != nil {
		c.Close()
		st.Close()
		return err
	}
	s.stopInProcess = func() { stop(); c.Close(); st.Close() }
	return nil
}

// enablePGStats restarts PostgreSQL with pg_stat_statements loaded.
func enablePGStats(ctx context.Context, pg *devstack.Postgres) error {
	conn, err := pgx.Connect(ctx, pg.URL())
	if err != nil {
		return err
	}
	_, err = conn.Exec(ctx, "ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'")
	conn.Close(ctx)
	if err != nil {
		return err
	}
	if err := pg.Stop(); err != nil {
		return err
	}
	if _, err := pg.Start(ctx); err != nil {
		return err
	}
	if conn, err = pgx.Connect(ctx, pg.URL()); err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, "CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
	return err
}

// reportStatements prints the statements run since the reset, the longest in all first (none of
// the benchmark's own runs during a sync). Buffer blocks and WAL bytes count the database's
// work independently of the machine's load.
func reportStatements(ctx context.Context, st *store.Store, out io.Writer, users int) {
	rows, err := st.Pool().Query(ctx, `SELECT calls, total_exec_time, rows, shared_blks_hit+shared_blks_read,
		wal_bytes::bigint, regexp_replace(left(query, 100), '\s+', ' ', 'g')
		FROM pg_stat_statements WHERE query NOT LIKE '%pg_stat_statements%' ORDER BY total_exec_time DESC`)
	if err != nil {
		fmt.Fprintln(out, "pg_stat_statements:", err)
		return
	}
	defer rows.Close()
	var calls, nrows, blocks, wal int64
	var ms float64
	var lines []string
	perUser := func(n int64) float64 { return float64(n) / float64(users) }
	for rows.Next() {
		var c, r, b, w int64
		var t float64
		var q string
		if err := rows.Scan(&c, &t, &r, &b, &w, &q); err != nil {
			fmt.Fprintln(out, "pg_stat_statements:", err)
			return
		}
		calls, ms, nrows, blocks, wal = calls+c, ms+t, nrows+r, blocks+b, wal+w
		if len(lines) < 25 {
			lines = append(lines, fmt.Sprintf("  %7d %5.2f/user %8.1f ms %8d blocks %9d WAL B  %s", c, perUser(c), t, b, w, q))
		}
	}
	fmt.Fprintf(out, "SQL: %d statements (%.2f/user), %.0f ms executing, %d rows, %d buffer blocks (%.1f/user), %d WAL B (%.0f/user)\n",
		calls, perUser(calls), ms, nrows, blocks, perUser(blocks), wal, perUser(wal))
	for _, l := range lines {
		fmt.Fprintln(out, l)
	}
}

// timeline prints how long the run's own steps took (scheduled to completed) and the span
// of its page workflows.
func timeline(ctx context.Context, c client.Client, out io.Writer, runID string) {
	it := c.GetWorkflowHistory(ctx, runID, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	scheduled := map[int64]*historypb.HistoryEvent{}
	var start, first, last time.Time
	pages := 0
	for it.HasNext() {
		e, err := it.Next()
		if err != nil {
			fmt.Fprintln(out, "history:", err)
			return
		}
		t := e.GetEventTime().AsTime()
		if start.IsZero() {
			start = t
		}
		switch e.GetEventType() {
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
			scheduled[e.GetEventId()] = e
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
			if s := scheduled[e.GetActivityTaskCompletedEventAttributes().GetScheduledEventId()]; s != nil {
				at := s.GetEventTime().AsTime()
				fmt.Fprintf(out, "  %-18s at %7.2fs took %7.2fs\n",
					s.GetActivityTaskScheduledEventAttributes().GetActivityType().GetName(), at.Sub(start).Seconds(), t.Sub(at).Seconds())
			}
		case enumspb.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED:
			if first.IsZero() {
				first = t
			}
		case enumspb.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_COMPLETED:
			last = t
			pages++
		}
	}
	fmt.Fprintf(out, "  %d pages from %.2fs to %.2fs: %.2fs\n", pages, first.Sub(start).Seconds(), last.Sub(start).Seconds(), last.Sub(first).Seconds())
}

// processCPU is the CPU time (user+sys, with that of waited-for children) of this process
// ("bench") and of its descendants (the Temporal dev server, PostgreSQL and its backends,
// the worker process), in seconds, by command name.
func processCPU() map[string]float64 {
	type proc struct {
		ppid int
		comm string
		cpu  float64
	}
	procs := map[int]proc{}
	dirs, _ := os.ReadDir("/proc")
	for _, d := range dirs {
		var pid int
		if _, err := fmt.Sscan(d.Name(), &pid); err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", d.Name(), "stat"))
		if err != nil {
			continue
		}
		stat := string(b)
		open, end := strings.IndexByte(stat, '('), strings.LastIndexByte(stat, ')')
		if open < 0 || end < open {
			continue
		}
		// After the command: state, ppid, ..., utime, stime, cutime, cstime (fields 2 and 12-15).
		f := strings.Fields(stat[end+1:])
		if len(f) < 15 {
			continue
		}
		p := proc{comm: stat[open+1 : end]}
		fmt.Sscan(f[1], &p.ppid)
		for _, v := range f[11:15] {
			var ticks float64
			fmt.Sscan(v, &ticks)
			p.cpu += ticks / 100 // USER_HZ
		}
		procs[pid] = p
	}
	self := os.Getpid()
	out := map[string]float64{"bench": procs[self].cpu}
	for _, p := range procs {
		for a, hops := p.ppid, 0; a > 1 && hops < 20; a, hops = procs[a].ppid, hops+1 {
			if a == self {
				name := p.comm
				if strings.HasPrefix(name, "postgres") {
					name = "postgres"
				}
				out[name] += p.cpu
				break
			}
		}
	}
	return out
}
