package devstack_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/usersync/usersync/internal/devstack"
	"github.com/usersync/usersync/internal/devstack/devstacktest"
)

func TestSambaDCServesLDAPAndHoldsTheLock(t *testing.T) {
	dc := devstacktest.SambaDC(t)
	t.Logf("provisioning took %s", dc.ProvisionTime)

	// LDAPS with the DC's CA, checked for the DC's name.
	pemCA, err := os.ReadFile(dc.CAFile())
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pemCA)
	c, err := ldap.DialURL(dc.LDAPSURL(), ldap.DialWithTLSConfig(&tls.Config{RootCAs: pool, ServerName: dc.ServerName()}))
	if err != nil {
		t.Fatalf("ldaps: %v", err)
	}
	defer c.Close()
	if err := c.Bind(dc.AdminDN(), dc.AdminPassword); err != nil {
		t.Fatalf("bind over ldaps: %v", err)
	}
	res, err := c.Search(ldap.NewSearchRequest(dc.BaseDN(), ldap.ScopeBaseObject, ldap.NeverDerefAliases, 0, 0, false,
		"(objectClass=*)", []string{"objectGUID"}, nil))
	if err != nil || len(res.Entries) != 1 {
		t.Fatalf("read the domain object: %v", err)
	}

	out, err := dc.Tool(context.Background(), "user", "show", "Administrator", "--attributes=sAMAccountName")
	if err != nil || !strings.Contains(out, "sAMAccountName: Administrator") {
		t.Errorf("samba-tool user show: %q, %v", out, err)
	}

	// A second DC waits for the lock while this one runs.
	other := &devstack.SambaDC{Dir: t.TempDir(), Realm: "OTHER.EXAMPLE.TEST", Domain: "OTHER", AdminPassword: "Other-Pw-1234!"}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := other.Start(ctx); err == nil || !strings.Contains(err.Error(), devstack.SambaLockFile) {
		_ = other.Stop()
		t.Errorf("second DC: err = %v, want it waiting for %s", err, devstack.SambaLockFile)
	}
	if _, err := os.Stat(filepath.Join(other.Dir, "dc")); err == nil {
		t.Error("second DC provisioned without the lock")
	}
}

func TestMain(m *testing.M) {
	code := m.Run()
	devstacktest.StopSambaDC()
	os.Exit(code)
}
