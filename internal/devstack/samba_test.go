package devstack

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
)

func TestSetGlobalReplacesAndAdds(t *testing.T) {
	conf := "# Global parameters\n[global]\n\tserver services = s3fs, rpc, ldap\n\tRealm = X.TEST\n\tLog  File = /var/log/samba/log.%m\n\n[sysvol]\n\tpath = /x\n\tserver services = keep-me\n"
	got := setGlobal(conf, [][2]string{{"server services", "ldap"}, {"log file", "/d/samba.log"}})
	want := "# Global parameters\n[global]\n\tserver services = ldap\n\tlog file = /d/samba.log\n\tRealm = X.TEST\n\n[sysvol]\n\tpath = /x\n\tserver services = keep-me\n"
	if got != want {
		t.Errorf("setGlobal:\n%s\nwant:\n%s", got, want)
	}
	if got := setGlobal("[homes]\n", [][2]string{{"a", "b"}}); got != "[global]\n\ta = b\n[homes]\n" {
		t.Errorf("setGlobal without [global] = %q", got)
	}
}

func TestTestCAIssuesVerifiableCertificates(t *testing.T) {
	dir := t.TempDir()
	ca, err := NewTestCA("test CA")
	if err != nil {
		t.Fatal(err)
	}
	caFile, certFile, keyFile := filepath.Join(dir, "ca.pem"), filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := ca.WriteCA(caFile); err != nil {
		t.Fatal(err)
	}
	if err := ca.WriteServerCert(certFile, keyFile, "dc1.corp.test", "dc1.corp.test", "127.0.0.1"); err != nil {
		t.Fatal(err)
	}
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(pair.Certificate[0])
	pemCA, _ := os.ReadFile(caFile)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pemCA)
	for _, name := range []string{"dc1.corp.test", "127.0.0.1"} {
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: name}); err != nil {
			t.Errorf("verify for %s: %v", name, err)
		}
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: "other.test"}); err == nil {
		t.Error("certificate verified for a name it does not hold")
	}
	if st, _ := os.Stat(keyFile); st.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %v, want 0600", st.Mode().Perm())
	}
}

func TestSambaDCServesLDAPAndHoldsTheLock(t *testing.T) {
	dc := TestSambaDC(t)
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
	other := &SambaDC{Dir: t.TempDir(), Realm: "OTHER.EXAMPLE.TEST", Domain: "OTHER", AdminPassword: "Other-Pw-1234!"}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := other.Start(ctx); err == nil || !strings.Contains(err.Error(), SambaLockFile) {
		_ = other.Stop()
		t.Errorf("second DC: err = %v, want it waiting for %s", err, SambaLockFile)
	}
	if _, err := os.Stat(filepath.Join(other.Dir, "dc")); err == nil {
		t.Error("second DC provisioned without the lock")
	}
}

func TestMain(m *testing.M) {
	code := m.Run()
	StopTestSambaDC()
	os.Exit(code)
}
