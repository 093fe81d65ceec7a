package scim_test

// One request per call for callers that own their retries (the worker: Temporal), the
// target's Retry-After handed back to them, request timeouts that do not count the queue for
// a slot, and admission to a shared pace.

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/usersync/usersync/internal/plan"
	"github.com/usersync/usersync/internal/scim"
)

// With MaxAttempts 1 a call sends one request: a 503 comes back at once, retryable, with the
// Retry-After the target sent for the caller's next attempt.
func TestOneAttemptPerCallHandsBackRetryAfter(t *testing.T) {
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		w.Header().Set("Retry-After", "7")
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	t.Cleanup(srv.Close)
	c := scim.New(scim.Config{BaseURL: srv.URL, Token: token, MaxAttempts: 1})
	start := time.Now()
	_, err := c.CreateUser(t.Context(), scim.Extension{}, plan.Desired{ExternalID: "u1", UserName: "ann@acme.test"})
	if !scim.IsRetryable(err) || n.Load() != 1 {
		t.Fatalf("CreateUser = %v after %d requests; want a retryable error after 1", err, n.Load())
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("CreateUser took %v: it waited on Retry-After itself", d)
	}
	if got := scim.RetryAfter(err); got != 7*time.Second {
		t.Fatalf("RetryAfter = %v; want 7s", got)
	}
	if got := scim.RetryAfter(errors.New("plain")); got != 0 {
		t.Fatalf("RetryAfter of a non-SCIM error = %v", got)
	}
}

// sleepyPacer makes every request wait d for its slot.
type sleepyPacer struct {
	d     time.Duration
	waits atomic.Int32
}

func (p *sleepyPacer) Wait(ctx context.Context) error {
	p.waits.Add(1)
	select {
	case <-time.After(p.d):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// A request timeout counts from the request's slot: a long queue is not a silent target, a
// hung target still is.
func TestRequestTimeoutDoesNotCountTheWaitForTheSlot(t *testing.T) {
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(20 * time.Millisecond):
		case <-r.Context().Done():
			return
		}
		w.Header().Set("Content-Type", "application/scim+json")
		_, _ = w.Write([]byte(`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"]}`))
	}))
	t.Cleanup(slow.Close)
	pacer := &sleepyPacer{d: 300 * time.Millisecond}
	c := scim.New(scim.Config{BaseURL: slow.URL, Token: token, MaxAttempts: 1, Pacer: pacer})
	if err := c.Ping(scim.WithRequestTimeout(t.Context(), 200*time.Millisecond)); err != nil {
		t.Fatalf("Ping after a 300ms queue, answered in 20ms, with a 200ms request timeout: %v", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	if err := c.Ping(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Ping with a 200ms deadline for queue and request = %v; want the deadline", err)
	}
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(time.Second):
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(hang.Close)
	c = scim.New(scim.Config{BaseURL: hang.URL, Token: token, MaxAttempts: 1, Pacer: pacer})
	start := time.Now()
	if err := c.Ping(scim.WithRequestTimeout(t.Context(), 200*time.Millisecond)); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Ping of a hung target = %v; want the request timeout", err)
	}
	if d := time.Since(start); d > 800*time.Millisecond {
		t.Fatalf("Ping of a hung target took %v; want the 300ms queue and the 200ms timeout", d)
	}
}

// admitter is a pacer that admits or turns away as told, and counts the slots taken.
type admitter struct {
	sleepyPacer
	admit  bool
	later  time.Duration
	admits atomic.Int32
}

func (a *admitter) Admit(ctx context.Context, holder string, within time.Duration) (time.Duration, bool, error) {
	a.admits.Add(1)
	if a.admit {
		return 50 * time.Millisecond, true, nil
	}
	return a.later, false, nil
}

// Admitted, a caller's first request uses the slot Admit took (no second slot for it), the
// next ones wait for their own; turned away, it learns its turn and nothing is sent. A pacer
// that cannot turn callers away admits everyone.
func TestAdmitTakesTheFirstRequestsSlot(t *testing.T) {
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		w.Header().Set("Content-Type", "application/scim+json")
		_, _ = w.Write([]byte(`{}`))
	}))
	t.Cleanup(srv.Close)
	a := &admitter{admit: true}
	c := scim.New(scim.Config{BaseURL: srv.URL, Token: token, MaxAttempts: 1, Pacer: a})
	ctx, later, err := c.Admit(t.Context(), "run/1", time.Second)
	if err != nil || later != 0 {
		t.Fatalf("Admit = %v, %v; want admitted", later, err)
	}
	start := time.Now()
	if err := c.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 40*time.Millisecond {
		t.Fatalf("the first request was sent after %v; want at its slot, 50ms on", d)
	}
	if got := a.waits.Load(); got != 0 {
		t.Fatalf("the first request waited for %d more slots", got)
	}
	if err := c.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	if got := a.waits.Load(); got != 1 {
		t.Fatalf("the second request waited for %d slots; want its own", got)
	}

	a = &admitter{later: 3 * time.Second}
	c = scim.New(scim.Config{BaseURL: srv.URL, Token: token, MaxAttempts: 1, Pacer: a})
	sent := n.Load()
	if _, later, err := c.Admit(t.Context(), "run/2", time.Second); err != nil || later != 3*time.Second {
		t.Fatalf("Admit = %v, %v; want turned away for 3s", later, err)
	}
	if n.Load() != sent || a.waits.Load() != 0 {
		t.Fatal("a caller turned away sent a request or took a slot")
	}

	c = scim.New(scim.Config{BaseURL: srv.URL, Token: token, RequestsPerSecond: 1})
	if _, later, err := c.Admit(t.Context(), "run/3", time.Second); err != nil || later != 0 {
		t.Fatalf("Admit with a local limit = %v, %v; want admitted", later, err)
	}
}
