package bench

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-ldap/ldap/v3"
	"go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/usersync/usersync/internal/demo"
	"github.com/usersync/usersync/internal/devstack"
	"github.com/usersync/usersync/internal/orgs"
	"github.com/usersync/usersync/internal/scimsandbox"
	"github.com/usersync/usersync/internal/steps"
	"github.com/usersync/usersync/workflows"
)

// FleetOptions shape the fleet benchmark (issue 10): many small organizations on one worker,
// and the fairness of one large, throttled organization next to small ones.
type FleetOptions struct {
	Orgs  int // organizations of the fleet (1,000)
	Users int // users per organization (100)
	// ChangedEvery: every ChangedEvery-th organization gets 1% of its users (at least one)
	// renamed in the changed phase (10: 10% of the organizations).
	ChangedEvery int
	// BigUsers > 0 adds the fairness rows: an organization of BigUsers users behind a target
	// limited to BigRate requests/s, next to the first Small organizations of the fleet.
	BigUsers int
	BigRate  float64
	Small    int
	Repeats  int // resyncs measured per fairness case (the median is reported)
	// BigSettle is how long the big organization provisions before its load is measured
	// (0: bigSettle).
	BigSettle time.Duration
	// InFlight > 0 admits at most that many organizations' syncs at a time in every phase
	// (the next one is signalled when one finishes); 0 signals all at once.
	InFlight int
	Timeout  time.Duration // per phase
}

// tenant is one organization of the fleet: its subtree of the shared slapd, its own sandbox
// (behind the shared HTTP server, under /<name>), and its token.
type tenant struct {
	name    string
	d       demo.Demo
	sandbox *scimsandbox.Server
}

func (t *tenant) token() string { return "token-" + t.name }

// fleet is the running fleet benchmark.
type fleet struct {
	s       *Stack
	o       FleetOptions
	tenants []*tenant // the fleet, then the big organization (if any)
	big     *tenant
	byName  map[string]*tenant
	scimURL string
	log     func(string, ...any)

	mu          sync.Mutex
	signalledAt map[string]time.Time // each organization's last signal (for stagesOf)
}

// scimCount is what a tenant's target received: discovery GETs (/ServiceProviderConfig,
// /Schemas, /ResourceTypes), and every other request (users and groups).
type scimCount struct{ discovery, other int }

func countOf(st scimsandbox.Stats) scimCount {
	var c scimCount
	for route, n := range st.ByRoute {
		_, path, _ := strings.Cut(route, " ")
		if strings.HasPrefix(path, "/Users") || strings.HasPrefix(path, "/Groups") || strings.HasPrefix(path, "/Bulk") {
			c.other += n
		} else {
			c.discovery += n
		}
	}
	return c
}

// Fleet runs the fleet benchmark on s: o.Orgs organizations of o.Users users each, one slapd
// (each organization in its own subtree ou=orgNNNN), one SCIM sandbox per organization, and
// one worker process with no organization in its environment, serving them all.
func Fleet(ctx context.Context, s *Stack, workerBin string, o FleetOptions, log func(string, ...any)) ([]Row, error) {
	if o.Users < 100 {
		o.Users = 100
	}
	if o.ChangedEvery <= 0 {
		o.ChangedEvery = 10
	}
	if o.Repeats <= 0 {
		o.Repeats = 3
	}
	if o.BigSettle <= 0 {
		o.BigSettle = bigSettle
	}
	if o.Timeout <= 0 {
		o.Timeout = time.Hour
	}
	o.Small = min(o.Small, o.Orgs)
	f := &fleet{s: s, o: o, byName: map[string]*tenant{}, log: log, signalledAt: map[string]time.Time{}}
	if err := f.setUp(ctx, workerBin); err != nil {
		return nil, err
	}
	var rows []Row
	add := func(r Row) {
		rows = append(rows, r)
		log("%s", format(r))
	}
	fleetNames := f.names(f.tenants[:o.Orgs])
	n := o.Orgs * o.Users

	r, _, err := f.phase(ctx, "fleet: initial sync", fleetNames, workflows.SignalEnable, n)
	if err != nil {
		return rows, err
	}
	add(r)
	r, runs, err := f.phase(ctx, "fleet: unchanged resync", fleetNames, workflows.SignalSyncNow, n)
	if err != nil {
		return rows, err
	}
	add(r)
	idle, err := f.idleRun(ctx, runs[fleetNames[len(fleetNames)-1]])
	if err != nil {
		return rows, err
	}
	add(idle)

	changed, err := f.renameSome(ctx)
	if err != nil {
		return rows, err
	}
	r, runs, err = f.phase(ctx, fmt.Sprintf("fleet: 1%% changed in %d orgs", len(changed)), fleetNames, workflows.SignalSyncNow, n)
	if err != nil {
		return rows, err
	}
	work := 0
	for _, name := range changed {
		work += runs[name].sum.Plan.Items
	}
	r.Note += fmt.Sprintf("; changed orgs: %d users with work", work)
	add(r)

	if o.BigUsers > 0 && o.Small > 0 {
		fr, err := f.fairness(ctx)
		for _, r := range fr {
			add(r)
		}
		if err != nil {
			return rows, err
		}
	}
	s.StopWorker()
	return rows, nil
}

