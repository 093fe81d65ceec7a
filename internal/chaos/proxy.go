package chaos

import (
	"bytes"
	"encoding/json"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Faults say what the proxy does to the SCIM requests it passes to the target. Rates are
// shares of requests (0 to 1), drawn from the proxy's seeded generator in arrival order.
type Faults struct {
	// ErrorRate of requests are answered 500 or 503 (half each) without reaching the target.
	ErrorRate float64
	// LostCreateRate of POST /Users reach the target; when it answers 201 the client's
	// connection is closed without an answer: the account exists, the client cannot know.
	LostCreateRate float64
	// LostPatchRate of PATCH /Users/{id} reach the target, and the connection is closed
	// without the answer, whatever it was.
	LostPatchRate float64
	// SlowRate of requests reach the target, and their answer is held until the client gives
	// up (its timeout) or SlowCap passes.
	SlowRate float64
	SlowCap  time.Duration
	// Window: once WindowAt requests have arrived, every request is answered WindowStatus
	// (with Retry-After: RetryAfter seconds when set) for WindowFor, without reaching the
	// target: a 429 storm, or credentials refused for a while.
	WindowAt     int
	WindowFor    time.Duration
	WindowStatus int
	RetryAfter   int
}

// Proxy sits in front of a SCIM target (an in-process handler or a URL) and injects Faults.
// It also watches what reaches the target: which accounts were deactivated, and counts.
type Proxy struct {
	next http.Handler

	mu          sync.Mutex
	faults      Faults
	rng         *rand.Rand
	requests    int
	injected    map[string]int // by kind: "500", "503", "lost", "slow", "window-429", ...
	windowUntil time.Time
	deactivated map[string]int // account id -> PATCH/PUT requests that reached the target setting active=false
	hook        func(n int)    // called (outside the lock) with each request's arrival number
}

// NewProxy returns a proxy to next whose random choices come from seed.
func NewProxy(next http.Handler, seed uint64) *Proxy {
	return &Proxy{next: next, rng: rand.New(rand.NewPCG(seed, 0xc4a05)), injected: map[string]int{},
		deactivated: map[string]int{}}
}

// ReverseProxyTo is a handler forwarding to the server of the SCIM base URL base (a target
// in another process, SCIMMY), and the path the proxy's own base URL must end with.
func ReverseProxyTo(base string) (http.Handler, string, error) {
	u, err := url.Parse(base)
	if err != nil {
		return nil, "", err
	}
	// Only scheme and host: the client's request already carries the base path.
	rp := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: u.Scheme, Host: u.Host})
	return rp, strings.TrimRight(u.Path, "/"), nil
}

// SetFaults replaces the faults from now on (the zero Faults: pass everything).
func (p *Proxy) SetFaults(f Faults) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.faults = f
	p.windowUntil = time.Time{}
	if f.WindowAt > 0 && f.WindowAt <= p.requests {
		p.windowUntil = time.Now().Add(f.WindowFor)
	}
}

// OnRequest sets a function called with the arrival number (1, 2, ...) of every request.
func (p *Proxy) OnRequest(fn func(n int)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.hook = fn
}

// Requests is the number of requests that arrived.
func (p *Proxy) Requests() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.requests
}

// Injected returns the faults injected so far, by kind.
func (p *Proxy) Injected() map[string]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := map[string]int{}
	for k, v := range p.injected {
		out[k] = v
	}
	return out
}

// InjectedTotal is the number of requests a fault was injected into.
func (p *Proxy) InjectedTotal() int {
	n := 0
	for _, v := range p.Injected() {
		n += v
	}
	return n
}

// Deactivated returns the ids of the accounts a request that reached the target set inactive.
func (p *Proxy) Deactivated() map[string]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := map[string]int{}
	for k, v := range p.deactivated {
		out[k] = v
	}
	return out
}

// action is what the proxy does to one request.
type action int

const (
	pass action = iota
	fail500
	fail503
	window
	lose
	slow
)

