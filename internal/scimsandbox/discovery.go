package scimsandbox

import (
	"net/http"
	"strings"
)

// Discovery endpoints (RFC 7644 section 4). /Schemas and /ResourceTypes render the schemas
// the sandbox validates against (schema.go).

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

func (s *Server) resourceTypes() []map[string]any {
	return []map[string]any{s.reg.user.describe(), s.reg.group.describe()}
}

func (s *Server) schemas() []map[string]any {
	var out []map[string]any
	for _, sch := range s.reg.schemas {
		out = append(out, sch.describe())
	}
	return out
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
