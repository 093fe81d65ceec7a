package scim_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/usersync/usersync/internal/plan"
	"github.com/usersync/usersync/internal/scim"
	"github.com/usersync/usersync/internal/scimsandbox"
)

func errorsAs(err error, target **scim.Error) bool { return errors.As(err, target) }

func Test429HonoursRetryAfterThenSucceeds(t *testing.T) {
	// With a 1ms backoff, only honouring Retry-After: 1 makes the call take a second.
	e := newEnv(t, scimsandbox.Options{}, scim.Config{RetryBackoff: time.Millisecond})
	e.sandbox.FailNext(1, http.StatusTooManyRequests)
	start := time.Now()
	u, err := e.client.FindUserByExternalID(context.Background(), ext, "nobody")
	if err != nil || u != nil {
		t.Fatalf("after a 429: %+v, %v", u, err)
	}
	if waited := time.Since(start); waited < 900*time.Millisecond {
		t.Fatalf("retried after %v, before the server's Retry-After of 1s", waited)
	}
	if n := e.client.Requests(); n != 2 {
		t.Fatalf("%d requests, want 2", n)
	}
}

func Test5xxIsRetriedThenSucceeds(t *testing.T) {
	e := newEnv(t, scimsandbox.Options{}, scim.Config{})
	e.sandbox.FailNext(2, http.StatusServiceUnavailable)
	if _, err := e.client.CreateUser(context.Background(), ext, desired()); err != nil {
		t.Fatal(err)
	}
	if n := len(e.sandbox.Users()); n != 1 {
		t.Fatalf("%d users, want 1", n)
	}
	if st := e.sandbox.Stats(); st.Injected != 2 || st.Count("POST", "/Users") != 3 {
		t.Fatalf("stats = %+v", st)
	}
}

func Test5xxExhaustedIsRetryable(t *testing.T) {
	e := newEnv(t, scimsandbox.Options{}, scim.Config{MaxAttempts: 3})
	e.sandbox.FailNext(10, http.StatusInternalServerError)
	_, err := e.client.CreateUser(context.Background(), ext, desired())
	var se *scim.Error
	if !scim.IsRetryable(err) || scim.IsRejected(err) || !errorsAs(err, &se) || se.Status != 500 {
		t.Fatalf("err = %v, want a retryable 500", err)
	}
	if n := e.client.Requests(); n != 3 {
		t.Fatalf("%d requests, want MaxAttempts=3", n)
	}
}

func TestNetworkErrorIsRetryable(t *testing.T) {
	dead := scim.New(scim.Config{BaseURL: "http://127.0.0.1:1", Token: token, MaxAttempts: 2, RetryBackoff: time.Millisecond})
	_, err := dead.FindUserByExternalID(context.Background(), ext, "x")
	if !scim.IsRetryable(err) || dead.Requests() != 2 {
		t.Fatalf("err = %v after %d requests, want retryable after 2", err, dead.Requests())
	}
}

func Test4xxIsRejectedWithoutRetry(t *testing.T) {
	e := newEnv(t, scimsandbox.Options{}, scim.Config{})
	ctx := context.Background()
	err := e.client.UpdateUser(ctx, ext, "no-such-id", plan.Desired{}, desired())
	if !scim.IsRejected(err) || !scim.IsNotFound(err) || scim.IsRetryable(err) || scim.IsConflict(err) {
		t.Fatalf("404: err = %v", err)
	}
	_, err = e.client.CreateUser(ctx, ext, plan.Desired{ExternalID: "g", Active: true}) // no userName
	var se *scim.Error
	if !scim.IsRejected(err) || !errorsAs(err, &se) || se.Status != 400 || se.ScimType != "invalidValue" {
		t.Fatalf("400: err = %v", err)
	}
	if n := e.client.Requests(); n != 2 {
		t.Fatalf("%d requests, want 2 (no retries)", n)
	}
}

func TestTokenNeverAppearsInErrors(t *testing.T) {
	e := newEnv(t, scimsandbox.Options{}, scim.Config{})
	ctx := context.Background()
	var errs []error

	wrong := scim.New(scim.Config{BaseURL: e.url, Token: "wrong-" + token, RetryBackoff: time.Millisecond})
	_, err := wrong.FindUserByExternalID(ctx, ext, "x")
	if !scim.IsAuth(err) || scim.IsRejected(err) || scim.IsRetryable(err) {
		t.Fatalf("wrong token: %v, want an auth failure (only)", err)
	}
	errs = append(errs, err)

	dead := scim.New(scim.Config{BaseURL: "http://127.0.0.1:1/" + token, Token: token, MaxAttempts: 1})
	_, err = dead.FindUserByExternalID(ctx, ext, "x")
	errs = append(errs, err)

	e.sandbox.FailNext(5, http.StatusBadGateway)
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	_, err = e.client.CreateUser(cancelled, ext, desired())
	errs = append(errs, err)

	for _, err := range errs {
		if err == nil {
			t.Fatal("expected an error")
		}
		if strings.Contains(err.Error(), token) {
			t.Fatalf("error shows the token: %v", err)
		}
	}
}

func TestContextCancellationStopsWaiting(t *testing.T) {
	e := newEnv(t, scimsandbox.Options{}, scim.Config{MaxAttempts: 4})
	e.sandbox.FailNext(10, http.StatusTooManyRequests) // each carries Retry-After: 1
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		for e.client.Requests() == 0 {
			time.Sleep(time.Millisecond)
		}
		cancel()
	}()
	_, err := e.client.FindUserByExternalID(ctx, ext, "x")
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if n := e.client.Requests(); n != 1 {
		t.Fatalf("%d requests after cancellation, want 1", n)
	}
}

func TestClientRateLimitKeepsUnderTheTargetLimit(t *testing.T) {
	e := newEnv(t, scimsandbox.Options{RateLimit: 20}, scim.Config{RequestsPerSecond: 20, MaxAttempts: 1})
	for i := range 10 {
		if _, err := e.client.FindUserByExternalID(context.Background(), ext, "x"); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
	}
	if st := e.sandbox.Stats(); st.Throttled != 0 || st.Requests != 10 {
		t.Fatalf("stats = %+v, want 10 requests and none throttled", st)
	}
}
