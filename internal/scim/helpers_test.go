package scim_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/usersync/usersync/internal/scim"
	"github.com/usersync/usersync/internal/scimsandbox"
)

const token = "tok-9f8e7d6c5b4a-secret"

// ext is the default custom extension (usersync's own URN, settingsTemplate).
var ext = scim.Extension{}

// sent is one request as the sandbox received it.
type sent struct {
	Method, Path string
	Query        string
	Auth         string
	ContentType  string
	Body         []byte
}

// recorder sits in front of the real sandbox and remembers what the client sent.
type recorder struct {
	mu   sync.Mutex
	reqs []sent
	next http.Handler
}

func (r *recorder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	req.Body = io.NopCloser(bytes.NewReader(body))
	r.mu.Lock()
	r.reqs = append(r.reqs, sent{Method: req.Method, Path: req.URL.Path, Query: req.URL.RawQuery,
		Auth: req.Header.Get("Authorization"), ContentType: req.Header.Get("Content-Type"), Body: body})
	r.mu.Unlock()
	r.next.ServeHTTP(w, req)
}

func (r *recorder) take() []sent {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.reqs
	r.reqs = nil
	return out
}

type env struct {
	client  *scim.Client
	sandbox *scimsandbox.Server
	rec     *recorder
	url     string
}

// newEnv starts a sandbox on a loopback port and a client for it with fast retries.
func newEnv(t *testing.T, opts scimsandbox.Options, cfg scim.Config) *env {
	t.Helper()
	opts.Token = token
	sb := scimsandbox.New(opts)
	rec := &recorder{next: sb}
	srv := httptest.NewServer(rec)
	t.Cleanup(srv.Close)
	cfg.BaseURL = srv.URL
	if cfg.Token == "" {
		cfg.Token = token
	}
	if cfg.RetryBackoff == 0 {
		cfg.RetryBackoff = time.Millisecond
	}
	return &env{client: scim.New(cfg), sandbox: sb, rec: rec, url: srv.URL}
}

// patchOps decodes the Operations of a recorded PATCH.
func patchOps(t *testing.T, s sent) []map[string]any {
	t.Helper()
	var body struct {
		Schemas    []string         `json:"schemas"`
		Operations []map[string]any `json:"Operations"`
	}
	if err := json.Unmarshal(s.Body, &body); err != nil {
		t.Fatalf("PATCH body: %v: %s", err, s.Body)
	}
	if len(body.Schemas) != 1 || body.Schemas[0] != "urn:ietf:params:scim:api:messages:2.0:PatchOp" {
		t.Fatalf("PATCH schemas = %v", body.Schemas)
	}
	return body.Operations
}

func opSummary(ops []map[string]any) []string {
	var out []string
	for _, op := range ops {
		out = append(out, op["op"].(string)+" "+op["path"].(string))
	}
	return out
}
