package directory

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

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

// accountExpired reports whether an AD accountExpires value (100ns intervals since
// 1601-01-01 UTC) is at or before now. 0 and 0x7FFFFFFFFFFFFFFF mean never.
func accountExpired(v string, now time.Time) (bool, error) {
	n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	if err != nil {
		return false, fmt.Errorf("accountExpires %q is not a number", v)
	}
	if n <= 0 || n == math.MaxInt64 {
		return false, nil
	}
	const unixEpochIn1601 = 11644473600 // seconds from 1601-01-01 to 1970-01-01
	at := time.Unix(n/1e7-unixEpochIn1601, (n%1e7)*100)
	return !now.Before(at), nil
}

func (r *Reader) clock() time.Time {
	if r.now != nil {
		return r.now()
	}
	return time.Now()
}

// countGroups counts the entries of GroupFilter under BaseDN.
func (r *Reader) countGroups(ctx context.Context) (int, error) {
	n := 0
	err := r.pagedSearch(ctx, r.cfg.GroupFilter, []string{"1.1"}, func(es []*ldap.Entry) error {
		n += len(es)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("directory %s: count groups under %q: %w", r.cfg.URL, r.cfg.BaseDN, err)
	}
	return n, nil
}

// matchingRuleInChain is LDAP_MATCHING_RULE_IN_CHAIN: "memberOf:<it>:=G" matches the
// entries that are members of G directly or through nested groups (cycles included).
const matchingRuleInChain = "1.2.840.113556.1.4.1941"

// inChain asks the server, for each requested group (normalized, sorted), which users
// are members, directly or through nested groups, and returns user DN (normalized) ->
// indexes of the requested groups that hold it, and the requested groups that are not
// groups under BaseDN. Memory holds the DNs of the members of the requested groups.
func (r *Reader) inChain(ctx context.Context, requested []string) (map[string][]int, []string, error) {
	base, err := ldap.ParseDN(r.cfg.BaseDN)
	if err != nil {
		return nil, nil, fmt.Errorf("directory %s: BaseDN %q: %w", r.cfg.URL, r.cfg.BaseDN, err)
	}
	held := map[string][]int{}
	var missing []string
	for i, g := range requested {
		dn, err := ldap.ParseDN(g)
		underBase := err == nil && (base.EqualFold(dn) || base.AncestorOfFold(dn))
		exists := false
		if underBase {
			if exists, err = r.GroupExists(ctx, g); err != nil {
				return nil, nil, err
			}
		}
		if !exists {
			missing = append(missing, g)
			continue
		}
		filter := fmt.Sprintf("(&%s(memberOf:%s:=%s))", r.cfg.UserFilter, matchingRuleInChain, ldap.EscapeFilter(g))
		err = r.pagedSearch(ctx, filter, []string{"1.1"}, func(es []*ldap.Entry) error {
			for _, e := range es {
				k := normalizeDN(e.DN)
				if idx := held[k]; len(idx) == 0 || idx[len(idx)-1] != i {
					held[k] = append(idx, i)
				}
			}
			return nil
		})
		if err != nil {
			return nil, nil, fmt.Errorf("directory %s: members of group %q (in chain): %w", r.cfg.URL, g, err)
		}
	}
	return held, missing, nil
}

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
// an in-memory one. With Config.InChain the server resolves the nesting and idx is not
// used: memory then holds the DNs of the requested groups' members.
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
	lookup := idx.Lookup
	if r.cfg.InChain {
		// The server resolves nesting: idx is not needed (it is still closed).
		if stats.Groups, err = r.countGroups(ctx); err != nil {
			return Stats{}, err
		}
		var held map[string][]int
		if held, stats.MissingGroups, err = r.inChain(ctx, requested); err != nil {
			return Stats{}, err
		}
		lookup = func(_ context.Context, dns []string) (map[string][]int, error) {
			out := map[string][]int{}
			for _, dn := range dns {
				if is, ok := held[dn]; ok {
					out[dn] = is
				}
			}
			return out, nil
		}
	} else {
		if stats.Groups, err = r.readGroups(ctx, idx); err != nil {
			return Stats{}, err
		}
		if stats.MissingGroups, err = idx.Resolve(ctx, requested); err != nil {
			return Stats{}, fmt.Errorf("directory snapshot: resolve nested groups: %w", err)
		}
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
		members, err := lookup(ctx, dns)
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
		attrs = append(attrs, "userAccountControl", "accountExpires")
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
		if v := e.GetEqualFoldAttributeValue("accountExpires"); v != "" {
			expired, err := accountExpired(v, r.clock())
			if err != nil {
				return User{}, fmt.Errorf("user %q: %w", e.DN, err)
			}
			u.Disabled = u.Disabled || expired
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
