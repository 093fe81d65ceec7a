package directory_test

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/go-ldap/ldap/v3"

	"github.com/usersync/usersync/internal/demo"
	"github.com/usersync/usersync/internal/devstack"
	"github.com/usersync/usersync/internal/devstack/devstacktest"
	"github.com/usersync/usersync/internal/directory"
	"github.com/usersync/usersync/internal/rules"
)

const (
	tlsSuffix   = "dc=example,dc=org"
	tlsAdminDN  = "cn=admin,dc=example,dc=org"
	tlsReaderDN = "cn=reader,dc=example,dc=org"
	tlsReaderPW = "tls-reader-secret-pw"
	// salesEMEA has a comma in its CN; the directory spells it with "\,".
	salesEMEA = `cn=Sales\, EMEA,ou=Groups,dc=example,dc=org`
	allGroup  = "cn=All,ou=Groups,dc=example,dc=org"
)

// One slapd with TLS (a certificate for localhost and 127.0.0.1 from a CA made here)
// serves the TLS tests: StartTLS on its ldap:// port, and an ldaps:// port.
var tlsShared struct {
	once   sync.Once
	dir    string // holds the CA, the certificate and the slapd
	s      *devstack.Slapd
	caFile string
	err    error
}

func tlsLDAP(t *testing.T) (*devstack.Slapd, string) {
	t.Helper()
	if _, err := os.Stat(devstack.SlapdBinary); err != nil {
		devstacktest.SkipUnlessRequired(t, "slapd not installed: %v", err)
	}
	tlsShared.once.Do(func() {
		dir, err := os.MkdirTemp("", "usersync-directory-tls-test-")
		if err != nil {
			tlsShared.err = err
			return
		}
		tlsShared.dir = dir
		s, caFile, err := startTLSSlapd(dir, "localhost", "localhost", "127.0.0.1")
		tlsShared.s, tlsShared.caFile, tlsShared.err = s, caFile, err
		if err != nil {
			return
		}
		tlsShared.err = devstack.LoadEntries(context.Background(), s.URL(), tlsAdminDN, adminPW, tlsEntries())
	})
	if tlsShared.err != nil {
		t.Fatalf("TLS slapd: %v", tlsShared.err)
	}
	return tlsShared.s, tlsShared.caFile
}

// startTLSSlapd starts a slapd in dir with a certificate (Common Name cn, subjectAltNames
// sans) from a new CA, and returns the CA's PEM file.
func startTLSSlapd(dir, cn string, sans ...string) (*devstack.Slapd, string, error) {
	ca, err := devstack.NewTestCA("usersync directory test CA")
	if err != nil {
		return nil, "", err
	}
	caFile, certFile, keyFile := filepath.Join(dir, "ca.pem"), filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := ca.WriteCA(caFile); err != nil {
		return nil, "", err
	}
	if err := ca.WriteServerCert(certFile, keyFile, cn, sans...); err != nil {
		return nil, "", err
	}
	s := &devstack.Slapd{Dir: filepath.Join(dir, "slapd"), Suffix: tlsSuffix, AdminDN: tlsAdminDN, AdminPassword: adminPW,
		TLSCertFile: certFile, TLSKeyFile: keyFile}
	return s, caFile, s.Start(context.Background())
}

func tlsEntries() []*ldap.AddRequest {
	add := func(dn string, attrs map[string][]string) *ldap.AddRequest {
		e := ldap.NewAddRequest(dn, nil)
		for k, v := range attrs {
			e.Attribute(k, v)
		}
		return e
	}
	person := func(uid string) *ldap.AddRequest {
		return add("uid="+uid+",ou=People,"+tlsSuffix, map[string][]string{"objectClass": {"inetOrgPerson"},
			"uid": {uid}, "cn": {uid}, "sn": {uid}, "mail": {uid + "@example.org"}})
	}
	return []*ldap.AddRequest{
		add(tlsSuffix, map[string][]string{"objectClass": {"dcObject", "organization"}, "dc": {"example"}, "o": {"Example"}}),
		add("ou=People,"+tlsSuffix, map[string][]string{"objectClass": {"organizationalUnit"}, "ou": {"People"}}),
		add("ou=Groups,"+tlsSuffix, map[string][]string{"objectClass": {"organizationalUnit"}, "ou": {"Groups"}}),
		add(tlsReaderDN, map[string][]string{"objectClass": {"applicationProcess", "simpleSecurityObject"},
			"cn": {"reader"}, "userPassword": {tlsReaderPW}}),
		person("ann"), person("bob"),
		add(salesEMEA, map[string][]string{"objectClass": {"groupOfNames"}, "cn": {"Sales, EMEA"},
			"member": {"uid=ann,ou=People," + tlsSuffix}}),
		// The nested group is spelled with a hex escape here.
		add(allGroup, map[string][]string{"objectClass": {"groupOfNames"}, "cn": {"All"},
			"member": {`CN=Sales\2C EMEA,OU=Groups,DC=example,DC=org`, "uid=bob,ou=People," + tlsSuffix}}),
	}
}

