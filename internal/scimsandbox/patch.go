package scimsandbox

import (
	"reflect"
	"strings"
)

// PATCH (RFC 7644 section 3.5.2), validated against the declared schemas:
//
//   - op is add, replace or remove (case-insensitive), else 400 invalidSyntax; add and
//     replace need a value (400 invalidValue); remove needs a path (400 noTarget).
//   - path is an attribute path: attr, attr.sub, urn:...:attr, urn:...:attr.sub, attr[filter]
//     or attr[filter].sub, naming a declared attribute (and sub-attribute; the filter may only
//     compare sub-attributes of attr, which must be multi-valued). Anything else, including a
//     schema URN on its own, is 400 invalidPath.
//   - a path naming a readOnly attribute (id, meta, groups, ...) is 400 mutability, whatever
//     the op; so is a PATCH that leaves a required attribute (userName, displayName) unassigned.
//   - values are type-checked like POST bodies (400 invalidValue). For a path naming a
//     multi-valued attribute a single element is accepted and treated as a one-element array.
//   - without a path, add and replace take an object whose members are checked like a POST
//     body: core attributes by name, declared extensions under their URN. readOnly members
//     are ignored, except an "id" other than the resource's (400 mutability).
//   - a value filter that matches nothing is 400 noTarget; removing a group member that is
//     not there is the exception (a no-op, so retried removals stay harmless). Removing an
//     attribute that has no value is a no-op too: RFC 7644 only makes filters noTarget.

// patchOp is one operation of a PatchOp request.
type patchOp struct {
	Op    string `json:"op"`
	Path  string `json:"path"`
	Value any    `json:"value"`
}

type patchRequest struct {
	Schemas    []string  `json:"schemas"`
	Operations []patchOp `json:"Operations"`
}

// patchTarget is a resolved PATCH path: [urn:]attr[filter][.sub].
type patchTarget struct {
	schema *schemaDef // the schema declaring attr
	inExt  bool       // attr lives under res[schema.id]
	attr   *attrDef
	filter filter
	sub    *attrDef
}

func (t patchTarget) String() string {
	s := t.attr.name
	if t.inExt {
		s = t.schema.id + ":" + s
	}
	if t.filter != nil {
		s += "[...]"
	}
	if t.sub != nil {
		s += "." + t.sub.name
	}
	return s
}

