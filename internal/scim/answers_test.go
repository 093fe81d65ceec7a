package scim_test

// Odd and faulty answers a real target rarely gives, from plain httptest servers: redirects,
// non-JSON 2xx, missing ids, oversized answers, auth failures, odd discovery documents.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unicode"

	"github.com/usersync/usersync/internal/plan"
	"github.com/usersync/usersync/internal/scim"
)

// fake serves h behind a recorder and returns a client for it (fast retries, 3 attempts).
func fake(t *testing.T, h http.HandlerFunc) (*scim.Client, *recorder, string) {
	t.Helper()
	rec := &recorder{next: h}
	srv := httptest.NewServer(rec)
	t.Cleanup(srv.Close)
	return scim.New(scim.Config{BaseURL: srv.URL, Token: token, MaxAttempts: 3, RetryBackoff: time.Millisecond}), rec, srv.URL
}

// answer writes status with a body and content type.
func answer(status int, contentType, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if contentType != "" {
			w.Header().Set("Content-Type", contentType)
		}
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}
}

func scimErr(t *testing.T, err error) *scim.Error {
	t.Helper()
	var se *scim.Error
	if !errorsAs(err, &se) {
		t.Fatalf("err = %v (%T), want a *scim.Error", err, err)
	}
	if strings.Contains(err.Error(), token) {
		t.Fatalf("error shows the token: %v", err)
	}
	return se
}

// calls are one call of each kind the client makes: a read, a create (with a body) and an
// update (a PATCH with a body).
var calls = []struct {
	name   string
	method string
	call   func(ctx context.Context, c *scim.Client) error
}{
	{"GetUser", "GET", func(ctx context.Context, c *scim.Client) error {
		_, err := c.GetUser(ctx, ext, "u1")
		return err
	}},
	{"FindUserByExternalID", "GET", func(ctx context.Context, c *scim.Client) error {
		_, err := c.FindUserByExternalID(ctx, ext, "ad-1")
		return err
	}},
	{"CreateUser", "POST", func(ctx context.Context, c *scim.Client) error {
		_, err := c.CreateUser(ctx, ext, desired())
		return err
	}},
	{"UpdateUser", "PATCH", func(ctx context.Context, c *scim.Client) error {
		return c.UpdateUser(ctx, ext, "u1", plan.Desired{}, desired())
	}},
	{"CreateGroup", "POST", func(ctx context.Context, c *scim.Client) error {
		_, err := c.CreateGroup(ctx, "Sales")
		return err
	}},
	{"PatchGroupMembers", "PATCH", func(ctx context.Context, c *scim.Client) error {
		return c.PatchGroupMembers(ctx, "g1", []string{"u1"}, nil)
	}},
}

func TestRedirectIsNeverFollowed(t *testing.T) {
	// The server a redirect points at: it must never hear from the client.
	elsewhere := &recorder{next: answer(200, "application/scim+json", `{"id":"x","Resources":[]}`)}
	other := httptest.NewServer(elsewhere)
	t.Cleanup(other.Close)
	port := strings.TrimPrefix(other.URL, "http://127.0.0.1:")
	for _, loc := range []struct{ name, host string }{
		{"another port", "127.0.0.1:" + port},
		{"another host", "localhost:" + port},
	} {
		// Control: the Location does reach the other server.
		resp, err := http.Get("http://" + loc.host + "/Users")
		if err != nil {
			t.Fatalf("control GET %s: %v", loc.host, err)
		}
		resp.Body.Close()
		if n := len(elsewhere.take()); n != 1 {
			t.Fatalf("control: the other server got %d requests via %s", n, loc.host)
		}
		for _, status := range []int{301, 302, 303, 307, 308} {
			for _, c := range calls {
				t.Run(fmt.Sprintf("%s/%d/%s", loc.name, status, c.name), func(t *testing.T) {
					client, rec, _ := fake(t, func(w http.ResponseWriter, r *http.Request) {
						http.Redirect(w, r, "http://"+loc.host+r.URL.RequestURI(), status)
					})
					err := c.call(t.Context(), client)
					se := scimErr(t, err)
					if se.Status != status || !strings.Contains(err.Error(), "Location host "+loc.host) {
						t.Fatalf("err = %v; want a %d naming the Location host %s", err, status, loc.host)
					}
					if !scim.IsRejected(err) || scim.IsRetryable(err) || scim.IsAuth(err) || scim.IsConflict(err) {
						t.Fatalf("err = %v: want only IsRejected", err)
					}
					if reqs := rec.take(); len(reqs) != 1 || reqs[0].Method != c.method {
						t.Fatalf("%d requests to the first server, want one %s (no retry)", len(reqs), c.method)
					}
					if got := elsewhere.take(); len(got) != 0 {
						t.Fatalf("the redirect was followed: the other server got %+v", got)
					}
				})
			}
		}
	}
}

