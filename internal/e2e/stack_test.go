package e2e

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"

	"github.com/usersync/usersync/activities"
	"github.com/usersync/usersync/internal/connect"
	"github.com/usersync/usersync/internal/demo"
	"github.com/usersync/usersync/internal/devstack"
	"github.com/usersync/usersync/internal/devstack/devstacktest"
	"github.com/usersync/usersync/internal/directory"
	"github.com/usersync/usersync/internal/engine"
	"github.com/usersync/usersync/internal/plan"
	"github.com/usersync/usersync/internal/scim"
	"github.com/usersync/usersync/internal/scimsandbox"
	"github.com/usersync/usersync/internal/steps"
	"github.com/usersync/usersync/internal/store"
	"github.com/usersync/usersync/internal/vocab"
	"github.com/usersync/usersync/internal/watch"
	"github.com/usersync/usersync/workflows"
)

const (
	org        = "acme"
	scimToken  = "e2e-token-7f3a"
	ldapSecret = "e2e-ldap-secret"
)

// stack is one complete local usersync: every part real, the SCIM target being the sandbox.
type stack struct {
	t     *testing.T
	ctx   context.Context
	demo  demo.Demo
	store *store.Store
	// workerStore is the workers' connection (the worker's database role); nil: store.
	workerStore *store.Store
	client      client.Client
	sandbox     *scimsandbox.Server // nil when the target is SCIMMY
	target      *scim.Client
	ext         scim.Extension // the organization's custom extension
	// Where the parts listen, for tests that drive them directly (CLI, LDAP edits).
	dbURL, hostPort, ldapURL, ldapBindDN, scimURL string
	superURL                                      string                        // the server's superuser, for tests that administer it
	uiURL                                         string                        // the Temporal web UI; "" unless newStackWithUI
	conns                                         activities.Org                // the organization's, but the SCIM client
	dial                                          func() (client.Client, error) // a client with the stack's options
	cliEnv                                        []string                      // more environment for the CLI
	stopWorkers                                   []func()
}

// The SCIM servers a stack can provision into.
const (
	sandboxTarget = "sandbox" // ours, strict, with seats and fault switches
	scimmyTarget  = "scimmy"  // the SCIMMY library from npm: a server we did not write
)

// acmeURN is the custom extension the SCIMMY target declares (not usersync's default: the
// organization's setting is what makes it work).
const acmeURN = "urn:ietf:params:scim:schemas:extension:acme:2.0:User"

func newStack(t *testing.T, d demo.Demo) *stack { return newStackOn(t, d, sandboxTarget) }

// newStackOn is a stack whose target is kind. On SCIMMY, the pre-existing accounts are
// created over SCIM and the organization's custom extension is set to the URN it declares.
func newStackOn(t *testing.T, d demo.Demo, kind string, clientOpts ...func(*client.Options)) *stack {
	t.Helper()
	return buildStack(t, d, kind, uiOff, clientOpts...)
}

// newStackWithUI is newStack whose Temporal dev server also serves its web UI (at s.uiURL).
func newStackWithUI(t *testing.T, d demo.Demo) *stack {
	t.Helper()
	return buildStack(t, d, sandboxTarget, uiOn)
}

// newStackWithUICodec is newStackWithUI whose UI decodes payloads with the codec server at
// codecEndpoint (started by the test), the workers' clients having clientOpts.
func newStackWithUICodec(t *testing.T, d demo.Demo, codecEndpoint string, clientOpts ...func(*client.Options)) *stack {
	t.Helper()
	return buildStack(t, d, sandboxTarget, uiSettings{on: true, codecEndpoint: codecEndpoint}, clientOpts...)
}

// uiSettings say whether the Temporal dev server serves its web UI, and with which codec server.
type uiSettings struct {
	on            bool
	codecEndpoint string
}

var uiOff, uiOn = uiSettings{}, uiSettings{on: true}

