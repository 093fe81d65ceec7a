package e2e

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"os"
	"testing"

	"github.com/go-ldap/ldap/v3"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"

	"github.com/usersync/usersync/activities"
	"github.com/usersync/usersync/internal/demo"
	"github.com/usersync/usersync/internal/devstack"
	"github.com/usersync/usersync/internal/devstack/devstacktest"
	"github.com/usersync/usersync/internal/directory"
	"github.com/usersync/usersync/internal/rules"
	"github.com/usersync/usersync/internal/scim"
	"github.com/usersync/usersync/internal/scimsandbox"
	"github.com/usersync/usersync/internal/store"
	"github.com/usersync/usersync/internal/vocab"
)

// adDomain is the mail and UPN domain of the test DC's users (devstacktest.SambaDC).
const adDomain = "corp.example.test"

// adStack is a stack whose directory is the Samba AD DC: the organization's subtree is
// OU=<ou> (one per test: the DC serves the whole test binary), with OU=People,
// OU=Groups and OU=Moved, and one rule on CN=Sales Team,OU=Groups (Meeting, Member).
type adStack struct {
	*stack
	dc                          *devstack.SambaDC
	base, people, groups, moved string
	sales                       string // the ruled group, as created
	admin                       *ldap.Conn
}

func newADStack(t *testing.T, ou string, users ...string) *adStack {
	t.Helper()
	ctx, dbURL, hostPort := servers(t)
	dc := devstacktest.SambaDC(t)
	a := &adStack{dc: dc, base: "OU=" + ou + "," + dc.BaseDN()}
	a.people, a.groups, a.moved = "OU=People,"+a.base, "OU=Groups,"+a.base, "OU=Moved,"+a.base
	a.sales = "CN=Sales Team," + a.groups

	pem, err := os.ReadFile(dc.CAFile())
	require.NoError(t, err)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	a.admin, err = ldap.DialURL(dc.LDAPSURL(), ldap.DialWithTLSConfig(&tls.Config{RootCAs: pool, ServerName: dc.ServerName()}))
	require.NoError(t, err)
	t.Cleanup(func() { a.admin.Close() })
	require.NoError(t, a.admin.Bind(dc.AdminDN(), dc.AdminPassword))
	add := func(dn string, attrs map[string][]string) {
		r := ldap.NewAddRequest(dn, nil)
		for k, v := range attrs {
			r.Attribute(k, v)
		}
		require.NoError(t, a.admin.Add(r), "add %s", dn)
	}
	for _, dn := range []string{a.base, a.people, a.groups, a.moved} {
		add(dn, map[string][]string{"objectClass": {"organizationalUnit"}})
	}
	var members []string
	for _, u := range users {
		dn := a.userDN(u)
		// 544: enabled, no password required.
		add(dn, map[string][]string{"objectClass": {"user"}, "sAMAccountName": {u}, "userPrincipalName": {u + "@" + adDomain},
			"mail": {u + "@" + adDomain}, "givenName": {u}, "sn": {"Tester"}, "userAccountControl": {"544"}})
		members = append(members, dn)
	}
	sales := map[string][]string{"objectClass": {"group"}, "sAMAccountName": {ou + "-sales"}}
	if len(members) > 0 {
		sales["member"] = members
	}
	add(a.sales, sales)

	sb := scimsandbox.New(scimsandbox.Options{Token: scimToken})
	srv := httptest.NewServer(sb)
	t.Cleanup(srv.Close)
	st, err := store.Open(ctx, dbURL)
	require.NoError(t, err)
	t.Cleanup(st.Close)
	require.NoError(t, st.SetCatalog(ctx, org, "e2e", demo.Catalog()))
	_, err = st.EditRules(ctx, org, "e2e", "add", func([]rules.Rule) ([]rules.Rule, error) {
		return []rules.Rule{{Priority: 1, GroupDN: rules.NormalizeDN(a.sales), Role: demo.Member, Products: []string{demo.Meeting}}}, nil
	})
	require.NoError(t, err)
	require.NoError(t, st.SetDomain(ctx, org, "e2e", adDomain, true))
	require.NoError(t, st.SetLicense(ctx, org, "e2e", demo.Meeting, 100))

	c, err := quietClient(hostPort)
	require.NoError(t, err)
	t.Cleanup(c.Close)
	cfg := directory.Config{URL: dc.LDAPSURL(), CAFile: dc.CAFile(), BindDN: dc.AdminDN(), BindPassword: dc.AdminPassword,
		BaseDN: a.base, Profile: directory.ProfileAD, PageSize: 100}
	s := &stack{t: t, ctx: ctx, demo: demo.Demo{Suffix: a.base}, store: st, client: c, sandbox: sb,
		target: scim.New(scim.Config{BaseURL: srv.URL, Token: scimToken}), conns: activities.Org{Dial: activities.LDAP(cfg), Incremental: true},
		dbURL: dbURL, hostPort: hostPort, ldapURL: dc.LDAPSURL(), ldapBindDN: dc.AdminDN(), scimURL: srv.URL,
		cliEnv: []string{"LDAP_PROFILE=ad", "LDAP_ALLOW_PLAINTEXT_BIND=false", "LDAP_CA_FILE=" + dc.CAFile(),
			"LDAP_BIND_PASSWORD=" + dc.AdminPassword}}
	s.dial = func() (client.Client, error) { return quietClient(hostPort) }
	s.restartWorkers(500, 1)
	t.Cleanup(func() { s.restartWorkers(0, 0) })
	a.stack = s
	return a
}