func (f *fleet) names(ts []*tenant) []string {
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = t.name
	}
	return out
}

// setUp generates and loads the directories, starts the targets, writes every organization's
// configuration and settings, and starts the worker.
func (f *fleet) setUp(ctx context.Context, workerBin string) error {
	o := f.o
	entries := []*ldap.AddRequest{demo.SuffixEntry()}
	for i := range o.Orgs {
		name := fmt.Sprintf("org%04d", i+1)
		t := &tenant{name: name, d: demo.GenerateUnder(o.Users, int64(i+1), "ou="+name+","+demo.Suffix)}
		f.tenants = append(f.tenants, t)
		entries = append(entries, t.d.Entries...)
	}
	if o.BigUsers > 0 {
		f.big = &tenant{name: "big", d: demo.GenerateUnder(o.BigUsers, 50, "ou=big,"+demo.Suffix)}
		f.tenants = append(f.tenants, f.big)
		entries = append(entries, f.big.d.Entries...)
	}
	t0 := time.Now()
	if err := devstack.LoadEntries(ctx, f.s.Slapd.URL(), f.s.Slapd.AdminDN, ldapSecret, entries); err != nil {
		return err
	}
	f.log("loaded %d directory entries (%d organizations) in %s", len(entries), len(f.tenants),
		time.Since(t0).Round(time.Millisecond))

	mux := http.NewServeMux()
	for _, t := range f.tenants {
		t.sandbox = scimsandbox.New(scimsandbox.Options{Token: t.token(), Seats: t.d.TargetSeats()})
		f.byName[t.name] = t
		mux.Handle("/"+t.name+"/", http.StripPrefix("/"+t.name, t.sandbox))
	}
	if f.big != nil {
		f.big.sandbox.SetRateLimit(o.BigRate)
	}
	srv := httptest.NewServer(mux)
	f.s.closers = append(f.s.closers, srv.Close)
	f.scimURL = srv.URL

	keys, err := orgs.LoadKeyring(f.s.KeyFile)
	if err != nil {
		return err
	}
	repo := orgs.Repo{Store: f.s.Store, Keys: keys}
	t0 = time.Now()
	if err := each(f.tenants, 8, func(t *tenant) error {
		gctx := ctx
		if err := demo.Seed(gctx, f.s.Store, t.name, "bench", t.d); err != nil {
			return fmt.Errorf("%s: %w", t.name, err)
		}
		rate := 0.0
		if t == f.big {
			rate = o.BigRate
		}
		_, err := repo.Put(gctx, "bench", orgs.Org{Name: t.name,
			Settings: orgs.Settings{
				Directory: orgs.Directory{URL: f.s.Slapd.URL(), BindDN: f.s.Slapd.AdminDN, BaseDN: t.d.Suffix,
					Profile: "openldap", PageSize: 500, AllowPlaintextBind: true},
				Target:                  orgs.Target{URL: f.scimURL + "/" + t.name, Rate: rate},
				SuspendThresholdPercent: 10, SuspendThresholdMax: 500,
			},
			Secrets: orgs.Secrets{BindPassword: ldapSecret, Token: t.token()}})
		if err != nil {
			return fmt.Errorf("%s settings: %w", t.name, err)
		}
		return nil
	}); err != nil {
		return err
	}
	f.log("configured %d organizations in %s", len(f.tenants), time.Since(t0).Round(time.Millisecond))
	return f.s.StartFleetWorker(ctx, workerBin)
}

