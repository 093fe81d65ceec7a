package rules

import (
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/go-ldap/ldap/v3"
)

// NormalizeDN returns the canonical form used to compare DNs (rule group DNs, the group
// and member DNs a directory returns). Two DNs get the same form exactly when they name
// the same entry under distinguishedNameMatch with case-insensitive values, as go-ldap's
// DN.EqualFold decides:
//
//   - the DN is parsed per RFC 4514 (go-ldap's ParseDN): escapes are decoded, so
//     "CN=Sales\, EMEA", "cn=Sales\2C EMEA" and "cn=sales\2c emea" are one DN, and so are
//     "CN=Ärger" and "CN=\C3\84rger";
//   - attribute types are lower-cased, and the usual OIDs get their names
//     ("2.5.4.3=x" is "cn=x");
//   - values are case-folded, then escaped again in one way: a backslash before
//     \ " + , ; < >, before a leading '#' or space and a trailing space; control
//     characters and bytes that are not UTF-8 as \xx; other characters as UTF-8;
//   - the attributes of a multi-valued RDN are sorted ("uid=b+cn=a" is "cn=a+uid=b").
//
// NormalizeDN(NormalizeDN(x)) == NormalizeDN(x). A string that does not parse as a DN
// (rules.Validate reports most of those) is normalized leniently: spaces around
// separators and empty components dropped, lower-cased, escapes kept as written.
func NormalizeDN(dn string) string {
	if c, ok := simpleDN(dn); ok {
		return c
	}
	return normalizeParsed(dn)
}

// normalizeParsed is NormalizeDN without the shortcut of simpleDN.
func normalizeParsed(dn string) string {
	if c, ok := canonicalDN(dn); ok {
		return c
	}
	lenient := lenientDN(dn) // e.g. "cn=a,,dc=x," parses once the empty parts are gone
	if c, ok := canonicalDN(lenient); ok {
		return c
	}
	return lenient
}

// simpleDN is the common case, cheaply: a DN of printable ASCII without escapes or
// characters that need them, '#', '+' or ';', every component "name=value". Its canonical
// form is then the lower-cased DN without spaces around ',' and '='.
func simpleDN(dn string) (string, bool) {
	for i := 0; i < len(dn); i++ {
		switch c := dn[i]; {
		case c < 0x20 || c > 0x7e, c == '\\', c == '#', c == '+', c == ';', c == '"', c == '<', c == '>':
			return "", false
		}
	}
	var b strings.Builder
	b.Grow(len(dn))
	for i, comp := range strings.Split(dn, ",") {
		typ, val, ok := strings.Cut(comp, "=")
		typ = strings.Trim(typ, " ")
		if !ok || !isAttrName(typ) {
			return "", false // e.g. an empty component, or an OID
		}
		if i > 0 {
			b.WriteByte(',')
		}
		writeLower(&b, typ)
		b.WriteByte('=')
		writeLower(&b, strings.Trim(val, " "))
	}
	return b.String(), true
}

// isAttrName reports whether s is an attribute type name: a letter, then letters, digits
// and hyphens.
func isAttrName(s string) bool {
	if s == "" || !('a' <= s[0]|0x20 && s[0]|0x20 <= 'z') {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if !('a' <= c|0x20 && c|0x20 <= 'z') && !('0' <= c && c <= '9') && c != '-' {
			return false
		}
	}
	return true
}

func writeLower(b *strings.Builder, s string) {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		b.WriteByte(c)
	}
}

// canonicalDN renders the parsed dn canonically; ok is false when dn does not parse.
func canonicalDN(dn string) (string, bool) {
	parsed, err := ldap.ParseDN(dn)
	if err != nil {
		return "", false
	}
	rdns := make([]string, len(parsed.RDNs))
	for i, rdn := range parsed.RDNs {
		avas := make([]string, len(rdn.Attributes))
		for j, a := range rdn.Attributes {
			avas[j] = canonicalType(a.Type) + "=" + canonicalValue(a.Value)
		}
		slices.Sort(avas)
		rdns[i] = strings.Join(avas, "+")
	}
	return strings.Join(rdns, ","), true
}

// typeNames maps the OIDs of the attribute types usual in DNs to their names.
var typeNames = map[string]string{
	"2.5.4.3":                    "cn",
	"2.5.4.6":                    "c",
	"2.5.4.7":                    "l",
	"2.5.4.8":                    "st",
	"2.5.4.9":                    "street",
	"2.5.4.10":                   "o",
	"2.5.4.11":                   "ou",
	"0.9.2342.19200300.100.1.1":  "uid",
	"0.9.2342.19200300.100.1.25": "dc",
}

func canonicalType(t string) string {
	// Types are ASCII (RFC 4512): only ASCII letters fold. Unicode lower-casing could turn
	// a garbled type into another ("İ" into "i" plus a combining dot), naming another DN.
	t = strings.Map(func(r rune) rune {
		if 'A' <= r && r <= 'Z' {
			return r + 'a' - 'A'
		}
		return r
	}, t)
	if oid, ok := strings.CutPrefix(t, "oid."); ok && oid != "" && oid[0] >= '0' && oid[0] <= '9' {
		t = oid
	}
	if name, ok := typeNames[t]; ok {
		return name
	}
	// A type is a name or an OID: a character that would need escaping cannot be in it,
	// but a garbled one must still render unambiguously.
	return escape(t, true)
}

