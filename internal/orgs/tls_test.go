package orgs_test

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/usersync/usersync/internal/devstack"
	"github.com/usersync/usersync/internal/orgs"
)

// A target behind a private CA that requires a client certificate: the organization's
// target.caFile and target.clientCertFile/clientKeyFile reach it; without the CA the server is
// not trusted, without the certificate the server refuses the connection.
func TestTargetWithPrivateCAAndClientCertificate(t *testing.T) {
	dir := t.TempDir()
	path := func(name string) string { return filepath.Join(dir, name) }
	ca, err := devstack.NewTestCA("target CA")
	require.NoError(t, err)
	require.NoError(t, ca.WriteCA(path("ca.pem")))
	require.NoError(t, ca.WriteServerCert(path("server.pem"), path("server.key"), "scim.test", "127.0.0.1"))
	require.NoError(t, ca.WriteClientCert(path("client.pem"), path("client.key"), "usersync"))
	other, err := devstack.NewTestCA("another CA")
	require.NoError(t, err)
	require.NoError(t, other.WriteCA(path("other-ca.pem")))

	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "hello "+r.TLS.PeerCertificates[0].Subject.CommonName)
	}))
	cert, err := tls.LoadX509KeyPair(path("server.pem"), path("server.key"))
	require.NoError(t, err)
	pool := x509.NewCertPool()
	pem, err := os.ReadFile(path("ca.pem"))
	require.NoError(t, err)
	require.True(t, pool.AppendCertsFromPEM(pem))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, ClientCAs: pool, ClientAuth: tls.RequireAndVerifyClientCert}
	srv.StartTLS()
	defer srv.Close()

	get := func(tg orgs.Target) (string, error) {
		tg.URL = srv.URL
		hc, err := tg.HTTPClient()
		require.NoError(t, err)
		resp, err := hc.Get(srv.URL + "/ServiceProviderConfig")
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return string(b), err
	}
	got, err := get(orgs.Target{CAFile: path("ca.pem"), ClientCertFile: path("client.pem"), ClientKeyFile: path("client.key")})
	require.NoError(t, err)
	require.Equal(t, "hello usersync", got, "the server saw the client certificate")

	_, err = get(orgs.Target{ClientCertFile: path("client.pem"), ClientKeyFile: path("client.key")})
	require.ErrorContains(t, err, "certificate signed by unknown authority", "without caFile: the system CAs")
	_, err = get(orgs.Target{CAFile: path("other-ca.pem"), ClientCertFile: path("client.pem"), ClientKeyFile: path("client.key")})
	require.ErrorContains(t, err, "certificate signed by unknown authority")
	_, err = get(orgs.Target{CAFile: path("ca.pem")})
	require.Error(t, err, "without the client certificate the server refuses")

	_, err = orgs.Target{CAFile: path("client.key")}.TLSConfig()
	require.ErrorContains(t, err, "target.caFile: "+path("client.key")+" holds no PEM certificate")
	_, err = orgs.Target{ClientCertFile: path("client.pem"), ClientKeyFile: path("server.key")}.TLSConfig()
	require.ErrorContains(t, err, "target.clientCertFile "+path("client.pem"))
}
