package scimsandbox

import (
	"encoding/base64"
	"fmt"
	"math"
	"sort"
	"strings"
	"time"
)

// Validation of resources against the declared schemas. Errors follow RFC 7644 section 3.12:
//
//	invalidSyntax  the body's structure: "schemas" missing, not an array of strings, without
//	               the core schema, or not listing an extension whose data is present; an
//	               attribute given twice under names that differ only in case
//	invalidValue   the body against the resource schema: an attribute or sub-attribute the
//	               schemas do not declare, a URN key that is not an extension of the resource
//	               type, a value of the wrong type, a missing required attribute
//	mutability     (PATCH) writing a readOnly attribute, removing a required one
//
// readOnly attributes (id, meta, groups, manager.displayName) in a POST or PUT body are
// ignored, as RFC 7643 section 7 and RFC 7644 section 3.5.1 require.

func isURNKey(k string) bool { return len(k) >= 4 && strings.EqualFold(k[:4], "urn:") }

// checkBody validates a POST or PUT body and returns the attributes to store: names in their
// schema spelling, extensions under their declared URN, readOnly and null values dropped.
func (rt *resourceType) checkBody(body map[string]any) (map[string]any, *scimError) {
	listed, err := rt.checkSchemas(body)
	if err != nil {
		return nil, err
	}
	attrs, err := rt.normalize(body, listed)
	if err != nil {
		return nil, err
	}
	if err := rt.checkRequired(attrs, "invalidValue"); err != nil {
		return nil, err
	}
	if err := rt.checkPrimaries(attrs); err != nil {
		return nil, err
	}
	return attrs, nil
}

// checkSchemas validates the "schemas" attribute and returns the declared schemas it lists.
func (rt *resourceType) checkSchemas(body map[string]any) (map[string]bool, *scimError) {
	v, ok := lookup(body, "schemas")
	if !ok || v == nil {
		return nil, badRequest("invalidSyntax", "schemas is required and must include %s", rt.core.id)
	}
	list, isList := v.([]any)
	if !isList {
		return nil, badRequest("invalidSyntax", "schemas must be an array of schema URNs, got %s", describeJSON(v))
	}
	listed := map[string]bool{}
	for _, e := range list {
		urn, isString := e.(string)
		if !isString {
			return nil, badRequest("invalidSyntax", "schemas must be an array of schema URNs, got an element %s", describeJSON(e))
		}
		s := rt.schemaOf(urn)
		if s == nil {
			return nil, badRequest("invalidValue", "schemas lists %q, which is not a schema of %s resources (declared: %s)",
				urn, rt.name, strings.Join(rt.schemaIDs(), ", "))
		}
		listed[s.id] = true
	}
	if !listed[rt.core.id] {
		return nil, badRequest("invalidSyntax", "schemas must include %s", rt.core.id)
	}
	return listed, nil
}

func (rt *resourceType) schemaIDs() []string {
	ids := []string{rt.core.id}
	for _, e := range rt.exts {
		ids = append(ids, e.id)
	}
	return ids
}

// urnKeyError explains why k, a URN used as an attribute name, is not a declared extension.
func (rt *resourceType) urnKeyError(k string) *scimError {
	if strings.EqualFold(k, rt.core.id) {
		return badRequest("invalidValue", "%q: core attributes go at the top level, not under their schema URN", k)
	}
	for _, id := range rt.schemaIDs() {
		if len(k) > len(id) && strings.EqualFold(k[:len(id)], id) && k[len(id)] == ':' {
			return badRequest("invalidValue", "%q is an attribute path, not an attribute name: put %q inside an object under %q",
				k, k[len(id)+1:], id)
		}
	}
	return badRequest("invalidValue", "%q is not a schema extension of %s resources (declared: %s)",
		k, rt.name, strings.Join(rt.schemaIDs()[1:], ", "))
}

