package metrics

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/usersync/usersync/internal/store"
)

// Check is one dependency /healthz asks; its error is the one-line reason of a 503.
type Check struct {
	Name string
	Ping func(ctx context.Context) error
}

// healthTimeout bounds each check: a hung dependency is unhealthy, not a hung probe.
const healthTimeout = 3 * time.Second

// Handler serves /metrics from reg and /healthz from checks.
func Handler(reg prometheus.Gatherer, checks ...Check) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		for _, c := range checks {
			ctx, cancel := context.WithTimeout(r.Context(), healthTimeout)
			err := c.Ping(ctx)
			cancel()
			if err != nil {
				w.WriteHeader(http.StatusServiceUnavailable)
				fmt.Fprintf(w, "%s: %s\n", c.Name, oneLine(err))
				return
			}
		}
		fmt.Fprintln(w, "ok")
	})
	return mux
}

func oneLine(err error) string {
	s := []rune(err.Error())
	for i, r := range s {
		if r == '\n' || r == '\r' {
			s[i] = ' '
		}
	}
	return string(s)
}

// Serve listens on addr and serves h until ctx ends. It returns once listening (a port in
// use is an error at start, not a log line later), with the bound address.
func Serve(ctx context.Context, addr string, h http.Handler, logger *slog.Logger) (net.Addr, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics endpoint %s: %w", addr, err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error("metrics endpoint stopped", "error", err)
		}
	}()
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
	}()
	return ln.Addr(), nil
}

// Database reports the seats and last completed run of every organization, read from
// PostgreSQL at each scrape: every worker reports the database's counts (aggregate with
// max, not sum), and they survive a worker's restart.
type Database struct {
	Store *store.Store
}

var (
	seatsUsed    = prometheus.NewDesc("usersync_seats_used", "Seats in use, by organization and product.", []string{"org", "product"}, nil)
	seatsFree    = prometheus.NewDesc("usersync_seats_free", "Seats bought and not in use, by organization and product.", []string{"org", "product"}, nil)
	lastSuccess  = prometheus.NewDesc("usersync_last_success_timestamp_seconds", "When the organization's last run that completed finished (Unix seconds).", []string{"org"}, nil)
	databaseDown = prometheus.NewDesc("usersync_database_gauges_error", "1 when the last scrape could not read seats and runs from PostgreSQL.", nil, nil)
)

// Describe implements prometheus.Collector.
func (d Database) Describe(ch chan<- *prometheus.Desc) {
	ch <- seatsUsed
	ch <- seatsFree
	ch <- lastSuccess
	ch <- databaseDown
}

// Collect implements prometheus.Collector.
func (d Database) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), healthTimeout)
	defer cancel()
	ls, err := d.Store.AllLicenses(ctx)
	var last map[string]time.Time
	if err == nil {
		last, err = d.Store.LastSucceeded(ctx)
	}
	down := 0.0
	if err != nil {
		down = 1
	}
	ch <- prometheus.MustNewConstMetric(databaseDown, prometheus.GaugeValue, down)
	if err != nil {
		return
	}
	for _, l := range ls {
		ch <- prometheus.MustNewConstMetric(seatsUsed, prometheus.GaugeValue, float64(l.Used), l.Org, l.Product)
		ch <- prometheus.MustNewConstMetric(seatsFree, prometheus.GaugeValue, float64(max(l.Seats-l.Used, 0)), l.Org, l.Product)
	}
	for org, at := range last {
		ch <- prometheus.MustNewConstMetric(lastSuccess, prometheus.GaugeValue, float64(at.UnixNano())/1e9, org)
	}
}