// StartFleetWorker (re)starts the worker process serving every organization: no directory,
// target or organization in its environment (LDAP_*, SCIM_* and USERSYNC_ORG of ours are
// dropped), only Temporal, PostgreSQL and the secrets key file.
func (s *Stack) StartFleetWorker(ctx context.Context, workerBin string) error {
	s.StopWorker()
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "LDAP_") && !strings.HasPrefix(kv, "SCIM_") && !strings.HasPrefix(kv, "USERSYNC_ORG=") {
			env = append(env, kv)
		}
	}
	s.MetricsAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(devstack.FreePort()))
	return s.startWorkerProcess(ctx, workerBin, append(env, "USERSYNC_SECRETS_KEY_FILE="+s.KeyFile,
		"TEMPORAL_ADDRESS="+s.HostPort, "DATABASE_URL="+s.DBURL, "USERSYNC_METRICS_ADDR="+s.MetricsAddr))
}

// finished is one organization's run of a phase, read from the runs table.
type finished struct {
	runID               string
	status              string
	started, finishedAt time.Time
	sum                 steps.RunSummary
}

// signal asks each organization for a sync (SignalWithStart, as the starter does), 16 at a time.
func (f *fleet) signal(ctx context.Context, names []string, signal string) error {
	return each(names, 16, func(name string) error {
		gctx := ctx
		var arg any = workflows.ActorSignal{Actor: "bench"}
		if signal == workflows.SignalEnable || signal == workflows.SignalDisable {
			arg = workflows.SwitchSignal{Actor: "bench"}
		}
		id := workflows.OrgWorkflowID(name)
		var err error
		for try := range 5 { // a busy dev server answers "context deadline exceeded"
			if _, err = f.s.Client.SignalWithStartWorkflow(gctx, id, signal, arg,
				client.StartWorkflowOptions{ID: id, TaskQueue: workflows.TaskQueue},
				workflows.UserSyncWorkflow, workflows.SyncState{Org: name, Interval: 24 * time.Hour}); err == nil {
				break
			}
			time.Sleep(time.Duration(try+1) * time.Second)
		}
		if err != nil {
			return fmt.Errorf("%s %s: %w", signal, name, err)
		}
		f.mu.Lock()
		f.signalledAt[name] = time.Now()
		f.mu.Unlock()
		return nil
	})
}

