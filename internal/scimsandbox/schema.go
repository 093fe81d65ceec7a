package scimsandbox

import (
	"fmt"
	"regexp"
	"strings"
)

// The schemas the sandbox declares are the single source of truth: /Schemas and
// /ResourceTypes render them, and every POST, PUT and PATCH is validated against them.

// Attribute data types (RFC 7643 section 2.3).
const (
	typeString    = "string"
	typeBoolean   = "boolean"
	typeDecimal   = "decimal"
	typeInteger   = "integer"
	typeDateTime  = "dateTime"
	typeBinary    = "binary"
	typeReference = "reference"
	typeComplex   = "complex"
)

// Mutability values (RFC 7643 section 7). Only readOnly changes what the sandbox accepts.
const (
	readWrite = "readWrite"
	readOnly  = "readOnly"
)

// attrDef is one attribute definition (RFC 7643 section 7).
type attrDef struct {
	name        string
	typ         string
	multi       bool
	required    bool
	caseExact   bool
	mutability  string
	returned    string
	uniqueness  string
	description string
	canonical   []string
	refTypes    []string
	sub         []*attrDef
}

func (a *attrDef) readOnly() bool { return a.mutability == readOnly }

// child returns the sub-attribute with that name (case-insensitive), or nil.
func (a *attrDef) child(name string) *attrDef { return findAttr(a.sub, name) }

func findAttr(defs []*attrDef, name string) *attrDef {
	for _, d := range defs {
		if strings.EqualFold(d.name, name) {
			return d
		}
	}
	return nil
}

// schemaDef is one schema (RFC 7643 section 7).
type schemaDef struct {
	id, name, description string
	attrs                 []*attrDef
}

// resourceType binds a core schema and its extensions to an endpoint (RFC 7643 section 6).
type resourceType struct {
	name, endpoint, description string
	core                        *schemaDef
	exts                        []*schemaDef // none is required
}

// commonAttrs are the attributes every resource has (RFC 7643 section 3.1); schemas do not
// list them.
var commonAttrs = []*attrDef{
	{name: "id", typ: typeString, caseExact: true, mutability: readOnly, returned: "always",
		uniqueness: "server", description: "Unique identifier assigned by the service provider."},
	strAttr("externalId", "Identifier of the resource as defined by the provisioning client.", caseExact),
	{name: "meta", typ: typeComplex, mutability: readOnly, returned: "default", uniqueness: "none",
		description: "Resource metadata.", sub: []*attrDef{
			ro(strAttr("resourceType", "")), ro(&attrDef{name: "created", typ: typeDateTime}),
			ro(&attrDef{name: "lastModified", typ: typeDateTime}), ro(&attrDef{name: "location", typ: typeReference, refTypes: []string{"uri"}}),
			ro(strAttr("version", "", caseExact))}},
}

// attrDef builders; they fill in the RFC 7643 section 2.2 defaults.

type attrOpt func(*attrDef)

func caseExact(a *attrDef)   { a.caseExact = true }
func required(a *attrDef)    { a.required = true }
func multiValued(a *attrDef) { a.multi = true }

func withDefaults(a *attrDef, opts []attrOpt) *attrDef {
	if a.mutability == "" {
		a.mutability = readWrite
	}
	if a.returned == "" {
		a.returned = "default"
	}
	if a.uniqueness == "" {
		a.uniqueness = "none"
	}
	for _, o := range opts {
		o(a)
	}
	return a
}

func strAttr(name, description string, opts ...attrOpt) *attrDef {
	return withDefaults(&attrDef{name: name, typ: typeString, description: description}, opts)
}

func boolAttr(name, description string) *attrDef {
	return withDefaults(&attrDef{name: name, typ: typeBoolean, description: description}, nil)
}

func refAttr(name, description string, refTypes ...string) *attrDef {
	return withDefaults(&attrDef{name: name, typ: typeReference, description: description, refTypes: refTypes}, nil)
}

func complexAttr(name, description string, sub []*attrDef, opts ...attrOpt) *attrDef {
	return withDefaults(&attrDef{name: name, typ: typeComplex, description: description, sub: sub}, opts)
}

func ro(a *attrDef) *attrDef {
	withDefaults(a, nil)
	a.mutability = readOnly
	return a
}

func canonicalValues(a *attrDef, values ...string) *attrDef {
	a.canonical = values
	return a
}

// multiValue is an RFC 7643 section 2.4 multi-valued complex attribute with the usual
// sub-attributes; extra adds more (members: $ref).
func multiValue(name, description string, typeValues []string, extra ...*attrDef) *attrDef {
	sub := []*attrDef{
		strAttr("value", "The value."),
		strAttr("display", "A human-readable name, primarily used for display purposes."),
		canonicalValues(strAttr("type", "A label indicating the attribute's function."), typeValues...),
		boolAttr("primary", "Whether this is the primary value; true at most once."),
	}
	return complexAttr(name, description, append(sub, extra...), multiValued)
}

