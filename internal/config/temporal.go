package config

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"

	"github.com/usersync/usersync/internal/codec"
	"github.com/usersync/usersync/internal/orgs"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/log"
)

// TemporalOptions builds the Temporal client options of the worker and the starter: address,
// namespace, TLS (server verification, mTLS client certificate) and API key credentials. It
// reads the certificate, key and API key files, so a missing file fails here, naming the
// setting and the path.
func (c Common) TemporalOptions(logger log.Logger) (client.Options, error) {
	opts := client.Options{HostPort: c.TemporalAddress, Namespace: c.Namespace, Logger: logger}
	key, err := Secret("TEMPORAL_API_KEY", c.TemporalAPIKeyFile)
	if err != nil {
		return client.Options{}, err
	}
	if key != "" {
		opts.Credentials = client.NewAPIKeyStaticCredentials(key)
	}
	if opts.ConnectionOptions.TLS, err = c.TemporalTLSConfig(key != ""); err != nil {
		return client.Options{}, err
	}
	if c.PayloadKeyFile != "" {
		cd, err := c.PayloadCodec()
		if err != nil {
			return client.Options{}, err
		}
		cd.RequireEncryption = c.PayloadRequireEncryption
		opts.DataConverter, opts.FailureConverter = cd.DataConverter(), cd.FailureConverter()
	}
	return opts, nil
}

// PayloadCodec is the codec of USERSYNC_PAYLOAD_KEY_FILE.
func (c Common) PayloadCodec() (codec.Codec, error) {
	keys, err := orgs.LoadKeyring(c.PayloadKeyFile)
	if err != nil {
		return codec.Codec{}, fmt.Errorf("USERSYNC_PAYLOAD_KEY_FILE: %w", err)
	}
	return codec.Codec{Keys: keys}, nil
}

// TemporalTLSConfig is the TLS configuration of the connection to Temporal, nil for plaintext.
// TLS is on with TEMPORAL_TLS, any other TEMPORAL_TLS_* setting, or an API key (apiKey).
func (c Common) TemporalTLSConfig(apiKey bool) (*tls.Config, error) {
	if !c.TemporalTLS && !apiKey && c.TemporalTLSCAFile == "" && c.TemporalTLSServerName == "" &&
		c.TemporalTLSCertFile == "" && c.TemporalTLSKeyFile == "" {
		return nil, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: c.TemporalTLSServerName}
	if c.TemporalTLSCAFile != "" {
		pem, err := os.ReadFile(c.TemporalTLSCAFile)
		if err != nil {
			return nil, fmt.Errorf("TEMPORAL_TLS_CA_FILE: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("TEMPORAL_TLS_CA_FILE: %s holds no PEM certificate", c.TemporalTLSCAFile)
		}
		cfg.RootCAs = pool
	}
	if (c.TemporalTLSCertFile == "") != (c.TemporalTLSKeyFile == "") {
		return nil, fmt.Errorf("TEMPORAL_TLS_CERT_FILE %q and TEMPORAL_TLS_KEY_FILE %q: set both or neither",
			c.TemporalTLSCertFile, c.TemporalTLSKeyFile)
	}
	if c.TemporalTLSCertFile != "" {
		certPEM, err := os.ReadFile(c.TemporalTLSCertFile)
		if err != nil {
			return nil, fmt.Errorf("TEMPORAL_TLS_CERT_FILE: %w", err)
		}
		keyPEM, err := os.ReadFile(c.TemporalTLSKeyFile)
		if err != nil {
			return nil, fmt.Errorf("TEMPORAL_TLS_KEY_FILE: %w", err)
		}
		pair, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			return nil, fmt.Errorf("TEMPORAL_TLS_CERT_FILE %s, TEMPORAL_TLS_KEY_FILE %s: %w",
				c.TemporalTLSCertFile, c.TemporalTLSKeyFile, err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg, nil
}
