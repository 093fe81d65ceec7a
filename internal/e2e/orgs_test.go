package e2e

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"

	"github.com/usersync/usersync/activities"
	"github.com/usersync/usersync/internal/connect"
	"github.com/usersync/usersync/internal/demo"
	"github.com/usersync/usersync/internal/devstack"
	"github.com/usersync/usersync/internal/devstack/devstacktest"
	"github.com/usersync/usersync/internal/engine"
	"github.com/usersync/usersync/internal/orgs"
	"github.com/usersync/usersync/internal/rules"
	"github.com/usersync/usersync/internal/scim"
	"github.com/usersync/usersync/internal/scimsandbox"
	"github.com/usersync/usersync/internal/steps"
	"github.com/usersync/usersync/internal/store"
	"github.com/usersync/usersync/internal/vocab"
	"github.com/usersync/usersync/workflows"
)

// tenant is one organization of the fleet test: its own directory, target and token.
type tenant struct {
	name, token, ldapPassword string
	users                     int
	d                         demo.Demo
	dirURL, bindDN            string
	scimURL                   string // the counting proxy in front of the target
	ext                       scim.Extension
	requests                  *tokenCount // what the target received, by token
}

// tokenCount counts the requests a target receives: with its own organization's token, or not.
type tokenCount struct {
	own   string
	mine  atomic.Int64
	other atomic.Int64
}

func (c *tokenCount) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") == "Bearer "+c.own {
			c.mine.Add(1)
		} else {
			c.other.Add(1)
		}
		next.ServeHTTP(w, r)
	})
}

// fleet is several organizations on one Temporal dev server and one database, each with its
// own directory and target (tenants), and the workers that serve them all.
type fleet struct {
	t       *testing.T
	ctx     context.Context
	st      *store.Store
	repo    orgs.Repo
	c       client.Client
	tenants []*tenant
	// steps wraps each worker's activities (nil: as they are), e.g. to slow a step down.
	steps    func(*activities.Activities) engine.Steps
	hostPort string
	stops    []func()
}

// newFleet starts the fleet of tenants: the first two in their own subtrees of one slapd,
// the others each with a slapd of its own; the first two on our sandbox, the others on SCIMMY.
// No worker runs until startWorkers.
func newFleet(t *testing.T, tenants []*tenant) *fleet {
	t.Helper()
	ctx, dbURL, hostPort := servers(t)
	st, err := store.Open(ctx, dbURL)
	require.NoError(t, err)
	t.Cleanup(st.Close)
	keyFile := filepath.Join(t.TempDir(), "secrets.key")
	_, err = orgs.AddKey(keyFile)
	require.NoError(t, err)
	keys, err := orgs.LoadKeyring(keyFile)
	require.NoError(t, err)
	repo := orgs.Repo{Store: st, Keys: keys}

	// The first two share a directory, each below its own base DN (the same uids and mail
	// addresses in both: only the base DN tells them apart).
	shared := &devstack.Slapd{Dir: filepath.Join(t.TempDir(), "shared"), Suffix: demo.Suffix,
		AdminDN: "cn=admin," + demo.Suffix, AdminPassword: "shared-ldap"}
	require.NoError(t, shared.Start(ctx))
	t.Cleanup(func() { _ = shared.Stop() })
	sharedEntries := []*ldap.AddRequest{demo.SuffixEntry()}
	for i, tn := range tenants {
		if i < 2 {
			tn.d = demo.GenerateUnder(tn.users, int64(i+1), "ou="+tn.name+","+demo.Suffix)
			tn.dirURL, tn.bindDN, tn.ldapPassword = shared.URL(), shared.AdminDN, shared.AdminPassword
			sharedEntries = append(sharedEntries, tn.d.Entries...)
		} else {
			tn.d = demo.Generate(tn.users, int64(i+1))
			tn.dirURL, tn.bindDN = startDirectory(t, ctx, tn.name, tn.d, tn.ldapPassword).URL(), "cn=admin,"+tn.d.Suffix
		}

		var target http.Handler
		path := ""
		if i < 2 {
			target = scimsandbox.New(scimsandbox.Options{Token: tn.token, Seats: tn.d.TargetSeats()})
		} else {
			u, err := url.Parse(devstacktest.SCIMMY(t, devstack.SCIMMY{Token: tn.token, CustomSchema: acmeURN,
				CustomAttributes: []string{"settingsTemplate", "office", "project"}}))
			require.NoError(t, err)
			path = u.Path
			u.Path = "" // the proxy passes the request's path (SCIMMY's included) as it is
			target = httputil.NewSingleHostReverseProxy(u)
			tn.ext = scim.Extension{URN: acmeURN}
		}
		tn.requests = &tokenCount{own: tn.token}
		srv := httptest.NewServer(tn.requests.wrap(target))
		t.Cleanup(srv.Close)
		tn.scimURL = srv.URL + path

		require.NoError(t, demo.Seed(ctx, st, tn.name, "e2e", tn.d))
		if tn.ext.URN != "" {
			require.NoError(t, st.SetTargetExtension(ctx, tn.name, "e2e", tn.ext))
		}
	}
	require.NoError(t, devstack.LoadEntries(ctx, shared.URL(), shared.AdminDN, shared.AdminPassword, sharedEntries))
	for _, tn := range tenants {
		_, err := repo.Put(ctx, "e2e", orgs.Org{Name: tn.name,
			Settings: orgs.Settings{
				Directory: orgs.Directory{URL: tn.dirURL, BindDN: tn.bindDN, BaseDN: tn.d.Suffix,
					Profile: "openldap", PageSize: 100, AllowPlaintextBind: true},
				Target:                  orgs.Target{URL: tn.scimURL, Rate: 200},
				SuspendThresholdPercent: 10, SuspendThresholdMax: 500,
			},
			Secrets: orgs.Secrets{BindPassword: tn.ldapPassword, Token: tn.token}})
		require.NoError(t, err, tn.name)
	}
	c, err := client.Dial(client.Options{HostPort: hostPort, Logger: quietLogger()})
	require.NoError(t, err)
	t.Cleanup(c.Close)
	f := &fleet{t: t, ctx: ctx, st: st, repo: repo, c: c, tenants: tenants, hostPort: hostPort}
	t.Cleanup(func() { f.startWorkers(0, engine.Options{}) })
	return f
}

