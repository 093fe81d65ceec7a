package main

import (
	"bytes"
	"errors"
	"flag"
	"strings"
	"testing"

	"github.com/usersync/usersync/internal/orgs"
)

// Secrets in the environment, as on a production host.
var secrets = map[string]string{
	"DATABASE_URL":       "postgres://u:s3cr3t-pw@127.0.0.1:5/x",
	"SCIM_TOKEN":         "s3cr3t-scim-token",
	"LDAP_BIND_PASSWORD": "s3cr3t-ldap-pw",
	"TEMPORAL_API_KEY":   "s3cr3t-api-key",
}

func assertNoSecret(t *testing.T, what, text string) {
	t.Helper()
	for _, s := range []string{"s3cr3t-pw", "s3cr3t-scim-token", "s3cr3t-ldap-pw", "s3cr3t-api-key"} {
		if strings.Contains(text, s) {
			t.Errorf("%s shows the secret %q:\n%s", what, s, text)
		}
	}
}

func TestHelpAndFlagErrorsNeverShowSecrets(t *testing.T) {
	for k, v := range secrets {
		t.Setenv(k, v)
	}
	var out bytes.Buffer
	if err := run([]string{"-h"}, &out); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("-h: %v, want flag.ErrHelp", err)
	}
	help := out.String()
	assertNoSecret(t, "worker -h", help)
	for _, want := range []string{"postgres://u:xxxxx@127.0.0.1:5/x", "-ldap-page-size", "LDAP_PAGE_SIZE", "-temporal-tls-ca-file",
		"TEMPORAL_TLS_CA_FILE", "-ldap-start-tls", "LDAP_ALLOW_PLAINTEXT_BIND"} {
		if !strings.Contains(help, want) {
			t.Errorf("worker -h does not show %q:\n%s", want, help)
		}
	}
	for _, args := range [][]string{{"-nope"}, {"--database-url"}, {"-ldap-page-size", "abc"}, {"-scim-rate", "-1"}} {
		out.Reset()
		err := run(args, &out)
		if err == nil {
			t.Fatalf("worker %v: no error", args)
		}
		assertNoSecret(t, "worker "+strings.Join(args, " "), out.String()+"\n"+err.Error())
	}
}

func TestBadEnvironmentValueStopsTheWorkerNamingIt(t *testing.T) {
	t.Setenv("LDAP_PAGE_SIZE", "abc")
	err := run(nil, new(bytes.Buffer))
	if err == nil || err.Error() != `LDAP_PAGE_SIZE: "abc" is not an integer` {
		t.Errorf("error %v, want LDAP_PAGE_SIZE: \"abc\" is not an integer", err)
	}
}

// With the single-organization shortcut, the environment is the source of what it names;
// what it cannot say (the target's TLS files) or leaves unset (a secret) is kept.
func TestShortcutKeepsWhatTheEnvironmentDoesNotSay(t *testing.T) {
	cur := orgs.Org{Name: "acme", Settings: orgs.Settings{
		Directory: orgs.Directory{BindDN: "cn=svc"},
		Target:    orgs.Target{URL: "https://old", CAFile: "/ca.pem", ClientCertFile: "/c.pem", ClientKeyFile: "/k.pem"}},
		Secrets: orgs.Secrets{BindPassword: "old-pw", Token: "old-token"}}
	env := orgs.Org{Name: "acme", Settings: orgs.Settings{
		Directory: orgs.Directory{BindDN: "cn=svc"}, Target: orgs.Target{URL: "https://new"}}}
	keepUnsaid(&env, cur)
	if env.Settings.Target.URL != "https://new" || env.Settings.Target.CAFile != "/ca.pem" ||
		env.Settings.Target.ClientKeyFile != "/k.pem" || env.Secrets.Token != "old-token" || env.Secrets.BindPassword != "old-pw" {
		t.Errorf("got %+v %v", env.Settings.Target, env.Secrets)
	}
	env = orgs.Org{Name: "acme", Settings: orgs.Settings{Directory: orgs.Directory{BindDN: "cn=other"}},
		Secrets: orgs.Secrets{Token: "new-token"}}
	keepUnsaid(&env, cur)
	if env.Secrets.Token != "new-token" || env.Secrets.BindPassword != "" {
		t.Errorf("a new token wins, and another bind DN does not take the old password: %v", env.Secrets)
	}
}

