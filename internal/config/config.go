// Package config defines usersync's settings once: each has a flag, an environment variable, a
// default, help and validation (settings.go), and both the worker (Go's flag package) and the
// starter CLI (cobra) generate their flags from these tables. Secrets come only from the
// environment or files, never from flags (flags show up in process lists), and help and errors
// never show them.
package config

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/usersync/usersync/internal/directory"
	"github.com/usersync/usersync/internal/engine"
	"github.com/usersync/usersync/internal/orgs"
	"github.com/usersync/usersync/workflows"
)

// Common is what every usersync process needs: the organization, Temporal and PostgreSQL.
type Common struct {
	Org             string
	TemporalAddress string
	Namespace       string
	DatabaseURL     string
	// Temporal transport security. TLS is on when TemporalTLS is set or implied by any of the
	// others (or an API key).
	TemporalTLS           bool
	TemporalTLSCAFile     string
	TemporalTLSServerName string
	TemporalTLSCertFile   string
	TemporalTLSKeyFile    string
	TemporalAPIKeyFile    string
	// SecretsKeyFile holds the keys that seal organizations' secrets in PostgreSQL.
	SecretsKeyFile string
	// PayloadKeyFile, when set, holds the keys that encrypt every Temporal payload (package
	// codec); every worker and starter of a namespace must use the same.
	PayloadKeyFile string
	// PayloadRequireEncryption: the codec refuses payloads that are not sealed.
	PayloadRequireEncryption bool
}

// LDAP is how to reach and read the directory. The starter's explain and rules commands read
// it from the environment, the worker from flags and the environment.
type LDAP struct {
	LDAPURL, LDAPBindDN, LDAPBaseDN, LDAPProfile string
	LDAPUserNameAttribute                        string
	LDAPDisabledAttribute, LDAPDisabledValue     string
	LDAPPageSize                                 int
	LDAPBindPasswordFile                         string
	LDAPStartTLS                                 bool
	LDAPCAFile, LDAPServerName                   string
	LDAPAllowPlaintextBind                       bool
	LDAPInChain                                  bool
	LDAPIncremental                              bool
	LDAPFullReadHours                            int
}

// SuspendThresholds is the safety threshold on suspensions (the worker's, and starter explain's).
type SuspendThresholds struct {
	SuspendThresholdPercent, SuspendThresholdMax int
}

// Worker adds the directory, the target and the sync's tuning.
type Worker struct {
	Common
	LDAP
	SuspendThresholds
	SCIMURL                             string
	SCIMTokenFile                       string
	SCIMRate                            float64
	SCIMAllowHTTP                       bool
	SCIMActivities, Pollers             int
	Syncs, Pages                        int
	PageSize, PageWindow, UsersInFlight int
	MetricsAddr                         string
}

// The tables. Each setting is defined here once.

