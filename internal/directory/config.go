package directory

import (
	"errors"
	"fmt"
	"net/url"
	"time"
)

// Directory profiles.
const (
	ProfileOpenLDAP = "openldap" // entryUUID, mail, a configurable disabled attribute
	ProfileAD       = "ad"       // objectGUID, userPrincipalName, userAccountControl bit 0x2
)

// Config says how to reach and read a directory. Zero values take the profile's defaults.
type Config struct {
	URL          string // ldap://host:389 or ldaps://host:636
	BindDN       string
	BindPassword string // never logged nor put in errors
	BaseDN       string
	Profile      string // ProfileOpenLDAP (default) or ProfileAD
	// UserNameAttribute defaults to mail (openldap) or userPrincipalName (ad).
	UserNameAttribute string
	// A user is disabled when DisabledAttribute equals DisabledValue (case-insensitive).
	// OpenLDAP default: employeeType=disabled. On AD, userAccountControl bit 0x2 always
	// counts; these add a second criterion only when set.
	DisabledAttribute, DisabledValue string
	UserFilter, GroupFilter          string
	PageSize                         int           // default 500
	Timeout                          time.Duration // per request and for dialing; default 30s

	// StartTLS upgrades an ldap:// connection with the StartTLS operation before binding.
	StartTLS bool
	// CAFile is a PEM bundle of the CAs trusted for ldaps:// and StartTLS, instead of the
	// system roots (used when it is empty).
	CAFile string
	// ServerName is the name the server's certificate must hold; default the URL's host.
	ServerName string
	// AllowPlaintextBind permits a simple bind with a password over a connection that is
	// neither ldaps:// nor StartTLS, i.e. the password sent in clear. Without it such a
	// configuration is refused, also for loopback URLs; with it, every dial logs a warning.
	AllowPlaintextBind bool

	// InChain resolves nested groups with Active Directory's LDAP_MATCHING_RULE_IN_CHAIN
	// (1.2.840.113556.1.4.1941): the server expands them, one search per requested group,
	// instead of the reader reading every group's members (the default). AD profile only.
	InChain bool

	// memberRange > 0 reads group members in ranges of this size (member;range=0-<n-1>,
	// ...) instead of asking for "member" and following the ranges the server cuts. Tests
	// use it: Samba, unlike AD, never cuts.
	memberRange int
}

// Defaults.
const (
	DefaultPageSize = 500
	DefaultTimeout  = 30 * time.Second
)

// String hides the bind password, so a Config can be printed or logged.
func (c Config) String() string {
	pw := ""
	if c.BindPassword != "" {
		pw = "***"
	}
	return fmt.Sprintf("{URL:%s BindDN:%s BindPassword:%s BaseDN:%s Profile:%s StartTLS:%t CAFile:%s ServerName:%s AllowPlaintextBind:%t}",
		c.URL, c.BindDN, pw, c.BaseDN, c.Profile, c.StartTLS, c.CAFile, c.ServerName, c.AllowPlaintextBind)
}

// GoString hides the bind password from %#v too.
func (c Config) GoString() string { return "directory.Config" + c.String() }

// Validate reports the first invalid field.
func (c Config) Validate() error {
	if c.URL == "" {
		return errors.New("directory config: URL is empty")
	}
	u, err := url.Parse(c.URL)
	if err != nil || (u.Scheme != "ldap" && u.Scheme != "ldaps") || u.Host == "" {
		return fmt.Errorf("directory config: URL %q: want ldap://host[:port] or ldaps://host[:port]", c.URL)
	}
	if c.BaseDN == "" {
		return errors.New("directory config: BaseDN is empty")
	}
	if c.BindDN != "" && c.BindPassword == "" {
		return fmt.Errorf("directory config: BindPassword is empty for BindDN %q", c.BindDN)
	}
	tlsOn := u.Scheme == "ldaps" || c.StartTLS
	switch {
	case c.StartTLS && u.Scheme == "ldaps":
		return fmt.Errorf("directory config: StartTLS with %s: the connection is TLS already; use ldap:// with StartTLS, or ldaps:// without", c.URL)
	case !tlsOn && (c.CAFile != "" || c.ServerName != ""):
		return fmt.Errorf("directory config: CAFile or ServerName set, but %s uses no TLS: use ldaps:// or StartTLS", c.URL)
	case !tlsOn && c.BindDN != "" && !c.AllowPlaintextBind:
		// Loopback URLs are not exempt: a password that works on 127.0.0.1 is copied to
		// other hosts, and a local proxy may forward the connection anywhere.
		return fmt.Errorf("directory %s: refusing to send the bind password in clear; "+
			"use ldaps://, %s, or %s", c.URL, setStartTLS, setPlaintext)
	}
	if c.CAFile != "" {
		if _, err := loadCAFile(c.CAFile); err != nil {
			return fmt.Errorf("directory config: %w", err)
		}
	}
	if c.InChain && c.Profile != ProfileAD {
		return fmt.Errorf("directory config: InChain (LDAP_MATCHING_RULE_IN_CHAIN) needs Profile %q, not %q", ProfileAD, c.withDefaults().Profile)
	}
	switch c.Profile {
	case "", ProfileOpenLDAP, ProfileAD:
	default:
		return fmt.Errorf("directory config: Profile %q: want %q or %q", c.Profile, ProfileOpenLDAP, ProfileAD)
	}
	if (c.DisabledAttribute == "") != (c.DisabledValue == "") {
		return fmt.Errorf("directory config: DisabledAttribute %q and DisabledValue %q must be set together", c.DisabledAttribute, c.DisabledValue)
	}
	if c.PageSize < 0 {
		return fmt.Errorf("directory config: PageSize %d is negative", c.PageSize)
	}
	if c.Timeout < 0 {
		return fmt.Errorf("directory config: Timeout %s is negative", c.Timeout)
	}
	return nil
}

// withDefaults fills the zero fields with the profile's defaults.
func (c Config) withDefaults() Config {
	if c.Profile == "" {
		c.Profile = ProfileOpenLDAP
	}
	ad := c.Profile == ProfileAD
	if c.UserNameAttribute == "" {
		c.UserNameAttribute = pick(ad, "userPrincipalName", "mail")
	}
	if c.DisabledAttribute == "" && !ad {
		c.DisabledAttribute, c.DisabledValue = "employeeType", "disabled"
	}
	if c.UserFilter == "" {
		c.UserFilter = pick(ad, "(&(objectCategory=person)(objectClass=user))", "(objectClass=inetOrgPerson)")
	}
	if c.GroupFilter == "" {
		c.GroupFilter = pick(ad, "(objectClass=group)", "(objectClass=groupOfNames)")
	}
	if c.PageSize == 0 {
		c.PageSize = DefaultPageSize
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	return c
}

func pick(cond bool, a, b string) string {
	if cond {
		return a
	}
	return b
}

// idAttribute is the immutable identifier of the profile.
func (c Config) idAttribute() string { return pick(c.Profile == ProfileAD, "objectGUID", "entryUUID") }
