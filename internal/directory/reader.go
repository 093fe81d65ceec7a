package directory

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"sort"
	"syscall"
	"time"

	"github.com/go-ldap/ldap/v3"
)

// Reader is a bound, read-only connection to a directory. A Reader serves one call at a
// time. Cancelling the context of a call closes the connection: the Reader is then
// unusable and must be closed and dialed again.
type Reader struct {
	cfg  Config // with defaults applied
	conn *ldap.Conn
	now  func() time.Time // nil: time.Now (accountExpires)
	// mirror, when set, serves the user and group searches (SnapshotFromMirror).
	mirror MirrorView
	// mirrorOnly, when set, are the users (IDs, sorted) the mirror's user search returns
	// (SnapshotChanges).
	mirrorOnly []string
}

// Dial connects to cfg.URL and binds as cfg.BindDN (anonymously when it is empty). An
// ldaps:// URL is TLS from the start; with StartTLS, an ldap:// connection is upgraded
// before the bind. Certificates are checked against cfg.CAFile (else the system roots)
// for cfg.ServerName (else the URL's host). A bind with a password over a connection
// without TLS is refused unless cfg.AllowPlaintextBind, which logs a warning each time.
func Dial(ctx context.Context, cfg Config) (*Reader, error) {
	conn, err := Connect(ctx, cfg)
	if err != nil {
		return nil, err
	}
	return &Reader{cfg: cfg.withDefaults(), conn: conn}, nil
}

// Connect returns a connection bound as Dial binds (the same checks and errors), for
// callers that speak LDAP themselves (package watch's persistent search). Its request
// timeout is cfg.Timeout; cancelling ctx during the connect or bind closes it.
func Connect(ctx context.Context, cfg Config) (*ldap.Conn, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	u, _ := url.Parse(cfg.URL) // Validate parsed it
	ldaps := u.Scheme == "ldaps"
	host := u.Host
	if u.Port() == "" {
		host = net.JoinHostPort(u.Hostname(), pick(ldaps, "636", "389"))
	}
	var tc *tls.Config
	if ldaps || cfg.StartTLS {
		var err error
		if tc, err = cfg.tlsConfig(u.Hostname()); err != nil {
			return nil, fmt.Errorf("directory %s: %w", cfg.URL, err)
		}
	} else if cfg.BindDN != "" {
		slog.Warn("directory: sending the bind password in clear ("+setPlaintext+"); "+
			"use ldaps:// or "+setStartTLS, "url", cfg.URL, "bindDN", cfg.BindDN)
	}
	nd := &net.Dialer{Timeout: cfg.Timeout}
	var nc net.Conn
	var err error
	if ldaps {
		nc, err = (&tls.Dialer{NetDialer: nd, Config: tc}).DialContext(ctx, "tcp", host)
		if err != nil {
			return nil, fmt.Errorf("directory %s: connect: %w", cfg.URL, explainDialTLS(err, tc.ServerName, cfg.CAFile))
		}
	} else {
		if nc, err = nd.DialContext(ctx, "tcp", host); err != nil {
			return nil, fmt.Errorf("directory %s: connect: %w", cfg.URL, err)
		}
		if cfg.StartTLS {
			sctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
			tlsConn, err := startTLS(sctx, nc, tc)
			cancel()
			if err != nil {
				nc.Close()
				return nil, fmt.Errorf("directory %s: StartTLS: %w", cfg.URL, explainDialTLS(err, tc.ServerName, cfg.CAFile))
			}
			nc = tlsConn
		}
	}
	conn := ldap.NewConn(nc, tc != nil)
	conn.Start()
	conn.SetTimeout(cfg.Timeout)
	if cfg.BindDN != "" {
		err = (&Reader{conn: conn}).guard(ctx, func() error { return conn.Bind(cfg.BindDN, cfg.BindPassword) })
		if err != nil {
			conn.Close()
			return nil, fmt.Errorf("directory %s: bind as %q: %w", cfg.URL, cfg.BindDN, explainBind(err))
		}
	}
	return conn, nil
}

