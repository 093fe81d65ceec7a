package scimsandbox_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/usersync/usersync/internal/scimsandbox"
)

// send serves req and decodes the SCIM error, if any.
func send(t *testing.T, s *scimsandbox.Server, req *http.Request) (int, string) {
	t.Helper()
	w := httptest.NewRecorder()
	s.ServeHTTP(w, req)
	return w.Code, w.Body.String()
}

func mustRefuse(t *testing.T, what string, wantStatus, status int, body string, detail ...string) {
	t.Helper()
	if status != wantStatus {
		t.Fatalf("%s: status %d, want %d; body %s", what, status, wantStatus, body)
	}
	if !strings.Contains(body, "urn:ietf:params:scim:api:messages:2.0:Error") {
		t.Fatalf("%s: body is not a SCIM error: %s", what, body)
	}
	for _, d := range detail {
		if !strings.Contains(body, d) {
			t.Fatalf("%s: detail does not say %q: %s", what, d, body)
		}
	}
}

// A browser on this machine must not drive the admin API: a token is needed from loopback
// too (the old rule let any local process, or page, in without one).
func TestAdminNeedsTheTokenEvenFromLoopback(t *testing.T) {
	s := scimsandbox.New(scimsandbox.Options{Token: token})
	for _, tok := range []string{"", "wrong"} {
		w := adminAs(s, tok, "POST", "/_sandbox/config", `{"seats":{"Meeting":0}}`)
		mustRefuse(t, "config with token "+tok, http.StatusUnauthorized, w.Code, w.Body.String(), "bearer token")
		if w.Header().Get("WWW-Authenticate") == "" {
			t.Fatal("401 without WWW-Authenticate")
		}
		w = adminAs(s, tok, "GET", "/_sandbox/users", "")
		mustRefuse(t, "users with token "+tok, http.StatusUnauthorized, w.Code, w.Body.String())
	}
	createUser(t, s, "a@example.com", `,"entitlements":[{"value":"Meeting"}]`) // no seat limit was set

	// Without a configured token (library use) the admin API stays open, other guards apply.
	open := scimsandbox.New(scimsandbox.Options{})
	if w := adminAs(open, "", "POST", "/_sandbox/seed", `["x@example.com"]`); w.Code != http.StatusNoContent {
		t.Fatalf("tokenless sandbox: seed %d %s", w.Code, w.Body)
	}
}

// DNS rebinding: a page at http://rebind.example:8090 whose name resolves to 127.0.0.1
// sends Host: rebind.example:8090. Only the sandbox's own names are answered.
func TestHostHeaderMustNameTheSandbox(t *testing.T) {
	s := scimsandbox.New(scimsandbox.Options{Token: token, AllowedHosts: []string{"scim-sandbox", "10.0.0.5"}})
	for _, host := range []string{"rebind.example:8090", "rebind.example", "127.0.0.1.nip.io:8090",
		"localhost.rebind.example", "192.168.1.10:8090", "[::2]:8090", "scim-sandbox.evil"} {
		for _, path := range []string{"/Users", "/_sandbox/stats", "/_sandbox/users"} {
			req := newRequest("GET", path, "")
			req.Host = host
			req.Header.Set("Authorization", "Bearer "+token)
			status, body := send(t, s, req)
			mustRefuse(t, "GET "+path+" Host "+host, http.StatusMisdirectedRequest, status, body, "Host", host)
		}
		req := newRequest("POST", "/_sandbox/config", `{"seats":{"Meeting":0}}`)
		req.Host = host
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		status, body := send(t, s, req)
		mustRefuse(t, "POST /_sandbox/config Host "+host, http.StatusMisdirectedRequest, status, body)
	}
	createUser(t, s, "a@example.com", `,"entitlements":[{"value":"Meeting"}]`) // config was not applied
	if st := s.Stats(); st.Rejected != 7 || st.Requests != 8 {
		t.Fatalf("stats = %+v; want the misdirected SCIM requests as rejected", st)
	}

	for _, host := range []string{"127.0.0.1:8090", "127.0.0.1", "localhost:8090", "LOCALHOST", "[::1]:8090",
		"[::1]", "scim-sandbox:8090", "Scim-Sandbox", "10.0.0.5:8090"} {
		req := newRequest("GET", "/Users", "")
		req.Host = host
		req.Header.Set("Authorization", "Bearer "+token)
		if status, body := send(t, s, req); status != http.StatusOK {
			t.Fatalf("GET /Users Host %s: %d %s", host, status, body)
		}
		req = newRequest("GET", "/_sandbox/stats", "")
		req.Host = host
		req.Header.Set("Authorization", "Bearer "+token)
		if status, body := send(t, s, req); status != http.StatusOK {
			t.Fatalf("GET /_sandbox/stats Host %s: %d %s", host, status, body)
		}
	}

	// Over a real connection too.
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	req, _ := http.NewRequest("GET", srv.URL+"/Users", nil)
	req.Host = "rebind.example" + strings.TrimPrefix(srv.URL, "http://127.0.0.1")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMisdirectedRequest {
		t.Fatalf("rebound Host over HTTP: %d", resp.StatusCode)
	}
	if resp, err = http.Get(srv.URL + "/_sandbox/stats"); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("own Host, no token: %d, want 401", resp.StatusCode)
	}
}

