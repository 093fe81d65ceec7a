// Package orgs owns an organization's settings: its directory, its target and its suspension
// thresholds, with the two secrets (the LDAP bind password, the SCIM bearer token) sealed with
// AES-256-GCM under a key file (keyring.go) before they reach PostgreSQL. It validates and
// encrypts; the storage is a RecordStore (internal/store), and Repo joins the two.
package orgs

import (
	"fmt"
	"math"
	"net"
	"net/url"
	"strings"
	"time"
	"unicode"

	"github.com/usersync/usersync/internal/directory"
)

// Directory is how to reach and read the organization's directory (AD or LDAP).
type Directory struct {
	URL                string `json:"url"`
	BindDN             string `json:"bindDN"`
	BaseDN             string `json:"baseDN"`
	Profile            string `json:"profile"`
	UserNameAttribute  string `json:"userNameAttribute"`
	DisabledAttribute  string `json:"disabledAttribute"`
	DisabledValue      string `json:"disabledValue"`
	PageSize           int    `json:"pageSize"`
	StartTLS           bool   `json:"startTLS"`
	CAFile             string `json:"caFile"`
	ServerName         string `json:"serverName"`
	AllowPlaintextBind bool   `json:"allowPlaintextBind"`
	InChain            bool   `json:"inChain"`
	// FullReads turns incremental reads off: every sync reads the whole directory.
	// Otherwise (the default) a directory that supports them (OpenLDAP with syncprov) is read
	// for its changes only, and in full every FullReadHours (0: 24). Stored as the opt-out,
	// so that settings saved without it (also those saved while incremental reads were
	// opt-in) take the default.
	FullReads     bool `json:"fullReads,omitempty"`
	FullReadHours int  `json:"fullReadHours,omitempty"`
}

// Incremental reports whether the directory is read for its changes only (the default).
func (d Directory) Incremental() bool { return !d.FullReads }

// FullReadEvery is how often incremental reads read the whole directory (0: the default).
func (d Directory) FullReadEvery() time.Duration { return time.Duration(d.FullReadHours) * time.Hour }

// Target is the organization's SCIM 2.0 service provider.
type Target struct {
	URL string `json:"url"`
	// Rate is the requests per second across all workers; 0 is no limit.
	Rate float64 `json:"rate"`
	// CAFile (PEM) replaces the system CAs for the HTTPS connection; ClientCertFile and
	// ClientKeyFile (PEM, set both) are a client certificate for mutual TLS.
	CAFile         string `json:"caFile"`
	ClientCertFile string `json:"clientCertFile"`
	ClientKeyFile  string `json:"clientKeyFile"`
	// AllowHTTP allows an http:// URL to a host other than loopback (the token and users'
	// data then travel in clear): an explicit choice for a private network, as compose's.
	AllowHTTP bool `json:"allowHTTP,omitempty"`
}

// Settings are an organization's settings without its secrets.
type Settings struct {
	Directory               Directory `json:"directory"`
	Target                  Target    `json:"target"`
	SuspendThresholdPercent int       `json:"suspendThresholdPercent"`
	SuspendThresholdMax     int       `json:"suspendThresholdMax"`
}

// Secrets are an organization's secrets in clear. They never leave the process: not in
// errors, logs, history or output.
type Secrets struct {
	BindPassword, Token string
}

// String hides the values, so that printing Secrets (or an Org) by mistake shows none.
func (s Secrets) String() string {
	return fmt.Sprintf("{BindPassword:%s Token:%s}", setOrNot(s.BindPassword), setOrNot(s.Token))
}

// GoString hides them from %#v too.
func (s Secrets) GoString() string { return "orgs.Secrets" + s.String() }

func setOrNot(v string) string {
	if v == "" {
		return "not set"
	}
	return "set"
}

// Org is one organization's current settings.
type Org struct {
	Name     string   `json:"name"`
	Version  int64    `json:"version"`
	Settings Settings `json:"settings"`
	Secrets  Secrets  `json:"-"`
}

// Field names of the secrets: the additional data of their encryption and their names in
// the store and the history.
const (
	FieldBindPassword = "directory.bindPassword"
	FieldToken        = "target.token"
)

