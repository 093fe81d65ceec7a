package config

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// testCA issues certificates for the tests.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "usersync test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// issue returns a PEM certificate and key for cn, a server (with dnsName) or a client.
func (ca *testCA) issue(t *testing.T, cn, dnsName string, usage x509.ExtKeyUsage) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
	}
	if dnsName != "" {
		tmpl.DNSNames = []string{dnsName}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
}

func writeFile(t *testing.T, dir, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestTemporalTLSConfigVerifiesTheServerAndPresentsTheClientCertificate(t *testing.T) {
	t.Setenv("TEMPORAL_API_KEY", "")
	dir := t.TempDir()
	ca := newTestCA(t)
	serverCert, serverKey := ca.issue(t, "temporal", "temporal.internal.test", x509.ExtKeyUsageServerAuth)
	clientCert, clientKey := ca.issue(t, "usersync-worker", "", x509.ExtKeyUsageClientAuth)
	c := Common{
		TemporalAddress:       "10.0.0.1:7233",
		TemporalTLSCAFile:     writeFile(t, dir, "ca.pem", ca.pem),
		TemporalTLSServerName: "temporal.internal.test",
		TemporalTLSCertFile:   writeFile(t, dir, "client.pem", clientCert),
		TemporalTLSKeyFile:    writeFile(t, dir, "client.key", clientKey),
	}
	cfg, err := c.TemporalTLSConfig(false)
	if err != nil {
		t.Fatal(err)
	}
	if cfg == nil || cfg.ServerName != "temporal.internal.test" || cfg.RootCAs == nil || len(cfg.Certificates) != 1 || cfg.MinVersion < tls.VersionTLS12 {
		t.Fatalf("tls.Config = %+v", cfg)
	}
	leaf, err := x509.ParseCertificate(cfg.Certificates[0].Certificate[0])
	if err != nil || leaf.Subject.CommonName != "usersync-worker" {
		t.Errorf("client certificate: %v, %v", leaf, err)
	}

	// A real handshake with a server that requires a client certificate from the same CA.
	pair, err := tls.X509KeyPair(serverCert, serverKey)
	if err != nil {
		t.Fatal(err)
	}
	clientCAs := x509.NewCertPool()
	clientCAs.AddCert(ca.cert)
	server, err := handshake(t, &tls.Config{Certificates: []tls.Certificate{pair}, ClientCAs: clientCAs,
		ClientAuth: tls.RequireAndVerifyClientCert}, cfg)
	if err != nil {
		t.Fatalf("handshake: %v", err)
	}
	if peers := server.ConnectionState().PeerCertificates; len(peers) == 0 || peers[0].Subject.CommonName != "usersync-worker" {
		t.Errorf("server saw client certificates %v", peers)
	}

	// The wrong server name fails verification.
	wrong := c
	wrong.TemporalTLSServerName = "other.test"
	cfg2, err := wrong.TemporalTLSConfig(false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := handshake(t, &tls.Config{Certificates: []tls.Certificate{pair}}, cfg2); err == nil {
		t.Error("handshake with the wrong server name succeeded")
	}
}

// handshake connects a TLS client with clientCfg to a loopback TLS server with serverCfg and
// returns the server's side once both handshakes are done, or the client's error.
func handshake(t *testing.T, serverCfg, clientCfg *tls.Config) (*tls.Conn, error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan *tls.Conn, 1)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			accepted <- nil
			return
		}
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
		server := tls.Server(conn, serverCfg)
		_ = server.Handshake()
		accepted <- server
	}()
	conn, err := net.DialTimeout("tcp", ln.Addr().String(), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	client := tls.Client(conn, clientCfg)
	err = client.Handshake()
	if err == nil {
		// TLS 1.3: the server verifies the client certificate after the client finished.
		_, _ = client.Write([]byte("x"))
	}
	client.Close()
	server := <-accepted
	if server != nil {
		t.Cleanup(func() { server.Close() })
	}
	return server, err
}