func (c *Common) entries() []entry {
	return []entry{
		withCheck(str(&c.Org, "org", "USERSYNC_ORG", "default", "organization ID"), notBlank(&c.Org)),
		str(&c.TemporalAddress, "temporal-address", "TEMPORAL_ADDRESS", "127.0.0.1:7233", "Temporal frontend host:port"),
		str(&c.Namespace, "namespace", "TEMPORAL_NAMESPACE", "default", "Temporal namespace"),
		urlSetting(&c.DatabaseURL, "database-url", "DATABASE_URL",
			"PostgreSQL URL; off loopback use sslmode=verify-full with sslrootcert", nil),
		boolean(&c.TemporalTLS, "temporal-tls", "TEMPORAL_TLS",
			"connect to Temporal over TLS (implied by the other TEMPORAL_TLS_* settings and an API key)"),
		str(&c.TemporalTLSCAFile, "temporal-tls-ca-file", "TEMPORAL_TLS_CA_FILE", "",
			"PEM file of the CAs that sign Temporal's server certificate, else the system's"),
		str(&c.TemporalTLSServerName, "temporal-tls-server-name", "TEMPORAL_TLS_SERVER_NAME", "",
			"name Temporal's certificate must hold, else the host of --temporal-address"),
		str(&c.TemporalTLSCertFile, "temporal-tls-cert-file", "TEMPORAL_TLS_CERT_FILE", "",
			"PEM client certificate for mTLS to Temporal (with --temporal-tls-key-file)"),
		str(&c.TemporalTLSKeyFile, "temporal-tls-key-file", "TEMPORAL_TLS_KEY_FILE", "",
			"PEM private key of the client certificate"),
		str(&c.TemporalAPIKeyFile, "temporal-api-key-file", "TEMPORAL_API_KEY_FILE", "",
			"file holding a Temporal API key (or env TEMPORAL_API_KEY); turns TLS on"),
		secret("TEMPORAL_API_KEY", "Temporal API key (secret); turns TLS on"),
		str(&c.PayloadKeyFile, "payload-key-file", "USERSYNC_PAYLOAD_KEY_FILE", "",
			"keys that encrypt Temporal payloads and failure messages (same format as the secrets key file); unset: not encrypted"),
		withCheck(boolean(&c.PayloadRequireEncryption, "payload-require-encryption", "USERSYNC_PAYLOAD_REQUIRE_ENCRYPTION",
			"refuse signal, update and workflow input payloads that are not encrypted with the payload key (needs --payload-key-file)"),
			func() error {
				if c.PayloadRequireEncryption && c.PayloadKeyFile == "" {
					return errors.New("true needs USERSYNC_PAYLOAD_KEY_FILE (--payload-key-file): without a payload key nothing is encrypted")
				}
				return nil
			}),
		str(&c.SecretsKeyFile, "secrets-key-file", "USERSYNC_SECRETS_KEY_FILE", "",
			"file of the keys that encrypt organizations' secrets in PostgreSQL (mode 0600; starter orgs new-key)"),
	}
}

func (l *LDAP) entries() []entry {
	return []entry{
		urlSetting(&l.LDAPURL, "ldap-url", "LDAP_URL", "directory URL, ldap:// or ldaps://", checkURL(&l.LDAPURL, "ldap", "ldaps")),
		str(&l.LDAPBindDN, "ldap-bind-dn", "LDAP_BIND_DN", "",
			"bind DN; password from env LDAP_BIND_PASSWORD or --ldap-bind-password-file"),
		secret("LDAP_BIND_PASSWORD", "bind password (secret)"),
		str(&l.LDAPBindPasswordFile, "ldap-bind-password-file", "LDAP_BIND_PASSWORD_FILE", "", "file holding the bind password"),
		str(&l.LDAPBaseDN, "ldap-base-dn", "LDAP_BASE_DN", "", "search base"),
		withCheck(str(&l.LDAPProfile, "ldap-profile", "LDAP_PROFILE", directory.ProfileOpenLDAP, "attribute profile: openldap or ad"),
			oneOf(&l.LDAPProfile, directory.ProfileOpenLDAP, directory.ProfileAD)),
		str(&l.LDAPUserNameAttribute, "ldap-username-attribute", "LDAP_USERNAME_ATTRIBUTE", "",
			"userName source: mail or userPrincipalName (default per profile)"),
		str(&l.LDAPDisabledAttribute, "ldap-disabled-attribute", "LDAP_DISABLED_ATTRIBUTE", "",
			"non-AD: attribute marking disabled accounts"),
		str(&l.LDAPDisabledValue, "ldap-disabled-value", "LDAP_DISABLED_VALUE", "", "non-AD: its value for disabled accounts"),
		integer(&l.LDAPPageSize, "ldap-page-size", "LDAP_PAGE_SIZE", directory.DefaultPageSize, "paged search size",
			atLeast(&l.LDAPPageSize, 0)),
		boolean(&l.LDAPStartTLS, "ldap-start-tls", "LDAP_START_TLS", "upgrade an ldap:// connection with StartTLS"),
		str(&l.LDAPCAFile, "ldap-ca-file", "LDAP_CA_FILE", "",
			"PEM file of the CAs that sign the directory's certificate, else the system's"),
		str(&l.LDAPServerName, "ldap-server-name", "LDAP_SERVER_NAME", "",
			"name the directory's certificate must hold, else the host of --ldap-url"),
		boolean(&l.LDAPAllowPlaintextBind, "ldap-allow-plaintext-bind", "LDAP_ALLOW_PLAINTEXT_BIND",
			"allow a password bind over an unencrypted connection (ldap:// without StartTLS)"),
		boolean(&l.LDAPInChain, "ldap-in-chain", "LDAP_IN_CHAIN",
			"AD: resolve nested groups with LDAP_MATCHING_RULE_IN_CHAIN instead of expanding them"),
		booleanOn(&l.LDAPIncremental, "ldap-incremental", "LDAP_INCREMENTAL",
			"read only OpenLDAP's changes (RFC 4533, syncprov) between full reads; false: read the whole directory every sync"),
		integer(&l.LDAPFullReadHours, "ldap-full-read-hours", "LDAP_FULL_READ_HOURS", 0,
			"with incremental reads, read the whole directory every this many hours (0: 24)",
			atLeast(&l.LDAPFullReadHours, 0)),
	}
}

