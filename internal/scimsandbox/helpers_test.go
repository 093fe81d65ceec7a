package scimsandbox_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/usersync/usersync/internal/scimsandbox"
)

const token = "sandbox-test-token"

// sandboxHost is the Host of test requests: the sandbox answers only to its own names.
const sandboxHost = "127.0.0.1:8090"

// newRequest is httptest.NewRequest addressed to the sandbox (httptest's default Host,
// example.com, is refused).
func newRequest(method, path, body string) *http.Request {
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	req.Host = sandboxHost
	return req
}

// call sends one request to the sandbox with the bearer token and decodes the JSON answer.
func call(t *testing.T, s *scimsandbox.Server, method, path, body string) (int, map[string]any) {
	t.Helper()
	return callAs(t, s, token, method, path, body)
}

func callAs(t *testing.T, s *scimsandbox.Server, tok, method, path, body string) (int, map[string]any) {
	t.Helper()
	req := newRequest(method, path, body)
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	req.Header.Set("Content-Type", "application/scim+json")
	w := httptest.NewRecorder()
	s.ServeHTTP(w, req)
	var out map[string]any
	if w.Body.Len() > 0 {
		if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil {
			t.Fatalf("%s %s: answer is not a JSON object: %v: %s", method, path, err, w.Body.String())
		}
	}
	return w.Code, out
}

func mustStatus(t *testing.T, want, got int, body map[string]any) {
	t.Helper()
	if got != want {
		t.Fatalf("status %d, want %d; body %v", got, want, body)
	}
}

// createUser POSTs a user and returns its id.
func createUser(t *testing.T, s *scimsandbox.Server, userName, extra string) string {
	t.Helper()
	body := fmt.Sprintf(`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":%q%s}`, userName, extra)
	status, out := call(t, s, "POST", "/Users", body)
	mustStatus(t, http.StatusCreated, status, out)
	return out["id"].(string)
}

func patchUser(t *testing.T, s *scimsandbox.Server, id, ops string) (int, map[string]any) {
	t.Helper()
	return call(t, s, "PATCH", "/Users/"+id,
		`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":`+ops+`}`)
}

func user(t *testing.T, s *scimsandbox.Server, id string) scimsandbox.User {
	t.Helper()
	u, ok := s.User(id)
	if !ok {
		t.Fatalf("user %s not found", id)
	}
	return u
}

// adminAs sends an admin request the way a legitimate caller does: from loopback, to the
// sandbox's own Host, with tok (when not empty) and a JSON body.
func adminAs(s *scimsandbox.Server, tok, method, path, body string) *httptest.ResponseRecorder {
	req := newRequest(method, path, body)
	req.RemoteAddr = "127.0.0.1:40000"
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	if method == "POST" {
		req.Header.Set("Content-Type", "application/json")
	}
	w := httptest.NewRecorder()
	s.ServeHTTP(w, req)
	return w
}
