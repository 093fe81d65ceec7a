package bench

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-ldap/ldap/v3"
	"go.temporal.io/sdk/client"

	"github.com/usersync/usersync/internal/demo"
	"github.com/usersync/usersync/internal/devstack"
	"github.com/usersync/usersync/internal/engine"
	"github.com/usersync/usersync/internal/plan"
	"github.com/usersync/usersync/internal/rules"
	"github.com/usersync/usersync/internal/scim"
	"github.com/usersync/usersync/internal/steps"
	"github.com/usersync/usersync/internal/vocab"
	"github.com/usersync/usersync/workflows"
)

// Row is one line of the benchmark table.
type Row struct {
	N          int
	Scenario   string
	Wall       time.Duration
	UsersPerS  float64 // N / wall (directory users per second)
	Work       int     // users given per-user work (each: 2 local + 1 regular activity at most)
	Requests   int     // SCIM requests received by the target
	ReqPerS    float64 // requests / wall
	PeakRSSMB  float64 // worker process
	MaxHistory int     // longest workflow history of the run (events)
	Note       string
}

const org = "bench"

// sync runs one manual sync of org and measures it.
func (s *Stack) sync(ctx context.Context, n int, org, scenario string) (Row, steps.RunSummary, error) {
	s.ResetPeakRSS()
	before := s.Sandbox.Stats().Requests
	id := workflows.RunWorkflowID(org, fmt.Sprintf("%s-%d", scenario, time.Now().UnixNano()))
	done, err := s.Probe.around(ctx, s, scenario, id, n)
	if err != nil {
		return Row{}, steps.RunSummary{}, err
	}
	start := time.Now()
	run, err := s.Client.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: workflows.TaskQueue},
		workflows.SyncRunWorkflow, workflows.RunInput{Org: org, RunID: id, Kind: vocab.KindManual})
	var sum steps.RunSummary
	if err == nil {
		err = run.Get(ctx, &sum)
	}
	wall := time.Since(start)
	done()
	if err != nil {
		return Row{}, sum, fmt.Errorf("%s: %w", scenario, err)
	}
	req := s.Sandbox.Stats().Requests - before
	row := Row{N: n, Scenario: scenario, Wall: wall, UsersPerS: float64(n) / wall.Seconds(), Work: sum.Plan.Items,
		Requests: req, ReqPerS: float64(req) / wall.Seconds(), PeakRSSMB: s.PeakRSS()}
	row.MaxHistory = s.longestHistory(ctx, id, sum.Plan.Items)
	if f := failures(sum); f > 0 {
		row.Note = fmt.Sprintf("%d failed", f)
	}
	return row, sum, nil
}

func failures(sum steps.RunSummary) int {
	n := 0
	for _, v := range sum.Failures {
		n += v
	}
	return n
}

// longestHistory is the longest history among the run and its page workflows.
func (s *Stack) longestHistory(ctx context.Context, runID string, items int) int {
	longest := historyLength(ctx, s.Client, runID)
	size := workflows.DefaultPageSize
	if n, err := strconv.Atoi(os.Getenv("USERSYNC_PAGE_SIZE")); err == nil && n > 0 {
		size = n
	}
	pages := (items + size - 1) / size
	for p := range pages {
		longest = max(longest, historyLength(ctx, s.Client, fmt.Sprintf("%s/page/%d", runID, p)))
	}
	return longest
}

func historyLength(ctx context.Context, c client.Client, id string) int {
	d, err := c.DescribeWorkflowExecution(ctx, id, "")
	if err != nil {
		return 0
	}
	return int(d.WorkflowExecutionInfo.GetHistoryLength())
}