func (t *SuspendThresholds) entries() []entry {
	return []entry{
		integer(&t.SuspendThresholdPercent, "suspend-threshold-percent", "SUSPEND_THRESHOLD_PERCENT", 10,
			"hold suspensions above this % of linked users", between(&t.SuspendThresholdPercent, 0, 100)),
		integer(&t.SuspendThresholdMax, "suspend-threshold-max", "SUSPEND_THRESHOLD_MAX", 500,
			"hold suspensions above this count", atLeast(&t.SuspendThresholdMax, 0)),
	}
}

func (w *Worker) entries() []entry {
	es := w.Common.entries()
	es = append(es, w.LDAP.entries()...)
	es = append(es,
		urlSetting(&w.SCIMURL, "scim-url", "SCIM_URL", "SCIM 2.0 base URL; token from env SCIM_TOKEN or --scim-token-file",
			checkURL(&w.SCIMURL, "http", "https")),
		secret("SCIM_TOKEN", "SCIM bearer token (secret)"),
		str(&w.SCIMTokenFile, "scim-token-file", "SCIM_TOKEN_FILE", "", "file holding the SCIM bearer token"),
		float(&w.SCIMRate, "scim-rate", "SCIM_RATE", 10, "SCIM requests per second across all workers, 0 for no limit",
			func() error {
				if w.SCIMRate < 0 {
					return fmt.Errorf("must be 0 (no limit) or more, got %v", w.SCIMRate)
				}
				return nil
			}),
		boolean(&w.SCIMAllowHTTP, "scim-allow-http", "SCIM_ALLOW_HTTP",
			"allow an http:// SCIM URL off loopback (the token travels in clear)"),
	)
	es = append(es, w.SuspendThresholds.entries()...)
	return append(es,
		integer(&w.PageSize, "page-size", "USERSYNC_PAGE_SIZE", 0, "users per page workflow, 0 for the default 250",
			atLeast(&w.PageSize, 0)),
		integer(&w.PageWindow, "page-window", "USERSYNC_PAGE_WINDOW", 0, "page workflows at once, 0 for the default 8",
			atLeast(&w.PageWindow, 0)),
		integer(&w.UsersInFlight, "users-in-flight", "USERSYNC_USERS_IN_FLIGHT", 0, "users in flight per page, 0 for the default 20",
			atLeast(&w.UsersInFlight, 0)),
		integer(&w.SCIMActivities, "scim-activities", "USERSYNC_SCIM_ACTIVITIES", 0,
			"SCIM steps this worker runs at once over all organizations, 0 for the default 200", atLeast(&w.SCIMActivities, 0)),
		integer(&w.Syncs, "syncs", "USERSYNC_SYNCS", 0,
			"directory reads and plans this worker runs at once over all organizations (the rest wait in order), 0 for twice GOMAXPROCS",
			atLeast(&w.Syncs, 0)),
		integer(&w.Pages, "pages", "USERSYNC_PAGES", 0,
			"page evaluations this worker runs at once over all organizations (the rest wait in order), 0 for four times GOMAXPROCS",
			atLeast(&w.Pages, 0)),
		integer(&w.Pollers, "pollers", "USERSYNC_POLLERS", 0,
			"task polls this worker keeps open on each task queue however idle, 0 for the default 8", atLeast(&w.Pollers, 0)),
		// Empty is a value here (it turns the endpoint off), not "unset".
		emptyIsValue(str(&w.MetricsAddr, "metrics-addr", "USERSYNC_METRICS_ADDR", "127.0.0.1:9464",
			"host:port of the worker's /metrics and /healthz, empty for none")),
	)
}

