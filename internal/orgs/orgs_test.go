package orgs_test

import (
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/usersync/usersync/internal/directory"
	"github.com/usersync/usersync/internal/orgs"
)

func validSettings() orgs.Settings {
	return orgs.Settings{
		Directory: orgs.Directory{URL: "ldaps://dc.example.com", BindDN: "cn=svc,dc=example,dc=com", BaseDN: "dc=example,dc=com",
			Profile: "ad"},
		Target:                  orgs.Target{URL: "https://api.example.com/identity/v2", Rate: 10},
		SuspendThresholdPercent: 10, SuspendThresholdMax: 500,
	}
}

func TestBadSettingsAreErrorsNamingFieldAndValue(t *testing.T) {
	if err := validSettings().Validate(); err != nil {
		t.Fatalf("valid settings: %v", err)
	}
	for _, tc := range []struct {
		change func(*orgs.Settings)
		want   string
	}{
		{func(s *orgs.Settings) { s.Target.URL = "ftp://x" }, `target.url: "ftp://x" is not an https:// URL`},
		{func(s *orgs.Settings) { s.Target.URL = "http://scim.example.com/v2" }, `target.url: "http://scim.example.com/v2" is not an https:// URL`},
		{func(s *orgs.Settings) { s.Target.URL = "" }, `target.url: required`},
		{func(s *orgs.Settings) { s.Target.URL = "https://u:pw@x/v2" }, `target.url: "https://u:xxxxx@x/v2"`},
		{func(s *orgs.Settings) { s.Target.Rate = -1 }, `target.rate: -1`},
		{func(s *orgs.Settings) { s.Target.Rate = math.NaN() }, `target.rate: NaN`},
		{func(s *orgs.Settings) { s.Target.ClientCertFile = "/c.pem" }, `target.clientCertFile "/c.pem" and target.clientKeyFile ""`},
		{func(s *orgs.Settings) { s.Directory.URL = "http://dc" }, `directory.url: "http://dc" is not an ldap:// or ldaps:// URL`},
		{func(s *orgs.Settings) { s.Directory.URL = "" }, `directory.url: required`},
		{func(s *orgs.Settings) { s.Directory.BaseDN = " " }, `directory.baseDN: required`},
		{func(s *orgs.Settings) { s.Directory.Profile = "novell" }, `directory.profile: "novell" is not openldap or ad`},
		{func(s *orgs.Settings) { s.Directory.PageSize = -5 }, `directory.pageSize: -5`},
		{func(s *orgs.Settings) { s.Directory.DisabledAttribute = "employeeType" }, `directory.disabledAttribute "employeeType" and directory.disabledValue ""`},
		{func(s *orgs.Settings) { s.Directory.UserNameAttribute = "mail address" }, `directory.userNameAttribute: "mail address"`},
		{func(s *orgs.Settings) { s.Directory.StartTLS = true }, `directory.startTLS: true with "ldaps://dc.example.com"`},
		{func(s *orgs.Settings) { s.Directory.URL = "ldap://dc" }, `directory.url: "ldap://dc" with bind DN "cn=svc,dc=example,dc=com" would send the bind password in clear`},
		{func(s *orgs.Settings) {
			s.Directory.URL, s.Directory.BindDN, s.Directory.CAFile = "ldap://dc", "", "/ca.pem"
		}, `directory.caFile: "/ca.pem" set, but "ldap://dc" uses no TLS`},
		{func(s *orgs.Settings) { s.Directory.Profile, s.Directory.InChain = "openldap", true }, `directory.inChain: true needs profile "ad", not "openldap"`},
		{func(s *orgs.Settings) { s.SuspendThresholdPercent = 101 }, `suspendThresholdPercent: 101 is not between 0 and 100`},
		{func(s *orgs.Settings) { s.SuspendThresholdPercent = -1 }, `suspendThresholdPercent: -1`},
		{func(s *orgs.Settings) { s.SuspendThresholdMax = -1 }, `suspendThresholdMax: -1 is negative`},
	} {
		s := validSettings()
		tc.change(&s)
		err := s.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Validate of %+v: error %v, want %q", s, err, tc.want)
		}
	}
	// http:// off loopback only by an explicit choice (compose's private network).
	s := validSettings()
	s.Target.URL, s.Target.AllowHTTP = "http://scim-sandbox:8090", true
	if err := s.Validate(); err != nil {
		t.Errorf("http:// with target.allowHTTP: %v", err)
	}
	s.Target.CAFile = "/ca.pem"
	if err := s.Validate(); err == nil {
		t.Error("a CA file for an http:// target is refused")
	}
}