// Defaults of new settings (the worker's environment has the same).
const (
	DefaultRate                    = 10
	DefaultSuspendThresholdPercent = 10
	DefaultSuspendThresholdMax     = 500
)

// ValidateName checks an organization name: it is part of workflow IDs (usersync/<org>) and
// of the secrets' additional data, so no slash, no control character, no edge spaces.
func ValidateName(org string) error {
	switch {
	case strings.TrimSpace(org) == "":
		return fmt.Errorf("organization %q: empty", org)
	case strings.TrimSpace(org) != org:
		return fmt.Errorf("organization %q: leading or trailing space", org)
	case len(org) > 100:
		return fmt.Errorf("organization %q: longer than 100 bytes", org)
	case strings.Contains(org, "/"):
		return fmt.Errorf("organization %q: contains a slash", org)
	case strings.ContainsFunc(org, unicode.IsControl):
		return fmt.Errorf("organization %q: contains a control character", org)
	}
	return nil
}

// Validate reports the first invalid setting, naming its field and value.
func (s Settings) Validate() error {
	if err := s.Directory.validate(); err != nil {
		return err
	}
	if err := s.Target.validate(); err != nil {
		return err
	}
	if p := s.SuspendThresholdPercent; p < 0 || p > 100 {
		return fmt.Errorf("suspendThresholdPercent: %d is not between 0 and 100", p)
	}
	if m := s.SuspendThresholdMax; m < 0 {
		return fmt.Errorf("suspendThresholdMax: %d is negative", m)
	}
	return nil
}

func (d Directory) validate() error {
	u, err := url.Parse(d.URL)
	if d.URL == "" {
		return fmt.Errorf("directory.url: required, an ldap:// or ldaps:// URL")
	}
	if err != nil || (u.Scheme != "ldap" && u.Scheme != "ldaps") || u.Host == "" || u.User != nil {
		return fmt.Errorf("directory.url: %q is not an ldap:// or ldaps:// URL (ldap[s]://host[:port])", redactURL(d.URL))
	}
	tlsOn := u.Scheme == "ldaps" || d.StartTLS
	switch {
	case strings.TrimSpace(d.BaseDN) == "":
		return fmt.Errorf("directory.baseDN: required, the search base (e.g. dc=example,dc=com)")
	case d.Profile != directory.ProfileOpenLDAP && d.Profile != directory.ProfileAD:
		return fmt.Errorf("directory.profile: %q is not %s or %s", d.Profile, directory.ProfileOpenLDAP, directory.ProfileAD)
	case d.UserNameAttribute != "" && !validAttribute(d.UserNameAttribute):
		return fmt.Errorf("directory.userNameAttribute: %q is not an attribute name", d.UserNameAttribute)
	case d.DisabledAttribute != "" && !validAttribute(d.DisabledAttribute):
		return fmt.Errorf("directory.disabledAttribute: %q is not an attribute name", d.DisabledAttribute)
	case (d.DisabledAttribute == "") != (d.DisabledValue == ""):
		return fmt.Errorf("directory.disabledAttribute %q and directory.disabledValue %q: set both or neither",
			d.DisabledAttribute, d.DisabledValue)
	case d.PageSize < 0:
		return fmt.Errorf("directory.pageSize: %d is negative (0 is the default %d)", d.PageSize, directory.DefaultPageSize)
	case d.StartTLS && u.Scheme == "ldaps":
		return fmt.Errorf("directory.startTLS: true with %q, which is TLS already: use ldap:// with StartTLS, or ldaps:// without", d.URL)
	case !tlsOn && d.CAFile != "":
		return fmt.Errorf("directory.caFile: %q set, but %q uses no TLS (use ldaps:// or startTLS)", d.CAFile, d.URL)
	case !tlsOn && d.ServerName != "":
		return fmt.Errorf("directory.serverName: %q set, but %q uses no TLS (use ldaps:// or startTLS)", d.ServerName, d.URL)
	case !tlsOn && d.BindDN != "" && !d.AllowPlaintextBind:
		return fmt.Errorf("directory.url: %q with bind DN %q would send the bind password in clear: "+
			"use ldaps://, startTLS, or allowPlaintextBind", d.URL, d.BindDN)
	case d.FullReadHours < 0:
		return fmt.Errorf("directory.fullReadHours: %d is negative (0 is the default %d)", d.FullReadHours,
			int(directory.DefaultFullReadEvery/time.Hour))
	case d.InChain && d.Profile != directory.ProfileAD:
		return fmt.Errorf("directory.inChain: true needs profile %q, not %q", directory.ProfileAD, d.Profile)
	}
	return nil
}

