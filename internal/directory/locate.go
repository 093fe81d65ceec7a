package directory

import (
	"context"
	"fmt"
	"strings"

	"github.com/go-ldap/ldap/v3"
)

// GroupRef names a ruled group: its DN (normalized) and its immutable ID (objectGUID on
// AD, entryUUID on OpenLDAP, canonical form), "" while not known.
type GroupRef struct {
	DN string `json:"dn"`
	ID string `json:"id,omitempty"`
}

// LocateGroups finds where each group is now. A group is found by its ID first, so that
// a group renamed or moved (under BaseDN) keeps its rules; by its DN when it has no ID
// yet or its ID is gone (the group deleted, maybe created again under the same name),
// taking that group's ID. located[i] is refs[i] as found, with the DN the directory
// holds now (normalized); a group found neither way is refs[i] unchanged with found[i]
// false (not an error: a rule may name a group that was deleted).
func (r *Reader) LocateGroups(ctx context.Context, refs []GroupRef) (located []GroupRef, found []bool, err error) {
	located, found = make([]GroupRef, len(refs)), make([]bool, len(refs))
	for i, ref := range refs {
		located[i] = ref
		var e *ldap.Entry
		if ref.ID != "" {
			if e, err = r.groupByID(ctx, ref.ID); err != nil {
				return nil, nil, err
			}
		}
		if e == nil && ref.DN != "" {
			if e, err = r.groupByDN(ctx, ref.DN); err != nil {
				return nil, nil, err
			}
		}
		if e == nil {
			continue
		}
		if id := r.entryID(e); id != "" {
			located[i] = GroupRef{DN: normalizeDN(e.DN), ID: id}
			found[i] = true
		}
	}
	return located, found, nil
}

// entryID is the entry's immutable ID in canonical form, "" when missing or malformed.
func (r *Reader) entryID(e *ldap.Entry) string {
	if r.cfg.Profile == ProfileAD {
		id, err := guidString(e.GetEqualFoldRawAttributeValue("objectGUID"))
		if err != nil {
			return ""
		}
		return id
	}
	return strings.ToLower(strings.TrimSpace(e.GetEqualFoldAttributeValue("entryUUID")))
}

// groupByID is the group under BaseDN with the ID, nil when there is none.
func (r *Reader) groupByID(ctx context.Context, id string) (*ldap.Entry, error) {
	var value string
	if r.cfg.Profile == ProfileAD {
		b, err := guidBytes(id)
		if err != nil {
			return nil, nil // not an ID of this directory: found by DN, if at all
		}
		var s strings.Builder
		for _, x := range b {
			fmt.Fprintf(&s, `\%02x`, x)
		}
		value = s.String()
	} else {
		value = ldap.EscapeFilter(id)
	}
	filter := fmt.Sprintf("(&%s(%s=%s))", r.cfg.GroupFilter, r.cfg.idAttribute(), value)
	req := ldap.NewSearchRequest(r.cfg.BaseDN, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 2, 0, false,
		filter, []string{r.cfg.idAttribute()}, nil)
	var res *ldap.SearchResult
	err := r.guard(ctx, func() (err error) { res, err = r.conn.Search(req); return err })
	if err != nil {
		return nil, fmt.Errorf("directory %s: look up group %s by %s: %w", r.cfg.URL, id, r.cfg.idAttribute(), err)
	}
	if len(res.Entries) != 1 {
		return nil, nil
	}
	return res.Entries[0], nil
}

// groupByDN is the group at dn, nil when there is none (or dn is no DN).
func (r *Reader) groupByDN(ctx context.Context, dn string) (*ldap.Entry, error) {
	req := ldap.NewSearchRequest(dn, ldap.ScopeBaseObject, ldap.NeverDerefAliases, 1, 0, false,
		r.cfg.GroupFilter, []string{r.cfg.idAttribute()}, nil)
	var res *ldap.SearchResult
	err := r.guard(ctx, func() (err error) { res, err = r.conn.Search(req); return err })
	switch {
	case ldap.IsErrorWithCode(err, ldap.LDAPResultNoSuchObject), ldap.IsErrorWithCode(err, ldap.LDAPResultInvalidDNSyntax),
		ldap.IsErrorWithCode(err, ldap.LDAPResultReferral):
		return nil, nil // a missing group, as the read reports it
	case err != nil:
		return nil, fmt.Errorf("directory %s: look up group %q: %w", r.cfg.URL, dn, err)
	}
	if len(res.Entries) != 1 {
		return nil, nil
	}
	return res.Entries[0], nil
}
