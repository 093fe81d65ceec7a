package scimsandbox

import (
	"reflect"
	"strings"
)

// patchOp is one operation of an RFC 7644 section 3.5.2 PatchOp request.
type patchOp struct {
	Op    string `json:"op"`
	Path  string `json:"path"`
	Value any    `json:"value"`
}

type patchRequest struct {
	Schemas    []string  `json:"schemas"`
	Operations []patchOp `json:"Operations"`
}

// multiValued lists the core attributes that hold lists, so a single object given for them
// is wrapped into a list.
var multiValued = map[string]bool{"emails": true, "phonenumbers": true, "ims": true, "photos": true,
	"addresses": true, "groups": true, "entitlements": true, "roles": true, "x509certificates": true,
	"members": true}

// readOnly attributes a PATCH may not touch.
var readOnly = map[string]bool{"id": true, "meta": true}

// patchPath is a parsed PATCH path: [urn:]attr[filter][.sub].
type patchPath struct {
	urn    string // extension schema; "" for the core schema
	attr   string // "" when the path is a whole extension
	filter filter
	sub    string
}

func parsePatchPath(p string) (patchPath, *scimError) {
	urn, rest := splitURN(strings.TrimSpace(p))
	if isCoreURN(urn) {
		urn = ""
	}
	pp := patchPath{urn: urn}
	if rest == "" {
		if urn == "" {
			return pp, badRequest("invalidPath", "path %q names no attribute", p)
		}
		return pp, nil
	}
	if i := strings.IndexByte(rest, '['); i >= 0 {
		j := closingBracket(rest, i)
		if j < 0 {
			return pp, badRequest("invalidPath", "path %q: unbalanced '['", p)
		}
		f, err := parseFilter(rest[i+1 : j])
		if err != nil {
			return pp, badRequest("invalidPath", "path %q: %s", p, err.detail)
		}
		pp.attr, pp.filter = rest[:i], f
		after := rest[j+1:]
		if after != "" {
			if after[0] != '.' || len(after) == 1 {
				return pp, badRequest("invalidPath", "path %q: unexpected %q after filter", p, after)
			}
			pp.sub = after[1:]
		}
	} else {
		pp.attr, pp.sub, _ = strings.Cut(rest, ".")
	}
	if pp.attr == "" || strings.ContainsAny(pp.attr+pp.sub, " .\"") {
		return pp, badRequest("invalidPath", "path %q is not an attribute path", p)
	}
	return pp, nil
}

func closingBracket(s string, open int) int {
	inString := false
	for i := open + 1; i < len(s); i++ {
		switch {
		case inString && s[i] == '\\':
			i++
		case s[i] == '"':
			inString = !inString
		case !inString && s[i] == ']':
			return i
		}
	}
	return -1
}

// applyPatch applies the operations in order to res (a private copy); any error leaves the
// caller to discard the copy, so a PATCH is all or nothing.
func applyPatch(res map[string]any, ops []patchOp) *scimError {
	if len(ops) == 0 {
		return badRequest("invalidValue", "PatchOp has no Operations")
	}
	for i, op := range ops {
		name := strings.ToLower(op.Op)
		if name != "add" && name != "replace" && name != "remove" {
			return badRequest("invalidSyntax", "operation %d: unknown op %q", i+1, op.Op)
		}
		if name != "remove" && op.Value == nil {
			return badRequest("invalidValue", "operation %d (%s %q): value is required", i+1, name, op.Path)
		}
		var err *scimError
		if strings.TrimSpace(op.Path) == "" {
			if name == "remove" {
				return badRequest("noTarget", "operation %d: remove requires a path", i+1)
			}
			obj, ok := op.Value.(map[string]any)
			if !ok {
				return badRequest("invalidValue", "operation %d: %s without path needs an object value", i+1, name)
			}
			err = mergeInto(res, obj, name, true)
		} else {
			var pp patchPath
			if pp, err = parsePatchPath(op.Path); err == nil {
				err = applyPathOp(res, name, pp, op.Value)
			}
		}
		if err != nil {
			err.detail = "operation " + itoa(i+1) + " (" + name + " " + quote(op.Path) + "): " + err.detail
			return err
		}
	}
	return nil
}

