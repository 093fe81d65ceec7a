package scimsandbox_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/usersync/usersync/internal/scimsandbox"
)

func TestAuthRequired(t *testing.T) {
	s := scimsandbox.New(scimsandbox.Options{Token: token})
	for _, tok := range []string{"", "wrong"} {
		status, out := callAs(t, s, tok, "GET", "/Users", "")
		mustStatus(t, http.StatusUnauthorized, status, out)
		if out["status"] != "401" || out["schemas"].([]any)[0] != "urn:ietf:params:scim:api:messages:2.0:Error" {
			t.Fatalf("401 body = %v", out)
		}
	}
}

func TestDuplicateUserNameIsAUniquenessConflict(t *testing.T) {
	s := scimsandbox.New(scimsandbox.Options{Token: token})
	createUser(t, s, "ann@example.com", "")
	status, out := call(t, s, "POST", "/Users", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"ANN@example.com"}`)
	mustStatus(t, http.StatusConflict, status, out)
	if out["scimType"] != "uniqueness" || out["status"] != "409" {
		t.Fatalf("conflict body = %v", out)
	}
	if n := len(s.Users()); n != 1 {
		t.Fatalf("%d users after a conflicting create, want 1", n)
	}
}

func TestMetaAndETag(t *testing.T) {
	s := scimsandbox.New(scimsandbox.Options{Token: token})
	id := createUser(t, s, "ann@example.com", "")
	status, out := call(t, s, "GET", "/Users/"+id, "")
	mustStatus(t, http.StatusOK, status, out)
	meta := out["meta"].(map[string]any)
	if meta["resourceType"] != "User" || meta["version"] != `W/"1"` || !strings.HasSuffix(meta["location"].(string), "/Users/"+id) ||
		meta["created"] == nil || meta["lastModified"] == nil {
		t.Fatalf("meta = %v", meta)
	}
	status, out = patchUser(t, s, id, `[{"op":"replace","path":"displayName","value":"Ann"}]`)
	mustStatus(t, http.StatusOK, status, out)
	if v := out["meta"].(map[string]any)["version"]; v != `W/"2"` {
		t.Fatalf("version after PATCH = %v, want W/\"2\"", v)
	}

	req := newRequest("PATCH", "/Users/"+id, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
		"Operations":[{"op":"replace","path":"displayName","value":"Stale"}]}`)
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("If-Match", `W/"1"`)
	w := httptest.NewRecorder()
	s.ServeHTTP(w, req)
	if w.Code != http.StatusPreconditionFailed || user(t, s, id).DisplayName != "Ann" {
		t.Fatalf("stale If-Match: status %d, displayName %q", w.Code, user(t, s, id).DisplayName)
	}
}

func TestPutReplacesAndDeleteRemoves(t *testing.T) {
	s := scimsandbox.New(scimsandbox.Options{Token: token})
	id := createUser(t, s, "ann@example.com", `,"displayName":"Ann","externalId":"e1"`)
	status, out := call(t, s, "PUT", "/Users/"+id, `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"ann@example.com","externalId":"e1"}`)
	mustStatus(t, http.StatusOK, status, out)
	if u := user(t, s, id); u.DisplayName != "" || !u.Active {
		t.Fatalf("after PUT: %+v", u)
	}
	status, out = call(t, s, "DELETE", "/Users/"+id, "")
	mustStatus(t, http.StatusNoContent, status, out)
	status, out = call(t, s, "GET", "/Users/"+id, "")
	mustStatus(t, http.StatusNotFound, status, out)
	if s.Stats().Count("DELETE", "/Users/{id}") != 1 {
		t.Fatalf("stats: %+v", s.Stats())
	}
}

