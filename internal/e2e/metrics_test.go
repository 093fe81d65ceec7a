package e2e

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"

	"github.com/usersync/usersync/internal/demo"
	"github.com/usersync/usersync/internal/orgs"
	"github.com/usersync/usersync/internal/vocab"
	"github.com/usersync/usersync/workflows"
)

// An operator scrapes the worker: the counters of a first sync match what the target holds
// and what the run failed, the seats gauges the seats taken, the SDK's metrics are there, and
// /healthz turns 503 naming PostgreSQL when the database stops answering (and 200 again).
func TestWorkerMetricsAndHealth(t *testing.T) {
	s := newStack(t, demo.Org())
	s.restartWorkers(0, 0) // the real worker binary serves this stack instead
	addr := startWorkerProcess(t, s)
	base := "http://" + addr

	waitHealth(t, base, http.StatusOK, "ok")
	s.signal(workflows.SignalEnable, workflows.SwitchSignal{Actor: "alice"})
	first := s.waitRun("")
	require.Equal(t, vocab.RunSucceeded, first.Status, first.Error)

	m := scrape(t, base)
	created := len(s.linked())
	require.Positive(t, created)
	require.Equal(t, float64(created), m.sum("usersync_users_total", "org", org, "outcome", vocab.Created),
		"created users == the accounts usersync linked in the target")
	require.Equal(t, float64(first.Outcomes[vocab.Failed]), m.sum("usersync_users_total", "org", org, "outcome", vocab.Failed))
	require.Equal(t, 10.0, m.sum("usersync_user_failures_total", "org", org, "type", vocab.DomainNotValidated))
	require.Equal(t, 5.0, m.sum("usersync_user_failures_total", "org", org, "type", vocab.ExistingAccount))
	waiting := len(s.failures(vocab.Filter{Type: vocab.OutOfLicenses}))
	require.Equal(t, float64(waiting), m.sum("usersync_user_failures_total", "org", org, "type", vocab.OutOfLicenses))
	require.Equal(t, 1.0, m.sum("usersync_runs_total", "org", org, "kind", vocab.KindScheduled, "status", vocab.RunSucceeded))

	stats := s.sandbox.Stats()
	require.Equal(t, float64(stats.Requests), m.sum("usersync_scim_requests_total", "org", org),
		"every request the target saw is counted")
	require.Equal(t, float64(created+stats.Count("POST", "/Groups")), m.sum("usersync_scim_requests_total", "org", org, "status", "201"),
		"201: the users and the groups created")
	require.Equal(t, 5.0, m.sum("usersync_scim_requests_total", "org", org, "status", "409"), "the pre-existing userNames")
	require.Equal(t, float64(stats.Requests), m.count("usersync_scim_request_duration_seconds", "org", org))
	require.Positive(t, m.count("usersync_pacer_wait_seconds", "org", org), "the organization's target has a rate")
	require.Zero(t, m.sum("usersync_scim_throttled_total", "org", org))

	require.Equal(t, float64(s.activeWith(demo.Webinar)), m.sum("usersync_seats_used", "org", org, "product", demo.Webinar))
	require.Zero(t, m.sum("usersync_seats_free", "org", org, "product", demo.Webinar), "Webinar is sold out")
	require.InDelta(t, float64(first.FinishedAt.Unix()), m.sum("usersync_last_success_timestamp_seconds", "org", org), 2)
	require.Positive(t, m.sum("temporal_workflow_completed"), "the SDK's own metrics")
	require.Positive(t, m.count("temporal_activity_execution_latency"))

	// PostgreSQL stops answering this worker: its database refuses connections (changed from
	// the server's maintenance database: a database cannot refuse its own session).
	u, err := url.Parse(s.superURL) // refusing connections and ending sessions: the superuser's
	require.NoError(t, err)
	db := strings.TrimPrefix(u.Path, "/")
	u.Path = "/postgres"
	admin, err := pgx.Connect(s.ctx, u.String())
	require.NoError(t, err)
	t.Cleanup(func() { _ = admin.Close(context.Background()) })
	allow := func(on bool) {
		_, err := admin.Exec(s.ctx, fmt.Sprintf(`ALTER DATABASE %s ALLOW_CONNECTIONS %t`, pgx.Identifier{db}.Sanitize(), on))
		require.NoError(t, err)
	}
	allow(false)
	t.Cleanup(func() { allow(true) })
	_, err = admin.Exec(s.ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1`, db)
	require.NoError(t, err)
	waitHealth(t, base, http.StatusServiceUnavailable, "postgresql: ")
	allow(true)
	waitHealth(t, base, http.StatusOK, "ok")
}

// startWorkerProcess runs the worker binary for s's organization (the single-organization
// shortcut) with its metrics on a free loopback port, and returns that address.
func startWorkerProcess(t *testing.T, s *stack) string {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "worker")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/usersync/usersync/worker").CombinedOutput()
	require.NoError(t, err, "go build worker: %s", out)
	keys := filepath.Join(dir, "secrets.keys")
	_, err = orgs.AddKey(keys)
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())

	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin)
	cmd.Env = append(os.Environ(),
		"USERSYNC_ORG="+org, "TEMPORAL_ADDRESS="+s.hostPort, "TEMPORAL_NAMESPACE=default",
		"DATABASE_URL="+s.dbURL, "USERSYNC_SECRETS_KEY_FILE="+keys,
		"LDAP_URL="+s.ldapURL, "LDAP_BIND_DN="+s.ldapBindDN, "LDAP_BIND_PASSWORD="+ldapSecret,
		"LDAP_ALLOW_PLAINTEXT_BIND=true", "LDAP_BASE_DN="+s.demo.Suffix, "LDAP_PROFILE=openldap", "LDAP_PAGE_SIZE=100",
		"SCIM_URL="+s.scimURL, "SCIM_TOKEN="+scimToken, "SCIM_RATE=500",
		"USERSYNC_METRICS_ADDR="+addr)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 10 * time.Second
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("worker stderr:\n%s", clip(stderr.String()))
		}
	})
	return addr
}

// waitHealth polls /healthz until it answers code with a body starting with prefix.
func waitHealth(t *testing.T, base string, code int, prefix string) {
	t.Helper()
	var last string
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(base + "/healthz")
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			last = fmt.Sprintf("%d %s", resp.StatusCode, body)
			if resp.StatusCode == code && strings.HasPrefix(string(body), prefix) {
				require.Equal(t, 1, strings.Count(string(body), "\n"), "one line: %q", body)
				return
			}
		} else {
			last = err.Error()
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("/healthz never answered %d %q; last: %s", code, prefix, last)
}

type scraped map[string]*dto.MetricFamily

func scrape(t *testing.T, base string) scraped {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	require.NoError(t, err)
	return fams
}

// matching returns the series of name whose labels hold every pair of kv.
func (m scraped) matching(name string, kv ...string) []*dto.Metric {
	f, ok := m[name]
	if !ok {
		return nil
	}
	var out []*dto.Metric
	for _, x := range f.GetMetric() {
		labels := map[string]string{}
		for _, l := range x.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		ok := true
		for i := 0; i+1 < len(kv); i += 2 {
			if labels[kv[i]] != kv[i+1] {
				ok = false
			}
		}
		if ok {
			out = append(out, x)
		}
	}
	return out
}

// sum adds the counter, gauge or untyped values of the matching series.
func (m scraped) sum(name string, kv ...string) float64 {
	var v float64
	for _, x := range m.matching(name, kv...) {
		v += x.GetCounter().GetValue() + x.GetGauge().GetValue() + x.GetUntyped().GetValue()
	}
	return v
}

// count adds the observations of the matching histograms.
func (m scraped) count(name string, kv ...string) float64 {
	var v float64
	for _, x := range m.matching(name, kv...) {
		v += float64(x.GetHistogram().GetSampleCount())
	}
	return v
}
