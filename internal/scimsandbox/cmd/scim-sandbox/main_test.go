package main

import (
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/usersync/usersync/internal/scimsandbox"
)

func TestParseSeats(t *testing.T) {
	got, err := parseSeats("Meeting=100, Webinar=20")
	if err != nil || !reflect.DeepEqual(got, map[string]int{"Meeting": 100, "Webinar": 20}) {
		t.Fatalf("parseSeats = %v, %v", got, err)
	}
	for _, bad := range []string{"Meeting", "Meeting=x", "=3", "Meeting=-1"} {
		if _, err := parseSeats(bad); err == nil {
			t.Errorf("parseSeats(%q) accepted", bad)
		}
	}
}

func TestTokenComesFromFileOrEnvironment(t *testing.T) {
	t.Setenv("SCIM_TOKEN", "")
	if _, err := readToken(""); err == nil {
		t.Fatal("started without a token")
	}
	t.Setenv("SCIM_TOKEN", "from-env")
	if tok, err := readToken(""); err != nil || tok != "from-env" {
		t.Fatalf("env token = %q, %v", tok, err)
	}
	file := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(file, []byte("from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if tok, err := readToken(file); err != nil || tok != "from-file" {
		t.Fatalf("file token = %q, %v", tok, err)
	}
}

func TestCustomSchemaFlagsAreValidatedBeforeStarting(t *testing.T) {
	for _, args := range [][]string{
		{"--custom-schema", "not-a-urn"},
		{"--custom-attributes", "office,Office"},
		{"--custom-attributes", "bad name"},
	} {
		if err := run(args); err == nil || !strings.Contains(err.Error(), "custom") {
			t.Errorf("run(%q) = %v, want a custom schema error", args, err)
		}
	}
}

func TestHTTPServerTimeouts(t *testing.T) {
	srv := newHTTPServer(http.NotFoundHandler())
	if srv.ReadHeaderTimeout <= 0 || srv.ReadTimeout <= 0 || srv.WriteTimeout <= 0 || srv.IdleTimeout <= 0 {
		t.Fatalf("timeouts: header %s, read %s, write %s, idle %s", srv.ReadHeaderTimeout, srv.ReadTimeout,
			srv.WriteTimeout, srv.IdleTimeout)
	}
	if srv.WriteTimeout <= scimsandbox.MaxLatency {
		t.Fatalf("write timeout %s leaves no room for the latency of up to %s", srv.WriteTimeout, scimsandbox.MaxLatency)
	}
}

func TestAllowedHostsAreTheListenHostAndTheFlag(t *testing.T) {
	for _, c := range []struct {
		listen string
		extra  []string
		want   []string
	}{
		{"127.0.0.1:8090", nil, []string{"127.0.0.1"}},
		{"sandbox.internal:8090", []string{"scim-sandbox"}, []string{"sandbox.internal", "scim-sandbox"}},
		{"[fd00::1]:8090", nil, []string{"fd00::1"}},
		{"0.0.0.0:8090", []string{"scim-sandbox"}, []string{"scim-sandbox"}}, // a wildcard is no name
		{"[::]:8090", nil, nil},
		{":8090", nil, nil},
	} {
		got, err := allowedHosts(c.listen, c.extra)
		if err != nil || !reflect.DeepEqual(got, c.want) {
			t.Errorf("allowedHosts(%q, %q) = %q, %v; want %q", c.listen, c.extra, got, err, c.want)
		}
	}
	if _, err := allowedHosts("8090", nil); err == nil {
		t.Error("listen address without port accepted")
	}
	for _, args := range [][]string{
		{"--allow-host", "http://scim-sandbox/"},
		{"--latency", "31s"},
	} {
		t.Setenv("SCIM_TOKEN", "t")
		if err := run(args); err == nil {
			t.Errorf("run(%q) started", args)
		}
	}
}
