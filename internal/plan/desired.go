package plan

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/usersync/usersync/internal/directory"
	"github.com/usersync/usersync/internal/rules"
)

// Mapping target prefixes.
const (
	EnterprisePrefix = "enterprise:"
	CustomPrefix     = "custom:"
)

// EnterpriseAttributes are the SCIM enterprise extension attributes a mapping may target.
var EnterpriseAttributes = []string{"costCenter", "department", "division", "employeeNumber"}

// ValidateMapping checks one attribute mapping before it is saved.
func ValidateMapping(m Mapping) error {
	if strings.TrimSpace(m.Source) == "" {
		return fmt.Errorf("mapping source: empty (target %q)", m.Target)
	}
	switch {
	case strings.HasPrefix(m.Target, EnterprisePrefix):
		name := strings.TrimPrefix(m.Target, EnterprisePrefix)
		if !slices.Contains(EnterpriseAttributes, name) {
			return fmt.Errorf("mapping target %q: unknown enterprise attribute %q (known: %s)",
				m.Target, name, strings.Join(EnterpriseAttributes, ", "))
		}
	case strings.HasPrefix(m.Target, CustomPrefix):
		if strings.TrimSpace(strings.TrimPrefix(m.Target, CustomPrefix)) == "" {
			return fmt.Errorf("mapping target %q: empty custom field name", m.Target)
		}
	default:
		return fmt.Errorf("mapping target %q: must start with %q or %q", m.Target, EnterprisePrefix, CustomPrefix)
	}
	return nil
}

// Build computes the desired target state of an in-scope user.
//
// Custom fields: a rule's constant value wins over a mapped directory attribute for the
// same field, because the admin set it explicitly on a rule (and rules are how admins
// override per group). Missing or blank attribute values are omitted, never sent empty.
// Mappings with an unknown target prefix are ignored (ValidateMapping rejects them on save).
func Build(u directory.User, a rules.Assignment, ms []Mapping) Desired {
	d := Desired{
		ExternalID:       u.ExternalID,
		UserName:         u.UserName,
		Email:            u.Email,
		GivenName:        u.GivenName,
		FamilyName:       u.FamilyName,
		DisplayName:      u.DisplayName,
		Active:           true,
		Role:             a.Role,
		Products:         setOf(a.Products),
		UserGroup:        a.UserGroup,
		DeviceGroups:     setOf(a.DeviceGroups),
		SettingsTemplate: a.SettingsTemplate,
	}
	for _, m := range ms {
		v, ok := attribute(u.Attributes, m.Source)
		if !ok {
			continue
		}
		switch {
		case strings.HasPrefix(m.Target, EnterprisePrefix):
			put(&d.Enterprise, strings.TrimPrefix(m.Target, EnterprisePrefix), v)
		case strings.HasPrefix(m.Target, CustomPrefix):
			put(&d.Custom, strings.TrimPrefix(m.Target, CustomPrefix), v)
		}
	}
	for name, v := range a.CustomFields {
		if name != "" && strings.TrimSpace(v) != "" {
			put(&d.Custom, name, v) // rule constant wins
		}
	}
	return d
}

// attribute looks an LDAP attribute up; attribute names are case-insensitive in LDAP.
func attribute(attrs map[string]string, name string) (string, bool) {
	v, ok := attrs[name]
	if !ok {
		for k, x := range attrs {
			if strings.EqualFold(k, name) {
				v, ok = x, true
				break
			}
		}
	}
	if !ok || strings.TrimSpace(v) == "" {
		return "", false
	}
	return v, true
}

func put(m *map[string]string, k, v string) {
	if k == "" {
		return
	}
	if *m == nil {
		*m = map[string]string{}
	}
	(*m)[k] = v
}

// setOf returns a sorted, de-duplicated copy without empty entries, nil when empty.
func setOf(s []string) []string {
	var out []string
	for _, v := range s {
		if v != "" {
			out = append(out, v)
		}
	}
	if len(out) == 0 {
		return nil
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// canonical returns d with sets sorted and empty collections nil, so that equal states
// marshal to the same bytes.
func (d Desired) canonical() Desired {
	d.Products = setOf(d.Products)
	d.DeviceGroups = setOf(d.DeviceGroups)
	if len(d.Enterprise) == 0 {
		d.Enterprise = nil
	}
	if len(d.Custom) == 0 {
		d.Custom = nil
	}
	return d
}

// Hash identifies the state: sha256 (hex) of its canonical JSON. Slice order and nil
// versus empty collections do not change it.
func (d Desired) Hash() string {
	b, err := json.Marshal(d.canonical()) // maps are marshalled with sorted keys
	if err != nil {
		panic("plan: marshal Desired: " + err.Error()) // only strings, bools, slices, maps
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// Diff returns the JSON names of the top-level fields that differ, sorted. It agrees with
// Hash: Diff is empty exactly when the hashes are equal.
func Diff(old, new Desired) []string {
	o, n := old.canonical(), new.canonical()
	var changed []string
	add := func(name string, differ bool) {
		if differ {
			changed = append(changed, name)
		}
	}
	add("externalId", o.ExternalID != n.ExternalID)
	add("userName", o.UserName != n.UserName)
	add("email", o.Email != n.Email)
	add("givenName", o.GivenName != n.GivenName)
	add("familyName", o.FamilyName != n.FamilyName)
	add("displayName", o.DisplayName != n.DisplayName)
	add("active", o.Active != n.Active)
	add("role", o.Role != n.Role)
	add("products", !slices.Equal(o.Products, n.Products))
	add("userGroup", o.UserGroup != n.UserGroup)
	add("deviceGroups", !slices.Equal(o.DeviceGroups, n.DeviceGroups))
	add("settingsTemplate", o.SettingsTemplate != n.SettingsTemplate)
	add("enterprise", !maps.Equal(o.Enterprise, n.Enterprise))
	add("custom", !maps.Equal(o.Custom, n.Custom))
	slices.Sort(changed)
	return changed
}

// ExtensionUse lists what rules and mappings write into the target's extensions: custom field
// names, whether any rule sets a settings template, and enterprise attribute names (each
// sorted, de-duplicated). The target's schema must declare them (spec 7).
func ExtensionUse(rs []rules.Rule, ms []Mapping) (custom []string, template bool, enterprise []string) {
	for _, m := range ms {
		switch {
		case strings.HasPrefix(m.Target, CustomPrefix):
			custom = append(custom, strings.TrimPrefix(m.Target, CustomPrefix))
		case strings.HasPrefix(m.Target, EnterprisePrefix):
			enterprise = append(enterprise, strings.TrimPrefix(m.Target, EnterprisePrefix))
		}
	}
	for _, r := range rs {
		for name, v := range r.CustomFields {
			if name != "" && strings.TrimSpace(v) != "" {
				custom = append(custom, name)
			}
		}
		template = template || r.SettingsTemplate != ""
	}
	return setOf(custom), template, setOf(enterprise)
}

// GroupsOf lists the target groups an account belongs in: its user group and device groups
// while it is active, none once suspended (sorted, de-duplicated).
func GroupsOf(d Desired) []string {
	if !d.Active {
		return nil
	}
	return setOf(append([]string{d.UserGroup}, d.DeviceGroups...))
}
