// Package scimsandbox is an in-memory SCIM 2.0 service provider (RFC 7643/7644) standing in
// for the vendor's identity API in tests and the local stack. It enforces per-product seat
// limits, can inject latency, rate limiting and failures, and counts requests, so tests can
// assert what a client sent. See admin.go for the test hooks and the /_sandbox/ HTTP API.
//
// It is as strict as RFC 7643/7644: every POST, PUT and PATCH is checked against the schemas
// it serves at /Schemas (schema.go: core User and Group, the enterprise extension and the
// custom extension of Options.CustomSchema), and what a real target rejects is answered with
// an RFC 7644 error (validate.go and patch.go list which status and scimType).
package scimsandbox

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Options configure a Server.
type Options struct {
	// Token is the bearer token clients must present. Empty disables authentication.
	Token string
	// Seats is the seat limit per product (entitlement value); missing means unlimited.
	Seats map[string]int
	// Latency is added to every authenticated SCIM request (not to /_sandbox/ requests).
	// At most MaxLatency.
	Latency time.Duration
	// RateLimit is in requests per second; over it the server answers 429 with Retry-After.
	// 0 means no limit.
	RateLimit float64
	// Logger receives one debug line per request (method, path, status). Nil: discard.
	Logger *slog.Logger
	// CustomSchema is the URN of the custom User extension, which holds usersync's custom
	// fields and settingsTemplate. Empty means DefaultCustomSchema; NoCustomSchema ("none")
	// declares no custom extension, so any custom data is rejected.
	CustomSchema string
	// CustomAttributes are the attributes (all single-valued strings) the custom extension
	// declares. Nil means DefaultCustomAttributes(); an empty non-nil slice declares the
	// extension with no attributes. Names follow RFC 7643 (a letter, then letters, digits,
	// '_' or '-') and are case-insensitive.
	CustomAttributes []string
	// AllowedHosts are the host names (no port) accepted in the Host header besides
	// 127.0.0.1, localhost and ::1, e.g. the name of the address the sandbox listens on or
	// its service name in docker-compose. Any other Host is answered 421: a browser page
	// whose DNS name rebinds to this machine cannot reach the sandbox.
	AllowedHosts []string
}

// MaxLatency bounds Options.Latency and the latencyMs of POST /_sandbox/config, so that an
// answer always fits in the sandbox command's write timeout.
const MaxLatency = 30 * time.Second

// Server is the sandbox; it implements http.Handler and is safe for concurrent use.
type Server struct {
	token      string
	hosts      map[string]bool // accepted Host names, lower case
	extraHosts []string        // Options.AllowedHosts, for messages
	logger     *slog.Logger
	now        func() time.Time
	reg        *registry // declared schemas; immutable

	mu         sync.Mutex
	users      *collection
	groups     *collection
	seq        int64
	seats      map[string]int
	seatsUsed  map[string]int
	latency    time.Duration
	limiter    *rate.Limiter
	failCount  int
	failStatus int
	dropCount  int           // DropAnswers: requests left to carry out and answer with nothing
	dropMethod string        // ... of this method
	searchLag  time.Duration // SetSearchLag
	stats      Stats
}

// New returns an empty sandbox. It panics when opts do not pass Options.Validate.
func New(opts Options) *Server {
	if err := opts.Validate(); err != nil {
		panic("scimsandbox: " + err.Error())
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{
		token:      opts.Token,
		hosts:      allowedHostSet(opts.AllowedHosts),
		extraHosts: append([]string(nil), opts.AllowedHosts...),
		logger:     logger,
		now:        time.Now,
		reg:        newRegistry(opts),
		users:      newCollection(),
		groups:     newCollection(),
		seats:      copySeats(opts.Seats),
		seatsUsed:  map[string]int{},
		latency:    opts.Latency,
		stats:      newStats(),
	}
	s.setRateLimit(opts.RateLimit)
	return s
}

func copySeats(in map[string]int) map[string]int {
	out := map[string]int{}
	for k, v := range in {
		out[k] = v
	}
	return out
}

func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40 // UUID v4 layout, like most providers
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// statusRecorder remembers the status a handler wrote, for stats and the debug log.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(status int) {
	r.status = status
	r.ResponseWriter.WriteHeader(status)
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path := strings.TrimSuffix(r.URL.Path, "/")
	if strings.HasPrefix(path, "/_sandbox/") {
		s.serveAdmin(w, r, path)
		return
	}
	start := s.now()
	rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
	handled, synthetic := s.admit(rec, r)
	if !handled && s.dropAnswer(r) {
		// Carried out, then the answer is lost: the connection closes before a status line.
		d := &discarded{header: http.Header{}, status: http.StatusOK}
		s.route(d, r, path)
		s.mu.Lock()
		s.stats.count(r.Method, routeKind(path), d.status, false, false) // a write, if it succeeded
		s.stats.Dropped++
		s.mu.Unlock()
		panic(http.ErrAbortHandler)
	}
	if !handled {
		s.route(rec, r, path)
	}
	s.mu.Lock()
	s.stats.count(r.Method, routeKind(path), rec.status, handled, synthetic)
	s.mu.Unlock()
	s.logger.Debug("scim request", "method", r.Method, "path", r.URL.Path, "status", rec.status,
		"duration", s.now().Sub(start))
}

