package scimsandbox

import (
	"encoding/json"
	"fmt"
	"strings"
)

// filter is a parsed RFC 7644 section 3.4.2.2 filter expression.
// Supported: eq ne co sw ew gt ge lt le pr, and, or, not(...), parentheses and value paths
// such as emails[type eq "work"].
type filter interface {
	match(res map[string]any) bool
}

type andFilter struct{ left, right filter }
type orFilter struct{ left, right filter }
type notFilter struct{ inner filter }

// compareFilter is `attrPath op value` (value is nil for pr).
type compareFilter struct {
	path  string // may be URN-qualified and dotted
	op    string
	value any
}

// valuePathFilter is `attr[inner]`: true when some element of the multi-valued attr matches.
type valuePathFilter struct {
	attr  string
	inner filter
}

func (f andFilter) match(r map[string]any) bool { return f.left.match(r) && f.right.match(r) }
func (f orFilter) match(r map[string]any) bool  { return f.left.match(r) || f.right.match(r) }
func (f notFilter) match(r map[string]any) bool { return !f.inner.match(r) }

func (f valuePathFilter) match(r map[string]any) bool {
	container, attr := resolveContainer(r, f.attr)
	v, _ := lookup(container, attr)
	for _, elem := range asList(v) {
		if m, ok := elem.(map[string]any); ok && f.inner.match(m) {
			return true
		}
	}
	return false
}

func (f compareFilter) match(r map[string]any) bool {
	values := valuesAt(r, f.path)
	if f.op == "pr" {
		for _, v := range values {
			if !isEmpty(v) {
				return true
			}
		}
		return false
	}
	if f.op == "ne" {
		return !compareFilter{path: f.path, op: "eq", value: f.value}.match(r)
	}
	caseExact := isCaseExact(f.path)
	for _, v := range values {
		if compare(v, f.op, f.value, caseExact) {
			return true
		}
	}
	return false
}

// caseExactAttrs are the attributes RFC 7643 marks caseExact; other strings compare
// case-insensitively.
var caseExactAttrs = map[string]bool{"id": true, "externalid": true, "meta.version": true, "members.value": true}

func isCaseExact(path string) bool {
	_, attr := splitURN(path)
	return caseExactAttrs[strings.ToLower(attr)]
}

func compare(have any, op string, want any, caseExact bool) bool {
	switch w := want.(type) {
	case string:
		h, ok := have.(string)
		if !ok {
			return false
		}
		if !caseExact {
			h, w = strings.ToLower(h), strings.ToLower(w)
		}
		switch op {
		case "eq":
			return h == w
		case "co":
			return strings.Contains(h, w)
		case "sw":
			return strings.HasPrefix(h, w)
		case "ew":
			return strings.HasSuffix(h, w)
		case "gt":
			return h > w
		case "ge":
			return h >= w
		case "lt":
			return h < w
		case "le":
			return h <= w
		}
	case bool:
		h, ok := have.(bool)
		return ok && op == "eq" && h == w
	case float64:
		h, ok := have.(float64)
		if !ok {
			return false
		}
		switch op {
		case "eq":
			return h == w
		case "gt":
			return h > w
		case "ge":
			return h >= w
		case "lt":
			return h < w
		case "le":
			return h <= w
		}
	case nil:
		return op == "eq" && have == nil
	}
	return false
}

// valuesAt returns every value at a dotted (optionally URN-qualified) path, flattening
// multi-valued attributes; `emails` alone compares against each element's "value".
func valuesAt(r map[string]any, path string) []any {
	container, attr := resolveContainer(r, path)
	head, sub, _ := strings.Cut(attr, ".")
	v, ok := lookup(container, head)
	if !ok {
		return nil
	}
	var out []any
	for _, elem := range asList(v) {
		m, isMap := elem.(map[string]any)
		switch {
		case sub != "" && isMap:
			if sv, ok := lookup(m, sub); ok {
				out = append(out, asList(sv)...)
			}
		case sub == "" && isMap:
			if sv, ok := lookup(m, "value"); ok {
				out = append(out, sv)
			}
		case sub == "":
			out = append(out, elem)
		}
	}
	return out
}

func asList(v any) []any {
	if l, ok := v.([]any); ok {
		return l
	}
	if v == nil {
		return nil
	}
	return []any{v}
}

func isEmpty(v any) bool {
	switch t := v.(type) {
	case nil:
		return true
	case string:
		return t == ""
	case []any:
		return len(t) == 0
	case map[string]any:
		return len(t) == 0
	}
	return false
}

// parseFilter parses a filter string; errors are 400 invalidFilter.
func parseFilter(s string) (filter, *scimError) {
	toks, err := tokenize(s)
	if err != nil {
		return nil, badRequest("invalidFilter", "filter %q: %v", s, err)
	}
	p := &filterParser{toks: toks}
	f, err := p.parseOr()
	if err == nil && p.pos < len(p.toks) {
		err = fmt.Errorf("unexpected %q", p.toks[p.pos].text)
	}
	if err != nil {
		return nil, badRequest("invalidFilter", "filter %q: %v", s, err)
	}
	return f, nil
}

