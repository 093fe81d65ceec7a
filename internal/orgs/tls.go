package orgs

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
	"time"
)

// TLSConfig is the TLS configuration of the HTTPS connection to the target: the CA file's
// CAs instead of the system's when set, and the client certificate when set. Nil when
// neither is set (the defaults). Errors name the field and the path.
func (t Target) TLSConfig() (*tls.Config, error) {
	if t.CAFile == "" && t.ClientCertFile == "" {
		return nil, nil
	}
	c := &tls.Config{MinVersion: tls.VersionTLS12}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("target.caFile: %w", err)
		}
		c.RootCAs = x509.NewCertPool()
		if !c.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("target.caFile: %s holds no PEM certificate", t.CAFile)
		}
	}
	if t.ClientCertFile != "" {
		cert, err := tls.LoadX509KeyPair(t.ClientCertFile, t.ClientKeyFile)
		if err != nil {
			return nil, fmt.Errorf("target.clientCertFile %s / target.clientKeyFile %s: %w", t.ClientCertFile, t.ClientKeyFile, err)
		}
		c.Certificates = []tls.Certificate{cert}
	}
	return c, nil
}

// HTTPClient is an HTTP client for the target with TLSConfig and a 30s timeout.
func (t Target) HTTPClient() (*http.Client, error) {
	tc, err := t.TLSConfig()
	if err != nil {
		return nil, err
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = tc
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}, nil
}