func buildStack(t *testing.T, d demo.Demo, kind string, ui uiSettings, clientOpts ...func(*client.Options)) *stack {
	t.Helper()
	ctx, roles, hostPort, uiURL := serversWithRoles(t, ui)
	dbURL := roles.Admin // the CLI's, as in production
	sl := startDirectory(t, ctx, "slapd", d, ldapSecret)

	var sb *scimsandbox.Server
	var scimURL string
	var ext scim.Extension
	switch kind {
	case sandboxTarget:
		sb = scimsandbox.New(scimsandbox.Options{Token: scimToken, Seats: d.TargetSeats()})
		require.NoError(t, sb.SeedExisting(d.PreExisting...))
		srv := httptest.NewServer(sb)
		t.Cleanup(srv.Close)
		scimURL = srv.URL
	case scimmyTarget:
		scimURL = devstacktest.SCIMMY(t, devstack.SCIMMY{Token: scimToken, CustomSchema: acmeURN,
			CustomAttributes: []string{"settingsTemplate", "office", "project"}})
		ext = scim.Extension{URN: acmeURN}
		c := scim.New(scim.Config{BaseURL: scimURL, Token: scimToken})
		for _, name := range d.PreExisting {
			_, err := c.CreateUser(ctx, ext, plan.Desired{UserName: name, Email: name, Active: true})
			require.NoError(t, err, "seed %s", name)
		}
	default:
		t.Fatalf("unknown target %q", kind)
	}

	// The test's own view is the owner's (it seeds and inspects); the workers connect as
	// the worker's role, with only the privileges it has in production.
	st, err := store.Open(ctx, roles.Owner)
	require.NoError(t, err)
	t.Cleanup(st.Close)
	workerStore, err := store.Open(ctx, roles.Worker)
	require.NoError(t, err)
	t.Cleanup(workerStore.Close)
	require.NoError(t, demo.Seed(ctx, st, org, "e2e", d))
	if ext.URN != "" {
		require.NoError(t, st.SetTargetExtension(ctx, org, "e2e", ext))
	}

	dial := func() (client.Client, error) {
		opts := client.Options{HostPort: hostPort, Logger: quietLogger()}
		for _, o := range clientOpts {
			o(&opts)
		}
		return client.Dial(opts)
	}
	c, err := dial()
	require.NoError(t, err)
	t.Cleanup(c.Close)
	target := scim.New(scim.Config{BaseURL: scimURL, Token: scimToken})
	dirCfg := directory.Config{URL: sl.URL(), BindDN: sl.AdminDN, BindPassword: ldapSecret, AllowPlaintextBind: true,
		BaseDN: d.Suffix, Profile: "openldap", PageSize: 100}
	conns := activities.Org{
		Dial:        activities.LDAP(dirCfg),
		Watch:       activities.LDAPWatch(dirCfg),
		Incremental: true, // as the worker's default (orgs.Directory.FullReads off)
	}
	s := &stack{t: t, ctx: ctx, demo: d, store: st, workerStore: workerStore, client: c, sandbox: sb, target: target, ext: ext, conns: conns,
		dbURL: dbURL, superURL: roles.Super, hostPort: hostPort, uiURL: uiURL, ldapURL: sl.URL(), ldapBindDN: sl.AdminDN, scimURL: scimURL, dial: dial}
	s.restartWorkers(500, 1)
	t.Cleanup(func() { s.restartWorkers(0, 0) })
	return s
}

// servers starts what every stack shares: a database and a Temporal dev server (slapd must
// be installed); ctx ends with the test.
func servers(t *testing.T) (ctx context.Context, dbURL, hostPort string) {
	t.Helper()
	ctx, dbURL, hostPort, _ = serversUI(t, uiOff)
	return ctx, dbURL, hostPort
}

// serversUI is servers, the Temporal dev server serving its web UI (at uiURL) when ui is set.
func serversUI(t *testing.T, ui uiSettings) (ctx context.Context, dbURL, hostPort, uiURL string) {
	t.Helper()
	ctx, hostPort, uiURL = temporalServer(t, ui)
	return ctx, devstacktest.Database(t), hostPort, uiURL
}

// serversWithRoles is serversUI with a database of usersync's roles, migrated as the owner.
func serversWithRoles(t *testing.T, ui uiSettings) (ctx context.Context, roles devstacktest.RoleURLs, hostPort, uiURL string) {
	t.Helper()
	ctx, hostPort, uiURL = temporalServer(t, ui)
	return ctx, devstacktest.DatabaseWithRoles(t), hostPort, uiURL
}