// Run measures every scenario for n users. rate, when > 0, adds the initial sync of the same
// n users under that SCIM request rate.
func Run(ctx context.Context, s *Stack, n int, workerBin string, rate float64, log func(string, ...any)) ([]Row, error) {
	d := demo.Generate(n, 1)
	t0 := time.Now()
	if err := devstack.LoadEntries(ctx, s.Slapd.URL(), s.Slapd.AdminDN, ldapSecret, d.Entries); err != nil {
		return nil, err
	}
	log("loaded %d directory entries in %s", len(d.Entries), time.Since(t0).Round(time.Millisecond))
	if s.LaggingMark {
		if err := s.Slapd.AddBeyondTheMark(ctx, "dn: uid=beyond.the.mark,"+demo.PeopleDN+
			"\nobjectClass: inetOrgPerson\nuid: beyond.the.mark\ncn: Beyond The Mark\nsn: Mark\nmail: beyond.the.mark@"+demo.Domain); err != nil {
			return nil, err
		}
		log("added one entry beyond slapd's sync mark")
	}
	if err := demo.Seed(ctx, s.Store, org, "bench", d); err != nil {
		return nil, err
	}
	if err := s.StartWorker(ctx, workerBin, org, 0); err != nil {
		return nil, err
	}
	var rows []Row
	add := func(r Row, err error) error {
		if err == nil {
			rows = append(rows, r)
			log("%s", format(r))
		}
		return err
	}
	r, _, err := s.sync(ctx, n, org, "initial sync")
	if err := add(r, err); err != nil {
		return rows, err
	}
	if s.Probe != nil && s.Probe.InitialOnly {
		s.StopWorker()
		return rows, nil
	}
	var sum steps.RunSummary
	r, sum, err = s.sync(ctx, n, org, "unchanged resync")
	r.Note = readNote(sum)
	if err := add(r, err); err != nil {
		return rows, err
	}
	if err := renameUsers(ctx, s, d, n/100); err != nil {
		return rows, err
	}
	r, sum, err = s.sync(ctx, n, org, "1% changed")
	r.Note = readNote(sum)
	if err := add(r, err); err != nil {
		return rows, err
	}
	if s.ResyncsOnly {
		s.StopWorker()
		return rows, nil
	}
	group := tenPercentGroup(n)
	if _, err := s.Store.EditRules(ctx, org, "bench", "bench: rule edit", func(rs []rules.Rule) ([]rules.Rule, error) {
		return rules.Insert(rs, rules.Rule{Priority: 1, GroupDN: demo.GroupDN(group), SettingsTemplate: demo.Executive})
	}); err != nil {
		return rows, err
	}
	r, _, err = s.sync(ctx, n, org, "rule edit (10%)")
	r.Note = "new top rule on " + group
	if err := add(r, err); err != nil {
		return rows, err
	}

	ceiling, err := emptyFanOut(ctx, s, n)
	if err := add(ceiling, err); err != nil {
		return rows, err
	}
	raw, err := sandboxCreates(ctx, min(n, 20000))
	if err := add(Row{N: min(n, 20000), Scenario: "ceiling: sandbox creates over HTTP", Wall: raw.wall,
		UsersPerS: raw.perS, Requests: raw.n, ReqPerS: raw.perS}, err); err != nil {
		return rows, err
	}
	rows[0].Note = fmt.Sprintf("%.0f%% of empty fan-out, %.0f%% of sandbox creates",
		100*rows[0].UsersPerS/ceiling.UsersPerS, 100*rows[0].UsersPerS/raw.perS)

	if rate > 0 {
		r, err := rateLimited(ctx, s, d, n, workerBin, rate)
		if err := add(r, err); err != nil {
			return rows, err
		}
	}
	s.StopWorker()
	return rows, nil
}

// readNote says how the run read the directory: the LDAP entries an incremental read
// fetched, or a full read.
func readNote(sum steps.RunSummary) string {
	rd := sum.Directory.Read
	switch {
	case rd == nil:
		return fmt.Sprintf("full read: %d users, %d groups", sum.Directory.Users, sum.Directory.Groups)
	case rd.Full:
		return fmt.Sprintf("incremental, full read (%s): %d LDAP entries", rd.Reason, rd.Entries)
	}
	note := fmt.Sprintf("incremental: %d LDAP entries read, %d deleted, %d checked", rd.Entries, rd.Deleted, rd.Checked)
	if d := sum.Directory.Delta; d != nil {
		note += fmt.Sprintf("; delta run: %d users touched, snapshot and plan of those only", d.Touched)
	}
	return note
}

// tenPercentGroup names a generated group holding about a tenth of n users.
func tenPercentGroup(n int) string {
	switch {
	case n/10 <= 150:
		return "Team-0001"
	case n/10 <= 1500:
		return "Dept-001"
	default:
		return "Division-01"
	}
}

