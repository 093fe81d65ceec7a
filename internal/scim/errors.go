package scim

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// maxRetryAfter caps a server's Retry-After: how long a call waits before its next try, or
// the delay before the next Temporal attempt (see RetryAfter).
const maxRetryAfter = 60 * time.Second

// Error is a failed SCIM call: an HTTP error answer (RFC 7644 section 3.12) or, with
// Status 0, a network error. It never contains the bearer token.
type Error struct {
	Op         string // "PATCH /Users/2819c223-..."
	Status     int    // HTTP status; 0 for a network error
	ScimType   string // e.g. "uniqueness", "invalidFilter"
	Detail     string
	RetryAfter time.Duration // from a 429 or 503 Retry-After header, capped at 60s
	Err        error         // the network error, when Status is 0
	// Malformed is a 2xx answer that cannot be what the request asked for (not JSON, no id,
	// too large): the outcome is unknown, so it is retried like a network error.
	Malformed bool
}

func (e *Error) Error() string {
	if e.Status == 0 {
		return fmt.Sprintf("scim %s: network error: %s", e.Op, e.Detail)
	}
	msg := fmt.Sprintf("scim %s: %d %s", e.Op, e.Status, http.StatusText(e.Status))
	if e.ScimType != "" {
		msg += " (" + e.ScimType + ")"
	}
	if e.Detail != "" {
		msg += ": " + e.Detail
	}
	return msg
}

func (e *Error) Unwrap() error { return e.Err }

func (e *Error) retryable() bool {
	return e.Status == 0 || e.Malformed || e.Status == http.StatusTooManyRequests || e.Status >= 500
}

// IsAuth reports that the target refused our credentials: nothing will work until an admin
// fixes the token, so the run stops instead of failing every user. That is any 401, and a 403
// to a read; a 403 to a write is the target refusing that change (a seat limit, a protected
// account) and stays a per-user rejection.
func IsAuth(err error) bool {
	var e *Error
	return errors.As(err, &e) && (e.Status == http.StatusUnauthorized ||
		e.Status == http.StatusForbidden && strings.HasPrefix(e.Op, "GET "))
}

// IsConflict reports a uniqueness conflict (409, or scimType "uniqueness"): for a create,
// the userName belongs to another account.
func IsConflict(err error) bool {
	var e *Error
	return errors.As(err, &e) && (e.Status == http.StatusConflict || e.ScimType == "uniqueness")
}

// IsRetryable reports a failure worth retrying later: 429, 5xx or a network error.
func IsRetryable(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.retryable()
}

// RetryAfter returns the Retry-After the target sent with a 429 or 503 (capped at 60s), or 0:
// the delay before trying again that the target asked for.
func RetryAfter(err error) time.Duration {
	var e *Error
	if errors.As(err, &e) && e.retryable() {
		return e.RetryAfter
	}
	return 0
}

// IsRejected reports any other 4xx (or a redirect, which is never followed): the target
// refused the request as sent (invalid value, seat limit, not found, ...). IsConflict,
// IsAuth, IsRetryable and IsRejected are disjoint.
func IsRejected(err error) bool {
	var e *Error
	return errors.As(err, &e) && !e.retryable() && !IsConflict(err) && !IsAuth(err) &&
		(e.Status >= 300 && e.Status < 500)
}

// IsNotFound reports a 404 (e.g. a linked account deleted by hand in the target).
func IsNotFound(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Status == http.StatusNotFound
}

// errorFromResponse builds an Error from a non-2xx answer; body may be a SCIM error or not.
func errorFromResponse(op string, resp *http.Response, body []byte, now time.Time) *Error {
	e := &Error{Op: op, Status: resp.StatusCode}
	var wire struct {
		ScimType string `json:"scimType"`
		Detail   string `json:"detail"`
	}
	if json.Unmarshal(body, &wire) == nil && (wire.Detail != "" || wire.ScimType != "") {
		e.ScimType, e.Detail = truncate(wire.ScimType, 40), truncate(wire.Detail, 4*maxDetail)
	} else {
		e.Detail = truncate(string(body), maxDetail)
	}
	e.RetryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), now)
	return e
}

// parseRetryAfter reads delay-seconds or an HTTP date (RFC 9110 section 10.2.3).
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	var d time.Duration
	if secs, err := strconv.Atoi(v); err == nil {
		d = time.Duration(secs) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = t.Sub(now)
	}
	return min(max(d, 0), maxRetryAfter)
}