type token struct {
	text    string
	literal bool // a quoted string (text holds the decoded value)
}

func tokenize(s string) ([]token, error) {
	var toks []token
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '(' || c == ')' || c == '[' || c == ']':
			toks = append(toks, token{text: string(c)})
			i++
		case c == '"':
			j := i + 1
			for j < len(s) && s[j] != '"' {
				if s[j] == '\\' {
					j++
				}
				j++
			}
			if j >= len(s) {
				return nil, fmt.Errorf("unterminated string at offset %d", i)
			}
			var v string
			if err := json.Unmarshal([]byte(s[i:j+1]), &v); err != nil {
				return nil, fmt.Errorf("bad string literal %s", s[i:j+1])
			}
			toks = append(toks, token{text: v, literal: true})
			i = j + 1
		default:
			j := i
			for j < len(s) && !strings.ContainsRune(" \t\n\r()[]\"", rune(s[j])) {
				j++
			}
			toks = append(toks, token{text: s[i:j]})
			i = j
		}
	}
	return toks, nil
}

type filterParser struct {
	toks []token
	pos  int
}

func (p *filterParser) peekWord(w string) bool {
	return p.pos < len(p.toks) && !p.toks[p.pos].literal && strings.EqualFold(p.toks[p.pos].text, w)
}

func (p *filterParser) expect(w string) error {
	if !p.peekWord(w) {
		return fmt.Errorf("expected %q", w)
	}
	p.pos++
	return nil
}

func (p *filterParser) parseOr() (filter, error) {
	left, err := p.parseAnd()
	for err == nil && p.peekWord("or") {
		p.pos++
		var right filter
		right, err = p.parseAnd()
		left = orFilter{left, right}
	}
	return left, err
}

func (p *filterParser) parseAnd() (filter, error) {
	left, err := p.parseUnary()
	for err == nil && p.peekWord("and") {
		p.pos++
		var right filter
		right, err = p.parseUnary()
		left = andFilter{left, right}
	}
	return left, err
}

func (p *filterParser) parseUnary() (filter, error) {
	if p.peekWord("not") {
		p.pos++
		if err := p.expect("("); err != nil {
			return nil, err
		}
		inner, err := p.parseOr()
		if err != nil {
			return nil, err
		}
		return notFilter{inner}, p.expect(")")
	}
	if p.peekWord("(") {
		p.pos++
		inner, err := p.parseOr()
		if err != nil {
			return nil, err
		}
		return inner, p.expect(")")
	}
	return p.parseAttrExpr()
}

func (p *filterParser) parseAttrExpr() (filter, error) {
	if p.pos >= len(p.toks) || p.toks[p.pos].literal {
		return nil, fmt.Errorf("expected an attribute path")
	}
	path := p.toks[p.pos].text
	p.pos++
	if p.peekWord("[") {
		p.pos++
		inner, err := p.parseOr()
		if err != nil {
			return nil, err
		}
		return valuePathFilter{attr: path, inner: inner}, p.expect("]")
	}
	if p.pos >= len(p.toks) {
		return nil, fmt.Errorf("expected an operator after %q", path)
	}
	op := strings.ToLower(p.toks[p.pos].text)
	p.pos++
	switch op {
	case "pr":
		return compareFilter{path: path, op: op}, nil
	case "eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le":
	default:
		return nil, fmt.Errorf("unsupported operator %q", op)
	}
	if p.pos >= len(p.toks) {
		return nil, fmt.Errorf("expected a value after %q %s", path, op)
	}
	t := p.toks[p.pos]
	p.pos++
	if t.literal {
		return compareFilter{path: path, op: op, value: t.text}, nil
	}
	var v any
	if err := json.Unmarshal([]byte(t.text), &v); err != nil {
		return nil, fmt.Errorf("bad value %q (strings must be quoted)", t.text)
	}
	if _, isStruct := v.(map[string]any); isStruct {
		return nil, fmt.Errorf("bad value %q", t.text)
	}
	return compareFilter{path: path, op: op, value: v}, nil
}

// indexedEq finds a top-level `attr eq "value"` term (alone or under `and`) that an index can
// answer, so lookups by userName or externalId do not scan every user.
func indexedEq(f filter, attr string) (string, bool) {
	switch t := f.(type) {
	case compareFilter:
		_, a := splitURN(t.path)
		if s, ok := t.value.(string); ok && t.op == "eq" && strings.EqualFold(a, attr) {
			return s, true
		}
	case andFilter:
		if v, ok := indexedEq(t.left, attr); ok {
			return v, true
		}
		return indexedEq(t.right, attr)
	}
	return "", false
}
