package config

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/usersync/usersync/internal/directory"
)

// clearEnv unsets every setting's variable for the test, so the developer's environment
// does not leak in.
func clearEnv(t *testing.T) {
	t.Helper()
	for _, s := range All() {
		t.Setenv(s.Env, "") // restored after the test
		os.Unsetenv(s.Env)  // unset, not empty: an empty address is a value
	}
	t.Setenv("PGHOST", "")
	t.Setenv("PGSSLMODE", "")
}

// parseWorker binds a worker's flags (Go's flag package), parses args and loads.
func parseWorker(t *testing.T, args ...string) (Worker, error) {
	t.Helper()
	var w Worker
	s := w.Settings()
	fs := flag.NewFlagSet("worker", flag.ContinueOnError)
	fs.SetOutput(new(bytes.Buffer))
	s.BindFlags(fs)
	if err := fs.Parse(args); err != nil {
		return w, err
	}
	return w, s.Load()
}

// pflagLike is a flag.FlagSet with pflag's Changed, standing in for cobra's flags.
type pflagLike struct{ *flag.FlagSet }

func (p pflagLike) Changed(name string) bool {
	set := false
	p.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

func TestDefaultsWithoutFlagsOrEnvironment(t *testing.T) {
	clearEnv(t)
	w, err := parseWorker(t)
	if err != nil {
		t.Fatal(err)
	}
	if w.Org != "default" || w.TemporalAddress != "127.0.0.1:7233" || w.Namespace != "default" || w.LDAPProfile != "openldap" ||
		w.LDAPPageSize != 500 || w.SCIMRate != 10 || w.SuspendThresholdPercent != 10 || w.SuspendThresholdMax != 500 ||
		w.PageSize != 0 || w.TemporalTLS || w.LDAPStartTLS {
		t.Errorf("defaults: %+v", w)
	}
}

// Incremental reads are the default; LDAP_INCREMENTAL=false or --ldap-incremental=false
// turns them off (the organization's directory.fullReads).
func TestIncrementalReadsAreTheDefault(t *testing.T) {
	clearEnv(t)
	w, err := parseWorker(t)
	if err != nil || !w.LDAPIncremental || !w.OrgDirectory().Incremental() {
		t.Errorf("default: %v, LDAPIncremental %t, organization's %+v", err, w.LDAPIncremental, w.OrgDirectory())
	}
	if w, err := parseWorker(t, "-ldap-incremental=false"); err != nil || w.OrgDirectory().Incremental() || !w.OrgDirectory().FullReads {
		t.Errorf("--ldap-incremental=false: %v, %+v", err, w.OrgDirectory())
	}
	t.Setenv("LDAP_INCREMENTAL", "false")
	if w, err := parseWorker(t); err != nil || w.OrgDirectory().Incremental() {
		t.Errorf("LDAP_INCREMENTAL=false: %v, %+v", err, w.OrgDirectory())
	}
}

// The metrics address: a default, any address, and empty (variable or flag) turns it off.
func TestMetricsAddressEmptyDisables(t *testing.T) {
	clearEnv(t)
	if w, err := parseWorker(t); err != nil || w.MetricsAddr != "127.0.0.1:9464" {
		t.Errorf("default: %v %q", err, w.MetricsAddr)
	}
	t.Setenv("USERSYNC_METRICS_ADDR", "0.0.0.0:9100")
	if w, err := parseWorker(t); err != nil || w.MetricsAddr != "0.0.0.0:9100" {
		t.Errorf("env: %v %q", err, w.MetricsAddr)
	}
	t.Setenv("USERSYNC_METRICS_ADDR", "")
	if w, err := parseWorker(t); err != nil || w.MetricsAddr != "" {
		t.Errorf("empty env: %v %q", err, w.MetricsAddr)
	}
	os.Unsetenv("USERSYNC_METRICS_ADDR")
	if w, err := parseWorker(t, "-metrics-addr="); err != nil || w.MetricsAddr != "" {
		t.Errorf("empty flag: %v %q", err, w.MetricsAddr)
	}
}

func TestEnvironmentThenFlagsWin(t *testing.T) {
	clearEnv(t)
	t.Setenv("USERSYNC_ORG", "acme")
	t.Setenv("LDAP_PAGE_SIZE", "200")
	t.Setenv("SCIM_RATE", "2.5")
	t.Setenv("TEMPORAL_TLS", "true")
	t.Setenv("LDAP_START_TLS", "1")
	t.Setenv("LDAP_PROFILE", "ad")
	w, err := parseWorker(t, "-ldap-page-size", "50", "-org", "flagorg")
	if err != nil {
		t.Fatal(err)
	}
	if w.Org != "flagorg" || w.LDAPPageSize != 50 || w.SCIMRate != 2.5 || !w.TemporalTLS || !w.LDAPStartTLS || w.LDAPProfile != "ad" {
		t.Errorf("got %+v", w)
	}
	// A flag overriding a bad environment value wins: the environment is not used.
	t.Setenv("LDAP_PAGE_SIZE", "abc")
	if w, err := parseWorker(t, "-ldap-page-size", "7"); err != nil || w.LDAPPageSize != 7 {
		t.Errorf("flag over bad env: %v, %d", err, w.LDAPPageSize)
	}
}

func TestBadEnvironmentValueIsAnErrorNamingTheVariableAndValue(t *testing.T) {
	for _, tc := range []struct{ env, value, want string }{
		{"LDAP_PAGE_SIZE", "abc", `LDAP_PAGE_SIZE: "abc" is not an integer`},
		{"SUSPEND_THRESHOLD_MAX", "1e3", `SUSPEND_THRESHOLD_MAX: "1e3" is not an integer`},
		{"USERSYNC_PAGE_SIZE", "12.5", `USERSYNC_PAGE_SIZE: "12.5" is not an integer`},
		{"SCIM_RATE", "fast", `SCIM_RATE: "fast" is not a number`},
		{"SCIM_RATE", "NaN", `SCIM_RATE: "NaN" is not a number`},
		{"TEMPORAL_TLS", "yes", `TEMPORAL_TLS: "yes" is not a boolean`},
		{"LDAP_ALLOW_PLAINTEXT_BIND", "maybe", `LDAP_ALLOW_PLAINTEXT_BIND: "maybe" is not a boolean`},
		{"SCIM_RATE", "-1", `SCIM_RATE: must be 0 (no limit) or more, got -1`},
		{"LDAP_PROFILE", "novell", `LDAP_PROFILE: must be openldap or ad, got "novell"`},
		{"SUSPEND_THRESHOLD_PERCENT", "150", `SUSPEND_THRESHOLD_PERCENT: must be between 0 and 100, got 150`},
		{"USERSYNC_PAGE_WINDOW", "-2", `USERSYNC_PAGE_WINDOW: must be 0 or more, got -2`},
		{"LDAP_URL", "http://u:pw-in-url@dc", `LDAP_URL: "http://u:xxxxx@dc" is not a URL of the form ldap://host[:port] or ldaps://host[:port]`},
		{"SCIM_URL", "target.example.com/scim", `SCIM_URL: "target.example.com/scim" is not a URL`},
		{"USERSYNC_PAYLOAD_REQUIRE_ENCRYPTION", "true", `USERSYNC_PAYLOAD_REQUIRE_ENCRYPTION: true needs USERSYNC_PAYLOAD_KEY_FILE`},
	} {
		t.Run(tc.env+"="+tc.value, func(t *testing.T) {
			clearEnv(t)
			t.Setenv(tc.env, tc.value)
			// Both binders (the worker's Go flags, the starter's cobra flags), and no flags at all.
			_, err := parseWorker(t)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("worker flags: error %v, want %q", err, tc.want)
			}
			var w Worker
			s := w.Settings()
			s.BindPFlags(pflagLike{flag.NewFlagSet("starter", flag.ContinueOnError)})
			if err := s.Load(); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("pflag binding: error %v, want %q", err, tc.want)
			}
			if err := w.Settings().Load(); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("environment only: error %v, want %q", err, tc.want)
			}
			if strings.Contains(tc.value, "pw-in-url") && strings.Contains(err.Error(), "pw-in-url") {
				t.Errorf("error %q shows the password", err)
			}
		})
	}
}

