package scim

import (
	"sort"
	"strings"

	"github.com/usersync/usersync/internal/plan"
)

// enterpriseAttrs are the enterprise extension attributes usersync maps (spec section 4).
var enterpriseAttrs = []string{"employeeNumber", "costCenter", "division", "department"}

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

// customObject is the custom extension: custom fields plus settingsTemplate.
func (c *Client) customObject(d plan.Desired) map[string]any {
	out := nonEmpty(d.Custom)
	if d.SettingsTemplate != "" {
		if out == nil {
			out = map[string]any{}
		}
		out["settingsTemplate"] = d.SettingsTemplate
	}
	return out
}

// userResource is the POST body for d; empty values are omitted.
func (c *Client) userResource(d plan.Desired) map[string]any {
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
	if custom := c.customObject(d); custom != nil {
		r[c.customSchema] = custom
		schemas = append(schemas, c.customSchema)
	}
	r["schemas"] = schemas
	return r
}

// patchOps turns the changed fields of d into PATCH operations: "replace" for set values,
// "remove" for cleared ones.
func (c *Client) patchOps(d plan.Desired, changed []string) []patchOp {
	is := map[string]bool{}
	for _, f := range changed {
		is[f] = true
	}
	var ops []patchOp
	set := func(path string, value any, present bool) {
		if present {
			ops = append(ops, patchOp{Op: "replace", Path: path, Value: value})
		} else {
			ops = append(ops, patchOp{Op: "remove", Path: path})
		}
	}
	if is["externalId"] { // linking an adopted account
		set("externalId", d.ExternalID, true)
	}
	if is["userName"] {
		set("userName", d.UserName, true)
	}
	if is["email"] {
		set("emails", emails(d.Email), d.Email != "")
	}
	if is["givenName"] {
		set("name.givenName", d.GivenName, d.GivenName != "")
	}
	if is["familyName"] {
		set("name.familyName", d.FamilyName, d.FamilyName != "")
	}
	if is["givenName"] || is["familyName"] {
		set("name.formatted", formatted(d), formatted(d) != "")
	}
	if is["displayName"] {
		set("displayName", d.DisplayName, d.DisplayName != "")
	}
	if is["active"] {
		set("active", d.Active, true)
	}
	if is["role"] {
		set("roles", values([]string{d.Role}), d.Role != "")
	}
	if is["products"] {
		set("entitlements", values(d.Products), len(d.Products) > 0)
	}
	if is["enterprise"] {
		names := append([]string(nil), enterpriseAttrs...)
		for k := range d.Enterprise {
			if !contains(names, k) {
				names = append(names, k)
			}
		}
		sort.Strings(names)
		for _, k := range names {
			set(EnterpriseSchema+":"+k, d.Enterprise[k], d.Enterprise[k] != "")
		}
	}
	switch {
	case is["custom"]:
		// Which custom fields existed before is unknown here, so the extension is rewritten
		// whole (it also carries settingsTemplate): remove it, then add the desired values.
		ops = append(ops, patchOp{Op: "remove", Path: c.customSchema})
		if custom := c.customObject(d); custom != nil {
			ops = append(ops, patchOp{Op: "add", Path: c.customSchema, Value: custom})
		}
	case is["settingsTemplate"]:
		set(c.customSchema+":settingsTemplate", d.SettingsTemplate, d.SettingsTemplate != "")
	}
	return ops
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