// Settings binds the common settings (the starter's global flags) to c.
func (c *Common) Settings() *Settings { return &Settings{entries: c.entries()} }

// Settings binds the directory settings to l.
func (l *LDAP) Settings() *Settings { return &Settings{entries: l.entries()} }

// Settings binds the suspension thresholds to t.
func (t *SuspendThresholds) Settings() *Settings { return &Settings{entries: t.entries()} }

// Settings binds every worker setting to w.
func (w *Worker) Settings() *Settings { return &Settings{entries: w.entries()} }

// All describes every setting (the worker's, which include the starter's), secrets included.
func All() []Setting {
	var w Worker
	return w.Settings().List()
}

// Validate names the first missing setting the worker needs: the database and the secrets
// key always; the directory and the target only for the single-organization shortcut.
func (w *Worker) Validate() error {
	need := []struct{ name, v string }{{"DATABASE_URL", w.DatabaseURL}, {"USERSYNC_SECRETS_KEY_FILE", w.SecretsKeyFile}}
	if w.SingleOrg() {
		need = append(need, []struct{ name, v string }{
			{"LDAP_URL", w.LDAPURL}, {"LDAP_BASE_DN", w.LDAPBaseDN}, {"SCIM_URL", w.SCIMURL}}...)
	}
	for _, f := range need {
		if strings.TrimSpace(f.v) == "" {
			return fmt.Errorf("%s: required, not set", f.name)
		}
	}
	// One organization's SCIM steps in flight (one sync at a time, each with its window of
	// pages of users in flight) must leave room in a worker's SCIM slots for the others.
	window := firstSet(w.PageWindow, workflows.DefaultPageWindow)
	users := firstSet(w.UsersInFlight, workflows.DefaultUsersInFlight)
	if slots := firstSet(w.SCIMActivities, engine.DefaultSCIMActivities); window*users >= slots {
		return fmt.Errorf("USERSYNC_PAGE_WINDOW x USERSYNC_USERS_IN_FLIGHT: %d x %d = %d SCIM steps of one organization "+
			"in flight, not fewer than USERSYNC_SCIM_ACTIVITIES %d: one organization could take every SCIM slot of a worker",
			window, users, window*users, slots)
	}
	return nil
}

// firstSet is v, or def when v is 0 (the settings' "default").
func firstSet(v, def int) int {
	if v > 0 {
		return v
	}
	return def
}

// BindPassword is the directory bind password: env LDAP_BIND_PASSWORD, else the file.
func (l LDAP) BindPassword() (string, error) {
	return Secret("LDAP_BIND_PASSWORD", l.LDAPBindPasswordFile)
}

