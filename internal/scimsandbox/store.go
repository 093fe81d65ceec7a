package scimsandbox

import (
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"
)

// resource is one stored User or Group. attrs holds id but never meta or schemas, and is
// replaced (never mutated) on every write, so a rendered copy stays valid after unlock.
type resource struct {
	id       string
	seq      int64
	attrs    map[string]any
	created  time.Time
	modified time.Time
	version  int
}

// collection holds the resources of one type in creation order.
type collection struct {
	byID   map[string]*resource
	order  []string
	byName map[string]string   // lower-case userName / displayName -> id
	byExt  map[string][]string // externalId -> ids (SCIM does not make it unique)
}

func newCollection() *collection {
	return &collection{byID: map[string]*resource{}, byName: map[string]string{}, byExt: map[string][]string{}}
}

func (c *collection) ordered() []*resource {
	out := make([]*resource, 0, len(c.order))
	for _, id := range c.order {
		out = append(out, c.byID[id])
	}
	return out
}

// index updates the name and externalId indexes from old to new attrs (either may be nil).
func (c *collection) index(id string, nameAttr string, old, new map[string]any) {
	if old != nil {
		delete(c.byName, strings.ToLower(str(old, nameAttr)))
		if ext := str(old, "externalId"); ext != "" {
			c.byExt[ext] = without(c.byExt[ext], id)
			if len(c.byExt[ext]) == 0 {
				delete(c.byExt, ext)
			}
		}
	}
	if new != nil {
		c.byName[strings.ToLower(str(new, nameAttr))] = id
		if ext := str(new, "externalId"); ext != "" {
			c.byExt[ext] = append(c.byExt[ext], id)
		}
	}
}

func (c *collection) remove(id string) {
	delete(c.byID, id)
	c.order = without(c.order, id)
}

func without(ids []string, id string) []string {
	out := ids[:0:0]
	for _, x := range ids {
		if x != id {
			out = append(out, x)
		}
	}
	return out
}

func str(m map[string]any, attr string) string {
	v, _ := lookup(m, attr)
	s, _ := v.(string)
	return s
}

// commitUser and commitGroup take attributes already checked against the schemas
// (validate.go); they add the checks that need the store: non-blank names, uniqueness,
// seats, member ids.

// entitled returns the products whose seats the user consumes: its entitlement values when
// active, none otherwise.
func entitled(attrs map[string]any) map[string]bool {
	out := map[string]bool{}
	if attrs == nil || attrs["active"] != true {
		return out
	}
	list, _ := attrs["entitlements"].([]any)
	for _, e := range list {
		if m, ok := e.(map[string]any); ok {
			if v, ok := m["value"].(string); ok && v != "" {
				out[v] = true
			}
		}
	}
	return out
}

// commitUser validates and stores attrs as user id (new when old is nil). Caller holds s.mu.
func (s *Server) commitUser(id string, old *resource, attrs map[string]any) (*resource, *scimError) {
	userName, _ := attrs["userName"].(string)
	if strings.TrimSpace(userName) == "" {
		return nil, badRequest("invalidValue", "userName must not be blank")
	}
	if other, ok := s.users.byName[strings.ToLower(userName)]; ok && other != id {
		return nil, errorf(http.StatusConflict, "uniqueness", "userName %q is already taken", userName)
	}
	var oldAttrs map[string]any
	if old != nil {
		oldAttrs = old.attrs
	}
	before, after := entitled(oldAttrs), entitled(attrs)
	var gained []string
	for p := range after {
		if !before[p] {
			gained = append(gained, p)
		}
	}
	sort.Strings(gained)
	for _, p := range gained {
		if limit, ok := s.seats[p]; ok && s.seatsUsed[p]+1 > limit {
			return nil, errorf(http.StatusForbidden, "",
				"no seat left for product %q: %d of %d seats in use", p, s.seatsUsed[p], limit)
		}
	}
	for p := range before {
		if !after[p] {
			s.seatsUsed[p]--
		}
	}
	for _, p := range gained {
		s.seatsUsed[p]++
	}
	return s.store(s.users, "userName", id, old, attrs), nil
}

