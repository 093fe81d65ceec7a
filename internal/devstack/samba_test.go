package devstack

import (
	"crypto/tls"
	"crypto/x509"
	"os"
	"path/filepath"
	"testing"
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