func applyPathOp(res map[string]any, op string, pp patchPath, value any) *scimError {
	container := res
	if pp.urn != "" {
		key := keyOf(res, pp.urn)
		ext, _ := res[key].(map[string]any)
		if pp.attr == "" {
			if op == "remove" {
				delete(res, key)
				return nil
			}
			obj, ok := value.(map[string]any)
			if !ok {
				return badRequest("invalidValue", "extension %s needs an object value", pp.urn)
			}
			if ext == nil {
				ext = map[string]any{}
				res[key] = ext
			}
			return mergeInto(ext, obj, op, false)
		}
		if ext == nil {
			if op == "remove" {
				return nil
			}
			ext = map[string]any{}
			res[key] = ext
		}
		container = ext
	} else if readOnly[strings.ToLower(pp.attr)] {
		return badRequest("mutability", "attribute %q is read-only", pp.attr)
	}
	return applyAttrOp(container, op, pp, value)
}

// mergeInto applies add/replace of each member of obj, as for an operation without path.
// At the resource root, members named by a schema URN address that extension.
func mergeInto(dst map[string]any, obj map[string]any, op string, root bool) *scimError {
	for k, v := range obj {
		if root && strings.EqualFold(k, "schemas") {
			continue // recomputed from the extensions present
		}
		if root && strings.HasPrefix(strings.ToLower(k), "urn:") {
			if err := applyPathOp(dst, op, patchPath{urn: normalizeURN(k)}, v); err != nil {
				return err
			}
			continue
		}
		if root && readOnly[strings.ToLower(k)] {
			continue // RFC 7644: read-only attributes in a value object are ignored
		}
		if err := applyAttrOp(dst, op, patchPath{attr: k}, v); err != nil {
			return err
		}
	}
	return nil
}

func normalizeURN(k string) string {
	if isCoreURN(k) {
		return ""
	}
	return k
}

func applyAttrOp(container map[string]any, op string, pp patchPath, value any) *scimError {
	if pp.urn == "" && pp.attr == "" {
		obj, ok := value.(map[string]any) // core URN used as a key: its members are core attrs
		if !ok {
			return badRequest("invalidValue", "core schema needs an object value")
		}
		return mergeInto(container, obj, op, true)
	}
	key := keyOf(container, pp.attr)
	cur, exists := container[key]
	if pp.filter != nil {
		return applyFiltered(container, key, cur, op, pp, value)
	}
	if pp.sub != "" {
		return applySub(container, key, cur, op, pp.sub, value)
	}
	switch op {
	case "remove":
		if list, ok := cur.([]any); ok && value != nil {
			// Remove with a value (sent by some clients for members): drop just those values.
			setOrDelete(container, key, removeValues(list, asList(value)))
			return nil
		}
		delete(container, key)
	case "add":
		if list, ok := cur.([]any); ok {
			container[key] = appendUnique(list, asList(value))
			return nil
		}
		if m, ok := cur.(map[string]any); ok && exists {
			if obj, ok := value.(map[string]any); ok {
				mergeMap(m, obj)
				return nil
			}
		}
		container[key] = wrapMulti(pp.attr, value)
	case "replace":
		if m, ok := cur.(map[string]any); ok {
			if obj, ok := value.(map[string]any); ok {
				mergeMap(m, obj) // RFC 7644 3.5.2.3: unspecified sub-attributes stay
				return nil
			}
		}
		container[key] = wrapMulti(pp.attr, value)
	}
	return nil
}

