package directory

import (
	"context"
	"fmt"
	"strings"

	"github.com/go-ldap/ldap/v3"
)

// groupGraph is the in-memory index's graph: every group under BaseDN with its direct
// members, all DNs normalized. It holds DNs only, never user records.
type groupGraph map[string][]string

// readGroups hands every group with its members to idx, one LDAP page at a time, and
// returns how many groups it read. Members beyond AD's per-entry limit (ranged retrieval)
// are read after the paged search and added range by range.
func (r *Reader) readGroups(ctx context.Context, idx MembershipIndex) (int, error) {
	n := 0
	var ranged []rangedGroup // fetched after the paged search, not in the middle of it
	memberAttr := "member"
	if size := r.cfg.memberRange; size > 0 {
		memberAttr = fmt.Sprintf("member;range=0-%d", size-1)
	}
	attrs := []string{memberAttr}
	ad := r.cfg.Profile == ProfileAD
	if ad {
		attrs = append(attrs, "objectSid")
	}
	err := r.pagedSearch(ctx, r.cfg.GroupFilter, attrs, func(es []*ldap.Entry) error {
		page := make([]GroupMembers, 0, len(es))
		for _, e := range es {
			g := GroupMembers{DN: normalizeDN(e.DN)}
			if ad {
				// The users whose primary group this is, as one more member (sid.go).
				if sid, err := sidString(e.GetEqualFoldRawAttributeValue("objectSid")); err == nil {
					g.Members = append(g.Members, primaryGroupKey(sid))
				}
			}
			for _, a := range e.Attributes {
				if strings.EqualFold(a.Name, "member") {
					g.Members = appendNormalized(g.Members, a.Values)
					continue
				}
				rg, ok, err := parseRangedAttr(a.Name)
				if err != nil {
					return fmt.Errorf("group %q: %w", e.DN, err)
				}
				if !ok || !strings.EqualFold(rg.Attr, "member") {
					continue
				}
				g.Members = appendNormalized(g.Members, a.Values)
				if !rg.Last {
					ranged = append(ranged, rangedGroup{dn: e.DN, got: rg})
				}
			}
			page = append(page, g)
		}
		n += len(page)
		return idx.AddGroups(ctx, page)
	})
	if err != nil {
		return 0, fmt.Errorf("directory %s: read groups under %q: %w", r.cfg.URL, r.cfg.BaseDN, err)
	}
	for _, rg := range ranged {
		if err := r.readMemberRanges(ctx, idx, rg); err != nil {
			return 0, err
		}
	}
	return n, nil
}

type rangedGroup struct {
	dn  string
	got attrRange // the range last received
}

// readMemberRanges re-reads one group's member attribute range by range until the last,
// adding each range to idx as it arrives (a group may have a million members).
func (r *Reader) readMemberRanges(ctx context.Context, idx MembershipIndex, rg rangedGroup) error {
	key := normalizeDN(rg.dn)
	fetch := func(desc string) ([]*ldap.EntryAttribute, error) {
		req := ldap.NewSearchRequest(rg.dn, ldap.ScopeBaseObject, ldap.NeverDerefAliases,
			0, 0, false, "(objectClass=*)", []string{desc}, nil)
		var res *ldap.SearchResult
		err := r.guard(ctx, func() (err error) { res, err = r.conn.Search(req); return err })
		if err != nil {
			return nil, fmt.Errorf("directory %s: read %s of group %q: %w", r.cfg.URL, desc, rg.dn, err)
		}
		var attrs []*ldap.EntryAttribute
		for _, e := range res.Entries {
			attrs = append(attrs, e.Attributes...)
		}
		return attrs, nil
	}
	add := func(values []string) error {
		return idx.AddGroups(ctx, []GroupMembers{{DN: key, Members: appendNormalized(nil, values)}})
	}
	if err := followRanges(rg.got, r.cfg.memberRange, fetch, add); err != nil {
		return fmt.Errorf("group %q: %w", rg.dn, err)
	}
	return nil
}

// followRanges asks fetch for the ranges after got until the server sends the last one,
// and hands the values of each further range to add. size > 0 asks for ranges of that
// size; else for all the rest, which the server cuts to its limit (AD's MaxValRange).
func followRanges(got attrRange, size int, fetch func(desc string) ([]*ldap.EntryAttribute, error), add func([]string) error) error {
	for cur := got; !cur.Last; {
		attrs, err := fetch(cur.next(size))
		if err != nil {
			return err
		}
		found := false
		for _, a := range attrs {
			ar, ok, err := parseRangedAttr(a.Name)
			if err != nil {
				return err
			}
			if !ok || !strings.EqualFold(ar.Attr, cur.Attr) {
				continue
			}
			if ar.Low != cur.High+1 {
				return fmt.Errorf("asked for %s, got %s", cur.next(size), a.Name)
			}
			if err := add(a.Values); err != nil {
				return err
			}
			cur, found = ar, true
		}
		if !found {
			return nil // no more values (the group shrank while we read)
		}
	}
	return nil
}

func appendNormalized(dst, dns []string) []string {
	for _, d := range dns {
		dst = append(dst, normalizeDN(d))
	}
	return dst
}

// memberships computes, for every user DN reachable from the requested groups through
// nested groups, the indexes (ascending) of the requested groups that hold it. A DN that
// is itself a group is followed, never reported; each group is visited once per requested
// group, so cycles terminate.
func (g groupGraph) memberships(requested []string) map[string][]int {
	out := map[string][]int{}
	for i, root := range requested {
		if _, ok := g[root]; !ok {
			continue
		}
		seen := map[string]bool{root: true}
		stack := []string{root}
		for len(stack) > 0 {
			cur := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			for _, m := range g[cur] {
				if _, isGroup := g[m]; isGroup {
					if !seen[m] {
						seen[m] = true
						stack = append(stack, m)
					}
					continue
				}
				if idx := out[m]; len(idx) == 0 || idx[len(idx)-1] != i {
					out[m] = append(idx, i)
				}
			}
		}
	}
	return out
}