func (t Target) validate() error {
	if t.URL == "" {
		return fmt.Errorf("target.url: required, the SCIM 2.0 base URL (https://...)")
	}
	u, err := url.Parse(t.URL)
	switch {
	case err != nil || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "":
		return fmt.Errorf("target.url: %q is not an https:// URL (https://host[:port]/path)", redactURL(t.URL))
	case strings.EqualFold(u.Scheme, "https"):
	case strings.EqualFold(u.Scheme, "http") && (isLoopback(u.Hostname()) || t.AllowHTTP):
		// The token travels in clear: only to this machine (tests, a local proxy), or where
		// the organization's settings say so.
	case strings.EqualFold(u.Scheme, "http"):
		return fmt.Errorf("target.url: %q is not an https:// URL (http:// only to 127.0.0.1, ::1 or localhost, or with target.allowHTTP)", t.URL)
	default:
		return fmt.Errorf("target.url: %q is not an https:// URL", t.URL)
	}
	switch {
	case math.IsNaN(t.Rate) || math.IsInf(t.Rate, 0) || t.Rate < 0:
		return fmt.Errorf("target.rate: %v is not 0 (no limit) or a positive number of requests per second", t.Rate)
	case (t.ClientCertFile == "") != (t.ClientKeyFile == ""):
		return fmt.Errorf("target.clientCertFile %q and target.clientKeyFile %q: set both or neither", t.ClientCertFile, t.ClientKeyFile)
	case !strings.EqualFold(u.Scheme, "https") && (t.CAFile != "" || t.ClientCertFile != ""):
		return fmt.Errorf("target.caFile/clientCertFile: set, but %q is not https://", t.URL)
	}
	return nil
}

// isLoopback is true for localhost and loopback IP addresses.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// validAttribute accepts an LDAP attribute description: a name or an OID.
func validAttribute(s string) bool {
	for _, r := range s {
		if !(r == '-' || r == '.' || r == ';' || unicode.IsDigit(r) || (r < unicode.MaxASCII && unicode.IsLetter(r))) {
			return false
		}
	}
	return s != ""
}

// redactURL hides a password written into a URL.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		// Unparsable: whatever stands before an '@' may be a password.
		if at := strings.LastIndex(s, "@"); at >= 0 {
			if scheme := strings.Index(s, "://"); scheme >= 0 && scheme+3 <= at {
				return s[:scheme+3] + "xxxxx" + s[at:]
			}
			return "xxxxx" + s[at:]
		}
		return s
	}
	if u.User != nil {
		if _, ok := u.User.Password(); ok {
			u.User = url.UserPassword(u.User.Username(), "xxxxx")
			return u.String()
		}
	}
	return s
}

// Config is the directory configuration of these settings: the one mapping of directory
// settings to directory.Config (the worker's environment goes through it too).
func (d Directory) Config(password string) directory.Config {
	return directory.Config{
		URL:                d.URL,
		BindDN:             d.BindDN,
		BindPassword:       password,
		BaseDN:             d.BaseDN,
		Profile:            d.Profile,
		UserNameAttribute:  d.UserNameAttribute,
		DisabledAttribute:  d.DisabledAttribute,
		DisabledValue:      d.DisabledValue,
		PageSize:           d.PageSize,
		StartTLS:           d.StartTLS,
		CAFile:             d.CAFile,
		ServerName:         d.ServerName,
		AllowPlaintextBind: d.AllowPlaintextBind,
		InChain:            d.InChain,
	}
}