// CSRF: a page on another origin can POST to the sandbox; browsers then send Origin.
func TestCrossOriginRequestsAreRefused(t *testing.T) {
	s := scimsandbox.New(scimsandbox.Options{Token: token})
	for _, origin := range []string{"http://evil.example", "null", "http://localhost:8090",
		"https://127.0.0.1:8090", "http://127.0.0.1:8091", "http://127.0.0.1", "file://", "http://127.0.0.1:8090/x"} {
		req := newRequest("POST", "/_sandbox/config", `{"seats":{"Meeting":0}}`)
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Origin", origin)
		status, body := send(t, s, req)
		mustRefuse(t, "admin POST from Origin "+origin, http.StatusForbidden, status, body, "cross-origin", "Origin")

		req = newRequest("POST", "/Users", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"csrf@example.com"}`)
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/scim+json")
		req.Header.Set("Origin", origin)
		status, body = send(t, s, req)
		mustRefuse(t, "SCIM POST from Origin "+origin, http.StatusForbidden, status, body, "cross-origin")
	}
	if _, ok := s.UserByUserName("csrf@example.com"); ok {
		t.Fatal("a cross-origin POST created a user")
	}
	createUser(t, s, "a@example.com", `,"entitlements":[{"value":"Meeting"}]`) // config was not applied

	// Same-origin requests (and requests without Origin, as non-browser clients send) pass.
	for _, origin := range []string{"http://127.0.0.1:8090", "HTTP://127.0.0.1:8090"} {
		req := newRequest("POST", "/_sandbox/config", `{"rateLimit":0}`)
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Origin", origin)
		if status, body := send(t, s, req); status != http.StatusNoContent {
			t.Fatalf("same-origin admin POST (%s): %d %s", origin, status, body)
		}
	}
	req := newRequest("POST", "/_sandbox/config", `{}`)
	req.Host = "localhost"
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Origin", "http://localhost")
	if status, body := send(t, s, req); status != http.StatusNoContent {
		t.Fatalf("same-origin admin POST on the default port: %d %s", status, body)
	}
}

// Cross-origin "simple" requests (forms, text/plain fetches) need no CORS preflight; the
// admin API refuses every type but application/json.
func TestAdminPostsMustBeJSON(t *testing.T) {
	s := scimsandbox.New(scimsandbox.Options{Token: token})
	for _, ct := range []string{"", "text/plain", "text/plain;charset=UTF-8", "application/x-www-form-urlencoded",
		"multipart/form-data; boundary=x", "application/scim+json", "application/jsonx", "json"} {
		for _, path := range []string{"/_sandbox/config", "/_sandbox/seed", "/_sandbox/reset-stats"} {
			body := `{"seats":{"Meeting":0}}`
			if path == "/_sandbox/seed" {
				body = `["seeded@example.com"]`
			}
			req := newRequest("POST", path, body)
			req.Header.Set("Authorization", "Bearer "+token)
			if ct != "" {
				req.Header.Set("Content-Type", ct)
			}
			status, out := send(t, s, req)
			mustRefuse(t, "POST "+path+" as "+ct, http.StatusUnsupportedMediaType, status, out, "application/json")
		}
	}
	if _, ok := s.UserByUserName("seeded@example.com"); ok {
		t.Fatal("a non-JSON seed was applied")
	}
	createUser(t, s, "a@example.com", `,"entitlements":[{"value":"Meeting"}]`) // config was not applied

	req := newRequest("POST", "/_sandbox/seed", `["seeded@example.com"]`)
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	if status, body := send(t, s, req); status != http.StatusNoContent {
		t.Fatalf("JSON seed with charset: %d %s", status, body)
	}
}

// An unauthenticated request is answered 401 before anything else: it costs no rate budget,
// consumes no injected failure, waits for no latency, and counts only as a rejection.
func TestAuthenticationComesBeforeRateLimitLatencyAndFaults(t *testing.T) {
	t.Run("rate limit", func(t *testing.T) {
		s := scimsandbox.New(scimsandbox.Options{Token: token, RateLimit: 0.001}) // burst 1, then ~nothing
		for range 3 {
			status, out := callAs(t, s, "wrong", "GET", "/Users", "")
			mustStatus(t, http.StatusUnauthorized, status, out)
		}
		status, out := call(t, s, "GET", "/Users", "")
		mustStatus(t, http.StatusOK, status, out)
		if st := s.Stats(); st.Requests != 4 || st.Rejected != 3 || st.Throttled != 0 {
			t.Fatalf("stats = %+v", st)
		}
	})
	t.Run("injected failures", func(t *testing.T) {
		s := scimsandbox.New(scimsandbox.Options{Token: token})
		s.FailNext(1, http.StatusServiceUnavailable)
		status, out := callAs(t, s, "", "GET", "/Users", "")
		mustStatus(t, http.StatusUnauthorized, status, out)
		status, out = call(t, s, "GET", "/Users", "")
		mustStatus(t, http.StatusServiceUnavailable, status, out)
		status, out = call(t, s, "GET", "/Users", "")
		mustStatus(t, http.StatusOK, status, out)
		if st := s.Stats(); st.Requests != 3 || st.Rejected != 1 || st.Injected != 1 {
			t.Fatalf("stats = %+v", st)
		}
	})
	t.Run("latency", func(t *testing.T) {
		s := scimsandbox.New(scimsandbox.Options{Token: token, Latency: 3 * time.Second})
		start := time.Now()
		status, out := callAs(t, s, "wrong", "GET", "/Users", "")
		mustStatus(t, http.StatusUnauthorized, status, out)
		if d := time.Since(start); d > time.Second {
			t.Fatalf("401 took %s: the latency was applied before authentication", d)
		}
	})
}

// Bodies are capped at 1 MiB, for SCIM and admin requests, whether the size is announced or not.
func TestBodiesOverOneMiBAre413(t *testing.T) {
	s := scimsandbox.New(scimsandbox.Options{Token: token})
	big := `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"big@example.com","displayName":"` +
		strings.Repeat("x", scimsandbox.MaxBodyBytes) + `"}`
	for _, announced := range []bool{true, false} {
		req := newRequest("POST", "/Users", big)
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/scim+json")
		if !announced {
			req.ContentLength = -1
			req.Body = io.NopCloser(strings.NewReader(big))
		}
		status, body := send(t, s, req)
		mustRefuse(t, "POST /Users of 1 MiB+", http.StatusRequestEntityTooLarge, status, body, "1 MiB")

		seed := `["` + strings.Repeat("y", scimsandbox.MaxBodyBytes) + `@example.com"]`
		req = newRequest("POST", "/_sandbox/seed", seed)
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		if !announced {
			req.ContentLength = -1
			req.Body = io.NopCloser(strings.NewReader(seed))
		}
		status, body = send(t, s, req)
		mustRefuse(t, "POST /_sandbox/seed of 1 MiB+", http.StatusRequestEntityTooLarge, status, body, "1 MiB")
	}
	if n := len(s.Users()); n != 0 {
		t.Fatalf("%d users after oversized requests", n)
	}
	// Just under the cap is fine.
	name := strings.Repeat("z", scimsandbox.MaxBodyBytes-200)
	createUser(t, s, "ok@example.com", `,"displayName":"`+name+`"`)
}

func TestOptionsValidateHostsAndLatency(t *testing.T) {
	for _, o := range []scimsandbox.Options{
		{AllowedHosts: []string{""}},
		{AllowedHosts: []string{"http://scim-sandbox/"}},
		{AllowedHosts: []string{"*"}},
		{Latency: scimsandbox.MaxLatency + time.Millisecond},
		{Latency: -time.Second},
	} {
		if err := o.Validate(); err == nil {
			t.Errorf("Validate(%+v) accepted", o)
		}
	}
	ok := scimsandbox.Options{AllowedHosts: []string{"scim-sandbox", "10.0.0.5", "[fd00::1]"}, Latency: scimsandbox.MaxLatency}
	if err := ok.Validate(); err != nil {
		t.Fatalf("Validate(%+v) = %v", ok, err)
	}
	s := scimsandbox.New(ok)
	req := newRequest("GET", "/Users", "")
	req.Host = "[FD00::1]:8090"
	s.SetLatency(0)
	if status, body := send(t, s, req); status != http.StatusOK {
		t.Fatalf("Host [fd00::1]: %d %s", status, body)
	}
	if !reflect.DeepEqual(ok.AllowedHosts, []string{"scim-sandbox", "10.0.0.5", "[fd00::1]"}) {
		t.Fatal("New changed the options")
	}
}
