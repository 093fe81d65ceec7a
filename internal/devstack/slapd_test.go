package devstack_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-ldap/ldap/v3"

	"github.com/usersync/usersync/internal/devstack"
	"github.com/usersync/usersync/internal/devstack/devstacktest"
)

// requireSlapd skips when slapd is not installed, unless CI demands integration tests.
func requireSlapd(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(devstack.SlapdBinary); err != nil {
		devstacktest.SkipUnlessRequired(t, "slapd not installed: %v", err)
	}
}

func newTestSlapd(t *testing.T) *devstack.Slapd {
	t.Helper()
	requireSlapd(t)
	s := &devstack.Slapd{
		Dir:           t.TempDir(),
		Suffix:        "dc=test,dc=org",
		AdminDN:       "cn=admin,dc=test,dc=org",
		AdminPassword: "s3cret-admin",
		SizeLimit:     5,
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Error(err)
		}
	})
	return s
}

func orgEntries(n int) []*ldap.AddRequest {
	base := ldap.NewAddRequest("dc=test,dc=org", nil)
	base.Attribute("objectClass", []string{"top", "dcObject", "organization"})
	base.Attribute("dc", []string{"test"})
	base.Attribute("o", []string{"Test"})
	ou := ldap.NewAddRequest("ou=People,dc=test,dc=org", nil)
	ou.Attribute("objectClass", []string{"organizationalUnit"})
	ou.Attribute("ou", []string{"People"})
	// Children first: devstack.LoadEntries must order parents before children itself.
	var out []*ldap.AddRequest
	for i := range n {
		u := ldap.NewAddRequest("uid=u"+string(rune('a'+i%26))+strings.Repeat("x", i/26)+",ou=People,dc=test,dc=org", nil)
		u.Attribute("objectClass", []string{"inetOrgPerson"})
		u.Attribute("uid", []string{"u" + string(rune('a'+i%26)) + strings.Repeat("x", i/26)})
		u.Attribute("cn", []string{"User"})
		u.Attribute("sn", []string{"User"})
		out = append(out, u)
	}
	return append(out, ou, base)
}

func countPeople(t *testing.T, s *devstack.Slapd) int {
	t.Helper()
	c, err := ldap.DialURL(s.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Bind(s.AdminDN, s.AdminPassword); err != nil {
		t.Fatal(err)
	}
	res, err := c.Search(ldap.NewSearchRequest("ou=People,dc=test,dc=org", ldap.ScopeSingleLevel,
		ldap.NeverDerefAliases, 0, 0, false, "(objectClass=inetOrgPerson)", []string{"1.1"}, nil))
	if err != nil {
		t.Fatal(err)
	}
	return len(res.Entries)
}

func TestSlapdStartLoadStop(t *testing.T) {
	s := newTestSlapd(t)
	if !s.Running() {
		t.Fatal("Running() = false after Start")
	}
	conf, err := os.ReadFile(filepath.Join(s.Dir, "slapd.conf"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(conf), s.AdminPassword) {
		t.Error("slapd.conf contains the admin password in clear")
	}

	ctx := context.Background()
	entries := orgEntries(1200) // several parallel connections
	if err := devstack.LoadEntries(ctx, s.URL(), s.AdminDN, s.AdminPassword, entries); err != nil {
		t.Fatal(err)
	}
	// Loading again skips existing entries instead of failing.
	if err := devstack.LoadEntries(ctx, s.URL(), s.AdminDN, s.AdminPassword, entries); err != nil {
		t.Fatalf("second load: %v", err)
	}
	// The admin is not subject to the size limit of 5.
	if got := countPeople(t, s); got != 1200 {
		t.Errorf("people = %d, want 1200", got)
	}

	// Start on a running instance of the same Dir is a no-op and finds its port.
	again := &devstack.Slapd{Dir: s.Dir, Suffix: s.Suffix, AdminDN: s.AdminDN, AdminPassword: s.AdminPassword}
	if err := again.Start(ctx); err != nil {
		t.Fatalf("second Start: %v", err)
	}
	if again.Port != s.Port {
		t.Errorf("second Start port = %d, want %d", again.Port, s.Port)
	}

	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	if s.Running() {
		t.Fatal("Running() = true after Stop")
	}
	if _, err := ldap.DialURL(s.URL()); err == nil {
		t.Error("still accepting connections after Stop")
	}

	// Data survives a restart.
	if err := s.Start(ctx); err != nil {
		t.Fatalf("restart: %v", err)
	}
	if got := countPeople(t, s); got != 1200 {
		t.Errorf("people after restart = %d, want 1200", got)
	}
}

func TestSlapdSizeLimitForOthers(t *testing.T) {
	s := newTestSlapd(t)
	ctx := context.Background()
	entries := orgEntries(20)
	reader := ldap.NewAddRequest("cn=reader,dc=test,dc=org", nil)
	reader.Attribute("objectClass", []string{"applicationProcess", "simpleSecurityObject"})
	reader.Attribute("cn", []string{"reader"})
	reader.Attribute("userPassword", []string{"reader-pw"})
	if err := devstack.LoadEntries(ctx, s.URL(), s.AdminDN, s.AdminPassword, append(entries, reader)); err != nil {
		t.Fatal(err)
	}
	c, err := ldap.DialURL(s.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Bind("cn=reader,dc=test,dc=org", "reader-pw"); err != nil {
		t.Fatal(err)
	}
	req := func() *ldap.SearchRequest {
		return ldap.NewSearchRequest("ou=People,dc=test,dc=org", ldap.ScopeSingleLevel,
			ldap.NeverDerefAliases, 0, 0, false, "(objectClass=inetOrgPerson)", []string{"1.1"}, nil)
	}
	if _, err := c.Search(req()); !ldap.IsErrorWithCode(err, ldap.LDAPResultSizeLimitExceeded) {
		t.Errorf("unpaged search of 20 entries with limit 5: err = %v, want size limit exceeded", err)
	}
	res, err := c.SearchWithPaging(req(), 3)
	if err != nil {
		t.Fatalf("paged search: %v", err)
	}
	if len(res.Entries) != 20 {
		t.Errorf("paged search returned %d entries, want 20", len(res.Entries))
	}
}

func TestLoadEntriesReportsFailingDN(t *testing.T) {
	s := newTestSlapd(t)
	bad := ldap.NewAddRequest("uid=orphan,ou=Nowhere,dc=test,dc=org", nil)
	bad.Attribute("objectClass", []string{"inetOrgPerson"})
	bad.Attribute("uid", []string{"orphan"})
	bad.Attribute("cn", []string{"o"})
	bad.Attribute("sn", []string{"o"})
	err := devstack.LoadEntries(context.Background(), s.URL(), s.AdminDN, s.AdminPassword, append(orgEntries(1), bad))
	if err == nil || !strings.Contains(err.Error(), "uid=orphan,ou=Nowhere") {
		t.Fatalf("err = %v, want one naming uid=orphan,ou=Nowhere", err)
	}
	err = devstack.LoadEntries(context.Background(), s.URL(), s.AdminDN, "wrong-password-xyz", orgEntries(1))
	if err == nil {
		t.Fatal("load with a wrong password succeeded")
	}
	if strings.Contains(err.Error(), "wrong-password-xyz") {
		t.Errorf("error leaks the password: %v", err)
	}
}