func TestBadFlagValueIsAnErrorNamingTheFlag(t *testing.T) {
	clearEnv(t)
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"-ldap-page-size", "abc"}, []string{"-ldap-page-size", `"abc"`}},
		{[]string{"-scim-rate", "fast"}, []string{"-scim-rate", `"fast"`}},
		{[]string{"-scim-rate", "-3"}, []string{"--scim-rate: must be 0 (no limit) or more, got -3"}},
		{[]string{"-ldap-profile", "x"}, []string{`--ldap-profile: must be openldap or ad, got "x"`}},
		{[]string{"-org", " "}, []string{"--org: must not be empty"}},
	} {
		_, err := parseWorker(t, tc.args...)
		for _, w := range tc.want {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("%v: error %v, want it to contain %q", tc.args, err, w)
			}
		}
	}
}

func TestHelpHidesThePasswordOfURLDefaults(t *testing.T) {
	clearEnv(t)
	t.Setenv("DATABASE_URL", "postgres://usersync:s3cr3t-pw@db.example.com:5432/usersync?sslmode=verify-full")
	t.Setenv("SCIM_URL", "https://api:s3cr3t-scim@scim.example.com/v2")
	t.Setenv("LDAP_BIND_PASSWORD", "s3cr3t-ldap")
	t.Setenv("SCIM_TOKEN", "s3cr3t-token")
	t.Setenv("TEMPORAL_API_KEY", "s3cr3t-key")
	var w Worker
	fs := flag.NewFlagSet("worker", flag.ContinueOnError)
	var out bytes.Buffer
	fs.SetOutput(&out)
	w.Settings().BindFlags(fs)
	fs.PrintDefaults()
	help := out.String()
	if strings.Contains(help, "s3cr3t") {
		t.Errorf("help shows a secret:\n%s", help)
	}
	if !strings.Contains(help, "postgres://usersync:xxxxx@db.example.com:5432/usersync") {
		t.Errorf("help does not show the redacted DATABASE_URL:\n%s", help)
	}
	// The field still holds the real value.
	if err := w.Settings().Load(); err != nil || !strings.Contains(w.DatabaseURL, "s3cr3t-pw") {
		t.Errorf("DatabaseURL = %q, %v: want the real URL", Redact(w.DatabaseURL), err)
	}
}

