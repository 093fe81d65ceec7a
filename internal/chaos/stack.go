package chaos

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"

	"github.com/usersync/usersync/internal/demo"
	"github.com/usersync/usersync/internal/devstack"
	"github.com/usersync/usersync/internal/devstack/devstacktest"
	"github.com/usersync/usersync/internal/orgs"
	"github.com/usersync/usersync/internal/plan"
	"github.com/usersync/usersync/internal/scim"
	"github.com/usersync/usersync/internal/scimsandbox"
	"github.com/usersync/usersync/internal/store"
	"github.com/usersync/usersync/workflows"
)

const (
	org        = "chaos"
	scimToken  = "chaos-token-5e1f"
	ldapSecret = "chaos-ldap-secret"
	// acmeURN is the custom extension SCIMMY declares (as in the e2e tests).
	acmeURN = "urn:ietf:params:scim:schemas:extension:acme:2.0:User"
)

// Targets a stack can provision into.
const (
	Sandbox = "sandbox" // ours, strict, with seats and fault switches
	SCIMMY  = "scimmy"  // the SCIMMY library from npm: a server we did not write
)

// StackOptions choose the parts a fault needs of its own.
type StackOptions struct {
	Target string // Sandbox (default) or SCIMMY
	// OwnPostgres: a PostgreSQL server for this stack alone, which the fault may restart
	// (otherwise a database on the test binary's shared server).
	OwnPostgres bool
	// OwnTemporal: a Temporal dev server keeping its state in a database file, which the
	// fault may restart (otherwise an in-memory server for this stack).
	OwnTemporal bool
	// SCIMRate is the worker's SCIM_RATE (requests/s, paced through PostgreSQL).
	SCIMRate int
	// Unpaced: SCIM_RATE=0, a target without a rate. Its SCIM steps run on the workflows'
	// own queue, each user's first write as a local activity in the workflow's task.
	Unpaced bool
}

// Stack is one whole usersync on this machine: PostgreSQL, a Temporal dev server, slapd
// behind a TCP gate, the SCIM target behind the fault proxy, and the worker as a process.
type Stack struct {
	t   testing.TB
	ctx context.Context
	Org demo.Demo
	Dir string

	DBURL    string
	Postgres *devstack.Postgres // nil on the shared server
	Temporal *devstack.Temporal // nil for an in-memory server
	HostPort string
	Slapd    *devstack.Slapd
	Gate     *Gate // the worker reads the directory through it
	Sandbox  *scimsandbox.Server
	// TargetURL is the target itself (the checker reads it there); the worker talks to
	// ProxyURL, through Proxy.
	TargetURL, ProxyURL string
	Proxy               *Proxy
	Ext                 scim.Extension
	Store               *store.Store
	Client              client.Client
	Worker              *Worker
}