func applySub(container map[string]any, key string, cur any, op, sub string, value any) *scimError {
	switch c := cur.(type) {
	case nil:
		if op != "remove" {
			container[key] = map[string]any{sub: value}
		}
	case map[string]any:
		setSub(c, op, sub, value)
		if len(c) == 0 {
			delete(container, key)
		}
	case []any:
		for _, elem := range c {
			if m, ok := elem.(map[string]any); ok {
				setSub(m, op, sub, value)
			}
		}
	default:
		return badRequest("invalidPath", "attribute %q has no sub-attribute %q", key, sub)
	}
	return nil
}

func setSub(m map[string]any, op, sub string, value any) {
	k := keyOf(m, sub)
	if op == "remove" {
		delete(m, k)
		return
	}
	m[k] = value
}

func applyFiltered(container map[string]any, key string, cur any, op string, pp patchPath, value any) *scimError {
	list, _ := cur.([]any)
	var matched []int
	for i, elem := range list {
		if m, ok := elem.(map[string]any); ok && pp.filter.match(m) {
			matched = append(matched, i)
		}
	}
	if len(matched) == 0 {
		if op == "remove" {
			return nil // already absent: removing again is a no-op, which keeps retries idempotent
		}
		return badRequest("noTarget", "no value of %q matches the filter", pp.attr)
	}
	if pp.sub != "" {
		for _, i := range matched {
			setSub(list[i].(map[string]any), op, pp.sub, value)
		}
		return nil
	}
	switch op {
	case "remove":
		keep := list[:0:0]
		mi := 0
		for i, elem := range list {
			if mi < len(matched) && matched[mi] == i {
				mi++
				continue
			}
			keep = append(keep, elem)
		}
		setOrDelete(container, key, keep)
	case "replace":
		for _, i := range matched {
			list[i] = value
		}
	case "add":
		obj, ok := value.(map[string]any)
		if !ok {
			return badRequest("invalidValue", "add to %q with a filter needs an object value", pp.attr)
		}
		for _, i := range matched {
			mergeMap(list[i].(map[string]any), obj)
		}
	}
	return nil
}

func setOrDelete(container map[string]any, key string, list []any) {
	if len(list) == 0 {
		delete(container, key)
		return
	}
	container[key] = list
}

func mergeMap(dst, src map[string]any) {
	for k, v := range src {
		dst[keyOf(dst, k)] = v
	}
}

func wrapMulti(attr string, value any) any {
	if _, isList := value.([]any); !isList && multiValued[strings.ToLower(attr)] && value != nil {
		return []any{value}
	}
	return value
}

// appendUnique adds values to list, merging into an element with the same "value" instead
// of duplicating it (adding a member twice is a no-op).
func appendUnique(list []any, values []any) []any {
	out := append([]any(nil), list...)
	for _, v := range values {
		dup := false
		for i, have := range out {
			if sameValue(have, v) {
				if hm, ok := have.(map[string]any); ok {
					if vm, ok := v.(map[string]any); ok {
						merged := deepCopy(hm).(map[string]any)
						mergeMap(merged, vm)
						out[i] = merged
					}
				}
				dup = true
				break
			}
		}
		if !dup {
			out = append(out, v)
		}
	}
	return out
}

func removeValues(list []any, values []any) []any {
	var out []any
	for _, have := range list {
		drop := false
		for _, v := range values {
			if sameValue(have, v) {
				drop = true
				break
			}
		}
		if !drop {
			out = append(out, have)
		}
	}
	return out
}

func sameValue(a, b any) bool {
	am, aok := a.(map[string]any)
	bm, bok := b.(map[string]any)
	if aok && bok {
		av, ok1 := lookup(am, "value")
		bv, ok2 := lookup(bm, "value")
		if ok1 && ok2 {
			return reflect.DeepEqual(av, bv)
		}
	}
	return reflect.DeepEqual(a, b)
}

func deepCopy(v any) any {
	switch t := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(t))
		for k, e := range t {
			m[k] = deepCopy(e)
		}
		return m
	case []any:
		l := make([]any, len(t))
		for i, e := range t {
			l[i] = deepCopy(e)
		}
		return l
	}
	return v
}