func tlsConfig(url string, mutate ...func(*directory.Config)) directory.Config {
	c := directory.Config{URL: url, BindDN: tlsReaderDN, BindPassword: tlsReaderPW, BaseDN: tlsSuffix}
	for _, m := range mutate {
		m(&c)
	}
	return c
}

func mustDial(t *testing.T, cfg directory.Config) *directory.Reader {
	t.Helper()
	r, err := directory.Dial(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Dial(%v): %v", cfg, err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func dialFails(t *testing.T, cfg directory.Config, wants ...string) {
	t.Helper()
	r, err := directory.Dial(context.Background(), cfg)
	if err == nil {
		r.Close()
		t.Fatalf("Dial(%v) succeeded, want an error with %q", cfg, wants)
	}
	t.Logf("Dial error: %v", err)
	for _, w := range wants {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("Dial(%v): err = %v\nwant %q in it", cfg, err, w)
		}
	}
	if cfg.BindPassword != "" && strings.Contains(err.Error(), cfg.BindPassword) {
		t.Errorf("error shows the password: %v", err)
	}
}

func TestTLSLDAPSWithTheCA(t *testing.T) {
	s, caFile := tlsLDAP(t)
	r := mustDial(t, tlsConfig(s.LDAPSURL(), func(c *directory.Config) { c.CAFile = caFile }))
	if !directory.TLSOn(r) {
		t.Error("ldaps:// connection is not TLS")
	}
	if ok, err := r.GroupExists(context.Background(), allGroup); !ok || err != nil {
		t.Errorf("GroupExists over ldaps = %v, %v", ok, err)
	}
	// The certificate holds localhost too.
	mustDial(t, tlsConfig(s.LDAPSURL(), func(c *directory.Config) { c.CAFile, c.ServerName = caFile, "localhost" }))
}

func TestTLSLDAPSWithoutTheCA(t *testing.T) {
	s, _ := tlsLDAP(t)
	dialFails(t, tlsConfig(s.LDAPSURL()), s.LDAPSURL(), "directory.caFile", "LDAP_CA_FILE", "usersync directory test CA")

	other, err := devstack.NewTestCA("another CA")
	if err != nil {
		t.Fatal(err)
	}
	otherFile := filepath.Join(t.TempDir(), "other.pem")
	if err := other.WriteCA(otherFile); err != nil {
		t.Fatal(err)
	}
	dialFails(t, tlsConfig(s.LDAPSURL(), func(c *directory.Config) { c.CAFile = otherFile }), "LDAP_CA_FILE")
	dialFails(t, tlsConfig(s.URL(), func(c *directory.Config) { c.StartTLS, c.CAFile = true, otherFile }),
		"StartTLS", "LDAP_CA_FILE")
}

func TestTLSServerNameMismatch(t *testing.T) {
	s, caFile := tlsLDAP(t)
	dialFails(t, tlsConfig(s.LDAPSURL(), func(c *directory.Config) { c.CAFile, c.ServerName = caFile, "dc1.example.org" }),
		s.LDAPSURL(), `"dc1.example.org"`, "localhost, 127.0.0.1", "LDAP_SERVER_NAME")
}

func TestTLSStartTLS(t *testing.T) {
	s, caFile := tlsLDAP(t)
	r := mustDial(t, tlsConfig(s.URL(), func(c *directory.Config) { c.StartTLS, c.CAFile = true, caFile }))
	if !directory.TLSOn(r) {
		t.Error("StartTLS connection is not TLS")
	}
	users, _, _ := snapshot(t, r, []string{allGroup}, nil, 0)
	if len(users) != 2 {
		t.Errorf("snapshot over StartTLS: %d users, want 2", len(users))
	}
	dialFails(t, tlsConfig(s.URL(), func(c *directory.Config) { c.StartTLS = true }), "StartTLS", "LDAP_CA_FILE")
}

func TestTLSStartTLSRefusedByTheServer(t *testing.T) {
	plain := demoLDAP(t) // no TLS configured
	dialFails(t, directory.Config{URL: plain.URL(), BindDN: readerDN, BindPassword: readerPW, BaseDN: demo.Suffix, StartTLS: true},
		"refused StartTLS")
}

func TestTLSLDAPSOnAPlainPort(t *testing.T) {
	s, caFile := tlsLDAP(t)
	url := strings.Replace(s.URL(), "ldap://", "ldaps://", 1)
	dialFails(t, tlsConfig(url, func(c *directory.Config) { c.CAFile = caFile }), "ldaps:// needs an LDAPS port", "LDAP_START_TLS")
}

func TestTLSCommonNameOnlyCertificate(t *testing.T) {
	if _, err := os.Stat(devstack.SlapdBinary); err != nil {
		devstacktest.SkipUnlessRequired(t, "slapd not installed: %v", err)
	}
	// As the certificate Samba generates for itself: the host only in the Common Name.
	s, caFile, err := startTLSSlapd(t.TempDir(), "localhost")
	if s != nil {
		t.Cleanup(func() { _ = s.Stop() })
	}
	if err != nil {
		t.Fatal(err)
	}
	cfg := directory.Config{URL: s.LDAPSURL(), BindDN: tlsAdminDN, BindPassword: adminPW, BaseDN: tlsSuffix,
		CAFile: caFile, ServerName: "localhost"}
	dialFails(t, cfg, "Common Name", "subjectAltName")
}