// The tests against the Samba AD DC run one after the other, and the DC stops when they
// are done: it holds the machine-wide DC lock, which other test binaries wait for.
func TestOnTheSambaDC(t *testing.T) {
	t.Cleanup(devstacktest.StopSambaDC)
	t.Run("RuledGroupRenamedAndMoved", testRuledGroupRenamedAndMovedOnTheDC)
	t.Run("UserChangesReachTheTarget", testUserChangesOnTheDCReachTheTarget)
	t.Run("RuleOnAPrimaryGroup", testRuleOnAPrimaryGroupOnTheDC)
	t.Run("AccountBlindToDeletedObjects", testAccountBlindToDeletedObjectsOnTheDC)
}

// A bind account that cannot see AD's Deleted Objects container (a plain domain user, as
// on Windows) gets no incremental reads, which would miss deletions: every sync reads the
// directory in full, and a user deleted in AD is suspended in the target all the same.
func testAccountBlindToDeletedObjectsOnTheDC(t *testing.T) {
	users := []string{"bd-delete"}
	for i := range 20 { // so that one suspension stays under the 10% safety threshold
		users = append(users, fmt.Sprintf("bd-stay%02d", i))
	}
	a := newADStack(t, "UsersyncE2EBlindToDeleted", users...)
	const account, pw = "usersync-e2e-nodel", "E2e-NoDel-4b1c-Pw!"
	a.tool("user", "create", account, pw)
	// Samba lets any user read the container: deny this one (and, inherited, its content).
	require.NoError(t, a.dc.DenyDeletedObjects(a.ctx, account))
	a.conns = activities.Org{Incremental: true, Dial: activities.LDAP(directory.Config{URL: a.dc.LDAPSURL(),
		CAFile: a.dc.CAFile(), BindDN: "CN=" + account + ",CN=Users," + a.dc.BaseDN(), BindPassword: pw,
		BaseDN: a.base, Profile: directory.ProfileAD, PageSize: 100})}
	a.restartWorkers(500, 1)

	first := a.runOnce("initial")
	require.Equal(t, len(users), first.Outcomes[vocab.Created], "run error: %s", first.Error)
	require.Nil(t, first.Directory.Read, "a full read, not one from the mirror")
	a.tool("user", "delete", "bd-delete")
	second := a.runOnce("after-delete")
	require.Equal(t, vocab.RunSucceeded, second.Status, "run error: %s", second.Error)
	require.Nil(t, second.Directory.Read, "a full read again")
	require.Equal(t, 1, second.Outcomes[vocab.Suspended], "the deleted user: %v", second.Outcomes)
	for _, u := range a.checkTarget() {
		require.Equal(t, u.UserName != "bd-delete@"+adDomain, u.Active, "%s", u.UserName)
	}
}

func (a *adStack) userDN(sam string) string { return "CN=" + sam + "," + a.people }

// tool runs samba-tool on the DC.
func (a *adStack) tool(args ...string) {
	a.t.Helper()
	out, err := a.dc.Tool(a.ctx, args...)
	require.NoError(a.t, err, "%s", out)
}