// admit checks Host and Origin, then authentication, then the body size, and only then
// applies latency, the rate limit and injected failures: an unauthenticated request costs
// no rate budget, consumes no injected failure and waits for no latency. It reports whether
// it already answered the request, and whether with a throttle or injected failure.
func (s *Server) admit(w http.ResponseWriter, r *http.Request) (handled, synthetic bool) {
	if err := s.checkOrigin(r); err != nil {
		writeError(w, err)
		return true, false
	}
	if !s.authorized(r) {
		unauthorized(w)
		return true, false
	}
	if err := limitBody(w, r); err != nil {
		writeError(w, err)
		return true, false
	}
	s.mu.Lock()
	latency, limiter := s.latency, s.limiter
	s.mu.Unlock()
	if latency > 0 {
		t := time.NewTimer(latency)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
		}
	}
	if limiter != nil && !limiter.Allow() {
		wait := math.Ceil(1 / float64(limiter.Limit()))
		w.Header().Set("Retry-After", strconv.Itoa(max(1, int(wait))))
		s.mu.Lock()
		s.stats.Throttled++
		s.mu.Unlock()
		writeError(w, errorf(http.StatusTooManyRequests, "", "rate limit exceeded"))
		return true, true
	}
	s.mu.Lock()
	injected := 0
	if s.failCount > 0 {
		s.failCount--
		injected = s.failStatus
		s.stats.Injected++
	}
	s.mu.Unlock()
	if injected != 0 {
		if injected == http.StatusTooManyRequests {
			w.Header().Set("Retry-After", "1")
		}
		writeError(w, errorf(injected, "", "injected failure"))
		return true, true
	}
	return false, false
}

func unauthorized(w http.ResponseWriter) {
	w.Header().Set("WWW-Authenticate", `Bearer realm="scim-sandbox"`)
	writeError(w, errorf(http.StatusUnauthorized, "", "missing or invalid bearer token"))
}

func (s *Server) authorized(r *http.Request) bool {
	if s.token == "" {
		return true
	}
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	return ok && subtle.ConstantTimeCompare([]byte(got), []byte(s.token)) == 1
}

// routeKind names the endpoint of a path for stats: "/Users", "/Users/{id}", ...
func routeKind(path string) string {
	parts := strings.Split(strings.TrimPrefix(path, "/"), "/")
	switch {
	case len(parts) == 1 && parts[0] != "":
		return "/" + parts[0]
	case len(parts) == 2:
		return "/" + parts[0] + "/{id}"
	}
	return "other"
}

func (s *Server) route(w http.ResponseWriter, r *http.Request, path string) {
	parts := strings.Split(strings.TrimPrefix(path, "/"), "/")
	id := ""
	if len(parts) == 2 {
		id = parts[1]
	}
	if len(parts) > 2 {
		writeError(w, errorf(http.StatusNotFound, "", "no endpoint %s", path))
		return
	}
	switch parts[0] {
	case "Users":
		s.serveResource(w, r, "User", id)
	case "Groups":
		s.serveResource(w, r, "Group", id)
	case "ServiceProviderConfig":
		s.serveDiscovery(w, r, serviceProviderConfig(), id == "")
	case "ResourceTypes":
		s.serveDiscoveryList(w, r, s.resourceTypes(), id)
	case "Schemas":
		s.serveDiscoveryList(w, r, s.schemas(), id)
	default:
		writeError(w, errorf(http.StatusNotFound, "", "no endpoint %s", path))
	}
}

func baseURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// dropAnswer reports whether r is one of the requests DropAnswers asked to lose the answer of
// (and counts it).
func (s *Server) dropAnswer(r *http.Request) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.dropCount <= 0 || r.Method != s.dropMethod {
		return false
	}
	s.dropCount--
	return true
}

// discarded is a ResponseWriter that keeps nothing: the answer of a request whose answer is
// dropped.
type discarded struct {
	header http.Header
	status int
}

func (d *discarded) Header() http.Header         { return d.header }
func (d *discarded) Write(b []byte) (int, error) { return len(b), nil }
func (d *discarded) WriteHeader(status int)      { d.status = status }
