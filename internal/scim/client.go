// Package scim is the SCIM 2.0 (RFC 7643/7644) client that provisions accounts in the
// target: find by externalId or userName, create, PATCH only what changed, suspend, and
// manage group memberships. A call retries 429 (honouring Retry-After), 5xx and network
// errors up to Config.MaxAttempts times (default 4, for the CLI and tests); the worker sets 1,
// so that Temporal owns retries: what fails is returned as a retryable *Error carrying the
// target's Retry-After, for the caller's retry policy.
package scim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/time/rate"
)

const (
	// DefaultCustomSchema is the extension URN for custom fields and settingsTemplate.
	DefaultCustomSchema = "urn:usersync:params:scim:schemas:extension:custom:2.0:User"
	// EnterpriseSchema is the RFC 7643 enterprise user extension.
	EnterpriseSchema = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
	coreUserSchema   = "urn:ietf:params:scim:schemas:core:2.0:User"
	coreGroupSchema  = "urn:ietf:params:scim:schemas:core:2.0:Group"
	patchOpSchema    = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
	contentType      = "application/scim+json"

	defaultMaxAttempts  = 4
	defaultRetryBackoff = 200 * time.Millisecond
	maxBackoff          = 10 * time.Second
	// maxResponseBytes caps what one answer may hold; a longer one is an error, never
	// silently truncated.
	maxResponseBytes = 4 << 20
	// maxDetail caps the part of a non-SCIM answer quoted in an error.
	maxDetail = 200
)

// Config configures a Client.
type Config struct {
	BaseURL    string       // e.g. https://api.example.com/identity/v2 (no trailing /Users)
	Token      string       // bearer token; never appears in errors
	HTTPClient *http.Client // default: a client with a 30s timeout
	// MaxAttempts bounds the tries of one call on 429, 5xx and network errors (default 4).
	// 1 sends each request once: a caller with its own retries (a Temporal activity) sees
	// every failure and the Retry-After the target sent, and no call outlives its attempt.
	MaxAttempts int
	// RequestsPerSecond limits the requests this Client sends (0: no limit).
	RequestsPerSecond float64
	// Pacer, when set, is waited on before every request instead of the local limit: a
	// pacer shared by all workers keeps their requests together under the target's rate.
	Pacer Pacer
	// RetryBackoff is the first wait after a 5xx or network error; it doubles per attempt
	// (default 200ms).
	RetryBackoff time.Duration
	// PacerWait, when set, is told how long each request waited for its slot (metrics).
	PacerWait func(time.Duration)
}

// Pacer hands out request slots; Wait returns when this request may be sent.
type Pacer interface {
	Wait(ctx context.Context) error
}

// Admitter is a Pacer that can also turn a caller away instead of queueing it. Admit takes
// holder's first slot and returns admitted with the wait until it when the slots taken reach
// at most within ahead (or holder comes back at the turn it was given); else it takes no slot
// and returns how long until holder's turn. A caller whose time is bounded (a Temporal
// attempt) waits for its turn outside that bound, and then queues about within per request.
type Admitter interface {
	Admit(ctx context.Context, holder string, within time.Duration) (wait time.Duration, admitted bool, err error)
}

// Client talks to one SCIM service provider. It is safe for concurrent use.
type Client struct {
	base        string
	token       string
	http        *http.Client
	maxAttempts int
	backoff     time.Duration
	limiter     Pacer
	pacerWait   func(time.Duration)
	requests    atomic.Int64
}

// New returns a Client for cfg, filling in defaults.
func New(cfg Config) *Client {
	c := &Client{
		base:        strings.TrimRight(cfg.BaseURL, "/"),
		token:       cfg.Token,
		maxAttempts: cfg.MaxAttempts,
		backoff:     cfg.RetryBackoff,
		pacerWait:   cfg.PacerWait,
	}
	// Never follow a redirect: it would re-send the token and the user's data to wherever
	// the Location points. A 3xx is returned as an error naming the Location's host.
	hc := http.Client{Timeout: 30 * time.Second}
	if cfg.HTTPClient != nil {
		hc = *cfg.HTTPClient
	}
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	c.http = &hc
	if c.maxAttempts <= 0 {
		c.maxAttempts = defaultMaxAttempts
	}
	if c.backoff <= 0 {
		c.backoff = defaultRetryBackoff
	}
	if cfg.Pacer != nil {
		c.limiter = cfg.Pacer
	} else if cfg.RequestsPerSecond > 0 {
		// Burst 1: never more than the target's documented rate, even after an idle spell.
		c.limiter = rate.NewLimiter(rate.Limit(cfg.RequestsPerSecond), 1)
	}
	return c
}