func TestEverySettingIsWellFormed(t *testing.T) {
	flagName := regexp.MustCompile(`^[a-z][a-z0-9-]*$`)
	envName := regexp.MustCompile(`^[A-Z][A-Z0-9_]*$`)
	flags, envs := map[string]bool{}, map[string]bool{}
	for _, s := range All() {
		if !envName.MatchString(s.Env) || envs[s.Env] {
			t.Errorf("%+v: bad or repeated variable", s)
		}
		envs[s.Env] = true
		if s.Help == "" {
			t.Errorf("%s: no help", s.Env)
		}
		if s.Secret {
			if s.Flag != "" || s.Default != "" {
				t.Errorf("%s: a secret has no flag and no default", s.Env)
			}
			continue
		}
		if !flagName.MatchString(s.Flag) || flags[s.Flag] {
			t.Errorf("%+v: bad or repeated flag", s)
		}
		flags[s.Flag] = true
		if _, err := parse(s.Kind, s.Default); err != nil {
			t.Errorf("%s: default %q: %v", s.Env, s.Default, err)
		}
	}
	// The starter's global settings are a part of the worker's.
	var c Common
	for _, s := range c.Settings().List() {
		if !envs[s.Env] {
			t.Errorf("common setting %s is not a worker setting", s.Env)
		}
	}
}