// renameUsers changes the display name of k users in the directory.
func renameUsers(ctx context.Context, s *Stack, d demo.Demo, k int) error {
	conn, err := ldap.DialURL(s.Slapd.URL())
	if err != nil {
		return err
	}
	defer conn.Close()
	if err := conn.Bind(s.Slapd.AdminDN, ldapSecret); err != nil {
		return err
	}
	for _, e := range d.Entries {
		if k == 0 {
			break
		}
		if e.DN != demo.UserDN(uidOf(e)) {
			continue
		}
		m := ldap.NewModifyRequest(e.DN, nil)
		m.Replace("displayName", []string{"Renamed " + uidOf(e)})
		if err := conn.Modify(m); err != nil {
			return err
		}
		k--
	}
	return ctx.Err()
}

func uidOf(e *ldap.AddRequest) string {
	for _, a := range e.Attributes {
		if a.Type == "uid" && len(a.Vals) > 0 {
			return a.Vals[0]
		}
	}
	return ""
}

// rateLimited is the initial sync of the loaded directory (d, as the size's other rows) under
// the target's documented rate, for a fresh organization and target. Its N is the directory's
// size: it was once labelled 1,000 whatever was loaded.
func rateLimited(ctx context.Context, s *Stack, d demo.Demo, n int, workerBin string, rate float64) (Row, error) {
	const rateOrg = "bench-rate"
	if err := demo.Seed(ctx, s.Store, rateOrg, "bench", d); err != nil {
		return Row{}, err
	}
	s.ResetSandbox()
	s.Sandbox.SetRateLimit(rate)
	if err := s.StartWorker(ctx, workerBin, rateOrg, rate); err != nil {
		return Row{}, err
	}
	r, _, err := s.sync(ctx, n, rateOrg, fmt.Sprintf("initial sync at %.0f req/s", rate))
	r.Note = fmt.Sprintf("%.1f%% of the allowed rate, %d answered 429", 100*r.ReqPerS/rate, s.Sandbox.Stats().Throttled)
	return r, err
}

type throughput struct {
	n    int
	wall time.Duration
	perS float64
}

// sandboxCreates measures the sandbox's raw create rate over HTTP, 8 clients at once.
func sandboxCreates(ctx context.Context, n int) (throughput, error) {
	s := &Stack{}
	s.ResetSandbox()
	defer s.Close()
	c := scim.New(scim.Config{BaseURL: s.SCIMURL, Token: token})
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	start := time.Now()
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := next.Add(1); i <= int64(n); i = next.Add(1) {
				u := fmt.Sprintf("raw%07d@example.com", i)
				if _, err := c.CreateUser(ctx, scim.Extension{}, plan.Desired{ExternalID: u, UserName: u, Email: u, Active: true,
					Products: []string{demo.Meeting}}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	wall := time.Since(start)
	close(errs)
	if err := <-errs; err != nil {
		return throughput{}, err
	}
	return throughput{n: n, wall: wall, perS: float64(n) / wall.Seconds()}, nil
}

// emptyFanOut runs the same workflows with activities that do nothing, in their own
// namespace and in-process worker: the dev server's ceiling for this fan-out shape.
func emptyFanOut(ctx context.Context, s *Stack, n int) (Row, error) {
	c, err := client.Dial(client.Options{HostPort: s.HostPort, Namespace: CeilingNamespace, Logger: quiet()})
	if err != nil {
		return Row{}, err
	}
	defer c.Close()
	stop, err := engine.Start(c, &emptySteps{items: n}, engine.Options{})
	if err != nil {
		return Row{}, err
	}
	defer stop()
	id := fmt.Sprintf("ceiling-%d", time.Now().UnixNano())
	start := time.Now()
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: workflows.TaskQueue},
		workflows.SyncRunWorkflow, workflows.RunInput{Org: org, RunID: id, Kind: vocab.KindManual})
	if err != nil {
		return Row{}, err
	}
	if err := run.Get(ctx, nil); err != nil {
		return Row{}, err
	}
	wall := time.Since(start)
	return Row{N: n, Scenario: "ceiling: empty fan-out, same shape", Wall: wall, UsersPerS: float64(n) / wall.Seconds(),
		Work: n, MaxHistory: longestIn(ctx, c, id, n)}, nil
}

func longestIn(ctx context.Context, c client.Client, runID string, items int) int {
	s := &Stack{Client: c}
	return s.longestHistory(ctx, runID, items)
}