func (p *Proxy) decide(r *http.Request) (action, Faults, int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.requests++
	n, f := p.requests, p.faults
	if f.WindowAt > 0 && n == f.WindowAt {
		p.windowUntil = time.Now().Add(f.WindowFor)
	}
	patch := r.Method == http.MethodPatch && strings.Contains(r.URL.Path, "/Users/")
	// One draw per request for each rate, always in this order: a seed replays the same
	// choices for the same sequence of requests.
	e, l, s, coin := p.rng.Float64(), p.rng.Float64(), p.rng.Float64(), p.rng.IntN(2)
	a := pass
	switch {
	case time.Now().Before(p.windowUntil):
		a = window
		p.injected["window-"+strconv.Itoa(f.WindowStatus)]++
	case e < f.ErrorRate && coin == 0:
		a = fail500
		p.injected["500"]++
	case e < f.ErrorRate:
		a = fail503
		p.injected["503"]++
	case patch && l < f.LostPatchRate, r.Method == http.MethodPost && isUsers(r) && l < f.LostCreateRate:
		a = lose
	case s < f.SlowRate:
		a = slow
		p.injected["slow"]++
	}
	return a, f, n
}

func isUsers(r *http.Request) bool {
	return strings.HasSuffix(strings.TrimSuffix(r.URL.Path, "/"), "/Users")
}

func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a, f, n := p.decide(r)
	p.mu.Lock()
	hook := p.hook
	p.mu.Unlock()
	if hook != nil {
		hook(n)
	}
	switch a {
	case fail500, fail503:
		status := http.StatusInternalServerError
		if a == fail503 {
			status = http.StatusServiceUnavailable
		}
		scimError(w, status, "injected failure")
		return
	case window:
		if f.RetryAfter > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(f.RetryAfter))
		}
		scimError(w, f.WindowStatus, "injected: a window of "+http.StatusText(f.WindowStatus))
		return
	}
	body, _ := io.ReadAll(r.Body)
	r.Body.Close()
	r.Body = io.NopCloser(bytes.NewReader(body))
	rec := httptest.NewRecorder()
	p.next.ServeHTTP(rec, r)
	p.watch(r, body, rec.Code)
	switch a {
	case lose:
		if r.Method == http.MethodPost && rec.Code != http.StatusCreated {
			break // only created accounts lose their answer
		}
		p.count("lost " + r.Method)
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				conn.Close() // the write happened; the answer never comes
				return
			}
		}
		panic(http.ErrAbortHandler) // closes the connection without an answer
	case slow:
		t := time.NewTimer(max(f.SlowCap, time.Second))
		select {
		case <-r.Context().Done(): // the client gave up
		case <-t.C:
		}
		t.Stop()
	}
	for k, vs := range rec.Header() {
		w.Header()[k] = vs
	}
	w.WriteHeader(rec.Code)
	_, _ = w.Write(rec.Body.Bytes())
}

// AddInjected counts n faults of kind injected by other means than the proxy (a process
// killed, the sandbox's own switches), for the report.
func (p *Proxy) AddInjected(kind string, n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.injected[kind] += n
}

func (p *Proxy) count(kind string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.injected[kind]++
}

// watch records an account set inactive by a write the target accepted.
func (p *Proxy) watch(r *http.Request, body []byte, status int) {
	if status/100 != 2 || (r.Method != http.MethodPatch && r.Method != http.MethodPut) {
		return
	}
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	if len(parts) < 2 || parts[len(parts)-2] != "Users" {
		return
	}
	id := parts[len(parts)-1]
	if deactivates(r.Method, body) {
		p.mu.Lock()
		p.deactivated[id]++
		p.mu.Unlock()
	}
}

// deactivates reports whether a PATCH or PUT body sets active to false.
func deactivates(method string, body []byte) bool {
	if method == http.MethodPut {
		var u struct {
			Active *bool `json:"active"`
		}
		return json.Unmarshal(body, &u) == nil && u.Active != nil && !*u.Active
	}
	var patch struct {
		Operations []struct {
			Op    string          `json:"op"`
			Path  string          `json:"path"`
			Value json.RawMessage `json:"value"`
		} `json:"Operations"`
	}
	if json.Unmarshal(body, &patch) != nil {
		return false
	}
	for _, op := range patch.Operations {
		if strings.EqualFold(op.Op, "remove") {
			continue
		}
		if strings.EqualFold(op.Path, "active") && string(bytes.TrimSpace(op.Value)) == "false" {
			return true
		}
		var v map[string]json.RawMessage
		if op.Path == "" && json.Unmarshal(op.Value, &v) == nil {
			for k, x := range v {
				if strings.EqualFold(k, "active") && string(bytes.TrimSpace(x)) == "false" {
					return true
				}
			}
		}
	}
	return false
}

func scimError(w http.ResponseWriter, status int, detail string) {
	w.Header().Set("Content-Type", "application/scim+json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{
		"schemas": []string{"urn:ietf:params:scim:api:messages:2.0:Error"},
		"status":  strconv.Itoa(status), "detail": detail})
}