// TestREADMEDocumentsEverySetting keeps README's Configuration table in line with the table.
func TestREADMEDocumentsEverySetting(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Skip(err)
	}
	readme := string(b)
	start := strings.Index(readme, "## Configuration")
	if start < 0 {
		t.Fatal("README has no Configuration section")
	}
	section := readme[start+3:]
	if end := strings.Index(section, "\n## "); end >= 0 {
		section = section[:end]
	}
	for _, s := range All() {
		if !strings.Contains(section, "`"+s.Env+"`") && !strings.Contains(section, "`"+s.Env+"` ") {
			// LDAP_DISABLED_VALUE is written as `_VALUE` next to LDAP_DISABLED_ATTRIBUTE.
			if s.Env != "LDAP_DISABLED_VALUE" {
				t.Errorf("README's Configuration section does not list `%s`", s.Env)
			}
		}
		if s.Flag != "" && !strings.Contains(section, "`--"+s.Flag+"`") {
			t.Errorf("README's Configuration section does not list `--%s`", s.Flag)
		}
	}
}

func TestDirectoryConfigOfTheSettings(t *testing.T) {
	clearEnv(t)
	t.Setenv("LDAP_URL", "ldap://dc.example.com")
	t.Setenv("LDAP_START_TLS", "true")
	t.Setenv("LDAP_SERVER_NAME", "dc1.example.com")
	t.Setenv("LDAP_ALLOW_PLAINTEXT_BIND", "true")
	caFile := writeFile(t, t.TempDir(), "ca.pem", newTestCA(t).pem)
	t.Setenv("LDAP_CA_FILE", caFile)
	t.Setenv("LDAP_BIND_DN", "cn=svc")
	t.Setenv("LDAP_BASE_DN", "dc=example,dc=com")
	t.Setenv("LDAP_PROFILE", "ad")
	t.Setenv("LDAP_USERNAME_ATTRIBUTE", "mail")
	t.Setenv("LDAP_DISABLED_ATTRIBUTE", "employeeType")
	t.Setenv("LDAP_DISABLED_VALUE", "gone")
	t.Setenv("LDAP_PAGE_SIZE", "250")
	t.Setenv("LDAP_BIND_PASSWORD", "pw")
	var l LDAP
	if err := l.Settings().Load(); err != nil {
		t.Fatal(err)
	}
	pw, err := l.BindPassword()
	if err != nil {
		t.Fatal(err)
	}
	got := l.Directory(pw)
	want := directory.Config{URL: "ldap://dc.example.com", BindDN: "cn=svc", BindPassword: "pw", BaseDN: "dc=example,dc=com",
		Profile: "ad", UserNameAttribute: "mail", DisabledAttribute: "employeeType", DisabledValue: "gone", PageSize: 250,
		StartTLS: true, CAFile: caFile, ServerName: "dc1.example.com", AllowPlaintextBind: true}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Directory = %#v, want %#v", got, want)
	}
	if err := got.Validate(); err != nil {
		t.Error(err)
	}
}

func TestSecretFromEnvironmentElseFile(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "token")
	if err := os.WriteFile(file, []byte("from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SCIM_TOKEN", "")
	if v, err := Secret("SCIM_TOKEN", file); err != nil || v != "from-file" {
		t.Errorf("file: %q, %v", v, err)
	}
	t.Setenv("SCIM_TOKEN", "from-env")
	if v, err := Secret("SCIM_TOKEN", file); err != nil || v != "from-env" {
		t.Errorf("env wins: %q, %v", v, err)
	}
	t.Setenv("SCIM_TOKEN", "")
	missing := filepath.Join(dir, "nope")
	if _, err := Secret("SCIM_TOKEN", missing); err == nil || !strings.Contains(err.Error(), "SCIM_TOKEN_FILE") ||
		!strings.Contains(err.Error(), missing) {
		t.Errorf("missing file: %v, want SCIM_TOKEN_FILE and the path", err)
	}
	empty := filepath.Join(dir, "empty")
	_ = os.WriteFile(empty, []byte("\n"), 0o600)
	if _, err := Secret("SCIM_TOKEN", empty); err == nil || !strings.Contains(err.Error(), "empty") {
		t.Errorf("empty file: %v, want an error", err)
	}
}

func TestParseInterval(t *testing.T) {
	if d, err := ParseInterval("15m"); err != nil || d != 15*time.Minute {
		t.Errorf("15m: %v, %v", d, err)
	}
	if _, err := ParseInterval("5s"); err == nil {
		t.Error("5s accepted")
	}
}