// NewStack builds and seeds a stack for d and starts its worker. Everything is stopped when
// the test ends.
func NewStack(t testing.TB, d demo.Demo, seed uint64, o StackOptions) *Stack {
	t.Helper()
	if _, err := os.Stat(devstack.SlapdBinary); err != nil {
		devstacktest.SkipUnlessRequired(t, "slapd not installed (%s): apt-get install slapd", devstack.SlapdBinary)
	}
	if _, err := devstack.FindTemporal(); err != nil {
		devstacktest.SkipUnlessRequired(t, "temporal not installed: %v", err)
	}
	bin, err := WorkerBinary()
	must(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	s := &Stack{t: t, ctx: ctx, Org: d, Dir: t.TempDir()}

	if o.OwnPostgres {
		// Under /tmp, not t.TempDir(): the postgres user must reach it.
		dir, err := os.MkdirTemp("", "usersync-chaospg-")
		must(t, err)
		s.Postgres = &devstack.Postgres{Dir: dir, Port: devstack.FreePort(), NoSync: true, Attached: true}
		s.DBURL, err = s.Postgres.Start(ctx)
		must(t, err)
		t.Cleanup(func() { _ = s.Postgres.Stop(); _ = os.RemoveAll(dir) })
	} else {
		s.DBURL = devstacktest.Database(t)
	}

	if o.OwnTemporal {
		s.Temporal = &devstack.Temporal{Dir: filepath.Join(s.Dir, "temporal"), Port: devstack.FreePort(),
			HTTPPort: devstack.FreePort(), Headless: true, Attached: true,
			DBFile: filepath.Join(s.Dir, "temporal", "chaos.db")}
		tctx, tcancel := context.WithTimeout(ctx, 2*time.Minute)
		must(t, s.Temporal.Start(tctx))
		tcancel()
		t.Cleanup(func() { _ = s.Temporal.Stop() })
		s.HostPort = s.Temporal.HostPort()
	} else {
		s.HostPort = devstacktest.Temporal(t)
	}

	s.Slapd = &devstack.Slapd{Dir: filepath.Join(s.Dir, "slapd"), Suffix: d.Suffix,
		AdminDN: "cn=admin," + d.Suffix, AdminPassword: ldapSecret}
	must(t, s.Slapd.Start(ctx))
	t.Cleanup(func() { _ = s.Slapd.Stop() })
	must(t, devstack.LoadEntries(ctx, s.Slapd.URL(), s.Slapd.AdminDN, ldapSecret, d.Entries))
	s.Gate, err = NewGate(net.JoinHostPort("127.0.0.1", strconv.Itoa(s.Slapd.Port)))
	must(t, err)
	t.Cleanup(s.Gate.Close)

	var upstream http.Handler
	basePath := ""
	switch o.Target {
	case "", Sandbox:
		s.Sandbox = scimsandbox.New(scimsandbox.Options{Token: scimToken, Seats: d.TargetSeats()})
		must(t, s.Sandbox.SeedExisting(d.PreExisting...))
		srv := httptest.NewServer(s.Sandbox)
		t.Cleanup(srv.Close)
		s.TargetURL, upstream = srv.URL, s.Sandbox
	case SCIMMY:
		s.TargetURL = devstacktest.SCIMMY(t, devstack.SCIMMY{Token: scimToken, CustomSchema: acmeURN,
			CustomAttributes: []string{"settingsTemplate", "office", "project"}})
		s.Ext = scim.Extension{URN: acmeURN}
		c := scim.New(scim.Config{BaseURL: s.TargetURL, Token: scimToken})
		for _, name := range d.PreExisting {
			_, err := c.CreateUser(ctx, s.Ext, plan.Desired{UserName: name, Email: name, Active: true})
			must(t, err)
		}
		upstream, basePath, err = ReverseProxyTo(s.TargetURL)
		must(t, err)
	default:
		t.Fatalf("unknown target %q", o.Target)
	}
	s.Proxy = NewProxy(upstream, seed)
	proxySrv := httptest.NewServer(s.Proxy)
	t.Cleanup(proxySrv.Close)
	s.ProxyURL = proxySrv.URL + basePath

	s.Store, err = store.Open(ctx, s.DBURL)
	must(t, err)
	t.Cleanup(s.Store.Close)
	must(t, demo.Seed(ctx, s.Store, org, "chaos-seed", d))
	if s.Ext.URN != "" {
		must(t, s.Store.SetTargetExtension(ctx, org, "chaos-seed", s.Ext))
	}
	s.Client, err = client.Dial(client.Options{HostPort: s.HostPort, Logger: quietLogger()})
	must(t, err)
	t.Cleanup(s.Client.Close)

	rate := o.SCIMRate
	if rate == 0 && !o.Unpaced {
		rate = 200
	}
	keyFile := filepath.Join(s.Dir, "secrets.keys")
	_, err = orgs.AddKey(keyFile)
	must(t, err)
	s.Worker = &Worker{Bin: bin, LogFile: filepath.Join(s.Dir, "worker.log"), Env: []string{
		"USERSYNC_SECRETS_KEY_FILE=" + keyFile,
		"USERSYNC_ORG=" + org, "TEMPORAL_ADDRESS=" + s.HostPort, "TEMPORAL_NAMESPACE=default",
		"DATABASE_URL=" + s.DBURL,
		"LDAP_URL=ldap://" + s.Gate.Addr(), "LDAP_BIND_DN=" + s.Slapd.AdminDN, "LDAP_BIND_PASSWORD=" + ldapSecret,
		"LDAP_BASE_DN=" + d.Suffix, "LDAP_PROFILE=openldap", "LDAP_ALLOW_PLAINTEXT_BIND=true", "LDAP_PAGE_SIZE=100",
		"SCIM_URL=" + s.ProxyURL, "SCIM_TOKEN=" + scimToken, "SCIM_RATE=" + strconv.Itoa(rate),
		"GOMAXPROCS=2",
		"USERSYNC_METRICS_ADDR=127.0.0.1:0", // runs side by side: no fixed port
	}}
	must(t, s.Worker.Start())
	t.Cleanup(func() {
		s.Worker.Stop()
		if t.Failed() {
			t.Logf("end of the worker's log %s:\n%s", s.Worker.LogFile, devstack.LogTail(s.Worker.LogFile, 30))
		}
	})
	return s
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func quietLogger() tlog.Logger {
	return tlog.NewStructuredLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})))
}