// startWorkers replaces the running workers with n workers (each its own client, as separate
// processes would be), each serving every organization.
func (f *fleet) startWorkers(n int, opts engine.Options) {
	t := f.t
	for _, stop := range f.stops {
		stop()
	}
	f.stops = nil
	for range n {
		c, err := client.Dial(client.Options{HostPort: f.hostPort, Logger: quietLogger()})
		require.NoError(t, err)
		acts := &activities.Activities{Store: f.st,
			Orgs: &connect.Orgs{Settings: f.repo, Pacers: func(key string, perSecond float64) scim.Pacer {
				return f.st.Pacer(key, perSecond)
			}}}
		var s engine.Steps = acts
		if f.steps != nil {
			s = f.steps(acts)
		}
		stop, err := engine.Start(c, s, opts)
		require.NoError(t, err)
		f.stops = append(f.stops, func() { stop(); c.Close() })
	}
}

func (f *fleet) signal(tn *tenant, name string, arg any) {
	_, err := f.c.SignalWithStartWorkflow(f.ctx, workflows.OrgWorkflowID(tn.name), name, arg,
		client.StartWorkflowOptions{ID: workflows.OrgWorkflowID(tn.name), TaskQueue: workflows.TaskQueue},
		workflows.UserSyncWorkflow, workflows.SyncState{Org: tn.name, Interval: time.Hour})
	require.NoError(f.t, err, tn.name)
}

// lastRun is the organization's last finished run; nil while one runs or is queued.
func (f *fleet) lastRun(tn *tenant) *steps.RunSummary {
	v, err := f.c.QueryWorkflow(f.ctx, workflows.OrgWorkflowID(tn.name), "", workflows.QueryStatus)
	require.NoError(f.t, err)
	var s workflows.Status
	require.NoError(f.t, v.Get(&s))
	if s.CurrentRun != nil || s.Queued != nil {
		return nil
	}
	return s.LastRun
}

// syncAll asks every organization in ts for a sync at once (the first: turns sync on) and
// waits for all of them.
func (f *fleet) syncAll(ts []*tenant, first bool) map[string]*steps.RunSummary {
	prev := map[string]string{}
	for _, tn := range ts {
		if !first {
			prev[tn.name] = f.lastRun(tn).RunID
		}
	}
	var wg sync.WaitGroup
	for _, tn := range ts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if first {
				f.signal(tn, workflows.SignalEnable, workflows.SwitchSignal{Actor: "e2e"})
			} else {
				f.signal(tn, workflows.SignalSyncNow, workflows.ActorSignal{Actor: "e2e"})
			}
		}()
	}
	wg.Wait()
	got := map[string]*steps.RunSummary{}
	deadline := time.Now().Add(4 * time.Minute)
	for len(got) < len(ts) && time.Now().Before(deadline) {
		for _, tn := range ts {
			if r := f.lastRun(tn); r != nil && r.RunID != prev[tn.name] {
				got[tn.name] = r
			}
		}
		time.Sleep(300 * time.Millisecond)
	}
	require.Len(f.t, got, len(ts), "every organization's sync finished")
	return got
}

