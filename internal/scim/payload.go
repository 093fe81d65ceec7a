package scim

import (
	"sort"
	"strings"

	"github.com/usersync/usersync/internal/plan"
)

type patchOp struct {
	Op    string `json:"op"`
	Path  string `json:"path,omitempty"`
	Value any    `json:"value,omitempty"`
}

func emails(email string) []multiValue {
	return []multiValue{{Value: email, Type: "work", Primary: true}}
}

func values(vs []string) []multiValue {
	sorted := append([]string(nil), vs...)
	sort.Strings(sorted)
	out := make([]multiValue, 0, len(sorted))
	for _, v := range sorted {
		out = append(out, multiValue{Value: v})
	}
	return out
}

func formatted(d plan.Desired) string {
	return strings.TrimSpace(d.GivenName + " " + d.FamilyName)
}

// nonEmpty copies the set values of m; nil when none is set.
func nonEmpty(m map[string]string) map[string]any {
	var out map[string]any
	for k, v := range m {
		if v != "" {
			if out == nil {
				out = map[string]any{}
			}
			out[k] = v
		}
	}
	return out
}

// customObject is the custom extension: custom fields plus the settings template.
func customObject(ext Extension, d plan.Desired) map[string]any {
	out := nonEmpty(d.Custom)
	if d.SettingsTemplate != "" {
		if out == nil {
			out = map[string]any{}
		}
		out[ext.TemplateAttribute] = d.SettingsTemplate
	}
	return out
}

// userResource is the POST body for d; empty values are omitted.
func userResource(ext Extension, d plan.Desired) map[string]any {
	ext = ext.Resolved()
	schemas := []string{coreUserSchema}
	r := map[string]any{"userName": d.UserName, "active": d.Active}
	if d.ExternalID != "" {
		r["externalId"] = d.ExternalID
	}
	name := map[string]string{}
	if d.GivenName != "" {
		name["givenName"] = d.GivenName
	}
	if d.FamilyName != "" {
		name["familyName"] = d.FamilyName
	}
	if f := formatted(d); f != "" {
		name["formatted"] = f
	}
	if len(name) > 0 {
		r["name"] = name
	}
	if d.DisplayName != "" {
		r["displayName"] = d.DisplayName
	}
	if d.Email != "" {
		r["emails"] = emails(d.Email)
	}
	if len(d.Products) > 0 {
		r["entitlements"] = values(d.Products)
	}
	if d.Role != "" {
		r["roles"] = values([]string{d.Role})
	}
	if ent := nonEmpty(d.Enterprise); ent != nil {
		r[EnterpriseSchema] = ent
		schemas = append(schemas, EnterpriseSchema)
	}
	if custom := customObject(ext, d); custom != nil {
		r[ext.URN] = custom
		schemas = append(schemas, ext.URN)
	}
	r["schemas"] = schemas
	return r
}

// patchOps turns the difference between from (what the target holds) and to into RFC 7644
// section 3.5.2 operations: attribute paths only, extension attributes by their URN-qualified
// path (never a bare schema URN), "replace" for set values and "remove" only for attributes
// from holds. Multi-valued attributes usersync owns (emails, roles, entitlements) are
// replaced whole.
func patchOps(ext Extension, from, to plan.Desired) []patchOp {
	ext = ext.Resolved()
	var ops []patchOp
	// set writes a single attribute: replace when it has a value, remove when it had one.
	set := func(path string, had bool, value any, has bool) {
		switch {
		case has:
			ops = append(ops, patchOp{Op: "replace", Path: path, Value: value})
		case had:
			ops = append(ops, patchOp{Op: "remove", Path: path})
		}
	}
	str := func(path, old, new string) {
		if old != new {
			set(path, old != "", new, new != "")
		}
	}
	if from.ExternalID != to.ExternalID { // linking an adopted account
		set("externalId", from.ExternalID != "", to.ExternalID, to.ExternalID != "")
	}
	str("userName", from.UserName, to.UserName)
	if from.Email != to.Email {
		set("emails", from.Email != "", emails(to.Email), to.Email != "")
	}
	str("name.givenName", from.GivenName, to.GivenName)
	str("name.familyName", from.FamilyName, to.FamilyName)
	if from.GivenName != to.GivenName || from.FamilyName != to.FamilyName {
		str("name.formatted", formatted(from), formatted(to))
	}
	str("displayName", from.DisplayName, to.DisplayName)
	if from.Active != to.Active {
		set("active", true, to.Active, true)
	}
	if from.Role != to.Role {
		set("roles", from.Role != "", values([]string{to.Role}), to.Role != "")
	}
	if !sameSet(from.Products, to.Products) {
		set("entitlements", len(from.Products) > 0, values(to.Products), len(to.Products) > 0)
	}
	for _, k := range keys(from.Enterprise, to.Enterprise) {
		str(EnterpriseSchema+":"+k, from.Enterprise[k], to.Enterprise[k])
	}
	for _, k := range keys(from.Custom, to.Custom) {
		str(ext.URN+":"+k, from.Custom[k], to.Custom[k])
	}
	str(ext.URN+":"+ext.TemplateAttribute, from.SettingsTemplate, to.SettingsTemplate)
	return ops
}

// keys is the sorted union of the keys of a and b.
func keys(a, b map[string]string) []string {
	var out []string
	for k := range a {
		out = append(out, k)
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	x, y := append([]string(nil), a...), append([]string(nil), b...)
	sort.Strings(x)
	sort.Strings(y)
	for i := range x {
		if x[i] != y[i] {
			return false
		}
	}
	return true
}