// Signal sends a signal to the organization's workflow, starting it when needed (as the
// CLI does). Errors are retried for a while: the fault may have Temporal down.
func (s *Stack) Signal(name string, arg any) {
	s.t.Helper()
	err := s.retry(2*time.Minute, func(ctx context.Context) error {
		_, err := s.Client.SignalWithStartWorkflow(ctx, workflows.OrgWorkflowID(org), name, arg,
			client.StartWorkflowOptions{ID: workflows.OrgWorkflowID(org), TaskQueue: workflows.TaskQueue},
			workflows.UserSyncWorkflow, workflows.SyncState{Org: org, Interval: time.Hour})
		return err
	})
	must(s.t, err)
}

// Status queries the organization's workflow.
func (s *Stack) Status(ctx context.Context) (workflows.Status, error) {
	var st workflows.Status
	v, err := s.Client.QueryWorkflow(ctx, workflows.OrgWorkflowID(org), "", workflows.QueryStatus)
	if err != nil {
		return st, err
	}
	return st, v.Get(&st)
}

// WaitRun waits until a run other than prev has finished and nothing else runs or is queued,
// tolerating a Temporal, worker or database that is down for a while.
func (s *Stack) WaitRun(prev string, within time.Duration) (workflows.Status, error) {
	deadline := time.Now().Add(within)
	var last error
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(s.ctx, 10*time.Second)
		st, err := s.Status(ctx)
		cancel()
		if err == nil && st.LastRun != nil && st.LastRun.RunID != prev && st.CurrentRun == nil && st.Queued == nil {
			return st, nil
		}
		last = err
		time.Sleep(250 * time.Millisecond)
	}
	return workflows.Status{}, fmt.Errorf("no run finished within %s (after %q; last query error: %v)", within, prev, last)
}

// retry calls fn until it succeeds or within passes.
func (s *Stack) retry(within time.Duration, fn func(context.Context) error) error {
	deadline := time.Now().Add(within)
	for {
		ctx, cancel := context.WithTimeout(s.ctx, 15*time.Second)
		err := fn(ctx)
		cancel()
		if err == nil || time.Now().After(deadline) || s.ctx.Err() != nil {
			return err
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// TargetClient reads and writes the target directly, not through the proxy.
func (s *Stack) TargetClient() *scim.Client {
	return scim.New(scim.Config{BaseURL: s.TargetURL, Token: scimToken})
}

// LDAPURL is the directory itself (not the gate).
func (s *Stack) LDAPURL() string { return s.Slapd.URL() }
