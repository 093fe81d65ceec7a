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

// canonicalUserAttrs maps lower-case names to their schema spelling, so a PATCH of
// "username" and a later read of "userName" meet.
var canonicalUserAttrs = canonicalNames("userName", "externalId", "active", "name", "displayName",
	"nickName", "title", "userType", "preferredLanguage", "locale", "timezone", "emails",
	"phoneNumbers", "entitlements", "roles", "addresses", "password")

var canonicalGroupAttrs = canonicalNames("displayName", "externalId", "members")

func canonicalNames(names ...string) map[string]string {
	m := map[string]string{}
	for _, n := range names {
		m[strings.ToLower(n)] = n
	}
	return m
}

func canonicalize(attrs map[string]any, names map[string]string) {
	for k, v := range attrs {
		lk := strings.ToLower(k)
		if lk == "id" || lk == "meta" || lk == "schemas" || lk == "groups" {
			delete(attrs, k) // server-managed or read-only
			continue
		}
		if c, ok := names[lk]; ok && c != k {
			delete(attrs, k)
			attrs[c] = v
		}
		if m, ok := v.(map[string]any); ok && strings.HasPrefix(lk, "urn:") && len(m) == 0 {
			delete(attrs, k)
		}
	}
}

// normalizeUser validates a user's attributes after a POST, PUT or PATCH.
func normalizeUser(attrs map[string]any) *scimError {
	canonicalize(attrs, canonicalUserAttrs)
	if v, ok := attrs["userName"].(string); !ok || strings.TrimSpace(v) == "" {
		return badRequest("invalidValue", "userName is required")
	}
	if v, ok := attrs["externalId"]; ok {
		if _, isString := v.(string); !isString {
			return badRequest("invalidValue", "externalId must be a string")
		}
	}
	switch v := attrs["active"].(type) {
	case nil, bool:
	case string: // some clients send "True"/"False"
		switch strings.ToLower(v) {
		case "true":
			attrs["active"] = true
		case "false":
			attrs["active"] = false
		default:
			return badRequest("invalidValue", "active must be a boolean, got %q", v)
		}
	default:
		return badRequest("invalidValue", "active must be a boolean")
	}
	for _, attr := range []string{"emails", "entitlements", "roles", "phoneNumbers"} {
		v, ok := attrs[attr]
		if !ok {
			continue
		}
		list, isList := v.([]any)
		if !isList {
			return badRequest("invalidValue", "%s must be a list", attr)
		}
		for _, e := range list {
			if _, isMap := e.(map[string]any); !isMap {
				return badRequest("invalidValue", "%s values must be objects with a \"value\"", attr)
			}
		}
		keepOnePrimary(list)
	}
	return nil
}

// keepOnePrimary enforces RFC 7643's "primary true at most once": the last one wins.
func keepOnePrimary(list []any) {
	last := -1
	for i, e := range list {
		if p, _ := e.(map[string]any)["primary"].(bool); p {
			last = i
		}
	}
	for i, e := range list {
		if m := e.(map[string]any); i != last {
			if _, ok := m["primary"]; ok {
				m["primary"] = false
			}
		}
	}
}

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
	if err := normalizeUser(attrs); err != nil {
		return nil, err
	}
	userName := attrs["userName"].(string)
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
	canonicalize(attrs, canonicalGroupAttrs)
	name, _ := attrs["displayName"].(string)
	if strings.TrimSpace(name) == "" {
		return nil, badRequest("invalidValue", "displayName is required")
	}
	if other, ok := s.groups.byName[strings.ToLower(name)]; ok && other != id {
		return nil, errorf(http.StatusConflict, "uniqueness", "group displayName %q is already taken", name)
	}
	if v, ok := attrs["members"]; ok {
		list, isList := v.([]any)
		if !isList {
			return nil, badRequest("invalidValue", "members must be a list")
		}
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
	attrs["id"] = id // kept in attrs so filters on id work; canonicalize strips client-sent ids
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