// A ruled group renamed and moved to another OU on the DC keeps its rule: after the next
// sync its members keep their accounts and entitlements in the target, nobody is
// suspended, and `starter rules list` shows the group's new DN.
func testRuledGroupRenamedAndMovedOnTheDC(t *testing.T) {
	a := newADStack(t, "UsersyncE2EGroupMove", "gm1", "gm2", "gm3")
	first := a.runOnce("initial")
	require.Equal(t, 3, first.Outcomes[vocab.Created], "run: %+v; failures: %+v", first, a.failures(vocab.Filter{}))
	before := accountsByExternalID(a.checkTarget())
	require.Len(t, before, 3)
	for _, v := range before {
		require.True(t, v.Active)
		require.Equal(t, []string{demo.Meeting}, v.Products)
	}

	a.tool("group", "rename", "UsersyncE2EGroupMove-sales", "--samaccountname=UsersyncE2EGroupMove-emea", "--force-new-cn=Sales EMEA")
	a.tool("group", "move", "UsersyncE2EGroupMove-emea", a.moved)
	newDN := rules.NormalizeDN("CN=Sales EMEA," + a.moved)
	res, err := a.admin.Search(ldap.NewSearchRequest(newDN, ldap.ScopeBaseObject, ldap.NeverDerefAliases, 0, 0, false,
		"(objectClass=group)", []string{"member"}, nil))
	require.NoError(t, err, "the group is at %s now", newDN)
	require.Len(t, res.Entries[0].GetAttributeValues("member"), 3)

	second := a.runOnce("after-rename")
	require.Equal(t, vocab.RunSucceeded, second.Status, "run error: %s", second.Error)
	require.Zero(t, second.Outcomes[vocab.Suspended], "nobody suspended")
	require.Equal(t, 3, second.Plan.InScope, "the group's members are still in scope")
	require.Equal(t, before, accountsByExternalID(a.checkTarget()), "accounts and entitlements unchanged in the target")

	var listed []rules.Rule
	require.NoError(t, json.Unmarshal([]byte(a.cliOK("rules", "list", "--json")), &listed))
	require.Len(t, listed, 1)
	require.Equal(t, newDN, listed[0].GroupDN, "rules list shows the group's current DN")
	out, err := a.dc.Tool(a.ctx, "group", "show", "UsersyncE2EGroupMove-emea", "--attributes=objectGUID")
	require.NoError(t, err)
	require.Contains(t, out, fmt.Sprintf("objectGUID: %s", listed[0].GroupID), "the rule keeps the group's objectGUID")
}

func quietClient(hostPort string) (client.Client, error) {
	return client.Dial(client.Options{HostPort: hostPort, Logger: quietLogger()})
}

// What AD does to a user reaches the target, on the same account (same externalId, same
// SCIM id): renamed (new CN, sAMAccountName, UPN, mail) → the account's userName follows;
// moved to another OU → unchanged; disabled or deleted → suspended, never deleted;
// enabled again → active again with its entitlements. The runs after the first are delta
// runs: they snapshot and plan only the changed users.
func testUserChangesOnTheDCReachTheTarget(t *testing.T) {
	users := []string{"uc-rename", "uc-move", "uc-disable", "uc-delete"}
	for i := range 20 { // so that two suspensions stay under the 10% safety threshold
		users = append(users, fmt.Sprintf("uc-stay%02d", i))
	}
	a := newADStack(t, "UsersyncE2EUserChanges", users...)
	first := a.runOnce("initial")
	require.Equal(t, len(users), first.Outcomes[vocab.Created], "run error: %s", first.Error)
	byName := func() map[string]*scim.User {
		out := map[string]*scim.User{}
		for _, u := range a.checkTarget() {
			out[u.UserName] = u
		}
		return out
	}
	before := byName()
	upn := func(sam string) string { return sam + "@" + adDomain }

	a.tool("user", "rename", "uc-rename", "--samaccountname=uc-renamed", "--upn="+upn("uc-renamed"),
		"--mail-address="+upn("uc-renamed"), "--force-new-cn=uc-renamed")
	a.tool("user", "move", "uc-move", a.moved)
	a.tool("user", "disable", "uc-disable")
	a.tool("user", "delete", "uc-delete")

	second := a.runOnce("changes")
	require.Equal(t, vocab.RunSucceeded, second.Status, "run error: %s", second.Error)
	require.NotNil(t, second.Directory.Read, "an incremental read (uSNChanged), as the worker's default")
	require.False(t, second.Directory.Read.Full, "only the changes read: %+v", second.Directory.Read)
	require.NotNil(t, second.Directory.Delta, "a delta run: %+v", second.Directory)
	require.Equal(t, 4, second.Directory.Delta.Touched, "the snapshot's users: the changed ones only")
	require.Equal(t, 2, second.Outcomes[vocab.Suspended], "the disabled and the deleted user: %v", second.Outcomes)
	after := byName()
	require.Len(t, after, len(users), "no account deleted, none created")
	renamed := after[upn("uc-renamed")]
	require.NotNil(t, renamed, "the renamed user's account has the new userName")
	require.Equal(t, before[upn("uc-rename")].ID, renamed.ID, "the same account")
	require.Equal(t, before[upn("uc-rename")].ExternalID, renamed.ExternalID, "the same externalId (objectGUID)")
	require.True(t, renamed.Active)
	require.Equal(t, []string{demo.Meeting}, renamed.Products)
	moved := after[upn("uc-move")]
	require.True(t, moved.Active, "moved to another OU: still a member, still active")
	require.Equal(t, before[upn("uc-move")].ID, moved.ID)
	require.Equal(t, []string{demo.Meeting}, moved.Products)
	for _, u := range []string{"uc-disable", "uc-delete"} {
		acc := after[upn(u)]
		require.NotNil(t, acc, "%s: the account stays", u)
		require.Equal(t, before[upn(u)].ID, acc.ID)
		require.False(t, acc.Active, "%s: suspended", u)
	}
	require.True(t, after[upn("uc-stay00")].Active)

	a.tool("user", "enable", "uc-disable")
	third := a.runOnce("re-enable")
	require.Equal(t, vocab.RunSucceeded, third.Status, "run error: %s", third.Error)
	require.NotNil(t, third.Directory.Delta, "a delta run: %+v", third.Directory)
	require.Equal(t, 1, third.Directory.Delta.Touched)
	back := byName()[upn("uc-disable")]
	require.Equal(t, before[upn("uc-disable")].ID, back.ID, "the same account")
	require.True(t, back.Active, "enabled again: active again")
	require.Equal(t, []string{demo.Meeting}, back.Products, "with its entitlement")
	require.False(t, byName()[upn("uc-delete")].Active, "the deleted user stays suspended")
}