func TestTemporalTLSIsOffUnlessAskedOrImplied(t *testing.T) {
	t.Setenv("TEMPORAL_API_KEY", "")
	if cfg, err := (Common{}).TemporalTLSConfig(false); err != nil || cfg != nil {
		t.Errorf("nothing set: %v, %v, want plaintext", cfg, err)
	}
	for _, c := range []Common{{TemporalTLS: true}, {TemporalTLSServerName: "temporal.test"}} {
		if cfg, err := c.TemporalTLSConfig(false); err != nil || cfg == nil || cfg.RootCAs != nil {
			t.Errorf("%+v: %v, %v, want TLS with the system's CAs", c, cfg, err)
		}
	}
	if cfg, err := (Common{}).TemporalTLSConfig(true); err != nil || cfg == nil {
		t.Errorf("API key: %v, %v, want TLS", cfg, err)
	}
}

func TestTemporalOptionsWithAnAPIKey(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("TEMPORAL_API_KEY", "")
	c := Common{TemporalAddress: "ns.acct.tmprl.cloud:7233", Namespace: "ns.acct",
		TemporalAPIKeyFile: writeFile(t, dir, "key", []byte("api-key-value\n"))}
	opts, err := c.TemporalOptions(nil)
	if err != nil {
		t.Fatal(err)
	}
	if opts.HostPort != c.TemporalAddress || opts.Namespace != c.Namespace || opts.Credentials == nil || opts.ConnectionOptions.TLS == nil {
		t.Errorf("options = %+v, want the address, namespace, credentials and TLS", opts)
	}
	plain, err := (Common{TemporalAddress: "127.0.0.1:7233", Namespace: "default"}).TemporalOptions(nil)
	if err != nil || plain.Credentials != nil || plain.ConnectionOptions.TLS != nil {
		t.Errorf("no key: %+v, %v, want plaintext without credentials", plain, err)
	}
	t.Setenv("TEMPORAL_API_KEY", "from-env")
	if opts, err := (Common{}).TemporalOptions(nil); err != nil || opts.Credentials == nil || opts.ConnectionOptions.TLS == nil {
		t.Errorf("TEMPORAL_API_KEY: %+v, %v", opts, err)
	}
}

func TestTemporalTLSFileErrorsNameTheSettingAndPath(t *testing.T) {
	t.Setenv("TEMPORAL_API_KEY", "")
	dir := t.TempDir()
	ca := newTestCA(t)
	cert, key := ca.issue(t, "c", "", x509.ExtKeyUsageClientAuth)
	certFile, keyFile := writeFile(t, dir, "c.pem", cert), writeFile(t, dir, "c.key", key)
	missing := filepath.Join(dir, "missing.pem")
	notPEM := writeFile(t, dir, "not.pem", []byte("hello"))
	otherKey := func() string {
		_, k := ca.issue(t, "d", "", x509.ExtKeyUsageClientAuth)
		return writeFile(t, dir, "d.key", k)
	}()
	for _, tc := range []struct {
		c    Common
		want []string
	}{
		{Common{TemporalTLSCAFile: missing}, []string{"TEMPORAL_TLS_CA_FILE", missing}},
		{Common{TemporalTLSCAFile: notPEM}, []string{"TEMPORAL_TLS_CA_FILE", notPEM, "no PEM certificate"}},
		{Common{TemporalTLSCertFile: missing, TemporalTLSKeyFile: keyFile}, []string{"TEMPORAL_TLS_CERT_FILE", missing}},
		{Common{TemporalTLSCertFile: certFile, TemporalTLSKeyFile: missing}, []string{"TEMPORAL_TLS_KEY_FILE", missing}},
		{Common{TemporalTLSCertFile: certFile}, []string{"TEMPORAL_TLS_KEY_FILE", "set both"}},
		{Common{TemporalTLSCertFile: certFile, TemporalTLSKeyFile: otherKey}, []string{"TEMPORAL_TLS_CERT_FILE", certFile, otherKey}},
		{Common{TemporalAPIKeyFile: missing}, []string{"TEMPORAL_API_KEY_FILE", missing}},
	} {
		_, err := tc.c.TemporalOptions(nil)
		for _, w := range tc.want {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("%+v: error %v, want it to name %q", tc.c, err, w)
			}
		}
	}
}
