package directory

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"strings"
	"unicode/utf8"
)

// One bad value in the directory must not stop the read of everyone else. The reader takes
// each value it copies into a User through cleanValue: what PostgreSQL cannot store (NUL,
// invalid UTF-8) is replaced by U+FFFD, what is oversize is cut, and the user gets a Problem
// naming the attribute (never the value). The plan decides what a Problem means (it fails
// the user as invalid_user_data, plan.CheckDirectoryUser). Detection is here because only
// the reader sees the bytes: once a User is encoded as JSON, invalid UTF-8 has already
// become U+FFFD and a NUL cannot be stored at all.
//
// What is a problem only for the target (control characters, invisible formatting
// characters such as U+202E, the target's 256-character limit) is the plan's to check, on
// the desired state (plan.CheckUser).

// Limits, in bytes, on the values a read copies into a User. A longer value is cut at the
// limit (at a character boundary) and the user gets a Problem. They keep the snapshot
// bounded whatever the directory holds; they are above what the target accepts
// (plan.MaxValueLen: 256 characters, at most 1,024 bytes of UTF-8), so the plan still
// refuses shorter values the target would not take.
const (
	// MaxNameBytes bounds the identity values: the userName attribute, mail, givenName, sn,
	// displayName and entryUUID.
	MaxNameBytes = 1024
	// MaxAttributeBytes bounds each mapped (extra) attribute.
	MaxAttributeBytes = 2048
)

// problem is the text of a Problem: the attribute and what is wrong, never the value.
func problem(attr, what string) string { return fmt.Sprintf("attribute %q: %s", attr, what) }

// cleanValue returns v as it can be stored (valid UTF-8 without NUL, at most max bytes when
// max > 0) and a Problem for each repair it made.
func cleanValue(attr, v string, max int) (string, []string) {
	var ps []string
	n := len(v)
	if !utf8.ValidString(v) {
		ps = append(ps, problem(attr, "is not valid UTF-8"))
		v = strings.ToValidUTF8(v, "\uFFFD")
	}
	if strings.IndexByte(v, 0) >= 0 {
		ps = append(ps, problem(attr, "contains a NUL character"))
		v = strings.ReplaceAll(v, "\x00", "\uFFFD")
	}
	if max > 0 && n > max {
		ps = append(ps, problem(attr, fmt.Sprintf("is %d bytes long (max %d)", n, max)))
		v = cut(v, max)
	}
	return v, ps
}

// storable is v made valid UTF-8 without NUL, silently: for values that never reach the
// target (DNs, group DNs, attribute names).
func storable(v string) string {
	v, _ = cleanValue("", v, 0)
	return v
}

// cut shortens valid UTF-8 to at most max bytes without splitting a character.
func cut(v string, max int) string {
	if len(v) <= max {
		return v
	}
	for max > 0 && !utf8.RuneStart(v[max]) {
		max--
	}
	return v[:max]
}

// distinctValues counts the values of a multi-valued attribute that differ other than by
// case or surrounding white space (LDAP compares mail case-insensitively); blank values
// do not count.
func distinctValues(vs []string) int {
	if len(vs) < 2 {
		return len(vs)
	}
	seen := map[string]bool{}
	for _, v := range vs {
		if k := strings.ToLower(strings.TrimSpace(v)); k != "" {
			seen[k] = true
		}
	}
	return len(seen)
}

// malformedGUIDKey is the externalId of a user whose objectGUID is not 16 bytes: stable
// across reads and unlike any canonical GUID, so the user can carry its failure. The
// bytes are kept in hex when short, hashed otherwise.
func malformedGUIDKey(raw []byte) string {
	if len(raw) <= 32 {
		return "invalid-objectGUID:" + hex.EncodeToString(raw)
	}
	sum := sha256.Sum256(raw)
	return "invalid-objectGUID:sha256:" + hex.EncodeToString(sum[:16])
}

// uniq drops repeated problems, keeping the first of each (the userName attribute may be
// mail, a mapped attribute may be one of the identity attributes).
func uniq(ps []string) []string {
	if len(ps) < 2 {
		return ps
	}
	out := ps[:0:0]
	seen := map[string]bool{}
	for _, p := range ps {
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	return out
}

// Clean returns u with every string as PostgreSQL's text and jsonb can hold it (valid
// UTF-8, no NUL; U+FFFD instead), and a Problem for each identity or attribute value it
// had to change (named by its JSON field, or the attribute's name). A Reader's users are
// clean already; Clean lets a snapshot write never fail on a value, whoever made the user.
// u is not modified.
func Clean(u User) User {
	if userIsClean(u) {
		return u
	}
	var ps []string
	field := func(name string, v *string) {
		var more []string
		*v, more = cleanValue(name, *v, 0)
		ps = append(ps, more...)
	}
	field("externalId", &u.ExternalID)
	field("userName", &u.UserName)
	field("email", &u.Email)
	field("givenName", &u.GivenName)
	field("familyName", &u.FamilyName)
	field("displayName", &u.DisplayName)
	if u.Attributes != nil {
		attrs := make(map[string]string, len(u.Attributes))
		for k, v := range u.Attributes {
			attrs[storable(k)] = v
		}
		for _, k := range slices.Sorted(maps.Keys(attrs)) { // problems in a stable order
			v := attrs[k]
			field(k, &v)
			attrs[k] = v
		}
		u.Attributes = attrs
	}
	u.DN = storable(u.DN)
	if u.Groups != nil {
		gs := make([]string, len(u.Groups))
		for i, g := range u.Groups {
			gs[i] = storable(g)
		}
		u.Groups = gs
	}
	problems := make([]string, 0, len(u.Problems)+len(ps))
	for _, p := range u.Problems {
		problems = append(problems, storable(p))
	}
	u.Problems = uniq(append(problems, ps...))
	return u
}

// userIsClean reports whether every string of u can be stored as it is.
func userIsClean(u User) bool {
	ok := func(v string) bool { return utf8.ValidString(v) && strings.IndexByte(v, 0) < 0 }
	for _, v := range []string{u.ExternalID, u.DN, u.UserName, u.Email, u.GivenName, u.FamilyName, u.DisplayName} {
		if !ok(v) {
			return false
		}
	}
	for k, v := range u.Attributes {
		if !ok(k) || !ok(v) {
			return false
		}
	}
	for _, vs := range [][]string{u.Groups, u.Problems} {
		for _, v := range vs {
			if !ok(v) {
				return false
			}
		}
	}
	return true
}