// normalize checks the attributes of a whole resource (core attributes at the top level,
// extensions under their URN) and returns them in canonical form. listed, when not nil, is
// the set of schemas the body's "schemas" names; extension data must be listed there.
func (rt *resourceType) normalize(in map[string]any, listed map[string]bool) (map[string]any, *scimError) {
	out := map[string]any{}
	given := map[string]string{} // canonical name -> key as given, to catch case duplicates
	dup := func(canonical, k string) *scimError {
		if prev, ok := given[canonical]; ok {
			return badRequest("invalidSyntax", "attribute %q is given twice (as %q and %q); names are case-insensitive", canonical, prev, k)
		}
		given[canonical] = k
		return nil
	}
	for _, k := range sortedKeys(in) {
		v := in[k]
		if strings.EqualFold(k, "schemas") {
			continue
		}
		if isURNKey(k) {
			ext := rt.ext(k)
			if ext == nil {
				return nil, rt.urnKeyError(k)
			}
			if err := dup(ext.id, k); err != nil {
				return nil, err
			}
			if v == nil {
				continue
			}
			obj, ok := v.(map[string]any)
			if !ok {
				return nil, badRequest("invalidValue", "extension %s must be an object, got %s", ext.id, describeJSON(v))
			}
			m, err := normalizeObject(ext.attrs, obj, ext.id+":", ext.id)
			if err != nil {
				return nil, err
			}
			if len(m) == 0 {
				continue // no data: nothing schemas would have to announce
			}
			if listed != nil && !listed[ext.id] {
				return nil, badRequest("invalidSyntax", "the body has %s attributes but schemas does not list %s", ext.id, ext.id)
			}
			out[ext.id] = m
			continue
		}
		def := rt.attr(rt.core, k)
		if def == nil {
			return nil, badRequest("invalidValue", "attribute %q is not defined by schema %s", k, rt.core.id)
		}
		if err := dup(def.name, k); err != nil {
			return nil, err
		}
		if def.readOnly() {
			continue // RFC 7643 section 7: values of readOnly attributes are ignored
		}
		cv, err := checkValue(def, v, def.name)
		if err != nil {
			return nil, err
		}
		if cv != nil {
			out[def.name] = cv
		}
	}
	return out, nil
}

// normalizeObject checks the members of an extension object against the extension's
// attributes; prefix qualifies names in error details.
func normalizeObject(defs []*attrDef, obj map[string]any, prefix, schemaID string) (map[string]any, *scimError) {
	out := map[string]any{}
	given := map[string]string{}
	for _, k := range sortedKeys(obj) {
		def := findAttr(defs, k)
		if def == nil {
			return nil, badRequest("invalidValue", "attribute %q is not defined by schema %s (declared: %s)",
				prefix+k, schemaID, strings.Join(attrNames(defs), ", "))
		}
		if prev, ok := given[def.name]; ok {
			return nil, badRequest("invalidSyntax", "attribute %q is given twice (as %q and %q); names are case-insensitive", prefix+def.name, prev, k)
		}
		given[def.name] = k
		if def.readOnly() {
			continue
		}
		cv, err := checkValue(def, obj[k], prefix+def.name)
		if err != nil {
			return nil, err
		}
		if cv != nil {
			out[def.name] = cv
		}
	}
	return out, nil
}

func attrNames(defs []*attrDef) []string {
	var out []string
	for _, d := range defs {
		out = append(out, d.name)
	}
	if out == nil {
		return []string{"none"}
	}
	return out
}

