package scimsandbox

// Test and admin hooks, as Go methods and as HTTP endpoints under /_sandbox/.
//
// HTTP, with the bearer token of the SCIM endpoints (when one is configured), from any
// address:
//
//	GET  /_sandbox/stats          Stats as JSON
//	POST /_sandbox/reset-stats    zero the counters
//	POST /_sandbox/config         {"latencyMs": 50, "seats": {"Meeting": 100}, "rateLimit": 10,
//	                               "failNext": {"count": 2, "status": 503},
//	                               "dropAnswers": {"count": 1, "method": "POST"}, "searchLagMs": 5000};
//	                               absent fields stay;
//	                               "seats" replaces all limits
//	POST /_sandbox/seed           ["a@example.com", ...]: pre-existing accounts (no externalId)
//	GET  /_sandbox/users          every user as JSON (see User)
//	GET  /_sandbox/group-members?displayName=Sales   member ids of a group
//
// Admin requests are not counted in Stats and get no latency, throttling or injected failures.
// Like SCIM requests they must name this sandbox in Host (421 otherwise) and, when they carry
// an Origin header, be same-origin (403 otherwise); their bodies are capped at MaxBodyBytes
// (413). Every admin POST must be Content-Type: application/json (415 otherwise), so that no
// HTML form or other "simple" cross-origin request from a browser can reach it.

import (
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"

	"golang.org/x/time/rate"
)

// User is a stored user as tests see it.
type User struct {
	ID           string   `json:"id"`
	ExternalID   string   `json:"externalId,omitempty"`
	UserName     string   `json:"userName"`
	DisplayName  string   `json:"displayName,omitempty"`
	GivenName    string   `json:"givenName,omitempty"`
	FamilyName   string   `json:"familyName,omitempty"`
	Emails       []string `json:"emails,omitempty"`
	Active       bool     `json:"active"`
	Entitlements []string `json:"entitlements,omitempty"`
	Roles        []string `json:"roles,omitempty"`
	// Extensions holds extension attributes by schema URN, e.g.
	// Extensions["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"]["department"].
	Extensions map[string]map[string]any `json:"extensions,omitempty"`
	// Version increases with every write (meta.version is W/"<Version>").
	Version int `json:"version"`
}

func toUser(r *resource) User {
	a := r.attrs
	u := User{ID: r.id, ExternalID: str(a, "externalId"), UserName: str(a, "userName"),
		DisplayName: str(a, "displayName"), Active: a["active"] == true, Version: r.version}
	if name, ok := a["name"].(map[string]any); ok {
		u.GivenName, u.FamilyName = str(name, "givenName"), str(name, "familyName")
	}
	u.Emails = values(a["emails"])
	u.Entitlements = values(a["entitlements"])
	u.Roles = values(a["roles"])
	for k, v := range a {
		if m, ok := v.(map[string]any); ok && strings.HasPrefix(strings.ToLower(k), "urn:") {
			if u.Extensions == nil {
				u.Extensions = map[string]map[string]any{}
			}
			u.Extensions[k] = m
		}
	}
	return u
}

func values(v any) []string {
	var out []string
	list, _ := v.([]any)
	for _, e := range list {
		if m, ok := e.(map[string]any); ok {
			if s, ok := m["value"].(string); ok {
				out = append(out, s)
			}
		}
	}
	return out
}

// SeedExisting creates active accounts with these userNames (also their email when it looks
// like one) and no externalId: accounts that exist in the target but are not linked.
func (s *Server) SeedExisting(userNames ...string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, name := range userNames {
		attrs := map[string]any{"userName": name, "active": true}
		if strings.Contains(name, "@") {
			attrs["emails"] = []any{map[string]any{"value": name, "type": "work", "primary": true}}
		}
		if _, err := s.commitUser(newID(), nil, attrs); err != nil {
			return fmt.Errorf("seed userName %q: %s", name, err.detail)
		}
	}
	return nil
}

// SetSeats replaces every product's seat limit; products not in seats become unlimited.
// Lowering a limit below the seats in use rejects new entitlements only.
func (s *Server) SetSeats(seats map[string]int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seats = copySeats(seats)
}

// SeatsUsed returns the seats in use per product (active users entitled to it).
func (s *Server) SeatsUsed() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]int{}
	for p, n := range s.seatsUsed {
		if n > 0 {
			out[p] = n
		}
	}
	return out
}

// SetLatency sets the delay added to every authenticated SCIM request. Unlike Options and
// POST /_sandbox/config it takes any duration: keep it under the server's write timeout.
func (s *Server) SetLatency(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.latency = d
}

// SetRateLimit sets the requests per second above which the server answers 429 (0: none).
func (s *Server) SetRateLimit(rps float64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.setRateLimit(rps)
}

func (s *Server) setRateLimit(rps float64) {
	s.limiter = nil
	if rps > 0 {
		s.limiter = rate.NewLimiter(rate.Limit(rps), max(1, int(rps)))
	}
}

// FailNext makes the next n SCIM requests fail with status (429 carries Retry-After: 1).
func (s *Server) FailNext(n int, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failCount, s.failStatus = n, status
}

// DropAnswers makes the next n authenticated SCIM requests with this method (POST, PATCH,
// ...) be carried out as usual, then left without an answer: the connection is closed before
// the status line, as when an answer is lost on its way back (a lost 201, a proxy timing out
// after the target committed). The client cannot know whether the write happened. n = 0
// turns it off.
func (s *Server) DropAnswers(n int, method string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dropCount, s.dropMethod = n, strings.ToUpper(method)
}

