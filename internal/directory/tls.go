package directory

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	ber "github.com/go-asn1-ber/asn1-ber"
	"github.com/go-ldap/ldap/v3"
)

// The settings errors tell the reader to set: an organization's (starter orgs, the usual way)
// with the single-organization shortcut's environment variable beside it.
const (
	setCAFile     = "directory.caFile (LDAP_CA_FILE)"
	setStartTLS   = "directory.startTLS (LDAP_START_TLS=true)"
	setServerName = "directory.serverName (LDAP_SERVER_NAME)"
	setPlaintext  = "directory.allowPlaintextBind (LDAP_ALLOW_PLAINTEXT_BIND=true)"
	setBindDN     = "directory.bindDN (LDAP_BIND_DN)"
)

// loadCAFile reads a PEM bundle into a new pool.
func loadCAFile(path string) (*x509.CertPool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf(setCAFile+" %s: %w", path, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf(setCAFile+" %s: no PEM certificate in it", path)
	}
	return pool, nil
}

// tlsConfig is the TLS client configuration of ldaps:// and StartTLS: certificates are
// verified against CAFile (else the system roots) for ServerName (else the URL's host).
func (c Config) tlsConfig(host string) (*tls.Config, error) {
	tc := &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
	if c.ServerName != "" {
		tc.ServerName = c.ServerName
	}
	if c.CAFile != "" {
		pool, err := loadCAFile(c.CAFile)
		if err != nil {
			return nil, err
		}
		tc.RootCAs = pool
	}
	return tc, nil
}

const notTLSHint = "ldaps:// needs an LDAPS port (such as 636); for port 389 use ldap:// with " + setStartTLS

// startTLSOID is the StartTLS extended operation (RFC 4511, section 4.14).
const startTLSOID = "1.3.6.1.4.1.1466.20037"

// startTLS runs the StartTLS operation on a fresh connection, before go-ldap takes it
// over, and returns the TLS connection. (go-ldap's Conn.StartTLS flattens the handshake
// error into a string; done here, the certificate error keeps its type and can be
// explained.)
func startTLS(ctx context.Context, nc net.Conn, tc *tls.Config) (*tls.Conn, error) {
	if dl, ok := ctx.Deadline(); ok {
		_ = nc.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { _ = nc.SetDeadline(time.Now()) })
	defer stop()

	req := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "LDAP Request")
	req.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, 1, "MessageID"))
	ext := ber.Encode(ber.ClassApplication, ber.TypeConstructed, ldap.ApplicationExtendedRequest, nil, "Start TLS")
	ext.AppendChild(ber.NewString(ber.ClassContext, ber.TypePrimitive, 0, startTLSOID, "TLS Extended Command"))
	req.AppendChild(ext)
	if _, err := nc.Write(req.Bytes()); err != nil {
		return nil, ctxErr(ctx, fmt.Errorf("StartTLS: %w", err))
	}
	resp, err := ber.ReadPacket(nc)
	if err != nil {
		return nil, ctxErr(ctx, fmt.Errorf("StartTLS: read the answer: %w", err))
	}
	if len(resp.Children) < 2 {
		return nil, errors.New("StartTLS: malformed answer")
	}
	if id, ok := resp.Children[0].Value.(int64); !ok || id != 1 {
		// Message ID 0 is a Notice of Disconnection; GetLDAPError below says why.
		if err := ldap.GetLDAPError(resp); err != nil {
			return nil, fmt.Errorf("StartTLS: the server ended the connection: %w", err)
		}
		return nil, fmt.Errorf("StartTLS: answer to message %v, want 1", resp.Children[0].Value)
	}
	if err := ldap.GetLDAPError(resp); err != nil {
		return nil, fmt.Errorf("the server refused StartTLS (use ldaps://, or enable TLS on the server): %w", err)
	}
	_ = nc.SetDeadline(time.Time{}) // the handshake has its own context
	conn := tls.Client(nc, tc)
	if err := conn.HandshakeContext(ctx); err != nil {
		return nil, ctxErr(ctx, err)
	}
	return conn, nil
}

// ctxErr prefers the context's error: a read that failed because ctx ended says so.
func ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%w (%v)", ctx.Err(), err)
	}
	return err
}

