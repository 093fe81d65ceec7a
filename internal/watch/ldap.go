package watch

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/usersync/usersync/internal/directory"
)

// Probe is a bound connection that reads a directory's change mark.
type Probe struct {
	conn   *ldap.Conn
	cfg    directory.Config
	suffix string // OpenLDAP: the naming context holding cfg.BaseDN, found on first read
}

// Dial connects and binds as the sync's reader does (directory.Connect). It is its own
// connection: the sync's reader keeps its own.
func Dial(ctx context.Context, cfg directory.Config) (*Probe, error) {
	conn, err := directory.Connect(ctx, cfg)
	if err != nil {
		return nil, err
	}
	return &Probe{conn: conn, cfg: cfg}, nil
}

// Close ends the connection.
func (p *Probe) Close() error { return p.conn.Close() }

// guard runs f and closes the connection when ctx ends first.
func (p *Probe) guard(ctx context.Context, f func() error) error {
	stop := context.AfterFunc(ctx, func() { p.conn.Close() })
	err := f()
	if !stop() {
		return ctx.Err()
	}
	return err
}

// Mark reads the change mark. Active Directory: the rootDSE's highestCommittedUSN, the
// DC's update sequence number, bumped by every write it commits (read by anyone, unlike
// DirSync, which needs the replication right). OpenLDAP: the contextCSN of the suffix
// holding the base DN, which the syncprov overlay moves on every write.
func (p *Probe) Mark(ctx context.Context) (string, error) {
	if p.cfg.Profile == directory.ProfileAD {
		v, err := p.base(ctx, "", "highestCommittedUSN")
		if err != nil {
			return "", err
		}
		if len(v) == 0 {
			return "", fmt.Errorf("directory %s: the rootDSE has no highestCommittedUSN: %w", p.cfg.URL, ErrNoMark)
		}
		return v[0], nil
	}
	if p.suffix == "" {
		s, err := p.findSuffix(ctx)
		if err != nil {
			return "", err
		}
		p.suffix = s
	}
	v, err := p.base(ctx, p.suffix, "contextCSN")
	if err != nil {
		return "", err
	}
	if len(v) == 0 {
		return "", fmt.Errorf("directory %s: %q has no contextCSN (watch needs OpenLDAP's syncprov overlay on it): %w",
			p.cfg.URL, p.suffix, ErrNoMark)
	}
	slices.Sort(v) // one per provider, in no set order
	return strings.Join(v, " "), nil
}

// findSuffix is the naming context that holds the base DN (the base DN itself when the
// server lists none that does).
func (p *Probe) findSuffix(ctx context.Context) (string, error) {
	ncs, err := p.base(ctx, "", "namingContexts")
	if err != nil {
		return "", err
	}
	base, err := ldap.ParseDN(p.cfg.BaseDN)
	if err != nil {
		return "", fmt.Errorf("directory %s: base DN %q: %w", p.cfg.URL, p.cfg.BaseDN, err)
	}
	for _, nc := range ncs {
		if d, err := ldap.ParseDN(nc); err == nil && (d.EqualFold(base) || d.AncestorOfFold(base)) {
			return nc, nil
		}
	}
	return p.cfg.BaseDN, nil
}

// base reads attr of the entry dn (empty: the rootDSE).
func (p *Probe) base(ctx context.Context, dn, attr string) ([]string, error) {
	req := ldap.NewSearchRequest(dn, ldap.ScopeBaseObject, ldap.NeverDerefAliases, 1, int(time.Minute/time.Second), false,
		"(objectClass=*)", []string{attr}, nil)
	var res *ldap.SearchResult
	err := p.guard(ctx, func() (err error) {
		res, err = p.conn.Search(req)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("directory %s: read %s of %q: %w", p.cfg.URL, attr, dn, err)
	}
	if len(res.Entries) == 0 {
		return nil, nil
	}
	return res.Entries[0].GetAttributeValues(attr), nil
}