// commitGroup validates and stores attrs as group id. Caller holds s.mu.
func (s *Server) commitGroup(id string, old *resource, attrs map[string]any) (*resource, *scimError) {
	name, _ := attrs["displayName"].(string)
	if strings.TrimSpace(name) == "" {
		return nil, badRequest("invalidValue", "displayName must not be blank")
	}
	if other, ok := s.groups.byName[strings.ToLower(name)]; ok && other != id {
		return nil, errorf(http.StatusConflict, "uniqueness", "group displayName %q is already taken", name)
	}
	if v, ok := attrs["members"]; ok {
		list, _ := v.([]any)
		var members []any
		seen := map[string]bool{}
		for _, e := range list {
			m, _ := e.(map[string]any)
			value, _ := m["value"].(string)
			if value == "" {
				return nil, badRequest("invalidValue", "every member needs a \"value\" (a user or group id)")
			}
			if s.users.byID[value] == nil && s.groups.byID[value] == nil {
				return nil, badRequest("invalidValue", "member %q: no such user or group", value)
			}
			if !seen[value] {
				seen[value] = true
				members = append(members, m)
			}
		}
		setOrDelete(attrs, "members", members)
	}
	return s.store(s.groups, "displayName", id, old, attrs), nil
}

func (s *Server) store(c *collection, nameAttr, id string, old *resource, attrs map[string]any) *resource {
	now := s.now()
	attrs["id"] = id // kept in attrs so filters on id work; validation drops client-sent ids
	r := &resource{id: id, attrs: attrs, created: now, modified: now, version: 1}
	if old != nil {
		r.seq, r.created, r.version = old.seq, old.created, old.version+1
		c.index(id, nameAttr, old.attrs, attrs)
	} else {
		s.seq++
		r.seq = s.seq
		c.order = append(c.order, id)
		c.index(id, nameAttr, nil, attrs)
	}
	c.byID[id] = r
	return r
}

// deleteUser removes a user, its seats and its group memberships. Caller holds s.mu.
func (s *Server) deleteUser(r *resource) {
	for p := range entitled(r.attrs) {
		s.seatsUsed[p]--
	}
	s.users.index(r.id, "userName", r.attrs, nil)
	s.users.remove(r.id)
	for _, g := range s.groups.ordered() {
		list, _ := g.attrs["members"].([]any)
		kept := removeValues(list, []any{map[string]any{"value": r.id}})
		if len(kept) != len(list) {
			attrs := shallowCopy(g.attrs)
			setOrDelete(attrs, "members", kept)
			s.store(s.groups, "displayName", g.id, g, attrs)
		}
	}
}

func shallowCopy(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// render returns the wire form of r; base is the URL prefix for meta.location.
func render(r *resource, resourceType, base string) map[string]any {
	out := shallowCopy(r.attrs)
	schemas := []string{coreUserSchema}
	if resourceType == "Group" {
		schemas = []string{coreGroupSchema}
	}
	var exts []string
	for k := range r.attrs {
		if strings.HasPrefix(strings.ToLower(k), "urn:") {
			exts = append(exts, k)
		}
	}
	sort.Strings(exts)
	out["schemas"] = append(schemas, exts...)
	out["id"] = r.id
	out["meta"] = map[string]any{
		"resourceType": resourceType,
		"created":      r.created.UTC().Format(time.RFC3339Nano),
		"lastModified": r.modified.UTC().Format(time.RFC3339Nano),
		"location":     fmt.Sprintf("%s/%ss/%s", base, resourceType, r.id),
		"version":      etag(r),
	}
	return out
}

func etag(r *resource) string { return fmt.Sprintf(`W/"%d"`, r.version) }
