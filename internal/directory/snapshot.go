package directory

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"slices"
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
	// Skipped counts, by reason, the member entries left out of the read: an entry without
	// its immutable ID (entryUUID, objectGUID) cannot be keyed. Not an error: the rest of
	// the read stands. Nil when none.
	Skipped map[string]int
	// Invalid counts the emitted users with Problems (the plan fails them as
	// invalid_user_data when they are in scope).
	Invalid int
	// Unreadable counts the emitted users counted disabled because userAccountControl or
	// accountExpires is not a number (included in Disabled).
	Unreadable int
	// NextExpiry is the earliest accountExpires (AD) after the read among the emitted users,
	// zero when none: the time from which the same entries give another result.
	NextExpiry time.Time
}

// Reasons an entry is skipped (Stats.Skipped).
const (
	SkipNoEntryUUID  = "no entryUUID (not readable by the bind account?)"
	SkipNoObjectGUID = "no objectGUID (not readable by the bind account?)"
)

// uacDisabled is AD's userAccountControl ACCOUNTDISABLE bit.
const uacDisabled = 0x2

// accountExpired reports whether an AD accountExpires value (100ns intervals since
// 1601-01-01 UTC) is at or before now. 0 and 0x7FFFFFFFFFFFFFFF mean never.
func accountExpired(v string, now time.Time) (bool, error) {
	at, ok, err := accountExpiry(v)
	if err != nil || !ok {
		return false, err
	}
	return !now.Before(at), nil
}

// accountExpiry is when an AD accountExpires value expires; ok is false for never.
func accountExpiry(v string) (at time.Time, ok bool, err error) {
	n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	if err != nil {
		return time.Time{}, false, errors.New("accountExpires is not a number")
	}
	if n <= 0 || n == math.MaxInt64 {
		return time.Time{}, false, nil
	}
	const unixEpochIn1601 = 11644473600 // seconds from 1601-01-01 to 1970-01-01
	return time.Unix(n/1e7-unixEpochIn1601, (n%1e7)*100).UTC(), true, nil
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
		// The server leaves out the users whose primary group is g or a group nested in
		// g: the user pass finds them by primaryGroupKey, as in expansion.
		if err := r.groupSIDsInChain(ctx, g, func(sid string) {
			k := primaryGroupKey(sid)
			if idx := held[k]; len(idx) == 0 || idx[len(idx)-1] != i {
				held[k] = append(idx, i)
			}
		}); err != nil {
			return nil, nil, err
		}
	}
	return held, missing, nil
}

// groupSIDsInChain hands found the SID of group g and of every group under BaseDN nested
// in it (LDAP_MATCHING_RULE_IN_CHAIN).
func (r *Reader) groupSIDsInChain(ctx context.Context, g string, found func(sid string)) error {
	take := func(es []*ldap.Entry) error {
		for _, e := range es {
			if sid, err := sidString(e.GetEqualFoldRawAttributeValue("objectSid")); err == nil {
				found(sid)
			}
		}
		return nil
	}
	req := ldap.NewSearchRequest(g, ldap.ScopeBaseObject, ldap.NeverDerefAliases, 1, 0, false,
		r.cfg.GroupFilter, []string{"objectSid"}, nil)
	var res *ldap.SearchResult
	if err := r.guard(ctx, func() (err error) { res, err = r.conn.Search(req); return err }); err != nil {
		return fmt.Errorf("directory %s: read objectSid of group %q: %w", r.cfg.URL, g, err)
	}
	_ = take(res.Entries)
	filter := fmt.Sprintf("(&%s(memberOf:%s:=%s))", r.cfg.GroupFilter, matchingRuleInChain, ldap.EscapeFilter(g))
	if err := r.pagedSearch(ctx, filter, []string{"objectSid"}, take); err != nil {
		return fmt.Errorf("directory %s: groups nested in %q (in chain): %w", r.cfg.URL, g, err)
	}
	return nil
}

