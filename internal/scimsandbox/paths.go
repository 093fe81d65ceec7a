package scimsandbox

import (
	"regexp"
	"strings"
)

// wholeURN matches a schema URN on its own ("...:2.0:User"), as opposed to a URN-qualified
// attribute ("...:2.0:User:department").
var wholeURN = regexp.MustCompile(`:\d+(\.\d+)*:[A-Za-z]+$`)

// splitURN separates a schema URN prefix from an attribute path. A path that is a schema
// URN alone returns attr "".
func splitURN(path string) (urn, attr string) {
	if len(path) < 4 || !strings.EqualFold(path[:4], "urn:") {
		return "", path
	}
	if wholeURN.MatchString(path) {
		return path, ""
	}
	head := path
	if i := strings.IndexByte(head, '['); i >= 0 {
		head = head[:i]
	}
	i := strings.LastIndexByte(head, ':')
	return path[:i], path[i+1:]
}

func isCoreURN(urn string) bool {
	return strings.EqualFold(urn, coreUserSchema) || strings.EqualFold(urn, coreGroupSchema)
}

// lookup reads an attribute by name; SCIM attribute names are case-insensitive.
func lookup(m map[string]any, name string) (any, bool) {
	if v, ok := m[name]; ok {
		return v, true
	}
	for k, v := range m {
		if strings.EqualFold(k, name) {
			return v, true
		}
	}
	return nil, false
}

// keyOf returns the key under which name is stored in m, or name itself when absent.
func keyOf(m map[string]any, name string) string {
	if _, ok := m[name]; ok {
		return name
	}
	for k := range m {
		if strings.EqualFold(k, name) {
			return k
		}
	}
	return name
}

// resolveContainer returns the object holding the attribute a (possibly URN-qualified) path
// names, for reading: a missing extension reads as empty.
func resolveContainer(r map[string]any, path string) (map[string]any, string) {
	urn, attr := splitURN(path)
	if urn == "" || isCoreURN(urn) {
		return r, attr
	}
	if ext, ok := lookup(r, urn); ok {
		if m, ok := ext.(map[string]any); ok {
			return m, attr
		}
	}
	return map[string]any{}, attr
}
