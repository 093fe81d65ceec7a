// Package config reads usersync's settings from flags and environment. Secrets come only from
// the environment or files, never from flags (flags show up in process lists).
package config

import (
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// Common is what every usersync process needs.
type Common struct {
	Org             string
	TemporalAddress string
	Namespace       string
	DatabaseURL     string
}

// Worker adds the directory and target settings.
type Worker struct {
	Common
	LDAPURL, LDAPBindDN, LDAPBaseDN, LDAPProfile string
	LDAPUserNameAttribute                        string
	LDAPDisabledAttribute, LDAPDisabledValue     string
	LDAPPageSize                                 int
	LDAPBindPasswordFile                         string
	SCIMURL                                      string
	SCIMTokenFile                                string
	SCIMRate                                     float64
	SuspendThresholdPercent, SuspendThresholdMax int
	PageSize, PageWindow, UsersInFlight          int
}

func env(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

func envInt(key string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(key)); err == nil {
		return v
	}
	return def
}

// BindCommon registers the common flags on fs, with defaults from the environment.
func (c *Common) BindCommon(fs *flag.FlagSet) {
	fs.StringVar(&c.Org, "org", env("USERSYNC_ORG", "default"), "organization ID (env USERSYNC_ORG)")
	fs.StringVar(&c.TemporalAddress, "temporal-address", env("TEMPORAL_ADDRESS", "127.0.0.1:7233"), "Temporal frontend host:port (env TEMPORAL_ADDRESS)")
	fs.StringVar(&c.Namespace, "namespace", env("TEMPORAL_NAMESPACE", "default"), "Temporal namespace (env TEMPORAL_NAMESPACE)")
	fs.StringVar(&c.DatabaseURL, "database-url", env("DATABASE_URL", ""), "PostgreSQL URL (env DATABASE_URL)")
}

// Bind registers the worker flags.
func (w *Worker) Bind(fs *flag.FlagSet) {
	w.BindCommon(fs)
	fs.StringVar(&w.LDAPURL, "ldap-url", env("LDAP_URL", ""), "directory URL, ldap:// or ldaps:// (env LDAP_URL)")
	fs.StringVar(&w.LDAPBindDN, "ldap-bind-dn", env("LDAP_BIND_DN", ""), "bind DN (env LDAP_BIND_DN); password from env LDAP_BIND_PASSWORD or --ldap-bind-password-file")
	fs.StringVar(&w.LDAPBindPasswordFile, "ldap-bind-password-file", env("LDAP_BIND_PASSWORD_FILE", ""), "file holding the bind password (env LDAP_BIND_PASSWORD_FILE)")
	fs.StringVar(&w.LDAPBaseDN, "ldap-base-dn", env("LDAP_BASE_DN", ""), "search base (env LDAP_BASE_DN)")
	fs.StringVar(&w.LDAPProfile, "ldap-profile", env("LDAP_PROFILE", "openldap"), "attribute profile: openldap or ad (env LDAP_PROFILE)")
	fs.StringVar(&w.LDAPUserNameAttribute, "ldap-username-attribute", env("LDAP_USERNAME_ATTRIBUTE", ""), "userName source: mail or userPrincipalName (env LDAP_USERNAME_ATTRIBUTE; default per profile)")
	fs.StringVar(&w.LDAPDisabledAttribute, "ldap-disabled-attribute", env("LDAP_DISABLED_ATTRIBUTE", ""), "non-AD: attribute marking disabled accounts (env LDAP_DISABLED_ATTRIBUTE)")
	fs.StringVar(&w.LDAPDisabledValue, "ldap-disabled-value", env("LDAP_DISABLED_VALUE", ""), "non-AD: its value for disabled accounts (env LDAP_DISABLED_VALUE)")
	fs.IntVar(&w.LDAPPageSize, "ldap-page-size", envInt("LDAP_PAGE_SIZE", 500), "paged search size (env LDAP_PAGE_SIZE)")
	fs.StringVar(&w.SCIMURL, "scim-url", env("SCIM_URL", ""), "SCIM 2.0 base URL (env SCIM_URL); token from env SCIM_TOKEN or --scim-token-file")
	fs.StringVar(&w.SCIMTokenFile, "scim-token-file", env("SCIM_TOKEN_FILE", ""), "file holding the SCIM bearer token (env SCIM_TOKEN_FILE)")
	rate, _ := strconv.ParseFloat(env("SCIM_RATE", "10"), 64)
	fs.Float64Var(&w.SCIMRate, "scim-rate", rate, "SCIM requests per second across all workers, 0 for no limit (env SCIM_RATE)")
	fs.IntVar(&w.SuspendThresholdPercent, "suspend-threshold-percent", envInt("SUSPEND_THRESHOLD_PERCENT", 10), "hold suspensions above this % of linked users (env SUSPEND_THRESHOLD_PERCENT)")
	fs.IntVar(&w.PageSize, "page-size", envInt("USERSYNC_PAGE_SIZE", 0), "users per page workflow, 0 for the default 250 (env USERSYNC_PAGE_SIZE)")
	fs.IntVar(&w.PageWindow, "page-window", envInt("USERSYNC_PAGE_WINDOW", 0), "page workflows at once, 0 for the default 8 (env USERSYNC_PAGE_WINDOW)")
	fs.IntVar(&w.UsersInFlight, "users-in-flight", envInt("USERSYNC_USERS_IN_FLIGHT", 0), "users in flight per page, 0 for the default 20 (env USERSYNC_USERS_IN_FLIGHT)")
	fs.IntVar(&w.SuspendThresholdMax, "suspend-threshold-max", envInt("SUSPEND_THRESHOLD_MAX", 500), "hold suspensions above this count (env SUSPEND_THRESHOLD_MAX)")
}

// Validate names the first missing or bad setting.
func (w *Worker) Validate() error {
	for _, f := range []struct{ name, v string }{
		{"DATABASE_URL", w.DatabaseURL}, {"LDAP_URL", w.LDAPURL}, {"LDAP_BASE_DN", w.LDAPBaseDN}, {"SCIM_URL", w.SCIMURL},
	} {
		if strings.TrimSpace(f.v) == "" {
			return fmt.Errorf("%s: required, not set", f.name)
		}
	}
	if w.SCIMRate < 0 {
		return fmt.Errorf("SCIM_RATE: must be 0 (no limit) or more, got %v", w.SCIMRate)
	}
	if w.LDAPProfile != "openldap" && w.LDAPProfile != "ad" {
		return fmt.Errorf("LDAP_PROFILE: must be openldap or ad, got %q", w.LDAPProfile)
	}
	return nil
}

// Secret reads a secret from env var key, else from file; "" when neither is set.
func Secret(key, file string) (string, error) {
	if v := os.Getenv(key); v != "" {
		return v, nil
	}
	if file == "" {
		return "", nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("%s file: %w", key, err)
	}
	return strings.TrimSpace(string(b)), nil
}

// ParseInterval accepts Go durations ("15m", "1h").
func ParseInterval(s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil || d < time.Minute/2 {
		return 0, fmt.Errorf("interval: %q is not a duration of at least 30s (e.g. 15m)", s)
	}
	return d, nil
}
