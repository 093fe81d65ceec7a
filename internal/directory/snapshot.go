package directory

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/go-ldap/ldap/v3"
)

// Stats describes one Snapshot.
type Stats struct {
	Users    int // user entries read (all of UserFilter under BaseDN)
	InScope  int // emitted users that are enabled
	Disabled int // emitted users that are disabled
	Groups   int // group entries read (all of GroupFilter under BaseDN)
	// MissingGroups are the requested groups (normalized) that the directory does not
	// have. Not an error: a rule may name a group that was deleted.
	MissingGroups []string
}

// uacDisabled is AD's userAccountControl ACCOUNTDISABLE bit.
const uacDisabled = 0x2

// Snapshot reads the directory and emits, in batches of batchSize (default PageSize),
// every user that is a member, directly or through nested groups, of at least one of
// groupDNs. Disabled members are emitted too, with Disabled set. Each user's Groups are
// the requested groups (normalized, sorted) that hold it; extraAttrs are copied into
// Attributes (first value; missing ones omitted).
//
// Any directory error fails the whole snapshot: a partial read must never look complete.
// Memory holds the group membership DNs and one batch of users, never all users; use
// SnapshotWith to keep the memberships out of memory too.
func (r *Reader) Snapshot(ctx context.Context, groupDNs []string, extraAttrs []string, batchSize int,
	emit func([]User) error) (Stats, error) {
	return r.SnapshotWith(ctx, nil, groupDNs, extraAttrs, batchSize, emit)
}

// SnapshotWith is Snapshot with the group memberships kept in idx: groups are added to it
// one LDAP page at a time and users looked up one page at a time, so with an index outside
// the process memory holds one page of groups, one page of users and one batch, whatever
// the directory's size. SnapshotWith closes idx when done, also on failure. A nil idx is
// an in-memory one.
func (r *Reader) SnapshotWith(ctx context.Context, idx MembershipIndex, groupDNs []string, extraAttrs []string,
	batchSize int, emit func([]User) error) (_ Stats, err error) {
	if idx == nil {
		idx = NewMemoryIndex()
	}
	defer func() {
		if cerr := idx.Close(ctx); cerr != nil {
			err = errors.Join(err, fmt.Errorf("directory snapshot: close membership index: %w", cerr))
		}
	}()
	if batchSize <= 0 {
		batchSize = r.cfg.PageSize
	}
	requested := normalizeAll(groupDNs)
	var stats Stats
	if stats.Groups, err = r.readGroups(ctx, idx); err != nil {
		return Stats{}, err
	}
	if stats.MissingGroups, err = idx.Resolve(ctx, requested); err != nil {
		return Stats{}, fmt.Errorf("directory snapshot: resolve nested groups: %w", err)
	}

	attrs := r.userAttributes(extraAttrs)
	batch := make([]User, 0, batchSize)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		if err := emit(batch); err != nil {
			return fmt.Errorf("directory snapshot: emit %d users: %w", len(batch), err)
		}
		batch = make([]User, 0, batchSize) // emit may keep the slice
		return nil
	}
	dns := make([]string, 0, r.cfg.PageSize)
	err = r.pagedSearch(ctx, r.cfg.UserFilter, attrs, func(es []*ldap.Entry) error {
		stats.Users += len(es)
		dns = dns[:0]
		for _, e := range es {
			dns = append(dns, normalizeDN(e.DN))
		}
		members, err := idx.Lookup(ctx, dns)
		if err != nil {
			return fmt.Errorf("directory snapshot: look up group memberships: %w", err)
		}
		for i, e := range es {
			held, ok := members[dns[i]]
			if !ok {
				continue
			}
			u, err := r.userOf(e, extraAttrs)
			if err != nil {
				return err
			}
			u.Groups = make([]string, len(held))
			for k, g := range held {
				u.Groups[k] = requested[g]
			}
			if u.Disabled {
				stats.Disabled++
			} else {
				stats.InScope++
			}
			batch = append(batch, u)
			if len(batch) >= batchSize {
				if err := flush(); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return Stats{}, fmt.Errorf("directory %s: read users under %q: %w", r.cfg.URL, r.cfg.BaseDN, err)
	}
	if err := flush(); err != nil {
		return Stats{}, err
	}
	return stats, nil
}

// normalizeAll normalizes, de-duplicates and sorts DNs (sorted input gives sorted Groups).
func normalizeAll(dns []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, d := range dns {
		n := normalizeDN(d)
		if n != "" && !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}

func (r *Reader) userAttributes(extra []string) []string {
	attrs := []string{r.cfg.idAttribute(), r.cfg.UserNameAttribute, "mail", "givenName", "sn", "displayName"}
	if r.cfg.DisabledAttribute != "" {
		attrs = append(attrs, r.cfg.DisabledAttribute)
	}
	if r.cfg.Profile == ProfileAD {
		attrs = append(attrs, "userAccountControl")
	}
	return append(attrs, extra...)
}

// userOf turns a user entry into a User (without Groups).
func (r *Reader) userOf(e *ldap.Entry, extraAttrs []string) (User, error) {
	u := User{
		DN:          e.DN,
		UserName:    e.GetEqualFoldAttributeValue(r.cfg.UserNameAttribute),
		Email:       e.GetEqualFoldAttributeValue("mail"),
		GivenName:   e.GetEqualFoldAttributeValue("givenName"),
		FamilyName:  e.GetEqualFoldAttributeValue("sn"),
		DisplayName: e.GetEqualFoldAttributeValue("displayName"),
	}
	if r.cfg.Profile == ProfileAD {
		raw := e.GetEqualFoldRawAttributeValue("objectGUID")
		if len(raw) == 0 {
			return User{}, fmt.Errorf("user %q: no objectGUID (not readable by the bind account?)", e.DN)
		}
		id, err := guidString(raw)
		if err != nil {
			return User{}, fmt.Errorf("user %q: %w", e.DN, err)
		}
		u.ExternalID = id
		if uac := e.GetEqualFoldAttributeValue("userAccountControl"); uac != "" {
			n, err := strconv.ParseInt(uac, 10, 64)
			if err != nil {
				return User{}, fmt.Errorf("user %q: userAccountControl %q is not a number", e.DN, uac)
			}
			u.Disabled = n&uacDisabled != 0
		}
	} else {
		u.ExternalID = e.GetEqualFoldAttributeValue("entryUUID")
		if u.ExternalID == "" {
			return User{}, fmt.Errorf("user %q: no entryUUID (not readable by the bind account?)", e.DN)
		}
	}
	if r.cfg.DisabledAttribute != "" {
		for _, v := range e.GetEqualFoldAttributeValues(r.cfg.DisabledAttribute) {
			if strings.EqualFold(strings.TrimSpace(v), r.cfg.DisabledValue) {
				u.Disabled = true
			}
		}
	}
	for _, a := range extraAttrs {
		if v := e.GetEqualFoldAttributeValue(a); v != "" {
			if u.Attributes == nil {
				u.Attributes = map[string]string{}
			}
			u.Attributes[a] = v
		}
	}
	return u, nil
}