func TestTLSPlaintextBindRefused(t *testing.T) {
	s, _ := tlsLDAP(t)
	want := "directory " + s.URL() + ": refusing to send the bind password in clear; " +
		"use ldaps://, directory.startTLS (LDAP_START_TLS=true), or directory.allowPlaintextBind (LDAP_ALLOW_PLAINTEXT_BIND=true)"
	_, err := directory.Dial(context.Background(), tlsConfig(s.URL()))
	if err == nil || err.Error() != want {
		t.Errorf("plaintext bind to a loopback URL: err = %v, want %q", err, want)
	}
	// Anonymous binds send no password.
	r := mustDial(t, directory.Config{URL: s.URL(), BaseDN: tlsSuffix})
	if directory.TLSOn(r) {
		t.Error("plain connection is TLS")
	}
}

func TestTLSAllowPlaintextBindWarnsOnEveryDial(t *testing.T) {
	s, _ := tlsLDAP(t)
	var buf bytes.Buffer
	old := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(&buf, nil)))
	t.Cleanup(func() { slog.SetDefault(old) })

	cfg := tlsConfig(s.URL(), func(c *directory.Config) { c.AllowPlaintextBind = true })
	for range 2 {
		r := mustDial(t, cfg)
		if ok, err := r.GroupExists(context.Background(), salesEMEA); !ok || err != nil {
			t.Errorf("GroupExists over a plaintext bind = %v, %v", ok, err)
		}
	}
	log := buf.String()
	if n := strings.Count(log, "level=WARN"); n != 2 || !strings.Contains(log, "in clear") || !strings.Contains(log, tlsReaderDN) {
		t.Errorf("want 2 warnings naming the URL and bind DN, got:\n%s", log)
	}
	if strings.Contains(log, tlsReaderPW) {
		t.Errorf("warning shows the password:\n%s", log)
	}
	// With TLS, no warning.
	buf.Reset()
	mustDial(t, tlsConfig(s.LDAPSURL(), func(c *directory.Config) { c.CAFile, c.AllowPlaintextBind = tlsShared.caFile, true }))
	if buf.Len() != 0 {
		t.Errorf("warning over ldaps: %s", buf.String())
	}
}

// TestSnapshotMatchesGroupDNSpellings: a group whose CN has a comma is the same group
// however a rule spells it (\, or \2C, any case), and through a member value spelled
// differently from the group's own DN.
func TestSnapshotMatchesGroupDNSpellings(t *testing.T) {
	s, caFile := tlsLDAP(t)
	r := mustDial(t, tlsConfig(s.LDAPSURL(), func(c *directory.Config) { c.CAFile = caFile }))
	ctx := context.Background()
	spellings := []string{salesEMEA, `CN=Sales\2C EMEA,OU=Groups,DC=example,DC=org`, `cn=sales\2c emea, ou=groups, dc=example, dc=org`}
	want := rules.NormalizeDN(salesEMEA)
	for _, sp := range spellings {
		if rules.NormalizeDN(sp) != want {
			t.Errorf("NormalizeDN(%q) = %q, want %q", sp, rules.NormalizeDN(sp), want)
		}
		if ok, err := r.GroupExists(ctx, sp); !ok || err != nil {
			t.Errorf("GroupExists(%q) = %v, %v", sp, ok, err)
		}
		users, stats, _ := snapshot(t, r, []string{sp, allGroup}, nil, 0)
		if len(stats.MissingGroups) != 0 {
			t.Errorf("%q: missing groups %v", sp, stats.MissingGroups)
		}
		ann, bob := users["uid=ann,ou=People,"+tlsSuffix], users["uid=bob,ou=People,"+tlsSuffix]
		all := rules.NormalizeDN(allGroup)
		if got := ann.Groups; len(got) != 2 || got[0] != all || got[1] != want {
			t.Errorf("%q: ann's Groups = %v, want [%s %s]", sp, got, all, want)
		}
		if got := bob.Groups; len(got) != 1 || got[0] != all {
			t.Errorf("%q: bob's Groups = %v, want [%s]", sp, got, all)
		}
		// A rule naming the group in this spelling matches ann's Groups.
		rs := []rules.Rule{{ID: 1, Priority: 1, GroupDN: rules.NormalizeDN(sp), Role: "Member"}}
		if _, ok := rules.Resolve(rs, ann.Groups); !ok {
			t.Errorf("rule %q does not match ann's Groups %v", sp, ann.Groups)
		}
	}
	var found bool
	for _, g := range mustGroups(t, r) {
		found = found || rules.NormalizeDN(g) == want
	}
	if !found {
		t.Errorf("Groups() has no DN normalizing to %s", want)
	}
}
