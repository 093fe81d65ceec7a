package main

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/usersync/usersync/internal/demo"
	"github.com/usersync/usersync/internal/devstack"
	"github.com/usersync/usersync/internal/devstack/devstacktest"
	"github.com/usersync/usersync/internal/orgs"
	"github.com/usersync/usersync/internal/scimsandbox"
	"github.com/usersync/usersync/internal/store"
	"github.com/usersync/usersync/internal/vocab"
	"github.com/usersync/usersync/workflows"
)

// withKeyFile points the starter at a new key file, as USERSYNC_SECRETS_KEY_FILE would.
func withKeyFile(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "secrets.keys")
	if _, err := orgs.AddKey(path); err != nil {
		t.Fatal(err)
	}
	t.Setenv("USERSYNC_SECRETS_KEY_FILE", path)
	return path
}

// setOrgSecretEnv puts the secrets of an organization in the environment, as an admin's
// shell may have them (setSecretEnv's DATABASE_URL would redirect the test database).
func setOrgSecretEnv(t *testing.T) {
	t.Setenv("LDAP_BIND_PASSWORD", ldapPassword)
	t.Setenv("SCIM_TOKEN", scimToken)
}

func writeSecret(t *testing.T, value string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(path, []byte(value+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

var acmeFlags = []string{"--ldap-url", "ldaps://dc.acme.test", "--ldap-bind-dn", "cn=svc,dc=acme,dc=test",
	"--ldap-base-dn", "dc=acme,dc=test", "--ldap-profile", "ad", "--scim-url", "https://scim.acme.test/v2"}

// storedOrg reads the organization back as the worker will.
func storedOrg(t *testing.T, c *cli, name string) orgs.Org {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, c.dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	keys, err := orgs.LoadKeyring(os.Getenv("USERSYNC_SECRETS_KEY_FILE"))
	if err != nil {
		t.Fatal(err)
	}
	o, err := orgs.Repo{Store: st, Keys: keys}.Get(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// Issue #10: secrets come from a file or the environment, are stored encrypted, and are never
// printed: show says "set"; set changes only what it is given, as a new version.
func TestOrgsCreateSetShowNeverPrintSecrets(t *testing.T) {
	withKeyFile(t)
	c := newCLI(t)
	setOrgSecretEnv(t)
	out := c.must(append([]string{"orgs", "create", "acme"}, acmeFlags...)...)
	if !strings.Contains(out, "Created organization acme (version 1)") {
		t.Errorf("create:\n%s", out)
	}
	o := storedOrg(t, c, "acme")
	if o.Secrets.BindPassword != ldapPassword || o.Secrets.Token != scimToken {
		t.Errorf("create did not take the secrets from LDAP_BIND_PASSWORD and SCIM_TOKEN: %v", o.Secrets)
	}
	if o.Settings.Target.Rate != orgs.DefaultRate || o.Settings.SuspendThresholdMax != 500 || o.Settings.Directory.PageSize != 500 {
		t.Errorf("create's defaults: %+v", o.Settings)
	}
	show := c.must("orgs", "show", "acme")
	for _, want := range []string{"directory.bindPassword", "target.token", "ldaps://dc.acme.test", "10/s"} {
		if !strings.Contains(show, want) {
			t.Errorf("show does not print %q:\n%s", want, show)
		}
	}
	if line := lineWith(show, "target.token"); !strings.Contains(line, "set") || strings.Contains(line, "not set") {
		t.Errorf("show: token line %q, want set", line)
	}
	var js map[string]any
	if err := json.Unmarshal([]byte(c.must("--json", "orgs", "show", "acme")), &js); err != nil {
		t.Fatal(err)
	}
	if js["secrets"].(map[string]any)[orgs.FieldToken] != "set" || js["version"].(float64) != 1 {
		t.Errorf("show --json: %v", js)
	}

	// set: the given flags only; the environment's secrets only with --secrets-from-env.
	t.Setenv("SCIM_TOKEN", "another-token-in-env")
	out = c.must("orgs", "set", "acme", "--scim-rate", "2.5", "--suspend-threshold-max", "50")
	if !strings.Contains(out, "version 2") {
		t.Errorf("set:\n%s", out)
	}
	o = storedOrg(t, c, "acme")
	if o.Settings.Target.Rate != 2.5 || o.Settings.SuspendThresholdMax != 50 || o.Settings.Directory.URL != "ldaps://dc.acme.test" ||
		o.Secrets.Token != scimToken {
		t.Errorf("after set --scim-rate 2.5 --suspend-threshold-max 50: %+v %v", o.Settings, o.Secrets)
	}
	if out := c.must("orgs", "set", "acme", "--scim-rate", "2.5"); !strings.Contains(out, "nothing changed (version 2)") {
		t.Errorf("set to the same value:\n%s", out)
	}
	c.must("orgs", "set", "acme", "--scim-token-file", writeSecret(t, "token-from-file"))
	if o = storedOrg(t, c, "acme"); o.Secrets.Token != "token-from-file" || o.Version != 3 {
		t.Errorf("set --scim-token-file: version %d, token changed: %v", o.Version, o.Secrets.Token == "token-from-file")
	}
	c.must("orgs", "set", "acme", "--secrets-from-env")
	if o = storedOrg(t, c, "acme"); o.Secrets.Token != "another-token-in-env" || o.Version != 4 {
		t.Errorf("set --secrets-from-env: version %d", o.Version)
	}
	list := c.must("orgs", "list")
	if row := lineWith(list, "acme"); !strings.Contains(row, "4") || !strings.Contains(row, "https://scim.acme.test/v2") {
		t.Errorf("list row %q", row)
	}
	hist := c.must("--json", "history", "--type", "setting")
	for _, s := range []string{ldapPassword, scimToken, "token-from-file", "another-token-in-env"} {
		if strings.Contains(hist+show+out+list, s) {
			t.Errorf("a secret is printed: %q", s)
		}
	}
	var events []vocab.Event
	if err := json.Unmarshal([]byte(hist), &events); err != nil || len(events) != 4 {
		t.Fatalf("history --type setting: %d events, %v\n%s", len(events), err, hist)
	}
	if events[0].Action != "organization settings changed" || events[3].Action != "organization settings created" {
		t.Errorf("history actions: %q ... %q", events[0].Action, events[3].Action)
	}
}

// Bad input is an error naming the setting, its value and the flag; nothing is saved.
func TestOrgsBadInputNamesFieldValueAndFlagAndSavesNothing(t *testing.T) {
	withKeyFile(t)
	c := newCLI(t)
	setOrgSecretEnv(t)
	with := func(flag, value string) []string {
		args := []string{"orgs", "create", "acme"}
		for i := 0; i < len(acmeFlags); i += 2 {
			if acmeFlags[i] != flag {
				args = append(args, acmeFlags[i], acmeFlags[i+1])
			}
		}
		return append(args, flag, value)
	}
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{with("--scim-url", "ftp://x"), []string{`target.url: "ftp://x" is not an https:// URL`, "--scim-url"}},
		{with("--scim-url", "http://scim.acme.test/v2"), []string{`target.url: "http://scim.acme.test/v2"`, "--scim-url"}},
		{with("--ldap-url", "https://dc"), []string{`directory.url: "https://dc"`, "--ldap-url"}},
		{with("--ldap-profile", "novell"), []string{`directory.profile: "novell"`, "--ldap-profile"}},
		{with("--scim-rate", "-1"), []string{"target.rate: -1", "--scim-rate"}},
		{with("--suspend-threshold-percent", "101"), []string{"suspendThresholdPercent: 101", "--suspend-threshold-percent"}},
		{with("--suspend-threshold-max", "-3"), []string{"suspendThresholdMax: -3", "--suspend-threshold-max"}},
		{with("--scim-token-file", "/nonexistent/token"), []string{"--scim-token-file", "/nonexistent/token"}},
		{[]string{"orgs", "create", "a/b"}, []string{`organization "a/b"`}},
		{[]string{"orgs", "set", "acme", "--scim-rate", "1"}, []string{"acme has no settings", "starter orgs create acme"}},
	} {
		msg := c.fails(tc.args...)
		for _, w := range tc.want {
			if !strings.Contains(msg, w) {
				t.Errorf("starter %s: error %q does not mention %q", strings.Join(tc.args, " "), msg, w)
			}
		}
		assertNoSecret(t, "error", msg)
	}
	if out := c.must("orgs", "list"); !strings.Contains(out, "No organization has settings") {
		t.Errorf("refused creates saved something:\n%s", out)
	}
	c.must(append([]string{"orgs", "create", "acme"}, acmeFlags...)...)
	c.fails(append([]string{"orgs", "create", "acme"}, acmeFlags...)...)
	c.fails("orgs", "set", "acme", "--scim-url", "ftp://x", "--scim-rate", "3")
	if o := storedOrg(t, c, "acme"); o.Version != 1 || o.Settings.Target.Rate != orgs.DefaultRate {
		t.Errorf("a refused set changed something: version %d, rate %v", o.Version, o.Settings.Target.Rate)
	}
}

func TestOrgsSecretsNeedAPrivateKeyFile(t *testing.T) {
	t.Setenv("USERSYNC_SECRETS_KEY_FILE", "")
	c := newCLI(t)
	setOrgSecretEnv(t)
	if msg := c.fails(append([]string{"orgs", "create", "acme"}, acmeFlags...)...); !strings.Contains(msg, "USERSYNC_SECRETS_KEY_FILE") {
		t.Errorf("create with secrets and no key file: %q, want the setting named", msg)
	}
	path := withKeyFile(t)
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	msg := c.fails("orgs", "list")
	if !strings.Contains(msg, path) || !strings.Contains(msg, "chmod 600 "+path) {
		t.Errorf("world-readable key file: %q, want the file and the fix", msg)
	}
}

func TestOrgsHelpNeverShowsSecrets(t *testing.T) {
	setSecretEnv(t)
	for _, args := range [][]string{{"orgs", "--help"}, {"orgs", "create", "--help"}, {"orgs", "set", "--help"},
		{"orgs", "test", "--help"}, {"orgs", "create", "acme", "--nope"}} {
		out, err := execute(args...)
		if err != nil {
			out += "\n" + err.Error()
		}
		assertNoSecret(t, "starter "+strings.Join(args, " "), out)
	}
}

// new-key adds a key that seals from then on; rotate-key re-seals what older keys sealed.
func TestOrgsNewKeyThenRotateKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys")
	t.Setenv("USERSYNC_SECRETS_KEY_FILE", path)
	c := newCLI(t)
	setOrgSecretEnv(t)
	out := c.must("orgs", "new-key")
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("new-key: %v, mode %v\n%s", err, fi, out)
	}
	c.must(append([]string{"orgs", "create", "acme"}, acmeFlags...)...)
	c.must("orgs", "new-key")
	keys, err := orgs.LoadKeyring(path)
	if err != nil {
		t.Fatal(err)
	}
	out = c.must("orgs", "rotate-key")
	if !strings.Contains(out, "Re-encrypted the secrets of 1 organizations under key "+keys.Current()+": acme") {
		t.Errorf("rotate-key:\n%s", out)
	}
	if out := c.must("orgs", "rotate-key"); !strings.Contains(out, "already under key") {
		t.Errorf("second rotate-key:\n%s", out)
	}
	// Only the current key left: the secrets still open.
	b, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if err := os.WriteFile(path, []byte(lines[len(lines)-1]+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if o := storedOrg(t, c, "acme"); o.Secrets.Token != scimToken {
		t.Error("after rotation and removal of the old key, the token does not open")
	}
}

// orgs test binds and counts users and reads the target's ServiceProviderConfig; explain and
// rules add then use the organization's directory from PostgreSQL, with no LDAP_* set.
func TestOrgsTestAndExplainUseTheOrganizationsSettings(t *testing.T) {
	if _, err := os.Stat(devstack.SlapdBinary); err != nil {
		t.Skipf("slapd not installed: %v", err)
	}
	withKeyFile(t)
	for _, k := range []string{"LDAP_URL", "LDAP_BIND_DN", "LDAP_BIND_PASSWORD", "LDAP_BASE_DN", "SCIM_TOKEN"} {
		t.Setenv(k, "")
	}
	ctx := context.Background()
	dir := t.TempDir()
	const admin, adminPW = "cn=admin,dc=example,dc=com", "slapd-admin-pw-91c2"
	s := &devstack.Slapd{Dir: dir, Suffix: demo.Suffix, AdminDN: admin, AdminPassword: adminPW}
	t.Cleanup(func() { _ = s.Stop() })
	start, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := s.Start(start); err != nil {
		t.Fatal(err)
	}
	if err := devstack.LoadEntries(start, s.URL(), admin, adminPW, demo.Org().Entries); err != nil {
		t.Fatal(err)
	}
	const token = "sandbox-token-5e1d"
	srv := httptest.NewServer(scimsandbox.New(scimsandbox.Options{Token: token}))
	t.Cleanup(srv.Close)

	c := newCLI(t)
	c.must("seed-demo")
	c.must("orgs", "create", "acme", "--ldap-url", s.URL(), "--ldap-bind-dn", admin, "--ldap-allow-plaintext-bind",
		"--ldap-base-dn", demo.Suffix, "--ldap-bind-password-file", writeSecret(t, adminPW),
		"--scim-url", srv.URL, "--scim-token-file", writeSecret(t, token))
	out := c.must("orgs", "test", "acme")
	for _, want := range []string{"directory", "bound as " + admin, "300 users", "target", "ServiceProviderConfig read", "PATCH yes"} {
		if !strings.Contains(out, want) {
			t.Errorf("orgs test does not say %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "FAILED") {
		t.Errorf("orgs test:\n%s", out)
	}

	// explain reads the ruled groups from the organization's directory.
	if out := c.must("explain", "kofi.murphy@example.com"); !strings.Contains(out, "Matched rules") {
		t.Errorf("explain with the organization's settings and no LDAP_URL:\n%s", out)
	}
	// rules add checks the group there.
	msg := c.fails("rules", "add", "--group", "cn=no-such-group,ou=groups,dc=example,dc=com")
	if !strings.Contains(msg, "no such group in the directory "+s.URL()) {
		t.Errorf("rules add of a missing group: %q", msg)
	}

	// Wrong secrets: each failure said, neither secret printed, and the command fails.
	c.must("orgs", "set", "acme", "--ldap-bind-password-file", writeSecret(t, "wrong-pw-77"),
		"--scim-token-file", writeSecret(t, "wrong-token-88"))
	out, err := c.run("orgs", "test", "acme")
	if err == nil {
		t.Errorf("orgs test with wrong secrets succeeded:\n%s", out)
	}
	if line := lineWith(out, "directory"); !strings.Contains(line, "FAILED") {
		t.Errorf("directory line %q, want FAILED", line)
	}
	if line := lineWith(out, "target"); !strings.Contains(line, "FAILED") || !strings.Contains(line, "token") {
		t.Errorf("target line %q, want FAILED naming the token", line)
	}
	for _, secret := range []string{"wrong-pw-77", "wrong-token-88", adminPW, token} {
		if strings.Contains(out+err.Error(), secret) {
			t.Errorf("orgs test prints a secret %q:\n%s", secret, out)
		}
	}
}

// delete turns the organization's sync off first, as starter disable does (a signal to its
// workflow, which it does not start when there is none), then deletes its settings; when
// Temporal cannot be reached it deletes nothing.
func TestOrgsDeleteDisablesTheSyncFirst(t *testing.T) {
	withKeyFile(t)
	c := newCLI(t)
	setOrgSecretEnv(t)
	for _, name := range []string{"acme", "globex"} {
		c.must(append([]string{"orgs", "create", name}, acmeFlags...)...)
	}
	msg := c.fails("orgs", "delete", "acme") // c's Temporal is 127.0.0.1:1
	if !strings.Contains(msg, "nothing deleted") {
		t.Errorf("delete without Temporal: %q", msg)
	}
	if o := storedOrg(t, c, "acme"); o.Version != 1 {
		t.Fatalf("acme after a failed delete: %+v", o)
	}

	addr := devstacktest.Temporal(t)
	run := func(args ...string) string {
		t.Helper()
		out, err := execute(append([]string{"--database-url", c.dbURL, "--temporal-address", addr}, args...)...)
		if err != nil {
			t.Fatalf("starter %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}
	// Starts usersync/acme; no worker runs it, so enable falls back to a signal.
	run("--org", "acme", "--answer-timeout", "2s", "enable")
	out := run("orgs", "delete", "acme")
	if !strings.Contains(out, "User sync of acme is off") || !strings.Contains(out, "Deleted the settings and secrets of organization acme") {
		t.Errorf("delete:\n%s", out)
	}
	tc, err := client.Dial(client.Options{HostPort: addr})
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	var signals []string
	it := tc.GetWorkflowHistory(context.Background(), workflows.OrgWorkflowID("acme"), "", false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		e, err := it.Next()
		if err != nil {
			t.Fatal(err)
		}
		if a := e.GetWorkflowExecutionSignaledEventAttributes(); a != nil {
			signals = append(signals, a.GetSignalName())
		}
	}
	if len(signals) != 2 || signals[1] != workflows.SignalDisable {
		t.Errorf("signals to usersync/acme: %v, want enable then disable", signals)
	}
	// globex has no workflow: none is started for it.
	out = run("orgs", "delete", "globex")
	if strings.Contains(out, "User sync of globex is off") {
		t.Errorf("delete of an organization without a workflow:\n%s", out)
	}
	if _, err := tc.DescribeWorkflowExecution(context.Background(), workflows.OrgWorkflowID("globex"), ""); err == nil {
		t.Error("delete started a workflow for globex")
	}
	if list := c.must("orgs", "list"); !strings.Contains(list, "No organization has settings") {
		t.Errorf("after both deletes:\n%s", list)
	}
	if msg := c.fails("orgs", "show", "acme"); !strings.Contains(msg, "acme") || !strings.Contains(msg, "no settings") {
		t.Errorf("show after delete: %q", msg)
	}
	hist := run("--org", "acme", "history", "--type", "setting")
	if !strings.Contains(hist, "organization settings deleted") {
		t.Errorf("history:\n%s", hist)
	}
}
