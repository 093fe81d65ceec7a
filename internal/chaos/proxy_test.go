package chaos

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/usersync/usersync/internal/plan"
	"github.com/usersync/usersync/internal/scim"
	"github.com/usersync/usersync/internal/scimsandbox"
)

func proxied(t *testing.T, seed uint64) (*scimsandbox.Server, *Proxy, *scim.Client) {
	sb := scimsandbox.New(scimsandbox.Options{Token: scimToken})
	p := NewProxy(sb, seed)
	srv := httptest.NewServer(p)
	t.Cleanup(srv.Close)
	return sb, p, scim.New(scim.Config{BaseURL: srv.URL, Token: scimToken, MaxAttempts: 1,
		HTTPClient: &http.Client{Timeout: 2 * time.Second}})
}

// A lost 201: the account is created in the target, the client gets no answer.
func TestLostCreateCreatesButDoesNotAnswer(t *testing.T) {
	sb, p, c := proxied(t, 1)
	p.SetFaults(Faults{LostCreateRate: 1})
	_, err := c.CreateUser(context.Background(), scim.Extension{}, plan.Desired{ExternalID: "x1", UserName: "a@example.com", Active: true})
	if err == nil {
		t.Fatal("the client got an answer")
	}
	if _, ok := sb.UserByUserName("a@example.com"); !ok {
		t.Fatal("the account was not created")
	}
	if p.Injected()["lost POST"] != 1 {
		t.Fatalf("injected %v", p.Injected())
	}
}

// Errors are drawn from the seed: about the rate asked, and the same ones for the same seed.
func TestErrorRateIsSeeded(t *testing.T) {
	count := func(seed uint64) int {
		_, p, c := proxied(t, seed)
		p.SetFaults(Faults{ErrorRate: 0.2})
		failed := 0
		for range 500 {
			if _, err := c.FindUserByUserName(context.Background(), scim.Extension{}, "nobody@example.com"); err != nil {
				failed++
			}
		}
		return failed
	}
	a, b := count(7), count(7)
	if a != b {
		t.Fatalf("same seed, %d then %d failures", a, b)
	}
	if a < 60 || a > 140 {
		t.Fatalf("%d of 500 failed, want about 100", a)
	}
}

// A window answers everything with its status and Retry-After, then passes again.
func TestWindowAnswersItsStatusThenEnds(t *testing.T) {
	_, p, c := proxied(t, 1)
	p.SetFaults(Faults{WindowAt: 2, WindowFor: 300 * time.Millisecond, WindowStatus: 429, RetryAfter: 3})
	ctx := context.Background()
	if _, err := c.FindUserByUserName(ctx, scim.Extension{}, "a@example.com"); err != nil {
		t.Fatalf("before the window: %v", err)
	}
	_, err := c.FindUserByUserName(ctx, scim.Extension{}, "a@example.com")
	var se *scim.Error
	if !errors.As(err, &se) || se.Status != 429 || se.RetryAfter != 3*time.Second {
		t.Fatalf("in the window: %v", err)
	}
	time.Sleep(400 * time.Millisecond)
	if _, err := c.FindUserByUserName(ctx, scim.Extension{}, "a@example.com"); err != nil {
		t.Fatalf("after the window: %v", err)
	}
}

// The proxy sees an account set inactive.
func TestProxySeesSuspensions(t *testing.T) {
	_, p, c := proxied(t, 1)
	ctx := context.Background()
	d := plan.Desired{ExternalID: "x1", UserName: "a@example.com", Active: true}
	u, err := c.CreateUser(ctx, scim.Extension{}, d)
	if err != nil {
		t.Fatal(err)
	}
	off := d
	off.Active = false
	if err := c.UpdateUser(ctx, scim.Extension{}, u.ID, d, off); err != nil {
		t.Fatal(err)
	}
	if p.Deactivated()[u.ID] != 1 {
		t.Fatalf("deactivated: %v", p.Deactivated())
	}
}
