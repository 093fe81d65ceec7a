// Package metrics owns the worker's Prometheus metrics (usersync's own and the Temporal
// SDK's) and its /metrics and /healthz endpoints. Labels are bounded: organization, product,
// outcome, failure type, run kind and status, HTTP status; never a user.
package metrics

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are usersync's own metrics. A nil *Metrics records nothing (tests, the CLI).
type Metrics struct {
	users     *prometheus.CounterVec
	failures  *prometheus.CounterVec
	runs      *prometheus.CounterVec
	requests  *prometheus.CounterVec
	latency   *prometheus.HistogramVec
	throttled *prometheus.CounterVec
	pacerWait *prometheus.HistogramVec
}

// New registers usersync's metrics in reg.
func New(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		users: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "usersync_users_total",
			Help: "Users a finished run wrote, by organization and outcome (created, updated, suspended, adopted, reconciled, failed)."},
			[]string{"org", "outcome"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "usersync_user_failures_total",
			Help: "Users a finished run failed, by organization and failure type."}, []string{"org", "type"}),
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "usersync_runs_total",
			Help: "Finished runs (dry runs excluded), by organization, kind and status; failure_type is the run-level failure, if any."},
			[]string{"org", "kind", "status", "failure_type"}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "usersync_scim_requests_total",
			Help: "SCIM requests sent, by organization and HTTP status (\"error\": no answer)."}, []string{"org", "status"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "usersync_scim_request_duration_seconds",
			Help:    "SCIM request latency, from sending to the answer's headers, by organization.",
			Buckets: []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}}, []string{"org"}),
		throttled: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "usersync_scim_throttled_total",
			Help: "SCIM requests the target answered 429 Too Many Requests, by organization."}, []string{"org"}),
		pacerWait: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "usersync_pacer_wait_seconds",
			Help:    "Time a SCIM request waited for its slot under the organization's shared rate.",
			Buckets: []float64{0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}}, []string{"org"}),
	}
	reg.MustRegister(m.users, m.failures, m.runs, m.requests, m.latency, m.throttled, m.pacerWait)
	return m
}

// Run records a finished run: its users by outcome and failure type, and the run itself.
func (m *Metrics) Run(org, kind, status, failureType string, outcomes, failures map[string]int) {
	if m == nil {
		return
	}
	for o, n := range outcomes {
		m.users.WithLabelValues(org, o).Add(float64(n))
	}
	for t, n := range failures {
		m.failures.WithLabelValues(org, t).Add(float64(n))
	}
	m.runs.WithLabelValues(org, kind, status, failureType).Inc()
}

// PacerWait records how long a request waited for its slot.
func (m *Metrics) PacerWait(org string, d time.Duration) {
	if m == nil {
		return
	}
	m.pacerWait.WithLabelValues(org).Observe(d.Seconds())
}

// Transport counts and times the requests rt sends for org.
func (m *Metrics) Transport(org string, rt http.RoundTripper) http.RoundTripper {
	if m == nil {
		return rt
	}
	if rt == nil {
		rt = http.DefaultTransport
	}
	return &transport{m: m, org: org, rt: rt}
}

type transport struct {
	m   *Metrics
	org string
	rt  http.RoundTripper
}

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	start := time.Now()
	resp, err := t.rt.RoundTrip(req)
	t.m.latency.WithLabelValues(t.org).Observe(time.Since(start).Seconds())
	status := "error"
	if err == nil {
		status = strconv.Itoa(resp.StatusCode)
		if resp.StatusCode == http.StatusTooManyRequests {
			t.m.throttled.WithLabelValues(t.org).Inc()
		}
	}
	t.m.requests.WithLabelValues(t.org, status).Inc()
	return resp, err
}
