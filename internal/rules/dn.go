package rules

import "strings"

// NormalizeDN returns the canonical form used to compare DNs: attribute types and values
// lower-cased, spaces around ',', '+' and '=' removed, empty components dropped. Escaped
// characters ("\,", "\+", "\ ", "\2C") are kept as written (lower-cased), so
// "CN=Doe\, John , OU=Sales" and "cn=doe\, john,ou=sales" compare equal.
func NormalizeDN(dn string) string {
	rdns := splitUnescaped(dn, ',')
	out := make([]string, 0, len(rdns))
	for _, rdn := range rdns {
		avas := splitUnescaped(rdn, '+')
		parts := make([]string, 0, len(avas))
		for _, ava := range avas {
			typ, val, ok := cutUnescaped(ava, '=')
			var s string
			if ok {
				s = strings.TrimSpace(typ) + "=" + trimValue(val)
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

// trimValue removes surrounding spaces but keeps a trailing escaped space ("foo\ ").
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