// hostile is an HTML page with terminal escape sequences and other control characters.
var hostile = "<html><head><title>\x1b[2J\x1b[31mProxy login\x1b[0m</title></head>\r\n<body>\x07\x00\x7f" +
	"\u009b31mC1 CSI\u0085next line " + strings.Repeat("Please sign in to continue. ", 400) + "</body></html>"

func checkQuoted(t *testing.T, err error) {
	t.Helper()
	msg := err.Error()
	for _, r := range msg {
		if unicode.IsControl(r) {
			t.Fatalf("error holds control character %U: %q", r, msg)
		}
	}
	if strings.Contains(msg, "\x1b") || len(msg) > 400 {
		t.Fatalf("error not sanitized or not truncated (%d bytes): %q", len(msg), msg)
	}
	if !strings.Contains(msg, "Proxy login") || !strings.HasSuffix(msg, "...") {
		t.Fatalf("error does not quote the start of the answer, truncated: %q", msg)
	}
}

func Test2xxThatIsNotJSONIsARetryableMalformedError(t *testing.T) {
	for _, c := range calls {
		t.Run(c.name, func(t *testing.T) {
			status := http.StatusOK
			if c.method == "POST" {
				status = http.StatusCreated
			}
			client, rec, _ := fake(t, answer(status, "text/html; charset=utf-8", hostile))
			err := c.call(t.Context(), client)
			if err == nil {
				t.Fatalf("%d with an HTML page: no error", status)
			}
			se := scimErr(t, err)
			if !se.Malformed || !scim.IsRetryable(err) || scim.IsRejected(err) || scim.IsAuth(err) {
				t.Fatalf("err = %v (%+v): want a retryable Malformed error", err, se)
			}
			checkQuoted(t, err)
			if !strings.Contains(err.Error(), "text/html") {
				t.Errorf("error does not name the content type: %v", err)
			}
			if n := len(rec.take()); n != 3 {
				t.Errorf("%d requests, want MaxAttempts (3): the outcome is unknown, so retried", n)
			}
		})
	}
}

func TestErrorAnswersAreSanitizedToo(t *testing.T) {
	// A non-SCIM error page and a SCIM error whose detail carries escapes.
	for name, h := range map[string]http.HandlerFunc{
		"html 400": answer(400, "text/html", hostile),
		"scim 400": answer(400, "application/scim+json", `{"schemas":["urn:ietf:params:scim:api:messages:2.0:Error"],"status":"400",`+
			`"scimType":"invalidValue\u001b[31m","detail":`+jsonQuote(hostile)+`}`),
	} {
		t.Run(name, func(t *testing.T) {
			client, _, _ := fake(t, h)
			_, err := client.GetUser(t.Context(), ext, "u1")
			if !scim.IsRejected(err) {
				t.Fatalf("err = %v, want rejected", err)
			}
			for _, r := range err.Error() {
				if unicode.IsControl(r) {
					t.Fatalf("error holds control character %U: %q", r, err)
				}
			}
			if len(err.Error()) > 1000 {
				t.Fatalf("error is %d bytes long", len(err.Error()))
			}
		})
	}
}

func jsonQuote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func TestCreateAnswerWithoutIDIsRetryable(t *testing.T) {
	for name, body := range map[string]string{
		"no id":       `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"ann@example.com"}`,
		"empty id":    `{"id":"","userName":"ann@example.com"}`,
		"empty body":  ``,
		"JSON string": `"created"`,
		"JSON array":  `[{"id":"u1"}]`,
	} {
		t.Run("user/"+name, func(t *testing.T) {
			client, rec, _ := fake(t, answer(http.StatusCreated, "application/scim+json", body))
			u, err := client.CreateUser(t.Context(), ext, desired())
			if u != nil || err == nil {
				t.Fatalf("CreateUser = %+v, %v; want an error", u, err)
			}
			se := scimErr(t, err)
			if !se.Malformed || !scim.IsRetryable(err) || scim.IsRejected(err) {
				t.Fatalf("err = %v: want a retryable Malformed error", err)
			}
			if reqs := rec.take(); len(reqs) == 0 || reqs[0].Method != "POST" {
				t.Fatalf("requests %+v", reqs)
			}
		})
		t.Run("group/"+name, func(t *testing.T) {
			client, _, _ := fake(t, answer(http.StatusCreated, "application/scim+json", body))
			g, err := client.CreateGroup(t.Context(), "Sales")
			if g != nil || err == nil {
				t.Fatalf("CreateGroup = %+v, %v; want an error", g, err)
			}
			if se := scimErr(t, err); !se.Malformed || !scim.IsRetryable(err) {
				t.Fatalf("err = %v: want a retryable Malformed error", err)
			}
		})
	}
}