// Admit asks the pacer whether holder may send its requests now (see Admitter). Admitted,
// it returns a context whose first request uses the slot taken for holder, and later 0;
// turned away, ctx and how long until holder's turn. A pacer that cannot turn callers away
// (a local limit) or none admits everyone: ctx and 0.
func (c *Client) Admit(ctx context.Context, holder string, within time.Duration) (_ context.Context, later time.Duration, err error) {
	a, ok := c.limiter.(Admitter)
	if !ok {
		return ctx, 0, nil
	}
	wait, admitted, err := a.Admit(ctx, holder, within)
	if err != nil || !admitted {
		return ctx, wait, err
	}
	return context.WithValue(ctx, slotKey{}, &heldSlot{at: time.Now().Add(wait)}), 0, nil
}

// heldSlot is a slot Admit took: the first request made with its context is sent at it
// instead of waiting for a slot of its own.
type heldSlot struct {
	at   time.Time
	used atomic.Bool
}

type slotKey struct{}

// waitSlot waits for the request's slot: the one Admit took when not used yet, else the
// pacer's next.
func (c *Client) waitSlot(ctx context.Context) error {
	if s, ok := ctx.Value(slotKey{}).(*heldSlot); ok && s.used.CompareAndSwap(false, true) {
		t := time.NewTimer(time.Until(s.at))
		defer t.Stop()
		select {
		case <-t.C:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if c.limiter == nil {
		return nil
	}
	return c.limiter.Wait(ctx)
}

// WithRequestTimeout bounds each request made with the returned context to d, counted from
// the request's slot: the wait for the slot is not part of it. A probe that asks "does the
// target answer within 15 s?" then does not count the queue ahead of it as silence.
func WithRequestTimeout(ctx context.Context, d time.Duration) context.Context {
	return context.WithValue(ctx, requestTimeoutKey{}, d)
}

type requestTimeoutKey struct{}

// Requests returns the number of HTTP requests sent so far, retries included.
func (c *Client) Requests() int64 { return c.requests.Load() }

// do sends one SCIM call, retrying 429/5xx/network errors up to maxAttempts, and decodes a
// 2xx body into out (when out is not nil and the body is not empty).
func (c *Client) do(ctx context.Context, method, path string, query url.Values, body, out any) error {
	op := method + " " + path
	var payload []byte
	if body != nil {
		var err error
		if payload, err = json.Marshal(body); err != nil {
			return fmt.Errorf("scim %s: encode request: %w", op, err)
		}
	}
	target := c.base + path
	if len(query) > 0 {
		target += "?" + query.Encode()
	}
	for attempt := 1; ; attempt++ {
		e, err := c.attempt(ctx, op, method, target, payload, out)
		if e == nil {
			return err
		}
		if !e.retryable() || attempt >= c.maxAttempts {
			return e
		}
		delay := c.backoff << (attempt - 1)
		if delay <= 0 || delay > maxBackoff {
			delay = maxBackoff
		}
		if e.RetryAfter > 0 {
			delay = e.RetryAfter
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("scim %s: %w (after %v)", op, ctx.Err(), e)
		case <-t.C:
		}
	}
}

// attempt sends the request once. A non-nil *Error is an HTTP or network failure; the plain
// error covers what retrying cannot fix (cancelled context, undecodable answer).
func (c *Client) attempt(ctx context.Context, op, method, target string, payload []byte, out any) (*Error, error) {
	waitStart := time.Now()
	err := c.waitSlot(ctx)
	if c.pacerWait != nil && c.limiter != nil {
		c.pacerWait(time.Since(waitStart))
	}
	if err != nil {
		return nil, fmt.Errorf("scim %s: waiting for the rate limit: %w", op, err)
	}
	if d, ok := ctx.Value(requestTimeoutKey{}).(time.Duration); ok && d > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d)
		defer cancel()
	}
	var reader io.Reader
	if payload != nil {
		reader = bytes.NewReader(payload)
	}
	req, err := http.NewRequestWithContext(ctx, method, target, reader)
	if err != nil {
		return nil, fmt.Errorf("scim %s: %s", op, c.scrub(err.Error()))
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Accept", contentType)
	if payload != nil {
		req.Header.Set("Content-Type", contentType)
	}
	c.requests.Add(1)
	resp, err := c.http.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("scim %s: %w", op, ctx.Err())
		}
		// Not the url.Error's text: it quotes the URL, whose filter holds a userName.
		detail := err.Error()
		var ue *url.Error
		if errors.As(err, &ue) {
			detail = ue.Err.Error()
		}
		return &Error{Op: op, Detail: truncate(c.scrub(detail), maxDetail), Err: err}, nil
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes+1))
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("scim %s: %w", op, ctx.Err())
		}
		return &Error{Op: op, Detail: "reading response: " + c.scrub(err.Error()), Err: err}, nil
	}
	if len(data) > maxResponseBytes {
		return &Error{Op: op, Status: resp.StatusCode, Malformed: true,
			Detail: fmt.Sprintf("answer is larger than %d MiB; refused", maxResponseBytes>>20)}, nil
	}
	if resp.StatusCode >= 300 && resp.StatusCode <= 399 {
		e := &Error{Op: op, Status: resp.StatusCode, Detail: "redirect not followed"}
		if loc, err := resp.Location(); err == nil {
			e.Detail += " (Location host " + loc.Host + "); point SCIM_URL at the final address"
		}
		return e, nil
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		// Scrubbed before it is cut short: a cut could leave part of the token.
		e := errorFromResponse(op, resp, []byte(c.scrub(string(data))), time.Now())
		e.Detail = c.scrub(e.Detail)
		return e, nil
	}
	// A 2xx that is not JSON (an HTML page from a proxy, a truncated body), or that is empty
	// where an answer was expected (a read, a create): what the target did is unknown, so it
	// is retried; the retry finds what was written. A PATCH's answer is not used, but a body
	// that is not JSON is checked too: the proxy that sent it did not pass the PATCH on.
	if len(bytes.TrimSpace(data)) == 0 {
		if out != nil {
			return &Error{Op: op, Status: resp.StatusCode, Malformed: true, Detail: "empty answer"}, nil
		}
	} else if (out != nil && json.Unmarshal(data, out) != nil) || (out == nil && !json.Valid(data)) {
		return &Error{Op: op, Status: resp.StatusCode, Malformed: true, Detail: c.scrub(
			"answer is not SCIM JSON (" + resp.Header.Get("Content-Type") + "): " + truncate(c.scrub(string(data)), maxDetail))}, nil
	}
	return nil, nil
}

// scrub removes the token from text that came from elsewhere (a server echoing headers).
func (c *Client) scrub(s string) string {
	if c.token == "" {
		return s
	}
	return strings.ReplaceAll(s, c.token, "[redacted]")
}

// listResponse is RFC 7644 section 3.4.2's ListResponse.
type listResponse struct {
	TotalResults int               `json:"totalResults"`
	Resources    []json.RawMessage `json:"Resources"`
}

// eqFilter builds `attr eq "value"`. The value is a JSON string literal, as RFC 7644's
// compValue grammar requires, so quotes and backslashes in it are escaped.
func eqFilter(attr, value string) string {
	return attr + " eq " + jsonString(value)
}

// truncate cuts s to n bytes (at a rune boundary) and drops control characters, for error
// messages quoting what a server sent.
func truncate(s string, n int) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) { // C0, DEL and C1 (U+009B is a terminal's CSI too)
			return ' '
		}
		return r
	}, strings.TrimSpace(s))
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}

// jsonString quotes s as a JSON string literal (without HTML escaping).
func jsonString(s string) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)
	return strings.TrimSpace(b.String())
}