func TestSeatLimits(t *testing.T) {
	s := scimsandbox.New(scimsandbox.Options{Token: token, Seats: map[string]int{"Meeting": 1}})
	a := createUser(t, s, "a@example.com", `,"entitlements":[{"value":"Meeting"}]`)

	status, out := call(t, s, "POST", "/Users", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],
		"userName":"b@example.com","entitlements":[{"value":"Meeting"}]}`)
	mustStatus(t, http.StatusForbidden, status, out)
	if !strings.Contains(out["detail"].(string), `"Meeting"`) {
		t.Fatalf("detail %q does not name the product", out["detail"])
	}
	if _, exists := s.UserByUserName("b@example.com"); exists {
		t.Fatal("rejected create stored the user")
	}

	b := createUser(t, s, "b@example.com", `,"entitlements":[{"value":"Webinar"}]`) // unlimited product
	status, out = patchUser(t, s, b, `[{"op":"add","path":"entitlements","value":[{"value":"Meeting"}]},{"op":"replace","path":"displayName","value":"B"}]`)
	mustStatus(t, http.StatusForbidden, status, out)
	if u := user(t, s, b); len(u.Entitlements) != 1 || u.DisplayName != "" {
		t.Fatalf("rejected PATCH changed the user: %+v", u)
	}

	// An inactive user holds no seat: suspending a frees the seat for b.
	status, out = patchUser(t, s, a, `[{"op":"replace","path":"active","value":false}]`)
	mustStatus(t, http.StatusOK, status, out)
	status, out = patchUser(t, s, b, `[{"op":"add","path":"entitlements","value":[{"value":"Meeting"}]}]`)
	mustStatus(t, http.StatusOK, status, out)
	if used := s.SeatsUsed(); used["Meeting"] != 1 || used["Webinar"] != 1 {
		t.Fatalf("seats used = %v", used)
	}
	// Reactivating a would take a second Meeting seat.
	status, out = patchUser(t, s, a, `[{"op":"replace","path":"active","value":true}]`)
	mustStatus(t, http.StatusForbidden, status, out)

	// Lowering a limit below use only blocks new entitlements, not other changes.
	s.SetSeats(map[string]int{"Meeting": 0})
	status, out = patchUser(t, s, b, `[{"op":"replace","path":"displayName","value":"B"}]`)
	mustStatus(t, http.StatusOK, status, out)
}

func TestFailNextAndStats(t *testing.T) {
	s := scimsandbox.New(scimsandbox.Options{Token: token})
	s.FailNext(2, http.StatusTooManyRequests)
	req := newRequest("GET", "/Users", "")
	req.Header.Set("Authorization", "Bearer "+token)
	w := httptest.NewRecorder()
	s.ServeHTTP(w, req)
	if w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") != "1" {
		t.Fatalf("first request: %d Retry-After %q", w.Code, w.Header().Get("Retry-After"))
	}
	status, _ := call(t, s, "GET", "/Users", "")
	mustStatus(t, http.StatusTooManyRequests, status, nil)
	status, out := call(t, s, "GET", "/Users", "")
	mustStatus(t, http.StatusOK, status, out)
	createUser(t, s, "a@example.com", "")

	st := s.Stats()
	if st.Requests != 4 || st.Injected != 2 || st.Writes != 1 || st.Count("GET", "/Users") != 3 || st.Count("POST", "/Users") != 1 {
		t.Fatalf("stats = %+v", st)
	}
	s.ResetStats()
	if st := s.Stats(); st.Requests != 0 || len(st.ByRoute) != 0 {
		t.Fatalf("after reset: %+v", st)
	}
}

func TestRateLimitAnswers429WithRetryAfter(t *testing.T) {
	s := scimsandbox.New(scimsandbox.Options{Token: token, RateLimit: 0.001}) // burst 1, then ~nothing
	status, out := call(t, s, "GET", "/Users", "")
	mustStatus(t, http.StatusOK, status, out)
	req := newRequest("GET", "/Users", "")
	req.Header.Set("Authorization", "Bearer "+token)
	w := httptest.NewRecorder()
	s.ServeHTTP(w, req)
	if w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") == "" {
		t.Fatalf("over the limit: %d Retry-After %q", w.Code, w.Header().Get("Retry-After"))
	}
	if s.Stats().Throttled != 1 {
		t.Fatalf("stats = %+v", s.Stats())
	}
}

func TestAdminHTTP(t *testing.T) {
	s := scimsandbox.New(scimsandbox.Options{Token: token})
	admin := func(method, path, body string) *httptest.ResponseRecorder {
		return adminAs(s, token, method, path, body)
	}
	if w := admin("POST", "/_sandbox/seed", `["old@example.com"]`); w.Code != http.StatusNoContent {
		t.Fatalf("seed: %d %s", w.Code, w.Body)
	}
	if u, ok := s.UserByUserName("old@example.com"); !ok || u.ExternalID != "" || !u.Active {
		t.Fatalf("seeded user = %+v, %v", u, ok)
	}
	if w := admin("POST", "/_sandbox/config", `{"seats":{"Meeting":3},"failNext":{"count":1,"status":503}}`); w.Code != http.StatusNoContent {
		t.Fatalf("config: %d %s", w.Code, w.Body)
	}
	status, _ := call(t, s, "GET", "/Users", "")
	mustStatus(t, http.StatusServiceUnavailable, status, nil)
	if w := admin("GET", "/_sandbox/stats", ""); w.Code != http.StatusOK || !strings.Contains(w.Body.String(), `"injected":1`) {
		t.Fatalf("stats: %d %s", w.Code, w.Body)
	}
	if w := admin("GET", "/_sandbox/users", ""); !strings.Contains(w.Body.String(), "old@example.com") {
		t.Fatalf("users: %s", w.Body)
	}
	if w := admin("POST", "/_sandbox/reset-stats", ""); w.Code != http.StatusNoContent || s.Stats().Requests != 0 {
		t.Fatalf("reset-stats: %d %s", w.Code, w.Body)
	}
	if w := admin("POST", "/_sandbox/config", `{"latencyMs":30001}`); w.Code != http.StatusBadRequest {
		t.Fatalf("latencyMs over the maximum: %d %s", w.Code, w.Body)
	}
}

func TestDiscoveryEndpoints(t *testing.T) {
	s := scimsandbox.New(scimsandbox.Options{Token: token})
	status, out := call(t, s, "GET", "/ServiceProviderConfig", "")
	mustStatus(t, http.StatusOK, status, out)
	if out["patch"].(map[string]any)["supported"] != true || out["filter"].(map[string]any)["supported"] != true {
		t.Fatalf("ServiceProviderConfig = %v", out)
	}
	status, out = call(t, s, "GET", "/ResourceTypes", "")
	mustStatus(t, http.StatusOK, status, out)
	if out["totalResults"] != float64(2) {
		t.Fatalf("ResourceTypes = %v", out)
	}
	status, out = call(t, s, "GET", "/Schemas/urn:ietf:params:scim:schemas:core:2.0:User", "")
	mustStatus(t, http.StatusOK, status, out)
	if out["name"] != "User" {
		t.Fatalf("User schema = %v", out)
	}
}