func TestEmptyAnswerToAReadIsNotAnEmptyResult(t *testing.T) {
	// A 200 without a body says nothing about the target: not "no such user", not "no users".
	client, _, _ := fake(t, answer(http.StatusOK, "application/scim+json", ""))
	u, err := client.FindUserByExternalID(t.Context(), ext, "ad-1")
	if u != nil || !scim.IsRetryable(err) {
		t.Fatalf("FindUserByExternalID = %+v, %v; want a retryable error", u, err)
	}
	seen := 0
	err = client.ListUsers(t.Context(), ext, func(*scim.User) error { seen++; return nil })
	if !scim.IsRetryable(err) {
		t.Fatalf("ListUsers = %v; want a retryable error", err)
	}
	if _, err := client.Discover(t.Context()); !scim.IsRetryable(err) {
		t.Fatalf("Discover = %v; want a retryable error", err)
	}
	// 204 to a PATCH is the usual success.
	client, _, _ = fake(t, answer(http.StatusNoContent, "", ""))
	if err := client.UpdateUser(t.Context(), ext, "u1", plan.Desired{}, desired()); err != nil {
		t.Fatalf("PATCH answered 204: %v", err)
	}
	if err := client.PatchGroupMembers(t.Context(), "g1", []string{"u1"}, nil); err != nil {
		t.Fatalf("group PATCH answered 204: %v", err)
	}
}

func TestAnswerOverFourMiBIsAnError(t *testing.T) {
	const limit = 4 << 20
	// A valid ListResponse, padded with white space to n bytes.
	list := func(n int) string {
		body := `{"schemas":["urn:ietf:params:scim:api:messages:2.0:ListResponse"],"totalResults":1,"Resources":[` +
			`{"id":"u1","externalId":"ad-1","userName":"ann@example.com","active":true}]}`
		return body + strings.Repeat(" ", n-len(body))
	}
	client, _, _ := fake(t, answer(200, "application/scim+json", list(limit)))
	if u, err := client.FindUserByExternalID(t.Context(), ext, "ad-1"); err != nil || u == nil || u.ID != "u1" {
		t.Fatalf("answer of exactly 4 MiB: %+v, %v; want the user", u, err)
	}
	for name, body := range map[string]string{
		"JSON":       list(limit + 1),
		"not JSON":   strings.Repeat("x", limit+100),
		"a 400 page": strings.Repeat("y", limit+1),
	} {
		t.Run(name, func(t *testing.T) {
			status := 200
			if name == "a 400 page" {
				status = 400
			}
			client, _, _ := fake(t, answer(status, "application/scim+json", body))
			u, err := client.FindUserByExternalID(t.Context(), ext, "ad-1")
			if u != nil || err == nil {
				t.Fatalf("answer over 4 MiB: %+v, %v; want an error", u, err)
			}
			if se := scimErr(t, err); !strings.Contains(err.Error(), "larger than 4 MiB") || se.Status != status {
				t.Fatalf("err = %v; want one saying the answer is over 4 MiB", err)
			}
		})
	}
}

func TestAuthAnswers(t *testing.T) {
	scimError := func(status int, detail string) string {
		return fmt.Sprintf(`{"schemas":["urn:ietf:params:scim:api:messages:2.0:Error"],"status":"%d","detail":%q}`, status, detail)
	}
	for _, c := range calls {
		t.Run("401/"+c.name, func(t *testing.T) {
			client, rec, _ := fake(t, answer(401, "application/scim+json", scimError(401, "token expired")))
			err := c.call(t.Context(), client)
			if se := scimErr(t, err); se.Status != 401 || !scim.IsAuth(err) || scim.IsRejected(err) || scim.IsRetryable(err) || scim.IsConflict(err) {
				t.Fatalf("err = %v: want only IsAuth", err)
			}
			if n := len(rec.take()); n != 1 {
				t.Fatalf("%d requests: an auth failure is not retried", n)
			}
		})
		t.Run("403/"+c.name, func(t *testing.T) {
			client, rec, _ := fake(t, answer(403, "application/scim+json", scimError(403, "no seat left for product Webinar")))
			err := c.call(t.Context(), client)
			se := scimErr(t, err)
			if se.Status != 403 || scim.IsRetryable(err) || scim.IsConflict(err) {
				t.Fatalf("err = %v", err)
			}
			if c.method == "GET" {
				// A read refused: the token lacks rights; nothing will work.
				if !scim.IsAuth(err) || scim.IsRejected(err) {
					t.Fatalf("403 to a GET: %v; want only IsAuth", err)
				}
			} else if scim.IsAuth(err) || !scim.IsRejected(err) || !strings.Contains(err.Error(), "Webinar") {
				// A write refused (a seat limit): this change, not the run.
				t.Fatalf("403 to a %s: %v; want only IsRejected, naming the product", c.method, err)
			}
			if n := len(rec.take()); n != 1 {
				t.Fatalf("%d requests, want 1", n)
			}
		})
	}
}