// Fairness (issue 10): one organization's SCIM steps in flight must leave a worker's SCIM
// slots room for the others; a window that could take them all stops the worker, naming the
// settings and their values. Defaults (8 x 20 of 200) and a larger worker start.
func TestOneOrganizationCannotBeGivenEveryWorkerSlot(t *testing.T) {
	t.Setenv("DATABASE_URL", "postgres://u@127.0.0.1:1/x")
	t.Setenv("USERSYNC_SECRETS_KEY_FILE", "/nonexistent/keys")
	t.Setenv("USERSYNC_SCIM_ACTIVITIES", "100")
	err := run([]string{"-page-window", "10"}, new(bytes.Buffer))
	want := "USERSYNC_PAGE_WINDOW x USERSYNC_USERS_IN_FLIGHT: 10 x 20 = 200 SCIM steps of one organization in flight, " +
		"not fewer than USERSYNC_SCIM_ACTIVITIES 100: one organization could take every SCIM slot of a worker"
	if err == nil || err.Error() != want {
		t.Errorf("error %v, want %s", err, want)
	}
	for _, slots := range []string{"", "400"} {
		t.Setenv("USERSYNC_SCIM_ACTIVITIES", slots)
		args := []string{}
		if slots != "" {
			args = []string{"-page-window", "10"}
		}
		// Past the check, the worker reads its secrets key file: that is the error now.
		if err := run(args, new(bytes.Buffer)); err == nil || strings.Contains(err.Error(), "SCIM slot") {
			t.Errorf("USERSYNC_SCIM_ACTIVITIES=%q %v: %v, want the key file's error", slots, args, err)
		}
	}
}

// The per-worker caps of issue 10 (--syncs, --pages): a bad value stops the worker, naming the
// flag or the variable it came from and the value; 0 (the default) and a positive cap start.
func TestBadCapsStopTheWorkerNamingThem(t *testing.T) {
	t.Setenv("DATABASE_URL", "postgres://u@127.0.0.1:1/x")
	t.Setenv("USERSYNC_SECRETS_KEY_FILE", "/nonexistent/keys")
	for _, c := range []struct {
		env  map[string]string
		args []string
		want string
	}{
		{args: []string{"-syncs", "-1"}, want: "--syncs: must be 0 or more, got -1"},
		{args: []string{"-pages", "-3"}, want: "--pages: must be 0 or more, got -3"},
		{env: map[string]string{"USERSYNC_SYNCS": "-2"}, want: "USERSYNC_SYNCS: must be 0 or more, got -2"},
		{env: map[string]string{"USERSYNC_PAGES": "many"}, want: `USERSYNC_PAGES: "many" is not an integer`},
		{env: map[string]string{"USERSYNC_SYNCS": "-2"}, args: []string{"-syncs", "0"}}, // the flag wins
		{args: []string{"-syncs", "1", "-pages", "2"}},
	} {
		for _, k := range []string{"USERSYNC_SYNCS", "USERSYNC_PAGES"} {
			t.Setenv(k, c.env[k])
		}
		err := run(c.args, new(bytes.Buffer))
		switch {
		case c.want != "" && (err == nil || err.Error() != c.want):
			t.Errorf("%v %v: error %v, want %s", c.env, c.args, err, c.want)
		case c.want == "" && (err == nil || !strings.Contains(err.Error(), "/nonexistent/keys")):
			// Past the checks, the worker reads its secrets key file: that is the error.
			t.Errorf("%v %v: error %v, want the key file's", c.env, c.args, err)
		}
	}
	var help bytes.Buffer
	_ = run([]string{"-h"}, &help)
	for _, want := range []string{"-syncs", "USERSYNC_SYNCS", "-pages", "USERSYNC_PAGES"} {
		if !strings.Contains(help.String(), want) {
			t.Errorf("worker -h does not show %q", want)
		}
	}
}