// OrgDirectory is these settings as an organization's directory settings.
func (l LDAP) OrgDirectory() orgs.Directory {
	return orgs.Directory{
		URL:                l.LDAPURL,
		BindDN:             l.LDAPBindDN,
		BaseDN:             l.LDAPBaseDN,
		Profile:            l.LDAPProfile,
		UserNameAttribute:  l.LDAPUserNameAttribute,
		DisabledAttribute:  l.LDAPDisabledAttribute,
		DisabledValue:      l.LDAPDisabledValue,
		PageSize:           l.LDAPPageSize,
		StartTLS:           l.LDAPStartTLS,
		CAFile:             l.LDAPCAFile,
		ServerName:         l.LDAPServerName,
		AllowPlaintextBind: l.LDAPAllowPlaintextBind,
		InChain:            l.LDAPInChain,
		FullReads:          !l.LDAPIncremental,
		FullReadHours:      l.LDAPFullReadHours,
	}
}

// Directory is the directory configuration of these settings, mapped by orgs.Directory.Config
// as an organization's are.
func (l LDAP) Directory(password string) directory.Config {
	return l.OrgDirectory().Config(password)
}

// SingleOrg reports whether the environment describes one organization's directory or
// target: the shortcut by which the worker writes them as that organization's settings.
func (w Worker) SingleOrg() bool { return w.LDAPURL != "" || w.SCIMURL != "" }

// OrgFromEnv is the organization the environment describes (SingleOrg), secrets included.
func (w Worker) OrgFromEnv() (orgs.Org, error) {
	password, err := w.BindPassword()
	if err != nil {
		return orgs.Org{}, err
	}
	token, err := Secret("SCIM_TOKEN", w.SCIMTokenFile)
	if err != nil {
		return orgs.Org{}, err
	}
	return orgs.Org{Name: w.Org, Settings: w.OrgSettings(), Secrets: orgs.Secrets{BindPassword: password, Token: token}}, nil
}

// OrgSettings is the worker's environment as an organization's settings (the
// single-organization shortcut). The target's TLS files have no environment setting.
func (w Worker) OrgSettings() orgs.Settings {
	return orgs.Settings{
		Directory:               w.OrgDirectory(),
		Target:                  orgs.Target{URL: w.SCIMURL, Rate: w.SCIMRate, AllowHTTP: w.SCIMAllowHTTP},
		SuspendThresholdPercent: w.SuspendThresholdPercent,
		SuspendThresholdMax:     w.SuspendThresholdMax,
	}
}

// checkURL accepts "" (required-ness is checked elsewhere) or an absolute URL of one of the
// schemes with a host. The error shows the URL with its password hidden.
func checkURL(p *string, schemes ...string) func() error {
	return func() error {
		if *p == "" {
			return nil
		}
		u, err := url.Parse(*p)
		if err == nil && u.Host != "" {
			for _, s := range schemes {
				if strings.EqualFold(u.Scheme, s) {
					return nil
				}
			}
		}
		forms := make([]string, len(schemes))
		for i, s := range schemes {
			forms[i] = s + "://host[:port]"
		}
		return fmt.Errorf("%q is not a URL of the form %s", Redact(*p), strings.Join(forms, " or "))
	}
}

// Secret reads a secret from env var key, else from file (the setting key+"_FILE"); "" when
// neither is set. The secret never appears in its errors.
func Secret(key, file string) (string, error) {
	if v := os.Getenv(key); v != "" {
		return v, nil
	}
	if file == "" {
		return "", nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("%s_FILE: %w", key, err)
	}
	v := strings.TrimSpace(string(b))
	if v == "" {
		return "", fmt.Errorf("%s_FILE: %s is empty", key, file)
	}
	return v, nil
}

// ParseInterval accepts Go durations ("15m", "1h").
func ParseInterval(s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil || d < time.Minute/2 {
		return 0, fmt.Errorf("interval: %q is not a duration of at least 30s (e.g. 15m)", s)
	}
	return d, nil
}