// wait signals the organizations in names (signal), at most InFlight of them with a run not
// yet finished (0: all at once), and polls the runs table until every one has a run started
// at or after since that finished. It returns those runs, and how long the signalling took.
func (f *fleet) wait(ctx context.Context, names []string, since time.Time, signal string) (map[string]finished, time.Duration, error) {
	got := map[string]finished{}
	deadline := time.Now().Add(f.o.Timeout)
	lastLog := time.Now()
	next := 0
	var signalled time.Duration
	for {
		if next < len(names) {
			k := len(names) - next
			if f.o.InFlight > 0 {
				k = min(k, f.o.InFlight-(next-len(got)))
			}
			if k > 0 {
				if err := f.signal(ctx, names[next:next+k], signal); err != nil {
					return got, signalled, err
				}
				next += k
				if next == len(names) {
					signalled = time.Since(since) - time.Second
				}
			}
		}
		var left []string
		for _, n := range names[:next] {
			if _, ok := got[n]; !ok {
				left = append(left, n)
			}
		}
		if len(left) == 0 && next == len(names) {
			return got, signalled, nil
		}
		if time.Now().After(deadline) {
			return got, signalled, fmt.Errorf("%d of %d organizations did not finish a run within %s",
				len(names)-len(got), len(names), f.o.Timeout)
		}
		rows, err := f.s.Store.Pool().Query(ctx, `SELECT org, run_id, status, started_at, finished_at, summary
			FROM runs WHERE org = ANY($1) AND started_at >= $2 AND finished_at IS NOT NULL`, left, since)
		if err != nil {
			return got, signalled, err
		}
		for rows.Next() {
			var org string
			var r finished
			var sum []byte
			if err := rows.Scan(&org, &r.runID, &r.status, &r.started, &r.finishedAt, &sum); err != nil {
				rows.Close()
				return got, signalled, err
			}
			if len(sum) > 0 {
				_ = json.Unmarshal(sum, &r.sum)
			}
			got[org] = r
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return got, signalled, err
		}
		if time.Since(lastLog) > 30*time.Second {
			f.log("  %d of %d organizations done (%d signalled)", len(got), len(names), next)
			lastLog = time.Now()
		}
		select {
		case <-ctx.Done():
			return got, signalled, ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// requests is every tenant's request count now.
func (f *fleet) requests() map[string]scimCount {
	out := make(map[string]scimCount, len(f.tenants))
	for _, t := range f.tenants {
		out[t.name] = countOf(t.sandbox.Stats())
	}
	return out
}

// phase syncs the organizations in names at once (signal: enable for the first sync,
// sync-now after) and measures it: wall from the first signal to the last run's end.
func (f *fleet) phase(ctx context.Context, scenario string, names []string, signal string, users int) (Row, map[string]finished, error) {
	f.s.ResetPeakRSS()
	before := f.requests()
	start := time.Now()
	runs, signalled, err := f.wait(ctx, names, start.Add(-time.Second), signal)
	if err != nil {
		return Row{}, runs, fmt.Errorf("%s: %w", scenario, err)
	}
	var last time.Time
	var durs []time.Duration
	work, failed, notOK := 0, 0, 0
	for _, r := range runs {
		last = maxTime(last, r.finishedAt)
		durs = append(durs, r.finishedAt.Sub(r.started))
		work += r.sum.Plan.Items
		failed += failures(r.sum)
		if r.status != "succeeded" {
			notOK++
		}
	}
	wall := last.Sub(start)
	after := f.requests()
	var disc, other, unchangedOther, unchangedOrgs int
	for _, n := range names {
		d := scimCount{after[n].discovery - before[n].discovery, after[n].other - before[n].other}
		disc += d.discovery
		other += d.other
		if runs[n].sum.Plan.Items == 0 {
			unchangedOrgs++
			unchangedOther += d.other
		}
	}
	row := Row{N: users, Scenario: scenario, Wall: wall, UsersPerS: float64(users) / wall.Seconds(), Work: work,
		Requests: disc + other, ReqPerS: float64(disc+other) / wall.Seconds(), PeakRSSMB: f.s.PeakRSS()}
	row.MaxHistory = f.longestOf(ctx, runs)
	sort.Slice(durs, func(i, j int) bool { return durs[i] < durs[j] })
	admitted := "all at once"
	if f.o.InFlight > 0 && f.o.InFlight < len(names) {
		admitted = fmt.Sprintf("%d at a time", f.o.InFlight)
	}
	row.Note = fmt.Sprintf("%d orgs, %s (signalled in %s); run p50 %s, p95 %s, max %s; %d discovery GETs; "+
		"%d orgs with nothing to do sent %d requests beyond discovery",
		len(names), admitted, signalled.Round(10*time.Millisecond), pct(durs, 50), pct(durs, 95), pct(durs, 100),
		disc, unchangedOrgs, unchangedOther)
	if notOK > 0 || failed > 0 {
		row.Note += fmt.Sprintf("; %d runs not succeeded, %d user failures", notOK, failed)
	}
	return row, runs, nil
}

func pct(d []time.Duration, p int) string {
	if len(d) == 0 {
		return "-"
	}
	i := min(len(d)-1, (len(d)*p+99)/100-1)
	return d[max(0, i)].Round(10 * time.Millisecond).String()
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// longestOf is the longest history among the runs' workflows and their page workflows.
func (f *fleet) longestOf(ctx context.Context, runs map[string]finished) int {
	var mu sync.Mutex
	longest := 0
	var all []finished
	for _, r := range runs {
		all = append(all, r)
	}
	_ = each(all, 8, func(r finished) error {
		n := f.s.longestHistory(ctx, r.runID, r.sum.Plan.Items)
		mu.Lock()
		longest = max(longest, n)
		mu.Unlock()
		return nil
	})
	return longest
}

// idleRun describes an unchanged organization's run: its history events (the run workflow
// and any children), the workflow tasks and activities in it, and what the organization's
// own workflow added for it.
func (f *fleet) idleRun(ctx context.Context, r finished) (Row, error) {
	h, err := f.history(ctx, r.runID)
	if err != nil {
		return Row{}, err
	}
	children := 0
	for _, id := range h.children {
		c, err := f.history(ctx, id)
		if err != nil {
			return Row{}, err
		}
		children += c.events
	}
	org := r.sum.Org
	if org == "" {
		org = strings.Split(r.runID, "/")[1]
	}
	// The organization's own workflow: the events of one more unchanged run.
	before := historyLength(ctx, f.s.Client, workflows.OrgWorkflowID(org))
	reqBefore := countOf(f.byName[org].sandbox.Stats())
	start := time.Now()
	again, _, err := f.wait(ctx, []string{org}, start.Add(-time.Second), workflows.SignalSyncNow)
	if err != nil {
		return Row{}, err
	}
	time.Sleep(time.Second) // the child's completion reaches the organization's workflow
	after := historyLength(ctx, f.s.Client, workflows.OrgWorkflowID(org))
	req := countOf(f.byName[org].sandbox.Stats())
	a := again[org]
	// The run's own duration: the signal's round trip is not the idle run's cost.
	row := Row{N: f.o.Users, Scenario: "idle org: one unchanged run", Wall: a.finishedAt.Sub(a.started),
		Work: a.sum.Plan.Items, Requests: req.discovery - reqBefore.discovery + req.other - reqBefore.other,
		MaxHistory: h.events + children}
	row.UsersPerS = float64(row.N) / row.Wall.Seconds()
	row.ReqPerS = float64(row.Requests) / row.Wall.Seconds()
	row.Note = fmt.Sprintf("%s: run workflow %d events (%d workflow tasks, %d activities, %d local activities), "+
		"%d child workflows (%d events); %s's workflow +%d events per run; requests: %d discovery, %d other",
		org, h.events, h.workflowTasks, h.activities, h.localActivities, len(h.children), children,
		workflows.OrgWorkflowID(org), after-before, req.discovery-reqBefore.discovery, req.other-reqBefore.other)
	return row, nil
}

type historyCount struct {
	events, workflowTasks, activities, localActivities int
	children                                           []string
}

func (f *fleet) history(ctx context.Context, id string) (historyCount, error) {
	var h historyCount
	it := f.s.Client.GetWorkflowHistory(ctx, id, "", false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		e, err := it.Next()
		if err != nil {
			return h, fmt.Errorf("history of %s: %w", id, err)
		}
		h.events++
		switch e.GetEventType() {
		case enums.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED:
			h.workflowTasks++
		case enums.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
			h.activities++
		case enums.EVENT_TYPE_MARKER_RECORDED:
			h.localActivities++
		case enums.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED:
			h.children = append(h.children, e.GetStartChildWorkflowExecutionInitiatedEventAttributes().GetWorkflowId())
		}
	}
	return h, nil
}

// renameSome renames 1% of the users (at least one) of every ChangedEvery-th organization.
func (f *fleet) renameSome(ctx context.Context) ([]string, error) {
	conn, err := ldap.DialURL(f.s.Slapd.URL())
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	if err := conn.Bind(f.s.Slapd.AdminDN, ldapSecret); err != nil {
		return nil, err
	}
	var changed []string
	for i, t := range f.tenants[:f.o.Orgs] {
		if i%f.o.ChangedEvery != 0 {
			continue
		}
		k := max(1, f.o.Users/100)
		for _, e := range t.d.Entries {
			if k == 0 {
				break
			}
			if !strings.HasPrefix(e.DN, "uid=") {
				continue
			}
			m := ldap.NewModifyRequest(e.DN, nil)
			m.Replace("displayName", []string{"Renamed " + uidOf(e)})
			if err := conn.Modify(m); err != nil {
				return nil, err
			}
			k--
		}
		changed = append(changed, t.name)
	}
	return changed, ctx.Err()
}

// fairness measures the unchanged resync of the first Small organizations alone and next to
// the big organization's initial sync behind its throttled target, Repeats pairs of them,
// interleaved (alone, beside, alone, ...), so that what drifts during the benchmark (the
// database and the Temporal server growing, other load on the machine) lands on both sides.
// Between the two measures of a pair the big organization is paused (its sync disabled: the
// run is cancelled and stops sending) and resumed (enabled: a new run, measured once it has
// provisioned for bigSettle). Before the pairs, what the stack costs the machine idle, and
// while the big organization provisions alone. The growth is the median of the pairs'
// differences.
func (f *fleet) fairness(ctx context.Context) ([]Row, error) {
	small := f.names(f.tenants[:f.o.Small])
	n := f.o.Small * f.o.Users
	label := fmt.Sprintf("fairness: %d orgs unchanged resync", len(small))
	var rows []Row

	idle, err := f.cost(ctx, "fairness: the stack idle (baseline)", 0, costWindow)
	if err != nil {
		return rows, err
	}
	f.log("%s", format(idle))
	bigStart := time.Now()
	if err := f.resumeBig(ctx); err != nil {
		return rows, err
	}
	f.log("  big organization (%d users at %.0f req/s) provisioning after %s", f.o.BigUsers, f.o.BigRate,
		time.Since(bigStart).Round(time.Second))
	cost, err := f.cost(ctx, fmt.Sprintf("fairness: the big organization alone, provisioning at %.0f req/s", f.o.BigRate),
		f.o.BigSettle, costWindow)
	if err != nil {
		return rows, err
	}
	f.log("%s", format(cost))
	rows = append(rows, idle, cost)

	var alone, beside []fairRepeat
	var bigReqs, bigThrottled int
	var bigSpan time.Duration
	for i := range f.o.Repeats {
		if err := f.pauseBig(ctx); err != nil {
			return rows, err
		}
		a, err := f.fairRepeat(ctx, fmt.Sprintf("%s, alone #%d", label, i+1), small, n)
		if err != nil {
			return rows, err
		}
		if err := f.resumeBig(ctx); err != nil {
			return rows, err
		}
		select {
		case <-ctx.Done():
			return rows, ctx.Err()
		case <-time.After(f.o.BigSettle):
		}
		st0, t0 := f.big.sandbox.Stats(), time.Now()
		b, err := f.fairRepeat(ctx, fmt.Sprintf("%s, beside #%d", label, i+1), small, n)
		if err != nil {
			return rows, err
		}
		st1 := f.big.sandbox.Stats()
		bigReqs, bigThrottled, bigSpan = bigReqs+st1.Requests-st0.Requests, bigThrottled+st1.Throttled-st0.Throttled, bigSpan+time.Since(t0)
		alone, beside = append(alone, a), append(beside, b)
		f.log("  pair #%d: wall %+.0f%%, run p50 %+.0f%%", i+1, growth(a.row.Wall, b.row.Wall), growth(a.p50, b.p50))
	}
	// Its sync would take hours: stop it (the stack is closed after).
	_ = f.s.Client.TerminateWorkflow(ctx, workflows.OrgWorkflowID(f.big.name), "", "benchmark over")

	var wallGrowth, p50Growth []float64
	for i := range alone {
		wallGrowth = append(wallGrowth, growth(alone[i].row.Wall, beside[i].row.Wall))
		p50Growth = append(p50Growth, growth(alone[i].p50, beside[i].p50))
	}
	a := medianRepeat(alone, label+", alone")
	b := medianRepeat(beside, fmt.Sprintf("%s, beside %d users at %.0f req/s", label, f.o.BigUsers, f.o.BigRate))
	b.Note = fmt.Sprintf("wall %+.0f%%, run p50 %+.0f%% vs alone (medians of the %d pairs' differences: wall %s); "+
		"big org meanwhile %.1f req/s, %d answered 429; ", median(wallGrowth), median(p50Growth), len(alone),
		percents(wallGrowth), float64(bigReqs)/bigSpan.Seconds(), bigThrottled) + b.Note
	return append(rows, a, b), nil
}

// bigSettle is how long the big organization provisions before its load is measured (its
// cost, or the small organizations beside it): the start of its run (reading and planning its
// users, PostgreSQL's autovacuum after) is not its steady load. costWindow: a minute (the
// idle stack's too).
const (
	bigSettle  = 30 * time.Second
	costWindow = time.Minute
)

// fairRepeat is one measure of the small organizations' unchanged resync: its row and the
// median of its runs' times.
type fairRepeat struct {
	row Row
	p50 time.Duration
}

func (f *fleet) fairRepeat(ctx context.Context, scenario string, small []string, n int) (fairRepeat, error) {
	pg := f.s.Probe != nil && f.s.Probe.PGStats
	if pg {
		if _, err := f.s.Store.Pool().Exec(ctx, "SELECT pg_stat_statements_reset()"); err != nil {
			return fairRepeat{}, err
		}
	}
	r, runs, err := f.phase(ctx, scenario, small, workflows.SignalSyncNow, n)
	if err != nil {
		return fairRepeat{}, err
	}
	if pg {
		var b strings.Builder
		reportStatements(ctx, f.s.Store, &b, n)
		f.log("  %s statements:\n%s", scenario, b.String())
	}
	f.log("  %s", format(r))
	f.mu.Lock()
	at := maps.Clone(f.signalledAt)
	f.mu.Unlock()
	f.log("    stages p50/p95: %s", f.stagesOf(ctx, runs, at))
	var durs []time.Duration
	for _, x := range runs {
		durs = append(durs, x.finishedAt.Sub(x.started))
	}
	slices.Sort(durs)
	return fairRepeat{row: r, p50: durs[len(durs)/2]}, nil
}

// medianRepeat is the row of the median wall, with every wall and the median of the repeats'
// median run time: one lost task completion on a busy server holds one run for its step's
// timeout (minutes) and moves the wall, not the runs' median.
func medianRepeat(rs []fairRepeat, scenario string) Row {
	rs = slices.Clone(rs)
	slices.SortFunc(rs, func(a, b fairRepeat) int { return cmp.Compare(a.row.Wall, b.row.Wall) })
	p50s := make([]time.Duration, len(rs))
	walls := make([]string, len(rs))
	for i, r := range rs {
		p50s[i], walls[i] = r.p50, r.row.Wall.Round(10*time.Millisecond).String()
	}
	slices.Sort(p50s)
	med := rs[len(rs)/2].row
	med.Scenario = scenario
	med.Note = fmt.Sprintf("median of walls %s; median run p50 %s; ", strings.Join(walls, ", "),
		p50s[len(p50s)/2].Round(10*time.Millisecond)) + med.Note
	return med
}

func growth(alone, beside time.Duration) float64 {
	return 100 * (beside.Seconds() - alone.Seconds()) / alone.Seconds()
}

// median of xs (the mean of the middle two when even).
func median(xs []float64) float64 {
	s := slices.Sorted(slices.Values(xs))
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func percents(xs []float64) string {
	out := make([]string, len(xs))
	for i, x := range xs {
		out[i] = fmt.Sprintf("%+.0f%%", x)
	}
	return strings.Join(out, ", ")
}

// resumeBig turns the big organization's sync on (its first run, or a new one after a pause)
// and returns once it provisions: its target received bigProvisioning user requests since.
func (f *fleet) resumeBig(ctx context.Context) error {
	before := countOf(f.big.sandbox.Stats()).other
	if err := f.signal(ctx, []string{f.big.name}, workflows.SignalEnable); err != nil {
		return err
	}
	return f.until(ctx, "the big organization to provision", func() (bool, error) {
		return countOf(f.big.sandbox.Stats()).other-before >= bigProvisioning, nil
	})
}

// bigProvisioning is how many user requests show that the big organization provisions (its
// run read the directory, planned and started its pages).
const bigProvisioning = 10

// pauseBig turns the big organization's sync off and returns once its run has ended (the
// disable cancels it; its writes in flight finish first) and its target has received nothing
// for a second.
func (f *fleet) pauseBig(ctx context.Context) error {
	if err := f.signal(ctx, []string{f.big.name}, workflows.SignalDisable); err != nil {
		return err
	}
	last, lastAt := f.big.sandbox.Stats().Requests, time.Now()
	return f.until(ctx, "the big organization to stop", func() (bool, error) {
		var running bool
		if err := f.s.Store.Pool().QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM runs WHERE org = $1 AND finished_at IS NULL)`,
			f.big.name).Scan(&running); err != nil {
			return false, err
		}
		if r := f.big.sandbox.Stats().Requests; r != last {
			last, lastAt = r, time.Now()
		}
		return !running && time.Since(lastAt) >= time.Second, nil
	})
}

// until polls done every 200 ms until it is true, for at most the phase timeout.
func (f *fleet) until(ctx context.Context, what string, done func() (bool, error)) error {
	deadline := time.Now().Add(f.o.Timeout)
	for {
		ok, err := done()
		if err != nil || ok {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("waited %s for %s", f.o.Timeout, what)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// each calls fn for every item, limit at a time, and returns the first error.
func each[T any](items []T, limit int, fn func(T) error) error {
	var mu sync.Mutex
	var first error
	sem := make(chan struct{}, limit)
	var wg sync.WaitGroup
	for _, it := range items {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			if err := fn(it); err != nil {
				mu.Lock()
				if first == nil {
					first = err
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return first
}