// discoveryServer answers the three discovery endpoints from docs (path -> body).
func discoveryServer(t *testing.T, docs map[string]string) *scim.Client {
	t.Helper()
	client, _, _ := fake(t, func(w http.ResponseWriter, r *http.Request) {
		body, ok := docs[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/scim+json")
		_, _ = w.Write([]byte(body))
	})
	return client
}

func schemaDoc(id string, attrs ...string) string {
	var list []string
	for _, a := range attrs {
		list = append(list, fmt.Sprintf(`{"name":%q,"type":"string"}`, a))
	}
	return fmt.Sprintf(`{"id":%q,"name":"S","attributes":[%s]}`, id, strings.Join(list, ","))
}

const (
	spcPatch   = `{"patch":{"supported":true},"filter":{"supported":true,"maxResults":50},"etag":{"supported":false}}`
	spcNoPatch = `{"patch":{"supported":false},"filter":{"supported":true,"maxResults":50}}`
	userRT     = `{"id":"User","name":"User","endpoint":"/Users","schema":"urn:ietf:params:scim:schemas:core:2.0:User",` +
		`"schemaExtensions":[{"schema":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User","required":false},` +
		`{"schema":"` + acmeURN + `","required":false}]}`
)

func TestDiscoverReadsBareArrays(t *testing.T) {
	schemas := "[" + strings.Join([]string{
		schemaDoc("urn:ietf:params:scim:schemas:core:2.0:User", "userName", "name", "emails"),
		schemaDoc(scim.EnterpriseSchema, "department", "costCenter"),
		schemaDoc(acmeURN, "settingsTemplate", "office"),
	}, ",") + "]"
	for name, types := range map[string]string{
		"ListResponse /ResourceTypes": `{"totalResults":1,"Resources":[` + userRT + `]}`,
		"bare /ResourceTypes":         `[` + userRT + `]`,
	} {
		t.Run(name, func(t *testing.T) {
			client := discoveryServer(t, map[string]string{
				"/ServiceProviderConfig": spcPatch, "/Schemas": schemas, "/ResourceTypes": types,
			})
			d, err := client.Discover(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if !d.Patch || !d.Filter || d.MaxResults != 50 || len(d.Schemas) != 3 || len(d.UserExtensions) != 2 {
				t.Fatalf("discovery = %+v", d)
			}
			if !d.HasExtension(acmeURN) || !d.Declares(acmeURN, "office") || !d.Declares(scim.EnterpriseSchema, "department") {
				t.Fatalf("discovery = %+v", d)
			}
			acme := scim.Extension{URN: acmeURN}
			if err := d.Check(acme, []string{"office"}, true, []string{"department"}); err != nil {
				t.Fatalf("Check = %v", err)
			}
		})
	}
}

func TestDiscoverRefusesWhatItCannotRead(t *testing.T) {
	for name, docs := range map[string]map[string]string{
		"schema without id":  {"/ServiceProviderConfig": spcPatch, "/Schemas": `[{"name":"x","attributes":[]}]`, "/ResourceTypes": `[]`},
		"schemas not a list": {"/ServiceProviderConfig": spcPatch, "/Schemas": `"nope"`, "/ResourceTypes": `[]`},
	} {
		t.Run(name, func(t *testing.T) {
			if d, err := discoveryServer(t, docs).Discover(t.Context()); err == nil {
				t.Fatalf("Discover = %+v, nil; want an error", d)
			}
		})
	}
}

func TestCheckRefusesWhatTheTargetCannotTake(t *testing.T) {
	acme := scim.Extension{URN: acmeURN}
	base := map[string]string{
		"/ServiceProviderConfig": spcPatch,
		"/Schemas": `{"Resources":[` + schemaDoc(scim.EnterpriseSchema, "department") + `,` +
			schemaDoc(acmeURN, "settingsTemplate", "office") + `]}`,
		"/ResourceTypes": `{"Resources":[` + userRT + `]}`,
	}
	with := func(path, body string) map[string]string {
		m := map[string]string{}
		for k, v := range base {
			m[k] = v
		}
		m[path] = body
		return m
	}
	for _, tc := range []struct {
		name       string
		docs       map[string]string
		ext        scim.Extension
		custom     []string
		template   bool
		enterprise []string
		want       string // "" for nil
	}{
		{"all declared", base, acme, []string{"office", "OFFICE"}, true, []string{"department"}, ""},
		{"no PATCH", with("/ServiceProviderConfig", spcNoPatch), acme, nil, false, nil, "PATCH"},
		{"no filter", with("/ServiceProviderConfig", `{"patch":{"supported":true},"filter":{"supported":false}}`), acme, nil, false, nil, "filtering"},
		{"custom attribute missing", base, acme, []string{"office", "costCode"}, false, nil, `"costCode"`},
		{"template attribute missing", base, scim.Extension{URN: acmeURN, TemplateAttribute: "profile"}, nil, true, nil, `"profile"`},
		{"enterprise attribute missing", base, acme, nil, false, []string{"department", "division"}, `"division"`},
		{"extension missing", base, scim.Extension{}, []string{"office"}, false, nil, scim.DefaultCustomSchema},
		{"extension in /Schemas but not a User extension", with("/ResourceTypes",
			`[{"name":"User","endpoint":"/Users","schemaExtensions":[{"schema":"`+scim.EnterpriseSchema+`"}]}]`),
			acme, []string{"office"}, false, nil, acmeURN},
		{"no enterprise schema: enterprise attributes are not checked", with("/Schemas",
			`[`+schemaDoc(acmeURN, "office")+`]`), acme, []string{"office"}, false, []string{"division"}, ""},
		{"nothing custom written to a target without the extension", with("/Schemas", `[]`), acme, nil, false, nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, err := discoveryServer(t, tc.docs).Discover(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			err = d.Check(tc.ext, tc.custom, tc.template, tc.enterprise)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("Check = %v; want nil", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("Check = %v; want an error with %s", err, tc.want)
			}
		})
	}
}

func TestEchoedTokenIsNotCutIntoErrors(t *testing.T) {
	// A server echoing the Authorization header where the quoted part of its answer ends:
	// scrubbed after the cut, the token's first bytes would show.
	page := strings.Repeat("a", 190) + "Authorization: Bearer " + token + strings.Repeat("b", 300)
	page = page[len("Authorization: Bearer "):] // the token straddles the 200-byte cut
	for _, status := range []int{200, 400, 502} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			client, _, _ := fake(t, answer(status, "text/html", page))
			_, err := client.GetUser(t.Context(), ext, "u1")
			if err == nil {
				t.Fatal("want an error")
			}
			if strings.Contains(err.Error(), token[:8]) {
				t.Fatalf("error shows part of the token: %v", err)
			}
		})
	}
}