// canonicalValue case-folds v and escapes it.
func canonicalValue(v string) string {
	var b strings.Builder
	b.Grow(len(v))
	for i := 0; i < len(v); {
		r, size := utf8.DecodeRuneInString(v[i:])
		if r == utf8.RuneError && size <= 1 {
			b.WriteByte(v[i]) // not UTF-8: escape writes it as \xx
		} else {
			b.WriteRune(foldRune(r))
		}
		i += size
	}
	return escape(b.String(), false)
}

// foldRune maps every rune of a case-folding orbit (as strings.EqualFold sees them) to
// one of them: the lower-case one when it is in the orbit, else the smallest.
func foldRune(r rune) rune {
	if r < utf8.RuneSelf { // ASCII: the orbits of k and s hold K (Kelvin) and ſ, all fold to k, s
		if 'A' <= r && r <= 'Z' {
			r += 'a' - 'A'
		}
		return r
	}
	least := r
	for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
		least = min(least, f)
	}
	if l := unicode.ToLower(least); l != least && orbitHas(least, l) {
		return l
	}
	return least
}

func orbitHas(r, x rune) bool {
	for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
		if f == x {
			return true
		}
	}
	return r == x
}

// escape escapes an attribute value (or type: '=' too) per RFC 4514, section 2.4,
// keeping valid printable UTF-8 as is.
func escape(v string, isType bool) string {
	const hexDigits = "0123456789abcdef"
	var b strings.Builder
	b.Grow(len(v) + 4)
	for i := 0; i < len(v); {
		c := v[i]
		r, size := utf8.DecodeRuneInString(v[i:])
		switch {
		case (i == 0 && (c == ' ' || c == '#')) || (i == len(v)-1 && c == ' '):
			b.WriteByte('\\')
			b.WriteByte(c)
		case c == '"' || c == '+' || c == ',' || c == ';' || c == '<' || c == '>' || c == '\\' || (isType && c == '='):
			b.WriteByte('\\')
			b.WriteByte(c)
		case c < ' ' || c == 0x7f || (r == utf8.RuneError && size <= 1) || (c >= utf8.RuneSelf && !unicode.IsPrint(r)):
			for _, x := range []byte(v[i : i+size]) {
				b.WriteByte('\\')
				b.WriteByte(hexDigits[x>>4])
				b.WriteByte(hexDigits[x&0xf])
			}
		default:
			b.WriteString(v[i : i+size])
		}
		i += size
	}
	return b.String()
}

// lenientDN is the fallback form of a string that does not parse as a DN: attribute
// types and values lower-cased, spaces and tabs around ',', '+' and '=' removed unless
// escaped, empty components dropped, escapes kept as written. Types and values are
// trimmed alike, so the form is its own lenient form ("\ =x" keeps its escaped space:
// trimming it would leave "\=x", whose '=' is escaped).
func lenientDN(dn string) string {
	rdns := splitUnescaped(dn, ',')
	out := make([]string, 0, len(rdns))
	for _, rdn := range rdns {
		avas := splitUnescaped(rdn, '+')
		parts := make([]string, 0, len(avas))
		for _, ava := range avas {
			typ, val, ok := cutUnescaped(ava, '=')
			var s string
			if ok {
				s = trimValue(typ) + "=" + trimValue(val)
			} else {
				s = trimValue(ava)
			}
			if s != "" {
				parts = append(parts, s)
			}
		}
		if len(parts) > 0 {
			out = append(out, strings.Join(parts, "+"))
		}
	}
	return strings.ToLower(strings.Join(out, ","))
}

// checkDN reports the first component that is not "type=value", or "" when the DN looks
// parseable. It is deliberately lenient: the directory is the judge of real existence.
func checkDN(dn string) string {
	for _, rdn := range splitUnescaped(dn, ',') {
		for _, ava := range splitUnescaped(rdn, '+') {
			typ, _, ok := cutUnescaped(ava, '=')
			if !ok || strings.TrimSpace(typ) == "" {
				return ava
			}
		}
	}
	return ""
}

// splitUnescaped splits s at every sep not preceded by an escaping backslash.
func splitUnescaped(s string, sep byte) []string {
	var parts []string
	start := 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++ // skip the escaped byte
		case sep:
			parts = append(parts, s[start:i])
			start = i + 1
		}
	}
	return append(parts, s[start:])
}

// cutUnescaped splits s at the first unescaped sep.
func cutUnescaped(s string, sep byte) (before, after string, found bool) {
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case sep:
			return s[:i], s[i+1:], true
		}
	}
	return s, "", false
}

// trimValue removes surrounding spaces and tabs but keeps a trailing escaped one ("foo\ ").
func trimValue(v string) string {
	v = strings.TrimLeft(v, " \t")
	for len(v) > 0 && (v[len(v)-1] == ' ' || v[len(v)-1] == '\t') {
		// Count the backslashes right before the space: an odd count escapes it.
		n := 0
		for j := len(v) - 2; j >= 0 && v[j] == '\\'; j-- {
			n++
		}
		if n%2 == 1 {
			break
		}
		v = v[:len(v)-1]
	}
	return v
}
