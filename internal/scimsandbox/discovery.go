package scimsandbox

import (
	"net/http"
	"strings"
)

// Discovery endpoints (RFC 7644 section 4): minimal but valid.

func serviceProviderConfig() map[string]any {
	return map[string]any{
		"schemas":          []string{"urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"},
		"documentationUri": "https://datatracker.ietf.org/doc/html/rfc7644",
		"patch":            map[string]any{"supported": true},
		"bulk":             map[string]any{"supported": false, "maxOperations": 0, "maxPayloadSize": 0},
		"filter":           map[string]any{"supported": true, "maxResults": maxPageSize},
		"changePassword":   map[string]any{"supported": false},
		"sort":             map[string]any{"supported": false},
		"etag":             map[string]any{"supported": true},
		"authenticationSchemes": []any{map[string]any{
			"type": "oauthbearertoken", "name": "OAuth Bearer Token",
			"description": "Authentication with a bearer token in the Authorization header",
		}},
		"meta": map[string]any{"resourceType": "ServiceProviderConfig", "location": "/ServiceProviderConfig"},
	}
}

func resourceTypes() []map[string]any {
	return []map[string]any{
		{
			"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:ResourceType"},
			"id":      "User", "name": "User", "endpoint": "/Users", "schema": coreUserSchema,
			"schemaExtensions": []any{
				map[string]any{"schema": enterpriseSchema, "required": false},
				map[string]any{"schema": DefaultCustomSchema, "required": false},
			},
			"meta": map[string]any{"resourceType": "ResourceType", "location": "/ResourceTypes/User"},
		},
		{
			"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:ResourceType"},
			"id":      "Group", "name": "Group", "endpoint": "/Groups", "schema": coreGroupSchema,
			"meta": map[string]any{"resourceType": "ResourceType", "location": "/ResourceTypes/Group"},
		},
	}
}

func attr(name, typ string, multi, required bool, sub ...map[string]any) map[string]any {
	a := map[string]any{"name": name, "type": typ, "multiValued": multi, "required": required,
		"caseExact": false, "mutability": "readWrite", "returned": "default", "uniqueness": "none"}
	if len(sub) > 0 {
		a["subAttributes"] = sub
	}
	return a
}

func schema(id, name string, attrs ...map[string]any) map[string]any {
	return map[string]any{
		"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:Schema"},
		"id":      id, "name": name, "attributes": attrs,
		"meta": map[string]any{"resourceType": "Schema", "location": "/Schemas/" + id},
	}
}

func schemas() []map[string]any {
	value := attr("value", "string", false, false)
	userName := attr("userName", "string", false, true)
	userName["uniqueness"] = "server"
	return []map[string]any{
		schema(coreUserSchema, "User", userName,
			attr("externalId", "string", false, false),
			attr("name", "complex", false, false, attr("givenName", "string", false, false),
				attr("familyName", "string", false, false), attr("formatted", "string", false, false)),
			attr("displayName", "string", false, false),
			attr("active", "boolean", false, false),
			attr("emails", "complex", true, false, value, attr("type", "string", false, false),
				attr("primary", "boolean", false, false)),
			attr("entitlements", "complex", true, false, value),
			attr("roles", "complex", true, false, value)),
		schema(coreGroupSchema, "Group", attr("displayName", "string", false, true),
			attr("members", "complex", true, false, value, attr("display", "string", false, false))),
		schema(enterpriseSchema, "EnterpriseUser", attr("employeeNumber", "string", false, false),
			attr("costCenter", "string", false, false), attr("division", "string", false, false),
			attr("department", "string", false, false)),
		schema(DefaultCustomSchema, "CustomUser", attr("settingsTemplate", "string", false, false)),
	}
}

func (s *Server) serveDiscovery(w http.ResponseWriter, r *http.Request, body map[string]any, ok bool) {
	if r.Method != http.MethodGet {
		writeError(w, errorf(http.StatusMethodNotAllowed, "", "%s not allowed here", r.Method))
		return
	}
	if !ok {
		writeError(w, errorf(http.StatusNotFound, "", "not found"))
		return
	}
	writeJSON(w, http.StatusOK, body)
}

func (s *Server) serveDiscoveryList(w http.ResponseWriter, r *http.Request, items []map[string]any, id string) {
	if id != "" {
		for _, it := range items {
			if strings.EqualFold(it["id"].(string), id) {
				s.serveDiscovery(w, r, it, true)
				return
			}
		}
		s.serveDiscovery(w, r, nil, false)
		return
	}
	if r.Method != http.MethodGet {
		writeError(w, errorf(http.StatusMethodNotAllowed, "", "%s not allowed here", r.Method))
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"schemas":      []string{listResponseSchema},
		"totalResults": len(items), "startIndex": 1, "itemsPerPage": len(items), "Resources": items,
	})
}