// Three organizations (two in their own subtrees of one slapd, one with a slapd of its own;
// two on our sandbox, one on SCIMMY), synced at the same time by one worker, then by two: every request each target receives carries its own
// organization's token, every account in a target is a user of that organization's
// directory, and every failure and history row carries the right organization. Deleting one
// organization stops its syncs and nothing else.
func TestOrganizationsShareWorkersAndNothingCrosses(t *testing.T) {
	tenants := []*tenant{
		{name: "north", token: "north-token-1", ldapPassword: "north-ldap", users: 150},
		{name: "south", token: "south-token-2", ldapPassword: "south-ldap", users: 90},
		{name: "east", token: "east-token-3", ldapPassword: "east-ldap", users: 60},
	}
	f := newFleet(t, tenants)
	ctx, st, repo := f.ctx, f.st, f.repo
	startWorkers := func(n int) { f.startWorkers(n, engine.Options{}) }
	syncAll := f.syncAll

	// checkIsolation reads each target and each organization's records: nothing of one
	// organization reached another's target, directory or history.
	checkIsolation := func() {
		t.Helper()
		for _, tn := range tenants {
			require.Zero(t, tn.requests.other.Load(), "%s's target received requests with another token", tn.name)
			require.NotZero(t, tn.requests.mine.Load(), "%s's target was used", tn.name)
			require.Equal(t, tn.users, f.accounts(tn), "%s: every user of its directory provisioned, once", tn.name)
			own := entryUUIDs(t, tn)
			fs, err := st.Failures(ctx, tn.name, vocab.Filter{})
			require.NoError(t, err)
			for _, fr := range fs {
				require.True(t, own[fr.ExternalID], "%s has a failure of %s, not its user", tn.name, fr.ExternalID)
			}
			hist, err := st.History(ctx, tn.name, store.HistoryFilter{Limit: 10000})
			require.NoError(t, err)
			for _, e := range hist {
				require.Equal(t, tn.name, e.Org)
				if id, ok := e.Details["externalId"].(string); ok {
					require.True(t, own[id], "%s's history names %s, not its user", tn.name, id)
				}
			}
		}
	}

	startWorkers(1)
	for name, r := range syncAll(tenants, true) {
		require.Equal(t, vocab.RunSucceeded, r.Status, "%s: %s", name, r.Error)
		require.NotZero(t, r.Outcomes[vocab.Created], name)
	}
	checkIsolation()

	// Two workers, and a change in every directory's rules: a user group for everyone.
	startWorkers(2)
	for _, tn := range tenants {
		_, err := st.EditRules(ctx, tn.name, "e2e", "user group for all", func(rs []rules.Rule) ([]rules.Rule, error) {
			rs[0].UserGroup = "Fleet-" + tn.name
			return rs, nil
		})
		require.NoError(t, err)
	}
	for name, r := range syncAll(tenants, false) {
		require.Equal(t, vocab.RunSucceeded, r.Status, "%s: %s", name, r.Error)
		require.NotZero(t, r.Outcomes[vocab.Updated], name)
	}
	checkIsolation()

	// Deleting south stops its syncs, with a run-level failure that says why; the others sync on.
	require.NoError(t, repo.Delete(ctx, "e2e", "south"))
	runs := syncAll(tenants, false)
	require.NotEqual(t, vocab.RunSucceeded, runs["south"].Status)
	require.Contains(t, runs["south"].Error, "no settings")
	require.Equal(t, vocab.RunSucceeded, runs["north"].Status, runs["north"].Error)
	require.Equal(t, vocab.RunSucceeded, runs["east"].Status, runs["east"].Error)
	for _, tn := range tenants {
		require.Zero(t, tn.requests.other.Load(), tn.name)
	}
}

// accounts reads the tenant's target over SCIM: the accounts usersync created (with an
// externalId), each of which must be a user of the tenant's own directory.
func (f *fleet) accounts(tn *tenant) int {
	t := f.t
	t.Helper()
	own := entryUUIDs(t, tn)
	n := 0
	target := scim.New(scim.Config{BaseURL: tn.scimURL, Token: tn.token})
	require.NoError(t, target.ListUsers(f.ctx, tn.ext, func(u *scim.User) error {
		if u.ExternalID != "" {
			n++
			require.True(t, own[u.ExternalID], "%s's target holds %s (externalId %s), not a user of its directory",
				tn.name, u.UserName, u.ExternalID)
		}
		return nil
	}))
	return n
}

// entryUUIDs are the externalIds of a tenant's directory users (read from its slapd).
func entryUUIDs(t *testing.T, tn *tenant) map[string]bool {
	t.Helper()
	conn, err := ldap.DialURL(tn.dirURL)
	require.NoError(t, err)
	defer conn.Close()
	require.NoError(t, conn.Bind(tn.bindDN, tn.ldapPassword))
	res, err := conn.Search(ldap.NewSearchRequest(tn.d.Suffix, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0, 0, false,
		"(objectClass=inetOrgPerson)", []string{"entryUUID"}, nil))
	require.NoError(t, err)
	ids := map[string]bool{}
	for _, e := range res.Entries {
		ids[e.GetAttributeValue("entryUUID")] = true
	}
	return ids
}
