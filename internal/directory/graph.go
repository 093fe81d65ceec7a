package directory

import (
	"context"
	"fmt"
	"strings"

	"github.com/go-ldap/ldap/v3"
)

// groupGraph is every group under BaseDN with its direct members, all DNs normalized.
// It holds DNs only, never user records.
type groupGraph map[string][]string

// readGroups reads all groups with their member attribute, following AD's ranged
// retrieval for groups with more members than the server returns at once.
func (r *Reader) readGroups(ctx context.Context) (groupGraph, error) {
	g := groupGraph{}
	var ranged []rangedGroup // fetched after the paged search, not in the middle of it
	err := r.pagedSearch(ctx, r.cfg.GroupFilter, []string{"member"}, func(es []*ldap.Entry) error {
		for _, e := range es {
			dn := normalizeDN(e.DN)
			members := g[dn]
			for _, a := range e.Attributes {
				if strings.EqualFold(a.Name, "member") {
					members = appendNormalized(members, a.Values)
					continue
				}
				rg, ok, err := parseRangedAttr(a.Name)
				if err != nil {
					return fmt.Errorf("group %q: %w", e.DN, err)
				}
				if !ok || !strings.EqualFold(rg.Attr, "member") {
					continue
				}
				members = appendNormalized(members, a.Values)
				if !rg.Last {
					ranged = append(ranged, rangedGroup{dn: e.DN, got: rg})
				}
			}
			if members == nil {
				members = []string{} // present, and empty
			}
			g[dn] = members
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("directory %s: read groups under %q: %w", r.cfg.URL, r.cfg.BaseDN, err)
	}
	for _, rg := range ranged {
		if err := r.readMemberRanges(ctx, g, rg); err != nil {
			return nil, err
		}
	}
	return g, nil
}

type rangedGroup struct {
	dn  string
	got attrRange // the range last received
}

// readMemberRanges re-reads one group's member attribute range by range until the last.
func (r *Reader) readMemberRanges(ctx context.Context, g groupGraph, rg rangedGroup) error {
	key := normalizeDN(rg.dn)
	values, err := followRanges(rg.got, func(desc string) ([]*ldap.EntryAttribute, error) {
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
	})
	if err != nil {
		return fmt.Errorf("group %q: %w", rg.dn, err)
	}
	g[key] = appendNormalized(g[key], values)
	return nil
}

// followRanges asks fetch for the ranges after got until the server sends the last one,
// and returns the values of those further ranges.
func followRanges(got attrRange, fetch func(desc string) ([]*ldap.EntryAttribute, error)) ([]string, error) {
	var values []string
	for cur := got; !cur.Last; {
		attrs, err := fetch(cur.next())
		if err != nil {
			return nil, err
		}
		found := false
		for _, a := range attrs {
			ar, ok, err := parseRangedAttr(a.Name)
			if err != nil {
				return nil, err
			}
			if !ok || !strings.EqualFold(ar.Attr, cur.Attr) {
				continue
			}
			if ar.Low != cur.High+1 {
				return nil, fmt.Errorf("asked for %s, got %s", cur.next(), a.Name)
			}
			values = append(values, a.Values...)
			cur, found = ar, true
		}
		if !found {
			return values, nil // no more values (the group shrank while we read)
		}
	}
	return values, nil
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