// resolvePath parses and resolves a PATCH path against rt's schemas.
func (rt *resourceType) resolvePath(p string) (patchTarget, *scimError) {
	p = strings.TrimSpace(p)
	t := patchTarget{schema: rt.core}
	rest := p
	if isURNKey(p) {
		t.schema = nil
		for _, s := range append([]*schemaDef{rt.core}, rt.exts...) {
			if strings.EqualFold(p, s.id) {
				return t, badRequest("invalidPath", "path %q is a schema URN, not an attribute path: name an attribute, as in %q (RFC 7644 section 3.5.2)",
					p, s.id+":"+exampleAttr(s))
			}
			n := len(s.id)
			if len(p) > n && strings.EqualFold(p[:n], s.id) && p[n] == ':' && (t.schema == nil || n > len(t.schema.id)) {
				t.schema, rest = s, p[n+1:]
			}
		}
		if t.schema == nil {
			urn, _ := splitURN(p)
			return t, badRequest("invalidPath", "path %q: %s is not a schema of %s resources (declared: %s)",
				p, urn, rt.name, strings.Join(rt.schemaIDs(), ", "))
		}
		t.inExt = t.schema != rt.core
	}
	attrName, filterText, subName := rest, "", ""
	hasFilter := false
	if i := strings.IndexByte(rest, '['); i >= 0 {
		j := closingBracket(rest, i)
		if j < 0 {
			return t, badRequest("invalidPath", "path %q: unbalanced '['", p)
		}
		attrName, filterText, hasFilter = rest[:i], rest[i+1:j], true
		if after := rest[j+1:]; after != "" {
			if after[0] != '.' || len(after) == 1 {
				return t, badRequest("invalidPath", "path %q: unexpected %q after the filter", p, after)
			}
			subName = after[1:]
		}
	} else {
		attrName, subName, _ = strings.Cut(rest, ".")
		if rest != "" && strings.HasSuffix(rest, ".") {
			return t, badRequest("invalidPath", "path %q is not an attribute path", p)
		}
	}
	if attrName == "" {
		return t, badRequest("invalidPath", "path %q names no attribute", p)
	}
	t.attr = rt.attr(t.schema, attrName)
	if t.attr == nil {
		return t, badRequest("invalidPath", "path %q: attribute %q is not defined by schema %s", p, attrName, t.schema.id)
	}
	if hasFilter {
		if !t.attr.multi {
			return t, badRequest("invalidPath", "path %q: a value filter needs a multi-valued attribute, and %q is single-valued", p, t.attr.name)
		}
		f, err := parseFilter(filterText)
		if err != nil {
			return t, badRequest("invalidPath", "path %q: %s", p, err.detail)
		}
		if bad := unknownFilterAttr(f, t.attr); bad != "" {
			return t, badRequest("invalidPath", "path %q: the filter compares %q, which is not a sub-attribute of %q", p, bad, t.attr.name)
		}
		t.filter = f
	}
	if subName != "" {
		if t.attr.typ != typeComplex {
			return t, badRequest("invalidPath", "path %q: attribute %q has no sub-attributes", p, t.attr.name)
		}
		if t.sub = t.attr.child(subName); t.sub == nil {
			return t, badRequest("invalidPath", "path %q: attribute %q has no sub-attribute %q (declared: %s)",
				p, t.attr.name, subName, strings.Join(attrNames(t.attr.sub), ", "))
		}
	}
	if t.attr.readOnly() || (t.sub != nil && t.sub.readOnly()) {
		return t, badRequest("mutability", "path %q: attribute %q is read-only", p, t.String())
	}
	return t, nil
}

func exampleAttr(s *schemaDef) string {
	if len(s.attrs) == 0 {
		return "<attribute>"
	}
	return s.attrs[0].name
}

