package scimsandbox

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
)

const (
	errorSchema        = "urn:ietf:params:scim:api:messages:2.0:Error"
	listResponseSchema = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
	patchOpSchema      = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
	scimContentType    = "application/scim+json"
)

// scimError is an RFC 7644 section 3.12 error; handlers return it and writeError renders it.
type scimError struct {
	status   int
	scimType string
	detail   string
}

func (e *scimError) Error() string { return fmt.Sprintf("%d %s: %s", e.status, e.scimType, e.detail) }

func errorf(status int, scimType, format string, args ...any) *scimError {
	return &scimError{status: status, scimType: scimType, detail: fmt.Sprintf(format, args...)}
}

func badRequest(scimType, format string, args ...any) *scimError {
	return errorf(http.StatusBadRequest, scimType, format, args...)
}

func writeError(w http.ResponseWriter, e *scimError) {
	body := map[string]any{
		"schemas": []string{errorSchema},
		"status":  strconv.Itoa(e.status),
		"detail":  e.detail,
	}
	if e.scimType != "" {
		body["scimType"] = e.scimType
	}
	writeJSON(w, e.status, body)
}

func writeJSON(w http.ResponseWriter, status int, body any) {
	w.Header().Set("Content-Type", scimContentType)
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(body)
}

func itoa(i int) string { return strconv.Itoa(i) }

func quote(s string) string { return strconv.Quote(s) }