// Snapshot reads the directory and emits, in batches of batchSize (default PageSize),
// every user that is a member, directly or through nested groups, of at least one of
// groupDNs. Disabled members are emitted too, with Disabled set. Each user's Groups are
// the requested groups (normalized, sorted) that hold it; extraAttrs are copied into
// Attributes (first value; missing ones omitted).
//
// Any directory error (transport, LDAP) fails the whole snapshot: a partial read must never
// look complete. A bad value never does: it is the user's own (User.Problems, or counted
// disabled when userAccountControl or accountExpires is unreadable), and an entry without
// its immutable ID is skipped and counted (Stats.Skipped).
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
	now := r.clock() // before any user is judged: an expiry after it is still to come
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
	primary := make([]string, 0, r.cfg.PageSize) // per entry; "" for none
	err = r.pagedSearch(ctx, r.cfg.UserFilter, attrs, func(es []*ldap.Entry) error {
		stats.Users += len(es)
		dns, primary = dns[:0], primary[:0]
		for _, e := range es {
			dns = append(dns, normalizeDN(e.DN))
			k := ""
			if r.cfg.Profile == ProfileAD {
				k = userPrimaryGroupKey(e.GetEqualFoldRawAttributeValue("objectSid"), e.GetEqualFoldAttributeValue("primaryGroupID"))
			}
			primary = append(primary, k)
		}
		keys := dns
		if r.cfg.Profile == ProfileAD {
			// A page's users mostly share one primary group (Domain Users): look it up once.
			keys = append(slices.Clone(dns), primary...)
			slices.Sort(keys)
			keys = slices.Compact(keys)
			if len(keys) > 0 && keys[0] == "" {
				keys = keys[1:]
			}
		}
		members, err := lookup(ctx, keys)
		if err != nil {
			return fmt.Errorf("directory snapshot: look up group memberships: %w", err)
		}
		for i, e := range es {
			held := members[dns[i]]
			if primary[i] != "" {
				held = mergeIndexes(held, members[primary[i]])
			}
			if len(held) == 0 {
				continue
			}
			u, skip, unreadable := r.userOf(e, extraAttrs)
			if skip != "" {
				if stats.Skipped == nil {
					stats.Skipped = map[string]int{}
				}
				stats.Skipped[skip]++
				continue
			}
			if unreadable != "" {
				stats.Unreadable++
				// The externalId only: the entry's DN and values may be personal data.
				slog.Warn("directory: "+unreadable+" is not a number: the user counts as disabled", "externalId", u.ExternalID)
			}
			if len(u.Problems) > 0 {
				stats.Invalid++
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
			if r.cfg.Profile == ProfileAD {
				// The same entries read later may disable this user (issue 13: a run that
				// found the directory unchanged must not stand on this read past it).
				if at, ok, _ := accountExpiry(e.GetEqualFoldAttributeValue("accountExpires")); ok && at.After(now) &&
					(stats.NextExpiry.IsZero() || at.Before(stats.NextExpiry)) {
					stats.NextExpiry = at
				}
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
	for _, why := range slices.Sorted(maps.Keys(stats.Skipped)) {
		slog.Warn("directory: member entries skipped", "count", stats.Skipped[why], "reason", why)
	}
	return stats, nil
}

// mergeIndexes merges two ascending index lists into one, without duplicates.
func mergeIndexes(a, b []int) []int {
	if len(b) == 0 {
		return a
	}
	if len(a) == 0 {
		return b
	}
	out := slices.Concat(a, b)
	slices.Sort(out)
	return slices.Compact(out)
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
		attrs = append(attrs, "userAccountControl", "accountExpires", "objectSid", "primaryGroupID")
	}
	return append(attrs, extra...)
}

// userOf turns a user entry into a User (without Groups). Only the ID decides whether there
// is a User at all: skip says why not (no immutable ID to key it by, Skip*). Every other
// bad value is the user's own: it is repaired and named in Problems (values.go), or, for
// userAccountControl and accountExpires, makes the user count as disabled (the safe side:
// out of scope, so suspended if linked); unreadable then names the attribute.
func (r *Reader) userOf(e *ldap.Entry, extraAttrs []string) (u User, skip, unreadable string) {
	var problems []string
	take := func(attr string, max int) string {
		v, ps := cleanValue(attr, e.GetEqualFoldAttributeValue(attr), max)
		problems = append(problems, ps...)
		return v
	}
	single := func(attr string) {
		if n := distinctValues(e.GetEqualFoldAttributeValues(attr)); n > 1 {
			problems = append(problems, problem(attr, fmt.Sprintf("has %d distinct values, want one", n)))
		}
	}
	if r.cfg.Profile == ProfileAD {
		raw := e.GetEqualFoldRawAttributeValue("objectGUID")
		if len(raw) == 0 {
			return User{}, SkipNoObjectGUID, ""
		}
		if id, err := guidString(raw); err == nil {
			u.ExternalID = id
		} else {
			u.ExternalID = malformedGUIDKey(raw)
			problems = append(problems, problem("objectGUID", fmt.Sprintf("has %d bytes, want 16", len(raw))))
		}
	} else {
		if strings.TrimSpace(e.GetEqualFoldAttributeValue("entryUUID")) == "" {
			return User{}, SkipNoEntryUUID, ""
		}
		u.ExternalID = take("entryUUID", MaxNameBytes)
	}
	u.DN = storable(e.DN)
	u.UserName = take(r.cfg.UserNameAttribute, MaxNameBytes)
	single(r.cfg.UserNameAttribute)
	u.Email = take("mail", MaxNameBytes)
	single("mail")
	u.GivenName = take("givenName", MaxNameBytes)
	u.FamilyName = take("sn", MaxNameBytes)
	u.DisplayName = take("displayName", MaxNameBytes)
	if r.cfg.Profile == ProfileAD {
		if uac := strings.TrimSpace(e.GetEqualFoldAttributeValue("userAccountControl")); uac != "" {
			if n, err := strconv.ParseInt(uac, 10, 64); err != nil {
				u.Disabled, unreadable = true, "userAccountControl"
			} else {
				u.Disabled = n&uacDisabled != 0
			}
		}
		if v := e.GetEqualFoldAttributeValue("accountExpires"); v != "" {
			if expired, err := accountExpired(v, r.clock()); err != nil {
				u.Disabled = true
				if unreadable == "" {
					unreadable = "accountExpires"
				}
			} else {
				u.Disabled = u.Disabled || expired
			}
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
		if e.GetEqualFoldAttributeValue(a) != "" {
			if u.Attributes == nil {
				u.Attributes = map[string]string{}
			}
			u.Attributes[storable(a)] = take(a, MaxAttributeBytes)
		}
	}
	u.Problems = uniq(problems)
	return u, "", unreadable
}
