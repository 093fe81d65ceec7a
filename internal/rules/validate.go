package rules

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/go-ldap/ldap/v3"
)

// MaxValueLen is the longest value (in characters) a rule may assign; MaxNoteLen bounds
// the free-text note.
const (
	MaxValueLen = 256
	MaxNoteLen  = 1024
)

// Validate checks one rule against the target's catalog before it is saved. It reports
// every problem found (joined). Whether the group exists in the directory is checked by
// the caller, which has a directory connection.
func Validate(r Rule, cat Catalog) error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	if r.Priority < 0 {
		add("rule priority %d: must be 0 (append at the end) or a position 1..n", r.Priority)
	}
	switch dn := strings.TrimSpace(r.GroupDN); {
	case dn == "":
		add("rule groupDn: empty")
	case checkDN(dn) != "":
		add("rule groupDn %q: not a DN (component %q has no attribute=value)", r.GroupDN, strings.TrimSpace(checkDN(dn)))
	case parseDNError(dn) != nil:
		// A DN the directory library cannot parse would match no group's members (their
		// DNs are compared parsed): its users would leave scope and be suspended.
		add("rule groupDn %q: not a DN: %v", r.GroupDN, parseDNError(dn))
	case utf8.RuneCountInString(dn) > 1024:
		add("rule groupDn: %d characters (max 1024)", utf8.RuneCountInString(dn))
	}

	checkKnown := func(field, kind, v string, known []string) {
		if v != "" && !slices.Contains(known, v) {
			add("rule %s: unknown %s %q (known: %s)", field, kind, v, knownList(known))
		}
	}
	checkKnown("role", "role", r.Role, cat.Roles)
	checkKnown("settingsTemplate", "template", r.SettingsTemplate, cat.Templates)
	for _, p := range r.Products {
		if p == "" {
			add("rule products: empty product name")
			continue
		}
		checkKnown("products", "product", p, cat.Products)
	}
	checkDuplicates := func(field, kind string, vs []string) {
		seen := map[string]bool{}
		for _, v := range vs {
			if seen[v] && v != "" {
				add("rule %s: duplicate %s %q", field, kind, v)
			}
			seen[v] = true
		}
	}
	checkDuplicates("products", "product", r.Products)
	checkDuplicates("deviceGroups", "device group", r.DeviceGroups)
	for _, d := range r.DeviceGroups {
		if strings.TrimSpace(d) == "" {
			add("rule deviceGroups: empty device group name")
		}
	}

	checkLen := func(field, v string, max int) {
		if n := utf8.RuneCountInString(v); n > max {
			add("rule %s %q: %d characters (max %d)", field, shorten(v), n, max)
		}
	}
	checkLen("role", r.Role, MaxValueLen)
	checkLen("userGroup", r.UserGroup, MaxValueLen)
	checkLen("settingsTemplate", r.SettingsTemplate, MaxValueLen)
	checkLen("note", r.Note, MaxNoteLen)
	for _, p := range r.Products {
		checkLen("products", p, MaxValueLen)
	}
	for _, d := range r.DeviceGroups {
		checkLen("deviceGroups", d, MaxValueLen)
	}
	names := make([]string, 0, len(r.CustomFields))
	for name := range r.CustomFields {
		names = append(names, name)
	}
	sort.Strings(names) // deterministic error order
	for _, name := range names {
		if strings.TrimSpace(name) == "" {
			add("rule customFields: empty field name")
			continue
		}
		checkLen("customFields name", name, MaxValueLen)
		checkLen(fmt.Sprintf("customFields[%q]", name), r.CustomFields[name], MaxValueLen)
	}
	return errors.Join(errs...)
}

func knownList(known []string) string {
	if len(known) == 0 {
		return "none"
	}
	s := slices.Clone(known)
	sort.Strings(s)
	return strings.Join(s, ", ")
}

// shorten keeps error messages readable when a value is far too long.
func shorten(v string) string {
	const keep = 40
	if utf8.RuneCountInString(v) <= keep {
		return v
	}
	r := []rune(v)
	return string(r[:keep]) + "…"
}

// parseDNError is why go-ldap cannot parse dn (RFC 4514), nil when it can.
func parseDNError(dn string) error {
	_, err := ldap.ParseDN(dn)
	return err
}