// temporalServer checks that slapd can run and starts a Temporal dev server (with its web UI
// when ui is set); ctx ends with the test.
func temporalServer(t *testing.T, ui uiSettings) (ctx context.Context, hostPort, uiURL string) {
	t.Helper()
	if _, err := os.Stat(devstack.SlapdBinary); err != nil {
		devstacktest.SkipUnlessRequired(t, "slapd not installed (%s): apt-get install slapd", devstack.SlapdBinary)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	if ui.on {
		hostPort, uiURL = devstacktest.TemporalWithUICodec(t, ui.codecEndpoint)
	} else {
		hostPort = devstacktest.Temporal(t)
	}
	return ctx, hostPort, uiURL
}

// startDirectory starts a slapd holding d's entries, its admin's password being password.
func startDirectory(t *testing.T, ctx context.Context, name string, d demo.Demo, password string) *devstack.Slapd {
	t.Helper()
	sl := &devstack.Slapd{Dir: filepath.Join(t.TempDir(), name), Suffix: d.Suffix,
		AdminDN: "cn=admin," + d.Suffix, AdminPassword: password}
	require.NoError(t, sl.Start(ctx))
	t.Cleanup(func() { _ = sl.Stop() })
	require.NoError(t, devstack.LoadEntries(ctx, sl.URL(), sl.AdminDN, password, d.Entries))
	return sl
}

// restartWorkers replaces the running workers with n workers (each its own client, as
// separate processes would be) whose requests to the target share the pace rate.
func (s *stack) restartWorkers(rate float64, n int) {
	s.t.Helper()
	for _, stop := range s.stopWorkers {
		stop()
	}
	s.stopWorkers = nil
	ws := s.workerStore
	if ws == nil {
		ws = s.store
	}
	for range n {
		c, err := s.dial()
		require.NoError(s.t, err)
		conns := s.conns // each worker its own SCIM client, as separate processes have
		conns.Target = scim.New(scim.Config{BaseURL: s.scimURL, Token: scimToken, MaxAttempts: 1,
			Pacer: ws.Pacer("scim/"+org, max(rate, 1)*connect.RateHeadroom)})
		acts := &activities.Activities{Store: ws, Orgs: activities.Single(org, conns),
			// Watch mode reads the directory more often than by default, so that the debounce
			// (2 s quiet) spans several reads and a test can tell one burst from two.
			WatchTiming: watch.Timing{Poll: 500 * time.Millisecond}}
		stop, err := engine.Start(c, acts, engine.Options{})
		require.NoError(s.t, err)
		s.stopWorkers = append(s.stopWorkers, func() { stop(); c.Close() })
	}
}

func quietLogger() tlog.Logger {
	return tlog.NewStructuredLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
}

// signal sends a signal to the organization's workflow, starting it when needed (as the CLI does).
func (s *stack) signal(name string, arg any) {
	s.t.Helper()
	_, err := s.client.SignalWithStartWorkflow(s.ctx, workflows.OrgWorkflowID(org), name, arg,
		client.StartWorkflowOptions{ID: workflows.OrgWorkflowID(org), TaskQueue: workflows.TaskQueue},
		workflows.UserSyncWorkflow, workflows.SyncState{Org: org, Interval: time.Hour})
	require.NoError(s.t, err)
}

func (s *stack) status() workflows.Status {
	s.t.Helper()
	v, err := s.client.QueryWorkflow(s.ctx, workflows.OrgWorkflowID(org), "", workflows.QueryStatus)
	require.NoError(s.t, err)
	var st workflows.Status
	require.NoError(s.t, v.Get(&st))
	return st
}

// waitRun waits until a run other than prev has finished and nothing else is running or queued.
func (s *stack) waitRun(prev string) *steps.RunSummary {
	s.t.Helper()
	deadline := time.Now().Add(5 * time.Minute)
	for time.Now().Before(deadline) {
		st := s.status()
		if st.LastRun != nil && st.LastRun.RunID != prev && st.CurrentRun == nil && st.Queued == nil {
			return st.LastRun
		}
		time.Sleep(200 * time.Millisecond)
	}
	s.t.Fatalf("no run finished within 5 minutes (last: %q)", prev)
	return nil
}

// lastRunID is "" before the first run.
func (s *stack) lastRunID() string {
	if st := s.status(); st.LastRun != nil {
		return st.LastRun.RunID
	}
	return ""
}

func (s *stack) failures(f vocab.Filter) []store.FailureRecord {
	s.t.Helper()
	fs, err := s.store.Failures(s.ctx, org, f)
	require.NoError(s.t, err)
	return fs
}

func (s *stack) banners() map[string]int {
	s.t.Helper()
	bs, err := s.store.Banners(s.ctx, org)
	require.NoError(s.t, err)
	out := map[string]int{}
	for _, b := range bs {
		out[b.Type] += b.Users
	}
	return out
}

// activeWith counts active target accounts entitled to product.
func (s *stack) activeWith(product string) int {
	n := 0
	for _, u := range s.sandbox.Users() {
		if !u.Active {
			continue
		}
		for _, e := range u.Entitlements {
			if e == product {
				n++
			}
		}
	}
	return n
}

// linked returns the sandbox accounts created by usersync, by userName.
func (s *stack) linked() map[string]scimsandbox.User {
	out := map[string]scimsandbox.User{}
	for _, u := range s.sandbox.Users() {
		if u.ExternalID != "" {
			out[u.UserName] = u
		}
	}
	return out
}