// explainDialTLS explains certificate and TLS protocol errors; others stay as they are.
func explainDialTLS(err error, serverName, caFile string) error {
	var (
		verify *tls.CertificateVerificationError
		record tls.RecordHeaderError
		alert  tls.AlertError
	)
	if errors.As(err, &verify) || errors.As(err, &record) || errors.As(err, &alert) {
		return explainTLS(err, serverName, caFile)
	}
	if errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) {
		// What a server that does not speak TLS on the port often does with a ClientHello.
		return fmt.Errorf("TLS: the server closed the connection during the handshake; %s: %w", notTLSHint, err)
	}
	return err
}

// Close ends the connection.
func (r *Reader) Close() error {
	if r == nil || r.conn == nil {
		return nil
	}
	return r.conn.Close()
}

// guard runs f and aborts it by closing the connection when ctx ends first.
func (r *Reader) guard(ctx context.Context, f func() error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, func() { r.conn.Close() })
	err := f()
	if !stop() {
		return fmt.Errorf("%w (connection closed)", ctx.Err())
	}
	return err
}

// pagedSearch runs an RFC 2696 paged search and hands each page to page.
func (r *Reader) pagedSearch(ctx context.Context, filter string, attrs []string, page func([]*ldap.Entry) error) error {
	if r.mirror != nil {
		return r.mirrorSearch(ctx, filter, page)
	}
	return r.pagedSearchAt(ctx, r.cfg.BaseDN, filter, attrs, nil, page)
}

// pagedSearchAt is pagedSearch of the directory under base, with more controls.
func (r *Reader) pagedSearchAt(ctx context.Context, base, filter string, attrs []string, controls []ldap.Control,
	page func([]*ldap.Entry) error) error {
	paging := ldap.NewControlPaging(uint32(r.cfg.PageSize))
	req := ldap.NewSearchRequest(base, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases,
		0, 0, false, filter, attrs, append([]ldap.Control{paging}, controls...))
	for {
		var res *ldap.SearchResult
		err := r.guard(ctx, func() (err error) { res, err = r.conn.Search(req); return err })
		if err != nil {
			return err
		}
		if err := page(res.Entries); err != nil {
			r.abandon(req, paging)
			return err
		}
		ctrl, ok := ldap.FindControl(res.Controls, ldap.ControlTypePaging).(*ldap.ControlPaging)
		if !ok || len(ctrl.Cookie) == 0 {
			return nil // last page (or a server that ignored paging and sent everything)
		}
		paging.SetCookie(ctrl.Cookie)
	}
}

// abandon tells the server to drop a paged search we stop early (page size 0).
func (r *Reader) abandon(req *ldap.SearchRequest, paging *ldap.ControlPaging) {
	paging.PagingSize = 0
	_, _ = r.conn.Search(req)
}

// GroupExists reports whether dn is a group (per GroupFilter) in the directory.
func (r *Reader) GroupExists(ctx context.Context, dn string) (bool, error) {
	req := ldap.NewSearchRequest(dn, ldap.ScopeBaseObject, ldap.NeverDerefAliases,
		1, 0, false, r.cfg.GroupFilter, []string{"1.1"}, nil)
	var res *ldap.SearchResult
	err := r.guard(ctx, func() (err error) { res, err = r.conn.Search(req); return err })
	switch {
	case ldap.IsErrorWithCode(err, ldap.LDAPResultNoSuchObject):
		return false, nil
	case ldap.IsErrorWithCode(err, ldap.LDAPResultInvalidDNSyntax):
		return false, fmt.Errorf("directory: group DN %q is not a valid DN", dn)
	case err != nil:
		return false, fmt.Errorf("directory %s: look up group %q: %w", r.cfg.URL, dn, err)
	}
	return len(res.Entries) > 0, nil
}

// Groups lists the DNs of all groups under BaseDN as the directory spells them, sorted
// by their normalized form.
func (r *Reader) Groups(ctx context.Context) ([]string, error) {
	var dns []string
	err := r.pagedSearch(ctx, r.cfg.GroupFilter, []string{"1.1"}, func(es []*ldap.Entry) error {
		for _, e := range es {
			dns = append(dns, e.DN)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("directory %s: list groups under %q: %w", r.cfg.URL, r.cfg.BaseDN, err)
	}
	sort.Slice(dns, func(i, j int) bool { return normalizeDN(dns[i]) < normalizeDN(dns[j]) })
	return dns, nil
}