// checkValue checks v against def and returns it in canonical form; nil means unassigned
// (null, an empty array or an empty object, RFC 7643 section 2.5).
func checkValue(def *attrDef, v any, name string) (any, *scimError) {
	if v == nil {
		return nil, nil
	}
	if !def.multi {
		return checkSingle(def, v, name)
	}
	list, ok := v.([]any)
	if !ok {
		return nil, badRequest("invalidValue", "attribute %q is multi-valued: want an array, got %s", name, describeJSON(v))
	}
	var out []any
	for i, e := range list {
		elem := fmt.Sprintf("%s[%d]", name, i)
		if e == nil {
			return nil, badRequest("invalidValue", "attribute %q: null is not a value", elem)
		}
		ce, err := checkSingle(def, e, elem)
		if err != nil {
			return nil, err
		}
		if ce != nil {
			out = append(out, ce)
		}
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

// checkSingle checks one value (an element, for a multi-valued attribute).
func checkSingle(def *attrDef, v any, name string) (any, *scimError) {
	if def.typ != typeComplex {
		return checkSimple(def, v, name)
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, badRequest("invalidValue", "attribute %q is complex: want an object, got %s", name, describeJSON(v))
	}
	out := map[string]any{}
	given := map[string]string{}
	for _, k := range sortedKeys(m) {
		sub := def.child(k)
		if sub == nil {
			return nil, badRequest("invalidValue", "attribute %q has no sub-attribute %q (declared: %s)",
				name, k, strings.Join(attrNames(def.sub), ", "))
		}
		if prev, ok := given[sub.name]; ok {
			return nil, badRequest("invalidSyntax", "sub-attribute %q of %q is given twice (as %q and %q)", sub.name, name, prev, k)
		}
		given[sub.name] = k
		if sub.readOnly() {
			continue
		}
		cv, err := checkValue(sub, m[k], name+"."+sub.name)
		if err != nil {
			return nil, err
		}
		if cv != nil {
			out[sub.name] = cv
		}
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

// checkSimple checks a value of a simple type (RFC 7643 section 2.3).
func checkSimple(def *attrDef, v any, name string) (any, *scimError) {
	ok := false
	switch def.typ {
	case typeString, typeReference:
		_, ok = v.(string)
	case typeBoolean:
		_, ok = v.(bool)
	case typeDecimal:
		_, ok = v.(float64)
	case typeInteger:
		f, isNumber := v.(float64)
		ok = isNumber && f == math.Trunc(f) && !math.IsInf(f, 0)
	case typeDateTime:
		if s, isString := v.(string); isString {
			_, err := time.Parse(time.RFC3339Nano, s)
			ok = err == nil
		}
	case typeBinary:
		if s, isString := v.(string); isString {
			_, err := base64.StdEncoding.DecodeString(s)
			ok = err == nil
		}
	}
	if !ok {
		return nil, badRequest("invalidValue", "attribute %q: want a %s, got %s", name, typeNoun(def.typ), describeJSON(v))
	}
	return v, nil
}

func typeNoun(typ string) string {
	switch typ {
	case typeString:
		return "string"
	case typeBoolean:
		return "boolean (true or false)"
	case typeDateTime:
		return "dateTime string (RFC 3339)"
	case typeBinary:
		return "base64 string"
	case typeReference:
		return "reference (a string)"
	}
	return typ
}

// describeJSON names a decoded JSON value for error details.
func describeJSON(v any) string {
	switch t := v.(type) {
	case nil:
		return "null"
	case string:
		if len(t) > 40 {
			t = t[:40] + "..."
		}
		return fmt.Sprintf("the string %q", t)
	case bool:
		return fmt.Sprintf("the boolean %v", t)
	case float64:
		return fmt.Sprintf("the number %v", t)
	case map[string]any:
		return "an object"
	case []any:
		return "an array"
	}
	return fmt.Sprintf("%T", v)
}

// checkRequired reports a required attribute (of the core schema, or of an extension
// that has data) that is absent. scimType is invalidValue for POST and PUT, mutability
// after a PATCH (RFC 7644 section 3.5.2: a required attribute cannot be removed).
func (rt *resourceType) checkRequired(attrs map[string]any, scimType string) *scimError {
	missing := func(defs []*attrDef, in map[string]any, prefix string) *scimError {
		for _, d := range defs {
			if _, ok := in[d.name]; d.required && !ok {
				if scimType == "mutability" {
					return badRequest(scimType, "attribute %q is required and cannot be removed", prefix+d.name)
				}
				return badRequest(scimType, "attribute %q is required", prefix+d.name)
			}
		}
		return nil
	}
	if err := missing(rt.core.attrs, attrs, ""); err != nil {
		return err
	}
	for _, e := range rt.exts {
		if m, ok := attrs[e.id].(map[string]any); ok {
			if err := missing(e.attrs, m, e.id+":"); err != nil {
				return err
			}
		}
	}
	return nil
}

// primaryAttrs are the multi-valued core attributes with a "primary" sub-attribute.
func (rt *resourceType) primaryAttrs() []string {
	var out []string
	for _, d := range rt.core.attrs {
		if d.multi && d.child("primary") != nil {
			out = append(out, d.name)
		}
	}
	return out
}

// checkPrimaries enforces RFC 7643 section 2.4 on a POST or PUT body: "primary" is true for
// at most one value.
func (rt *resourceType) checkPrimaries(attrs map[string]any) *scimError {
	for _, name := range rt.primaryAttrs() {
		if len(primaryIndexes(attrs[name])) > 1 {
			return badRequest("invalidValue", "attribute %q: primary is true for more than one value", name)
		}
	}
	return nil
}

func primaryIndexes(v any) []int {
	var out []int
	list, _ := v.([]any)
	for i, e := range list {
		if m, ok := e.(map[string]any); ok && m["primary"] == true {
			out = append(out, i)
		}
	}
	return out
}

// demotePrimaries applies RFC 7644 section 3.5.2 after a PATCH: a value newly made primary
// turns "primary" off for the others (the last new one wins).
func (rt *resourceType) demotePrimaries(before, after map[string]any) {
	for _, name := range rt.primaryAttrs() {
		idx := primaryIndexes(after[name])
		if len(idx) < 2 {
			continue
		}
		list := after[name].([]any)
		wasPrimary := func(e any) bool {
			for _, i := range primaryIndexes(before[name]) {
				if sameValue(before[name].([]any)[i], e) {
					return true
				}
			}
			return false
		}
		keep := idx[len(idx)-1]
		for j := len(idx) - 1; j >= 0; j-- {
			if !wasPrimary(list[idx[j]]) {
				keep = idx[j]
				break
			}
		}
		for _, i := range idx {
			if i != keep {
				list[i].(map[string]any)["primary"] = false
			}
		}
	}
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