// Schema URNs.
const (
	coreUserSchema   = "urn:ietf:params:scim:schemas:core:2.0:User"
	coreGroupSchema  = "urn:ietf:params:scim:schemas:core:2.0:Group"
	enterpriseSchema = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
	// DefaultCustomSchema is the extension usersync's client uses for custom fields and
	// settingsTemplate.
	DefaultCustomSchema = "urn:usersync:params:scim:schemas:extension:custom:2.0:User"
	// NoCustomSchema as Options.CustomSchema declares no custom extension at all.
	NoCustomSchema = "none"
)

// DefaultCustomAttributes returns the string attributes the custom extension declares when
// Options.CustomAttributes is nil: settingsTemplate plus the custom fields usersync's demo
// and tests map (office, project, region, site).
func DefaultCustomAttributes() []string {
	return []string{"settingsTemplate", "office", "project", "region", "site"}
}

func coreUser() *schemaDef {
	userName := strAttr("userName", "Unique identifier for the User, typically used to authenticate.", required)
	userName.uniqueness = "server"
	return &schemaDef{id: coreUserSchema, name: "User", description: "User Account", attrs: []*attrDef{
		userName,
		complexAttr("name", "The components of the user's real name.", []*attrDef{
			strAttr("formatted", "The full name, formatted for display."),
			strAttr("familyName", "The family name of the User."),
			strAttr("givenName", "The given name of the User."),
		}),
		strAttr("displayName", "The name of the User, suitable for display to end-users."),
		strAttr("nickName", "The casual way to address the user."),
		strAttr("title", "The user's title, such as \"Vice President\"."),
		boolAttr("active", "The User's administrative status."),
		multiValue("emails", "Email addresses for the user.", []string{"work", "home", "other"}),
		multiValue("phoneNumbers", "Phone numbers for the User.", []string{"work", "home", "mobile", "fax", "pager", "other"}),
		multiValue("entitlements", "Entitlements (products) of the User.", nil),
		multiValue("roles", "Roles of the User.", nil),
		ro(multiValue("groups", "Groups the user belongs to, maintained by the service provider.",
			[]string{"direct", "indirect"}, refAttr("$ref", "The URI of the Group.", "User", "Group"))),
	}}
}

func coreGroup() *schemaDef {
	return &schemaDef{id: coreGroupSchema, name: "Group", description: "Group", attrs: []*attrDef{
		strAttr("displayName", "A human-readable name for the Group.", required),
		complexAttr("members", "A list of members of the Group.", []*attrDef{
			strAttr("value", "Identifier of the member of this Group.", caseExact),
			strAttr("display", "A human-readable name of the member."),
			refAttr("$ref", "The URI of the member.", "User", "Group"),
			canonicalValues(strAttr("type", "The type of the member."), "User", "Group"),
		}, multiValued),
	}}
}

func enterpriseUser() *schemaDef {
	return &schemaDef{id: enterpriseSchema, name: "EnterpriseUser", description: "Enterprise User", attrs: []*attrDef{
		strAttr("employeeNumber", "Numeric or alphanumeric identifier assigned to a person."),
		strAttr("costCenter", "Identifies the name of a cost center."),
		strAttr("organization", "Identifies the name of an organization."),
		strAttr("division", "Identifies the name of a division."),
		strAttr("department", "Identifies the name of a department."),
		complexAttr("manager", "The User's manager.", []*attrDef{
			strAttr("value", "The id of the SCIM resource representing the User's manager."),
			refAttr("$ref", "The URI of the manager's SCIM resource.", "User"),
			ro(strAttr("displayName", "The displayName of the User's manager.")),
		}),
	}}
}

func customUser(urn string, names []string) *schemaDef {
	s := &schemaDef{id: urn, name: "CustomUser", description: "usersync custom fields"}
	for _, n := range names {
		s.attrs = append(s.attrs, strAttr(n, "Custom field "+n+"."))
	}
	return s
}

var attrNameRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_-]*$`) // RFC 7643 section 2.1 ATTRNAME

// Validate reports whether the options describe a usable sandbox. New panics on options
// that do not validate.
func (o Options) Validate() error {
	urn := strings.TrimSpace(o.CustomSchema)
	if urn == "" || strings.EqualFold(urn, NoCustomSchema) {
		urn = ""
	}
	if urn != "" {
		if !strings.HasPrefix(strings.ToLower(urn), "urn:") || strings.HasSuffix(urn, ":") ||
			strings.ContainsAny(urn, " \t\"[]") {
			return fmt.Errorf("custom schema %q: want a URN such as %s, or %q", o.CustomSchema, DefaultCustomSchema, NoCustomSchema)
		}
		for _, taken := range []string{coreUserSchema, coreGroupSchema, enterpriseSchema} {
			if strings.EqualFold(urn, taken) || strings.HasPrefix(strings.ToLower(urn), strings.ToLower(taken)+":") {
				return fmt.Errorf("custom schema %q collides with %s", o.CustomSchema, taken)
			}
		}
	}
	seen := map[string]bool{}
	for _, n := range o.CustomAttributes {
		if !attrNameRE.MatchString(n) {
			return fmt.Errorf("custom attribute %q: want a letter, then letters, digits, '_' or '-'", n)
		}
		if seen[strings.ToLower(n)] {
			return fmt.Errorf("custom attribute %q is declared twice (names are case-insensitive)", n)
		}
		seen[strings.ToLower(n)] = true
	}
	if o.Latency < 0 || o.Latency > MaxLatency {
		return fmt.Errorf("latency %s: want 0 to %s", o.Latency, MaxLatency)
	}
	for _, h := range o.AllowedHosts {
		if raw := strings.TrimSpace(h); !validHostName(raw) || !validHostName(hostName(raw)) {
			return fmt.Errorf("allowed host %q: want a host name or IP address, without scheme or path", h)
		}
	}
	return nil
}

// registry holds the declared schemas and resource types of one Server; it never changes
// after New.
type registry struct {
	schemas []*schemaDef
	user    *resourceType
	group   *resourceType
}

func newRegistry(o Options) *registry {
	user := &resourceType{name: "User", endpoint: "/Users", description: "User Account", core: coreUser(),
		exts: []*schemaDef{enterpriseUser()}}
	urn := strings.TrimSpace(o.CustomSchema)
	switch {
	case strings.EqualFold(urn, NoCustomSchema):
	case urn == "":
		urn = DefaultCustomSchema
		fallthrough
	default:
		names := o.CustomAttributes
		if names == nil {
			names = DefaultCustomAttributes()
		}
		user.exts = append(user.exts, customUser(urn, names))
	}
	group := &resourceType{name: "Group", endpoint: "/Groups", description: "Group", core: coreGroup()}
	r := &registry{user: user, group: group}
	r.schemas = append(r.schemas, user.core, group.core)
	r.schemas = append(r.schemas, user.exts...)
	return r
}

func (r *registry) typeOf(kind string) *resourceType {
	if kind == "Group" {
		return r.group
	}
	return r.user
}

// ext returns the extension of rt with that URN (case-insensitive), or nil.
func (rt *resourceType) ext(urn string) *schemaDef {
	for _, e := range rt.exts {
		if strings.EqualFold(e.id, urn) {
			return e
		}
	}
	return nil
}

// schemaOf returns the core schema or extension of rt with that URN, or nil.
func (rt *resourceType) schemaOf(urn string) *schemaDef {
	if strings.EqualFold(rt.core.id, urn) {
		return rt.core
	}
	return rt.ext(urn)
}

// attr finds an attribute of schema s; the core schema also answers for the common
// attributes.
func (rt *resourceType) attr(s *schemaDef, name string) *attrDef {
	if s == rt.core {
		if a := findAttr(commonAttrs, name); a != nil {
			return a
		}
	}
	return findAttr(s.attrs, name)
}

// Discovery representations (RFC 7643 sections 6 and 7).

func (a *attrDef) describe() map[string]any {
	out := map[string]any{"name": a.name, "type": a.typ, "multiValued": a.multi,
		"description": a.description, "required": a.required, "caseExact": a.caseExact,
		"mutability": a.mutability, "returned": a.returned, "uniqueness": a.uniqueness}
	if len(a.canonical) > 0 {
		out["canonicalValues"] = a.canonical
	}
	if len(a.refTypes) > 0 {
		out["referenceTypes"] = a.refTypes
	}
	if len(a.sub) > 0 {
		var sub []map[string]any
		for _, s := range a.sub {
			sub = append(sub, s.describe())
		}
		out["subAttributes"] = sub
	}
	return out
}

func (s *schemaDef) describe() map[string]any {
	attrs := []map[string]any{}
	for _, a := range s.attrs {
		attrs = append(attrs, a.describe())
	}
	return map[string]any{
		"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:Schema"},
		"id":      s.id, "name": s.name, "description": s.description, "attributes": attrs,
		"meta": map[string]any{"resourceType": "Schema", "location": "/Schemas/" + s.id},
	}
}

func (rt *resourceType) describe() map[string]any {
	out := map[string]any{
		"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:ResourceType"},
		"id":      rt.name, "name": rt.name, "endpoint": rt.endpoint, "description": rt.description,
		"schema": rt.core.id,
		"meta":   map[string]any{"resourceType": "ResourceType", "location": "/ResourceTypes/" + rt.name},
	}
	if len(rt.exts) > 0 {
		var exts []any
		for _, e := range rt.exts {
			exts = append(exts, map[string]any{"schema": e.id, "required": false})
		}
		out["schemaExtensions"] = exts
	}
	return out
}