// Issue #11: https is required, except to this machine.
func TestPlainHTTPTargetOnlyOnLoopback(t *testing.T) {
	for _, u := range []string{"http://127.0.0.1:8080/scim/v2", "http://[::1]:9/v2", "http://localhost/v2", "HTTPS://api.example.com"} {
		s := validSettings()
		s.Target.URL = u
		if err := s.Validate(); err != nil {
			t.Errorf("target.url %s: %v", u, err)
		}
	}
	for _, u := range []string{"http://127.0.0.1.example.com/v2", "http://10.0.0.1/v2", "http://localhost.evil/v2"} {
		s := validSettings()
		s.Target.URL = u
		if err := s.Validate(); err == nil {
			t.Errorf("target.url %s: accepted, want https required", u)
		}
	}
}

func TestOrganizationNames(t *testing.T) {
	for _, ok := range []string{"default", "acme", "Acme Corp.", "a_b-c"} {
		if err := orgs.ValidateName(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"", " acme", "a/b", "a\x00b", strings.Repeat("x", 101)} {
		if err := orgs.ValidateName(bad); err == nil || !strings.Contains(err.Error(), fmt.Sprintf("%q", bad)) {
			t.Errorf("%q: error %v, want one quoting the name", bad, err)
		}
	}
}

// Every directory setting reaches directory.Config (the read schedule: the worker's
// activities.Org, by Incremental() and FullReadEvery): a field added to one and not mapped
// fails here.
func TestDirectoryConfigMapsEveryField(t *testing.T) {
	d := orgs.Directory{URL: "ldap://dc:389", BindDN: "cn=svc", BaseDN: "dc=x", Profile: "ad", UserNameAttribute: "mail",
		DisabledAttribute: "st", DisabledValue: "off", PageSize: 250, StartTLS: true, CAFile: "/ca.pem", ServerName: "dc1",
		AllowPlaintextBind: true, InChain: true, FullReads: true, FullReadHours: 6}
	v := reflect.ValueOf(d)
	for i := range v.NumField() {
		if v.Field(i).IsZero() {
			t.Fatalf("test fixture leaves %s unset", v.Type().Field(i).Name)
		}
	}
	want := directory.Config{URL: "ldap://dc:389", BindDN: "cn=svc", BindPassword: "pw", BaseDN: "dc=x", Profile: "ad",
		UserNameAttribute: "mail", DisabledAttribute: "st", DisabledValue: "off", PageSize: 250, StartTLS: true,
		CAFile: "/ca.pem", ServerName: "dc1", AllowPlaintextBind: true, InChain: true}
	if got := d.Config("pw"); !reflect.DeepEqual(got, want) {
		t.Errorf("Config = %+v\nwant %+v", got, want)
	}
	if got := d.FullReadEvery(); got != 6*time.Hour {
		t.Errorf("FullReadEvery = %v, want 6h", got)
	}
	d.FullReadHours = -1
	s := orgs.Settings{Directory: d, Target: orgs.Target{URL: "https://scim.example.com"}}
	if err := s.Validate(); err == nil || !strings.Contains(err.Error(), "directory.fullReadHours: -1") {
		t.Errorf("fullReadHours -1: error %v, want one naming the field and value", err)
	}
}

func TestSecretsNeverPrint(t *testing.T) {
	o := orgs.Org{Name: "acme", Secrets: orgs.Secrets{BindPassword: "pw-123", Token: "tok-456"}}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
		if out := fmt.Sprintf(verb, o); strings.Contains(out, "pw-123") || strings.Contains(out, "tok-456") {
			t.Errorf("Sprintf(%s, org) shows a secret: %s", verb, out)
		}
	}
}

func TestAnUnparsableURLShowsNoPassword(t *testing.T) {
	s := orgs.Settings{Target: orgs.Target{URL: "https://u:pa55word@x/%zz"}}
	if err := s.Validate(); err == nil || strings.Contains(err.Error(), "pa55word") {
		t.Errorf("error %v", err)
	}
}
