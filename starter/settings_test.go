package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/usersync/usersync/internal/config"
)

// Secrets in the environment, as on a production host.
const (
	dbPassword   = "s3cr3t-pw"
	scimToken    = "s3cr3t-scim-token"
	ldapPassword = "s3cr3t-ldap-pw"
	apiKey       = "s3cr3t-api-key"
)

func setSecretEnv(t *testing.T) {
	t.Helper()
	t.Setenv("DATABASE_URL", "postgres://u:"+dbPassword+"@127.0.0.1:5/x")
	t.Setenv("SCIM_TOKEN", scimToken)
	t.Setenv("LDAP_BIND_PASSWORD", ldapPassword)
	t.Setenv("TEMPORAL_API_KEY", apiKey)
}

func assertNoSecret(t *testing.T, what, text string) {
	t.Helper()
	for _, s := range []string{dbPassword, scimToken, ldapPassword, apiKey} {
		if strings.Contains(text, s) {
			t.Errorf("%s shows the secret %q:\n%s", what, s, text)
		}
	}
}

func TestHelpAndFlagErrorsNeverShowSecrets(t *testing.T) {
	setSecretEnv(t)
	for _, args := range [][]string{
		{"--help"}, {"help"}, {"status", "--help"}, {"rules", "add", "--help"},
		{"--nope"}, {"status", "--nope"}, {"--database-url"}, {"rules", "add", "--priority", "x"},
	} {
		out, err := execute(args...)
		if err != nil {
			out += "\n" + err.Error()
		}
		assertNoSecret(t, "starter "+strings.Join(args, " "), out)
	}
	out, _ := execute("--help")
	if !strings.Contains(out, "postgres://u:xxxxx@127.0.0.1:5/x") || !strings.Contains(out, "TEMPORAL_TLS_CA_FILE") {
		t.Errorf("--help does not show the redacted DATABASE_URL and the Temporal TLS settings:\n%s", out)
	}
	// The real main: exit code and stderr.
	for _, args := range []string{"--help", "--nope", "status --nope"} {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), "STARTER_RUN_MAIN=1", "STARTER_ARGS="+args)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		_ = cmd.Run()
		assertNoSecret(t, "starter "+args+" (stdout)", stdout.String())
		assertNoSecret(t, "starter "+args+" (stderr)", stderr.String())
		if stdout.Len()+stderr.Len() == 0 {
			t.Errorf("starter %s printed nothing", args)
		}
	}
}

func TestGlobalFlagsAreTheCommonSettings(t *testing.T) {
	root, _ := newRoot()
	pf := root.PersistentFlags()
	var c config.Common
	for _, s := range c.Settings().List() {
		if s.Secret {
			continue
		}
		f := pf.Lookup(s.Flag)
		if f == nil {
			t.Errorf("--%s (%s): not a global flag", s.Flag, s.Env)
			continue
		}
		if !strings.Contains(f.Usage, s.Env) {
			t.Errorf("--%s: usage %q does not name %s", s.Flag, f.Usage, s.Env)
		}
	}
}

func TestBadGlobalSettingIsAnErrorNamingIt(t *testing.T) {
	for _, tc := range []struct {
		env, value string
		args       []string
		want       string
	}{
		{"TEMPORAL_TLS", "yes", []string{"failures"}, `TEMPORAL_TLS: "yes" is not a boolean`},
		{"", "", []string{"--org", " ", "failures"}, "--org: must not be empty"},
		{"", "", []string{"--temporal-tls=maybe", "failures"}, "--temporal-tls"},
	} {
		if tc.env != "" {
			t.Setenv(tc.env, tc.value)
		}
		_, err := execute(tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s=%s starter %v: error %v, want %q", tc.env, tc.value, tc.args, err, tc.want)
		}
		if tc.env != "" {
			t.Setenv(tc.env, "")
		}
	}
}

func TestBadDirectorySettingFailsExplainLikeTheWorker(t *testing.T) {
	t.Setenv("LDAP_URL", "ldap://127.0.0.1:1")
	t.Setenv("LDAP_BASE_DN", "dc=example,dc=com")
	t.Setenv("LDAP_PAGE_SIZE", "abc")
	if _, err := directoryFromEnv(); err == nil || !strings.Contains(err.Error(), `LDAP_PAGE_SIZE: "abc" is not an integer`) {
		t.Errorf("directoryFromEnv: %v, want the bad LDAP_PAGE_SIZE named", err)
	}
	t.Setenv("LDAP_PAGE_SIZE", "")
	t.Setenv("LDAP_START_TLS", "true")
	t.Setenv("LDAP_SERVER_NAME", "dc.example.com")
	cfg, err := directoryFromEnv()
	if err != nil || cfg.PageSize != 500 || !cfg.StartTLS || cfg.ServerName != "dc.example.com" {
		t.Errorf("directoryFromEnv = %v, %v", cfg, err)
	}
	t.Setenv("SUSPEND_THRESHOLD_MAX", "many")
	if _, err := suspendThresholdsFromEnv(); err == nil || !strings.Contains(err.Error(), `SUSPEND_THRESHOLD_MAX: "many"`) {
		t.Errorf("suspendThresholdsFromEnv: %v", err)
	}
}

func TestTemporalTLSFileErrorNamesTheSettingAndPath(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "ca.pem")
	a := &app{}
	a.TemporalAddress, a.Namespace, a.TemporalTLSCAFile = "127.0.0.1:1", "default", missing
	_, err := a.temporal()
	if err == nil || !strings.Contains(err.Error(), "TEMPORAL_TLS_CA_FILE") || !strings.Contains(err.Error(), missing) {
		t.Errorf("temporal(): %v, want TEMPORAL_TLS_CA_FILE and %s", err, missing)
	}
}

func TestRemoteDatabaseWithoutVerifyFullWarns(t *testing.T) {
	// TEST-NET-1: unroutable, the connection times out after the warning.
	out, err := execute("--database-url", "postgres://u:"+dbPassword+"@192.0.2.1:5432/x?sslmode=disable&connect_timeout=1", "failures")
	if err == nil {
		t.Fatal("connected to 192.0.2.1")
	}
	if !strings.Contains(out, "warning: DATABASE_URL") || !strings.Contains(out, "verify-full") {
		t.Errorf("no sslmode warning:\n%s", out)
	}
	assertNoSecret(t, "failures with a remote database", out+err.Error())
}