// explainTLS turns a TLS failure into an error that says what to set. serverName is the
// name the certificate was checked for, caFile the CA bundle used ("": system roots).
func explainTLS(err error, serverName, caFile string) error {
	var (
		unknown  x509.UnknownAuthorityError
		hostname x509.HostnameError
		invalid  x509.CertificateInvalidError
		record   tls.RecordHeaderError
	)
	switch {
	case errors.As(err, &unknown) && caFile != "":
		return fmt.Errorf("TLS: the server's certificate is signed by an authority%s that %s %s does not hold; "+
			"set it to the PEM file of the CA that issued it: %w", issuerOf(unknown.Cert), setCAFile, caFile, err)
	case errors.As(err, &unknown):
		return fmt.Errorf("TLS: the server's certificate is signed by an authority not trusted here%s; "+
			"set %s to the PEM file of the CA that issued it: %w", issuerOf(unknown.Cert), setCAFile, err)
	case errors.As(err, &hostname):
		if c := hostname.Certificate; c != nil && len(c.DNSNames) == 0 && len(c.IPAddresses) == 0 {
			return fmt.Errorf("TLS: the server's certificate names %q only in its legacy Common Name, without a "+
				"subjectAltName, which is not accepted; reissue it with a subjectAltName for the host: %w", c.Subject.CommonName, err)
		}
		return fmt.Errorf("TLS: the server's certificate is not valid for %q (it is for %s); connect to a name it holds, "+
			"or set %s to one: %w", serverName, certNames(hostname.Certificate), setServerName, err)
	case errors.As(err, &invalid):
		hint := "check the certificate, and " + setCAFile
		if invalid.Reason == x509.Expired {
			hint = "it has expired or is not valid yet (check the clocks)"
		}
		return fmt.Errorf("TLS: the server's certificate is not valid: %s: %w", hint, err)
	case errors.As(err, &record):
		return fmt.Errorf("TLS: the server does not speak TLS on this port; %s: %w", notTLSHint, err)
	}
	return fmt.Errorf("TLS: %w", err)
}

func issuerOf(c *x509.Certificate) string {
	if c == nil {
		return ""
	}
	return fmt.Sprintf(" (issuer %q)", c.Issuer.String())
}

func certNames(c *x509.Certificate) string {
	if c == nil {
		return "other names"
	}
	var names []string
	names = append(names, c.DNSNames...)
	for _, ip := range c.IPAddresses {
		names = append(names, ip.String())
	}
	return strings.Join(names, ", ")
}

// AD's bind errors carry a "data" code naming the reason (LDAP result 49, and a few
// others), e.g. "80090308: LdapErr: DSID-0C09042A, comment: AcceptSecurityContext error,
// data 52e, v3839". Each reason says what to do: only 525 and 52e are about the
// configured bind DN and password; the others are the account's state, which an AD
// administrator changes.
var adBindReasons = map[string]string{
	"525": "no such account; check LDAP_BIND_DN",
	"52e": "wrong password, or no such account; check LDAP_BIND_DN and the bind password",
	"530": "the account may not log on at this time; an AD administrator must allow the service account's logon hours",
	"531": "the account may not log on from this workstation; an AD administrator must allow it to log on from this host (userWorkstations)",
	"532": "the account's password has expired; set a new password for the service account in AD, then the bind password here " +
		"(a service account's password is best set not to expire)",
	"533": "the account is disabled; an AD administrator must enable the service account (Enable-ADAccount, or samba-tool user enable)",
	"701": "the account has expired; an AD administrator must extend or clear the service account's expiry date (accountExpires)",
	"773": "the account must change its password; set a new password for the service account in AD, then the bind password here",
	"775": "the account is locked out; an AD administrator must unlock it (Unlock-ADAccount), and a wrong bind password " +
		"anywhere that uses the account must be corrected, or it locks again",
}

// explainBind adds what to check to a failed bind. It never includes the password.
func explainBind(err error) error {
	var le *ldap.Error
	if !errors.As(err, &le) {
		return err
	}
	switch le.ResultCode {
	case ldap.LDAPResultInvalidCredentials:
		msg := ""
		if le.Err != nil {
			msg = le.Err.Error()
		}
		if i := strings.Index(msg, ", data "); i >= 0 {
			code, _, _ := strings.Cut(msg[i+len(", data "):], ",")
			code = strings.ToLower(strings.TrimSpace(code))
			if r, ok := adBindReasons[code]; ok {
				return fmt.Errorf("invalid credentials (Active Directory data %s): %s: %w", code, r, err)
			}
			return fmt.Errorf("invalid credentials (Active Directory data %s); check LDAP_BIND_DN and the bind password, "+
				"and the service account's state in AD: %w", code, err)
		}
		return fmt.Errorf("invalid credentials; check "+setBindDN+" and the bind password: %w", err)
	case ldap.LDAPResultStrongAuthRequired, ldap.LDAPResultConfidentialityRequired:
		return fmt.Errorf("the server requires a protected connection for this bind (use ldaps:// or "+setStartTLS+"): %w", err)
	}
	return err
}