// unknownFilterAttr returns the first attribute a value filter compares that is not a
// sub-attribute of attr ("" when all are), or a nested value path.
func unknownFilterAttr(f filter, attr *attrDef) string {
	switch t := f.(type) {
	case andFilter:
		if bad := unknownFilterAttr(t.left, attr); bad != "" {
			return bad
		}
		return unknownFilterAttr(t.right, attr)
	case orFilter:
		if bad := unknownFilterAttr(t.left, attr); bad != "" {
			return bad
		}
		return unknownFilterAttr(t.right, attr)
	case notFilter:
		return unknownFilterAttr(t.inner, attr)
	case compareFilter:
		if attr.typ == typeComplex && attr.child(t.path) != nil {
			return ""
		}
		if attr.typ != typeComplex && strings.EqualFold(t.path, "value") {
			return ""
		}
		return t.path
	case valuePathFilter:
		return t.attr
	}
	return "?"
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

// patcher applies operations to res, a private copy of a resource's attributes; any error
// leaves the caller to discard the copy, so a PATCH is all or nothing.
type patcher struct {
	rt  *resourceType
	res map[string]any
}

// applyPatch applies ops to res and returns the resource to store, checked like a PUT body.
func (rt *resourceType) applyPatch(old map[string]any, ops []patchOp) (map[string]any, *scimError) {
	if len(ops) == 0 {
		return nil, badRequest("invalidValue", "PatchOp has no Operations")
	}
	p := &patcher{rt: rt, res: deepCopy(old).(map[string]any)}
	for i, op := range ops {
		name := strings.ToLower(op.Op)
		if err := p.apply(name, op); err != nil {
			if name == "" {
				name = op.Op
			}
			err.detail = "operation " + itoa(i+1) + " (" + name + " " + quote(op.Path) + "): " + err.detail
			return nil, err
		}
	}
	rt.demotePrimaries(old, p.res)
	attrs, err := rt.normalize(p.res, nil)
	if err != nil {
		return nil, err
	}
	if err := rt.checkRequired(attrs, "mutability"); err != nil {
		return nil, err
	}
	return attrs, nil
}

func (p *patcher) apply(name string, op patchOp) *scimError {
	if name != "add" && name != "replace" && name != "remove" {
		return badRequest("invalidSyntax", "unknown op %q: want add, replace or remove", op.Op)
	}
	if name != "remove" && op.Value == nil {
		return badRequest("invalidValue", "value is required")
	}
	if strings.TrimSpace(op.Path) == "" {
		if name == "remove" {
			return badRequest("noTarget", "remove requires a path")
		}
		obj, ok := op.Value.(map[string]any)
		if !ok {
			return badRequest("invalidValue", "%s without path needs an object value, got %s", name, describeJSON(op.Value))
		}
		return p.applyObject(name, obj)
	}
	t, err := p.rt.resolvePath(op.Path)
	if err != nil {
		return err
	}
	value, err := checkPatchValue(t, name, op.Value)
	if err != nil {
		return err
	}
	return p.applyTarget(name, t, value)
}

// checkPatchValue type-checks the value of a path operation and returns it canonicalized.
func checkPatchValue(t patchTarget, op string, v any) (any, *scimError) {
	name := t.String()
	switch {
	case op == "remove":
		if v == nil || !t.attr.multi || t.filter != nil || t.sub != nil {
			return nil, nil // remove takes no value; a value is only meaningful as "these values"
		}
		values, err := checkValue(t.attr, asList(v), name)
		if values == nil && err == nil {
			values = []any{} // "remove none of the values", not "remove the attribute"
		}
		return values, err
	case t.sub != nil:
		return checkValue(t.sub, v, name)
	case t.filter != nil:
		return checkSingle(t.attr, v, name) // the replacement (replace) or the members to merge (add)
	case t.attr.multi:
		if _, isList := v.([]any); !isList {
			v = []any{v} // a single value for a multi-valued attribute
		}
		return checkValue(t.attr, v, name)
	}
	return checkValue(t.attr, v, name)
}

// applyObject applies add or replace without path: obj is a partial resource.
func (p *patcher) applyObject(op string, obj map[string]any) *scimError {
	for _, k := range sortedKeys(obj) {
		v := obj[k]
		if strings.EqualFold(k, "schemas") {
			continue // recomputed from the extensions present
		}
		if isURNKey(k) {
			ext := p.rt.ext(k)
			if ext == nil {
				return p.rt.urnKeyError(k)
			}
			m, ok := v.(map[string]any)
			if !ok {
				return badRequest("invalidValue", "extension %s must be an object, got %s", ext.id, describeJSON(v))
			}
			for _, k2 := range sortedKeys(m) {
				def := findAttr(ext.attrs, k2)
				if def == nil {
					return badRequest("invalidValue", "attribute %q is not defined by schema %s (declared: %s)",
						ext.id+":"+k2, ext.id, strings.Join(attrNames(ext.attrs), ", "))
				}
				if err := p.applyMember(op, patchTarget{schema: ext, inExt: true, attr: def}, m[k2]); err != nil {
					return err
				}
			}
			continue
		}
		def := p.rt.attr(p.rt.core, k)
		if def == nil {
			return badRequest("invalidValue", "attribute %q is not defined by schema %s", k, p.rt.core.id)
		}
		if def.name == "id" && v != nil && !reflect.DeepEqual(v, p.res["id"]) {
			return badRequest("mutability", "attribute \"id\" is read-only")
		}
		if err := p.applyMember(op, patchTarget{schema: p.rt.core, attr: def}, v); err != nil {
			return err
		}
	}
	return nil
}

// applyMember applies one member of a path-less value object; it is checked like the same
// attribute in a POST body. A null value unassigns the attribute on replace (RFC 7643
// section 2.5) and does nothing on add.
func (p *patcher) applyMember(op string, t patchTarget, v any) *scimError {
	if t.attr.readOnly() {
		return nil // ignored, as in a POST body
	}
	value, err := checkValue(t.attr, v, t.String())
	if err != nil {
		return err
	}
	if value == nil {
		if op == "replace" {
			delete(p.container(t), t.attr.name)
		}
		return nil
	}
	return p.applyTarget(op, t, value)
}

// container returns the object holding t.attr, creating an empty extension object when
// needed (normalize drops it again when it stays empty).
func (p *patcher) container(t patchTarget) map[string]any {
	if !t.inExt {
		return p.res
	}
	ext, _ := p.res[t.schema.id].(map[string]any)
	if ext == nil {
		ext = map[string]any{}
		p.res[t.schema.id] = ext
	}
	return ext
}

// applyTarget applies a checked value to a resolved path.
func (p *patcher) applyTarget(op string, t patchTarget, value any) *scimError {
	c := p.container(t)
	key := t.attr.name
	if t.filter != nil {
		return p.applyFiltered(c, op, t, value)
	}
	if t.sub != nil {
		return applySub(c, op, t, value)
	}
	cur := c[key]
	switch op {
	case "remove":
		if list, ok := cur.([]any); ok && value != nil {
			// Remove with a value (sent by some clients for members): drop just those values.
			setOrDelete(c, key, removeValues(list, value.([]any)))
			return nil
		}
		delete(c, key) // removing an absent attribute is a no-op
	case "add":
		switch {
		case t.attr.multi:
			list, _ := cur.([]any)
			values, _ := value.([]any)
			setOrDelete(c, key, appendUnique(list, values))
		case t.attr.typ == typeComplex:
			mergeComplex(c, key, value)
		default:
			c[key] = value
		}
	case "replace":
		switch {
		case t.attr.multi:
			values, _ := value.([]any)
			setOrDelete(c, key, values)
		case t.attr.typ == typeComplex:
			mergeComplex(c, key, value) // RFC 7644 3.5.2.3: unspecified sub-attributes stay
		default:
			if value == nil {
				delete(c, key)
			} else {
				c[key] = value
			}
		}
	}
	return nil
}

func mergeComplex(c map[string]any, key string, value any) {
	obj, _ := value.(map[string]any)
	if m, ok := c[key].(map[string]any); ok {
		mergeMap(m, obj)
		return
	}
	if obj != nil {
		c[key] = obj
	}
}

// applySub sets or removes t.sub of a complex attribute; of every value when the attribute
// is multi-valued.
func applySub(c map[string]any, op string, t patchTarget, value any) *scimError {
	key, sub := t.attr.name, t.sub.name
	switch cur := c[key].(type) {
	case nil:
		switch {
		case op == "remove" || value == nil:
		case t.attr.multi:
			return badRequest("noTarget", "attribute %q has no values whose %q could be set", key, sub)
		default:
			c[key] = map[string]any{sub: value}
		}
	case map[string]any:
		setSub(cur, op, sub, value)
		if len(cur) == 0 {
			delete(c, key)
		}
	case []any:
		for _, elem := range cur {
			if m, ok := elem.(map[string]any); ok {
				setSub(m, op, sub, value)
			}
		}
	}
	return nil
}

func setSub(m map[string]any, op, sub string, value any) {
	if op == "remove" || value == nil {
		delete(m, sub)
		return
	}
	m[sub] = value
}

func (p *patcher) applyFiltered(c map[string]any, op string, t patchTarget, value any) *scimError {
	key := t.attr.name
	list, _ := c[key].([]any)
	var matched []int
	for i, elem := range list {
		if m, ok := elem.(map[string]any); ok && t.filter.match(m) {
			matched = append(matched, i)
		}
	}
	if len(matched) == 0 {
		if op == "remove" && p.rt.name == "Group" && key == "members" {
			return nil // an absent member: a no-op, which keeps retried removals harmless
		}
		return badRequest("noTarget", "no value of %q matches the filter", key)
	}
	if t.sub != nil {
		for _, i := range matched {
			setSub(list[i].(map[string]any), op, t.sub.name, value)
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
		setOrDelete(c, key, keep)
	case "replace":
		for _, i := range matched {
			list[i] = deepCopy(value)
		}
	case "add":
		obj, _ := value.(map[string]any)
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