// A rule on a group that is the users' primary group gives them their accounts, although
// AD lists none of them in the group's member attribute (full path: the store's membership
// index, the plan, the target).
func testRuleOnAPrimaryGroupOnTheDC(t *testing.T) {
	a := newADStack(t, "UsersyncE2EPrimary") // the Sales Team rule, with no members
	staff := "CN=Primary Staff," + a.groups
	var members []string
	for _, u := range []string{"pg1", "pg2"} {
		dn := a.userDN(u)
		r := ldap.NewAddRequest(dn, nil)
		for k, v := range map[string][]string{"objectClass": {"user"}, "sAMAccountName": {u}, "userPrincipalName": {u + "@" + adDomain},
			"mail": {u + "@" + adDomain}, "userAccountControl": {"544"}} {
			r.Attribute(k, v)
		}
		require.NoError(t, a.admin.Add(r))
		members = append(members, dn)
	}
	g := ldap.NewAddRequest(staff, nil)
	g.Attribute("objectClass", []string{"group"})
	g.Attribute("sAMAccountName", []string{"UsersyncE2EPrimary-staff"})
	g.Attribute("member", members)
	require.NoError(t, a.admin.Add(g))
	res, err := a.admin.Search(ldap.NewSearchRequest(staff, ldap.ScopeBaseObject, ldap.NeverDerefAliases, 0, 0, false,
		"(objectClass=*)", []string{"objectSid"}, nil))
	require.NoError(t, err)
	sid := res.Entries[0].GetRawAttributeValue("objectSid")
	rid := binary.LittleEndian.Uint32(sid[len(sid)-4:])
	for _, dn := range members {
		m := ldap.NewModifyRequest(dn, nil)
		m.Replace("primaryGroupID", []string{fmt.Sprint(rid)})
		require.NoError(t, a.admin.Modify(m))
	}
	res, err = a.admin.Search(ldap.NewSearchRequest(staff, ldap.ScopeBaseObject, ldap.NeverDerefAliases, 0, 0, false,
		"(objectClass=*)", []string{"member"}, nil))
	require.NoError(t, err)
	require.Empty(t, res.Entries[0].GetAttributeValues("member"), "AD moved them out of member")
	_, err = a.store.EditRules(a.ctx, org, "e2e", "add", func(cur []rules.Rule) ([]rules.Rule, error) {
		return append(cur, rules.Rule{Priority: len(cur) + 1, GroupDN: rules.NormalizeDN(staff), Role: demo.Member,
			Products: []string{demo.Meeting}}), nil
	})
	require.NoError(t, err)

	sum := a.runOnce("primary")
	require.Equal(t, vocab.RunSucceeded, sum.Status, "run error: %s", sum.Error)
	require.Equal(t, 2, sum.Outcomes[vocab.Created], "%v", sum.Outcomes)
	accounts := map[string]*scim.User{}
	for _, u := range a.checkTarget() {
		accounts[u.UserName] = u
	}
	for _, u := range []string{"pg1", "pg2"} {
		acc := accounts[u+"@"+adDomain]
		require.NotNil(t, acc, "%s has an account", u)
		require.True(t, acc.Active)
		require.Equal(t, []string{demo.Meeting}, acc.Products)
	}
}
