package bench

import (
	"bufio"
	"context"
	"fmt"
	"maps"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
)

// cost measures what the stack costs the machine over window after warmUp: CPU seconds per
// process and what drives them, from the worker's metrics (activity attempts per request the
// big organization's target received, workflow tasks and heartbeats per user provisioned)
// and, with -pgstats, the SQL statements.
func (f *fleet) cost(ctx context.Context, scenario string, warmUp, window time.Duration) (Row, error) {
	select {
	case <-ctx.Done():
		return Row{}, ctx.Err()
	case <-time.After(warmUp):
	}
	pg := f.s.Probe != nil && f.s.Probe.PGStats
	if pg {
		if _, err := f.s.Store.Pool().Exec(ctx, "SELECT pg_stat_statements_reset()"); err != nil {
			return Row{}, err
		}
	}
	m0, err := scrape(ctx, f.s.MetricsAddr)
	if err != nil {
		return Row{}, err
	}
	cpu0, st0, t0 := processCPU(), f.big.sandbox.Stats(), time.Now()
	select {
	case <-ctx.Done():
		return Row{}, ctx.Err()
	case <-time.After(window):
	}
	cpu1, st1, span := processCPU(), f.big.sandbox.Stats(), time.Since(t0)
	m1, err := scrape(ctx, f.s.MetricsAddr)
	if err != nil {
		return Row{}, err
	}
	d := func(name string, labels ...string) float64 { return m1.sum(name, labels...) - m0.sum(name, labels...) }

	var total float64
	var procs []string
	for _, k := range slices.Sorted(maps.Keys(cpu1)) {
		c := cpu1[k] - cpu0[k]
		total += c
		if c >= 0.05 {
			procs = append(procs, fmt.Sprintf("%s %.1f", k, c))
		}
	}
	share := 100 * total / span.Seconds() / float64(runtime.NumCPU())
	requests := st1.Requests - st0.Requests
	// A user's write is a local activity first, the activity after a failed local attempt.
	users := d("temporal_request", `operation="RespondActivityTaskCompleted"`, `activity_type="ProvisionUser"`) +
		d("temporal_local_activity_succeed_endtoend_latency_count", `activity_type="ProvisionUser"`)
	attempts := d("temporal_activity_execution_latency_count", `activity_type="ProvisionUser"`) +
		d("temporal_local_activity_execution_latency_count", `activity_type="ProvisionUser"`)
	paced := d("temporal_activity_execution_failed", `activity_type="ProvisionUser"`) +
		d("temporal_local_activity_execution_failed", `activity_type="ProvisionUser"`)
	wfTasks := d("temporal_workflow_task_execution_latency_count")
	heartbeats := d("temporal_request", `operation="RecordActivityTaskHeartbeat"`)
	per := func(n float64, of float64) string {
		if of == 0 {
			return "-"
		}
		return fmt.Sprintf("%.2f", n/of)
	}
	note := fmt.Sprintf("CPU %.1f s in %s = %.1f%% of %d cores (%s); %d requests (%.2f/s), %d answered 429; "+
		"ProvisionUser attempts (local or not) %.0f (%s per request, %.0f failed or sent away); workflow tasks %.0f, heartbeats %.0f, "+
		"users provisioned %.0f (%s workflow tasks, %s heartbeats per user)",
		total, span.Round(time.Second), share, runtime.NumCPU(), strings.Join(procs, ", "), requests,
		float64(requests)/span.Seconds(), st1.Throttled-st0.Throttled, attempts, per(attempts, float64(requests)), paced,
		wfTasks, heartbeats, users, per(wfTasks, users), per(heartbeats, users))
	if f.log != nil {
		f.log("  worker metrics over the window, largest changes:\n%s", m1.changes(m0, 40))
		if pg {
			reportStatements(ctx, f.s.Store, os.Stderr, max(1, requests))
		}
	}
	return Row{N: f.o.BigUsers, Scenario: scenario, Wall: span, Requests: requests, ReqPerS: float64(requests) / span.Seconds(), Note: note}, nil
}

// metricValues are the samples of one /metrics scrape, by series ("name{labels}").
type metricValues map[string]float64

// scrape reads the worker's /metrics (Prometheus text format).
func scrape(ctx context.Context, addr string) (metricValues, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("worker metrics: %w", err)
	}
	defer resp.Body.Close()
	out := metricValues{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
			out[line[:i]] = v
		}
	}
	return out, sc.Err()
}

// sum is the sum of the series of metric name whose labels contain every one of labels.
func (m metricValues) sum(name string, labels ...string) float64 {
	var t float64
	for k, v := range m {
		n, rest, _ := strings.Cut(k, "{")
		if n != name {
			continue
		}
		ok := true
		for _, l := range labels {
			ok = ok && strings.Contains(rest, l)
		}
		if ok {
			t += v
		}
	}
	return t
}

// changes lists the counters (and histogram counts) that changed most since before.
func (m metricValues) changes(before metricValues, limit int) string {
	type change struct {
		k string
		d float64
	}
	var cs []change
	for k, v := range m {
		n, _, _ := strings.Cut(k, "{")
		if strings.HasSuffix(n, "_bucket") || strings.HasSuffix(n, "_sum") {
			continue
		}
		if d := v - before[k]; d != 0 {
			cs = append(cs, change{k, d})
		}
	}
	slices.SortFunc(cs, func(a, b change) int {
		switch {
		case a.d > b.d:
			return -1
		case a.d < b.d:
			return 1
		}
		return strings.Compare(a.k, b.k)
	})
	var b strings.Builder
	for i, c := range cs {
		if i == limit {
			break
		}
		fmt.Fprintf(&b, "    %10.0f  %s\n", c.d, c.k)
	}
	return b.String()
}