// SetSearchLag makes filtered lists (GET /Users?filter=..., GET /Groups?filter=...) leave out
// the resources created less than d ago, as a target whose search index lags behind its
// writes does: a just-created account is there (GET /Users/{id} finds it, its userName is
// taken) but a search by externalId or userName does not find it yet. 0 turns it off.
func (s *Server) SetSearchLag(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.searchLag = d
}

// Stats returns a copy of the request counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats.clone()
}

// ResetStats zeroes the request counters.
func (s *Server) ResetStats() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stats = newStats()
}

// Users returns every user in creation order.
func (s *Server) Users() []User {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []User{}
	for _, r := range s.users.ordered() {
		out = append(out, toUser(r))
	}
	return out
}

// User returns the user with that id.
func (s *Server) User(id string) (User, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r := s.users.byID[id]; r != nil {
		return toUser(r), true
	}
	return User{}, false
}

// UserByUserName returns the user with that userName (case-insensitive).
func (s *Server) UserByUserName(userName string) (User, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r := s.users.byID[s.users.byName[strings.ToLower(userName)]]; r != nil {
		return toUser(r), true
	}
	return User{}, false
}

// GroupMembers returns the sorted member ids (user ids) of the group with that displayName;
// nil when there is no such group.
func (s *Server) GroupMembers(displayName string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.groups.byID[s.groups.byName[strings.ToLower(displayName)]]
	if r == nil {
		return nil
	}
	out := values(r.attrs["members"])
	if out == nil {
		out = []string{}
	}
	sort.Strings(out)
	return out
}

// maxSearchLagMs bounds POST /_sandbox/config's searchLagMs (10 minutes).
const maxSearchLagMs = 600_000

// adminConfig is the body of POST /_sandbox/config.
type adminConfig struct {
	LatencyMs *int           `json:"latencyMs"`
	Seats     map[string]int `json:"seats"`
	RateLimit *float64       `json:"rateLimit"`
	FailNext  *struct {
		Count  int `json:"count"`
		Status int `json:"status"`
	} `json:"failNext"`
	DropAnswers *struct {
		Count  int    `json:"count"`
		Method string `json:"method"`
	} `json:"dropAnswers"`
	SearchLagMs *int `json:"searchLagMs"`
}

func (s *Server) serveAdmin(w http.ResponseWriter, r *http.Request, path string) {
	if err := s.checkOrigin(r); err != nil {
		writeError(w, err)
		return
	}
	if !s.authorized(r) {
		unauthorized(w)
		return
	}
	if r.Method == http.MethodPost {
		if err := checkJSON(r); err != nil {
			writeError(w, err)
			return
		}
	}
	if err := limitBody(w, r); err != nil {
		writeError(w, err)
		return
	}
	route := r.Method + " " + strings.TrimPrefix(path, "/_sandbox")
	switch route {
	case "GET /stats":
		writeJSON(w, http.StatusOK, s.Stats())
	case "POST /reset-stats":
		s.ResetStats()
		w.WriteHeader(http.StatusNoContent)
	case "POST /config":
		var c adminConfig
		if err := decodeBody(r, &c); err != nil {
			writeError(w, err)
			return
		}
		if c.LatencyMs != nil && (*c.LatencyMs < 0 || int64(*c.LatencyMs) > MaxLatency.Milliseconds()) {
			writeError(w, badRequest("invalidValue", "latencyMs %d: want 0 to %d", *c.LatencyMs, MaxLatency.Milliseconds()))
			return
		}
		if c.SearchLagMs != nil && (*c.SearchLagMs < 0 || *c.SearchLagMs > maxSearchLagMs) {
			writeError(w, badRequest("invalidValue", "searchLagMs %d: want 0 to %d", *c.SearchLagMs, maxSearchLagMs))
			return
		}
		if c.SearchLagMs != nil {
			s.SetSearchLag(time.Duration(*c.SearchLagMs) * time.Millisecond)
		}
		if c.LatencyMs != nil {
			s.SetLatency(time.Duration(*c.LatencyMs) * time.Millisecond)
		}
		if c.Seats != nil {
			s.SetSeats(c.Seats)
		}
		if c.RateLimit != nil {
			s.SetRateLimit(*c.RateLimit)
		}
		if c.FailNext != nil {
			s.FailNext(c.FailNext.Count, c.FailNext.Status)
		}
		if c.DropAnswers != nil {
			s.DropAnswers(c.DropAnswers.Count, c.DropAnswers.Method)
		}
		w.WriteHeader(http.StatusNoContent)
	case "POST /seed":
		var names []string
		if err := decodeBody(r, &names); err != nil {
			writeError(w, err)
			return
		}
		if err := s.SeedExisting(names...); err != nil {
			writeError(w, errorf(http.StatusConflict, "uniqueness", "%v", err))
			return
		}
		w.WriteHeader(http.StatusNoContent)
	case "GET /users":
		writeJSON(w, http.StatusOK, s.Users())
	case "GET /group-members":
		writeJSON(w, http.StatusOK, s.GroupMembers(r.URL.Query().Get("displayName")))
	default:
		writeError(w, errorf(http.StatusNotFound, "", "no sandbox endpoint %s", route))
	}
}
