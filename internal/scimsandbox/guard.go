package scimsandbox

// Request guards shared by the SCIM endpoints and the /_sandbox/ admin API. They keep a
// browser on the same machine from driving the sandbox:
//
//   - Host must be a name of this listener (loopback names and Options.AllowedHosts), so a
//     page whose DNS name rebinds to 127.0.0.1 is refused (421);
//   - a request with an Origin header must be same-origin (403): browsers send Origin on
//     every cross-origin POST, PUT, PATCH and DELETE;
//   - bodies are capped at MaxBodyBytes (413);
//   - admin POSTs must be application/json (415), a type no HTML form or "simple"
//     cross-origin request can send.

import (
	"errors"
	"fmt"
	"mime"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// MaxBodyBytes is the largest request body the sandbox reads; larger ones get 413.
const MaxBodyBytes = 1 << 20

// loopbackHosts are always accepted in the Host header.
var loopbackHosts = []string{"127.0.0.1", "localhost", "::1"}

// hostName returns the lower-cased host of a Host header value or host[:port], without
// port or IPv6 brackets.
func hostName(hostport string) string {
	h := hostport
	if host, _, err := net.SplitHostPort(hostport); err == nil {
		h = host
	}
	h = strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
	return strings.ToLower(h)
}

func validHostName(h string) bool {
	return h != "" && !strings.ContainsAny(h, "/@?#* \t\r\n")
}

func allowedHostSet(extra []string) map[string]bool {
	set := map[string]bool{}
	for _, h := range loopbackHosts {
		set[h] = true
	}
	for _, h := range extra {
		set[hostName(strings.TrimSpace(h))] = true
	}
	return set
}

func (s *Server) allowedHostList() string {
	out := append([]string(nil), loopbackHosts...)
	for _, h := range s.extraHosts {
		if h = hostName(strings.TrimSpace(h)); !slices.Contains(out, h) {
			out = append(out, h)
		}
	}
	return strings.Join(out, ", ")
}

// checkOrigin applies the Host and Origin rules.
func (s *Server) checkOrigin(r *http.Request) *scimError {
	if r.Host == "" {
		return errorf(http.StatusMisdirectedRequest, "", "request has no Host header; this sandbox answers only to %s", s.allowedHostList())
	}
	if !s.hosts[hostName(r.Host)] {
		return errorf(http.StatusMisdirectedRequest, "",
			"Host %q is not a name of this sandbox (accepted: %s); refused as possible DNS rebinding, "+
				"start the sandbox with --allow-host to add a name", r.Host, s.allowedHostList())
	}
	origin := r.Header.Values("Origin")
	if len(origin) == 0 {
		return nil
	}
	if len(origin) > 1 || !sameOrigin(r, origin[0]) {
		return errorf(http.StatusForbidden, "", "cross-origin request refused: Origin %q is not %s",
			strings.Join(origin, ", "), baseURL(r))
	}
	return nil
}

// sameOrigin reports whether origin (an Origin header value) is the request's own
// scheme://host:port, default ports included.
func sameOrigin(r *http.Request, origin string) bool {
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" || u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
		return false
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	if !strings.EqualFold(u.Scheme, scheme) {
		return false
	}
	return hostName(u.Host) == hostName(r.Host) && portOf(u.Host, scheme) == portOf(r.Host, scheme)
}

func portOf(hostport, scheme string) string {
	if _, port, err := net.SplitHostPort(hostport); err == nil && port != "" {
		return port
	}
	if scheme == "https" {
		return "443"
	}
	return "80"
}

// limitBody refuses a body announced as larger than MaxBodyBytes and caps the rest.
func limitBody(w http.ResponseWriter, r *http.Request) *scimError {
	if r.ContentLength > MaxBodyBytes {
		return tooLarge()
	}
	if r.Body != nil {
		r.Body = http.MaxBytesReader(w, r.Body, MaxBodyBytes)
	}
	return nil
}

func tooLarge() *scimError {
	return errorf(http.StatusRequestEntityTooLarge, "", "request body is larger than %d MiB", MaxBodyBytes>>20)
}

// bodyError turns a body read or decode error into the SCIM error to answer.
func bodyError(err error) *scimError {
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return tooLarge()
	}
	return badRequest("invalidSyntax", "request body is not valid JSON: %v", err)
}

// checkJSON requires Content-Type application/json (parameters such as charset allowed).
func checkJSON(r *http.Request) *scimError {
	ct := r.Header.Get("Content-Type")
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil || mt != "application/json" {
		return errorf(http.StatusUnsupportedMediaType, "",
			"sandbox admin %s needs Content-Type: application/json, got %s", r.Method, describeType(ct))
	}
	return nil
}

func describeType(ct string) string {
	if ct == "" {
		return "none"
	}
	return fmt.Sprintf("%q", ct)
}