// Ping is one request, no retries: a hung target costs the caller's deadline, not more.
func TestPingIsOneRequestWithoutRetries(t *testing.T) {
	var n atomic.Int32
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	t.Cleanup(down.Close)
	err := scim.New(scim.Config{BaseURL: down.URL, Token: "t", RetryBackoff: time.Millisecond}).Ping(t.Context())
	if !scim.IsRetryable(err) || n.Load() != 1 {
		t.Fatalf("Ping = %v after %d requests; want a retryable error after 1", err, n.Load())
	}

	release := make(chan struct{})
	hung := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(func() { close(release); hung.Close() })
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	if err := scim.New(scim.Config{BaseURL: hung.URL, Token: "t"}).Ping(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Ping of a hung target = %v; want the deadline", err)
	}
}

// A target that does not serve /Schemas or /ResourceTypes (404) advertises nothing there: it
// can be synced as long as nothing is written to a custom extension.
func TestDiscoverTakesMissingSchemaEndpointsAsNothingAdvertised(t *testing.T) {
	d, err := discoveryServer(t, map[string]string{"/ServiceProviderConfig": spcPatch}).Discover(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Check(scim.Extension{}, nil, false, []string{"department"}); err != nil {
		t.Fatalf("Check without extension use = %v; want nil", err)
	}
	if err := d.Check(scim.Extension{}, []string{"office"}, false, nil); err == nil {
		t.Fatal("Check with a custom field passed against a target that declares no schema")
	}
}
