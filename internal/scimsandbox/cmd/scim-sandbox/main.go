// Command scim-sandbox runs the in-memory SCIM 2.0 sandbox for the local stack.
//
//	SCIM_TOKEN=secret scim-sandbox --listen 127.0.0.1:8090 --seats Meeting=100,Webinar=20 \
//	    --seed-existing a@example.com,b@example.com --latency 20ms --rate 10 \
//	    --custom-schema urn:usersync:params:scim:schemas:extension:custom:2.0:User \
//	    --custom-attributes settingsTemplate,office,project,region,site
//
// The sandbox answers only requests whose Host header names it: 127.0.0.1, localhost, ::1,
// the host of --listen (unless a wildcard such as 0.0.0.0) and each name of --allow-host,
// e.g. --allow-host scim-sandbox for its service name in docker-compose.
//
// The sandbox validates every write against the schemas it serves at /Schemas: the core
// User and Group, the enterprise extension and the custom extension, whose URN and string
// attributes the last two flags set (--custom-schema none: no custom extension).
//
// The bearer token comes from the SCIM_TOKEN environment variable or --token-file, never
// from a flag value, so it does not show in process listings. Test hooks live under
// /_sandbox/ and need the same token (see the scimsandbox package documentation).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/usersync/usersync/internal/scimsandbox"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "scim-sandbox:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("scim-sandbox", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:8090", "address to listen on")
	seats := fs.String("seats", "", `seat limits per product, e.g. "Meeting=100,Webinar=20" (missing: unlimited)`)
	seed := fs.String("seed-existing", "", "comma-separated userNames of pre-existing, unlinked accounts")
	latency := fs.Duration("latency", 0, fmt.Sprintf("delay added to every SCIM request (at most %s)", scimsandbox.MaxLatency))
	rps := fs.Float64("rate", 0, "requests per second before answering 429 (0: no limit)")
	tokenFile := fs.String("token-file", "", "file holding the bearer token (default: env SCIM_TOKEN)")
	allowHosts := fs.String("allow-host", "", "comma-separated host names accepted in the Host header besides "+
		"127.0.0.1, localhost, ::1 and the host of --listen (e.g. a docker-compose service name)")
	debug := fs.Bool("debug", false, "log every request")
	customSchema := fs.String("custom-schema", scimsandbox.DefaultCustomSchema,
		fmt.Sprintf("URN of the custom User extension (%q: none)", scimsandbox.NoCustomSchema))
	customAttrs := fs.String("custom-attributes", strings.Join(scimsandbox.DefaultCustomAttributes(), ","),
		"comma-separated string attributes of the custom extension (empty: none)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	hosts, err := allowedHosts(*listen, splitList(*allowHosts))
	if err != nil {
		return err
	}
	opts := scimsandbox.Options{Latency: *latency, RateLimit: *rps, CustomSchema: *customSchema,
		CustomAttributes: append([]string{}, splitList(*customAttrs)...), AllowedHosts: hosts}
	if err := opts.Validate(); err != nil {
		return err
	}
	token, err := readToken(*tokenFile)
	if err != nil {
		return err
	}
	limits, err := parseSeats(*seats)
	if err != nil {
		return err
	}
	level := slog.LevelInfo
	if *debug {
		level = slog.LevelDebug
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	opts.Token, opts.Seats, opts.Logger = token, limits, logger
	srv := scimsandbox.New(opts)
	if *seed != "" {
		if err := srv.SeedExisting(splitList(*seed)...); err != nil {
			return err
		}
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", *listen, err)
	}
	httpSrv := newHTTPServer(srv)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = httpSrv.Shutdown(shutdownCtx)
	}()
	logger.Info("scim sandbox listening", "addr", ln.Addr().String(), "hosts", hosts, "seats", *seats,
		"customSchema", *customSchema, "customAttributes", *customAttrs)
	if err := httpSrv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// newHTTPServer bounds how long a client may take to send a request and read the answer,
// and how long an idle connection stays open. WriteTimeout leaves room for the largest
// injected latency.
func newHTTPServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      scimsandbox.MaxLatency + 30*time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
	}
}

// allowedHosts returns the Host names the sandbox accepts besides the loopback ones: the
// host of the listen address, unless it is a wildcard, and the extra names.
func allowedHosts(listen string, extra []string) ([]string, error) {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return nil, fmt.Errorf("--listen %q: %w", listen, err)
	}
	var out []string
	if ip := net.ParseIP(host); host != "" && (ip == nil || !ip.IsUnspecified()) {
		out = append(out, host)
	}
	return append(out, extra...), nil
}

func readToken(file string) (string, error) {
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("token file %s: %w", file, err)
		}
		token := strings.TrimSpace(string(b))
		if token == "" {
			return "", fmt.Errorf("token file %s is empty", file)
		}
		return token, nil
	}
	if token := os.Getenv("SCIM_TOKEN"); token != "" {
		return token, nil
	}
	return "", errors.New("no token: set SCIM_TOKEN or --token-file")
}

func parseSeats(s string) (map[string]int, error) {
	out := map[string]int{}
	for _, item := range splitList(s) {
		product, n, ok := strings.Cut(item, "=")
		count, err := strconv.Atoi(strings.TrimSpace(n))
		if !ok || strings.TrimSpace(product) == "" || err != nil || count < 0 {
			return nil, fmt.Errorf("--seats %q: want Product=count", item)
		}
		out[strings.TrimSpace(product)] = count
	}
	return out, nil
}

func splitList(s string) []string {
	var out []string
	for _, item := range strings.Split(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}
