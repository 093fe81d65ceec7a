package devstack_test

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/usersync/usersync/internal/devstack"
	"github.com/usersync/usersync/internal/devstack/devstacktest"
)

func requireTemporal(t *testing.T) {
	t.Helper()
	if _, err := devstack.FindTemporal(); err != nil {
		devstacktest.SkipUnlessRequired(t, "temporal not installed: %v", err)
	}
}

func TestTemporalDemoServerPersistsAndStops(t *testing.T) {
	requireTemporal(t)
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	tp := &devstack.Temporal{Dir: dir, Port: devstack.FreePort(), UIPort: devstack.FreePort(), Persistent: true}
	t.Cleanup(func() { _ = tp.Stop() })
	if err := tp.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if !tp.Running() {
		t.Fatal("Running() = false after Start")
	}
	pid, _ := tp.DaemonPID()

	// `devstack up` twice: the second reuses the server.
	again := &devstack.Temporal{Dir: dir, Port: tp.Port, UIPort: tp.UIPort, Persistent: true}
	if err := again.Start(ctx); err != nil {
		t.Fatalf("second Start: %v", err)
	}
	if pid2, _ := again.DaemonPID(); pid2 != pid {
		t.Fatalf("second Start started pid %d, want reuse of %d", pid2, pid)
	}
	if !devstack.PortOpen(tp.UIURL()[len("http://"):]) {
		t.Fatalf("web UI not listening on %s", tp.UIURL())
	}

	if err := tp.Stop(); err != nil {
		t.Fatal(err)
	}
	if tp.Running() || devstack.PortOpen(tp.HostPort()) {
		t.Fatal("server still up after Stop")
	}
	if _, err := os.Stat(dir + "/temporal.db"); err != nil {
		t.Fatal("persistent server left no temporal.db")
	}
}

// `devstack up --ui-codec-endpoint URL` points the web UI at the codec server; headless, there
// is no UI to point.
func TestTemporalPointsTheUIAtTheCodecServer(t *testing.T) {
	tp := &devstack.Temporal{Dir: t.TempDir(), Port: 7233, UIPort: 8233, CodecEndpoint: "http://127.0.0.1:8089"}
	if got := strings.Join(tp.DaemonArgs(), " "); !strings.Contains(got, "--ui-codec-endpoint http://127.0.0.1:8089") {
		t.Fatalf("dev server args %q do not point the UI at the codec server", got)
	}
	tp.Headless = true
	if got := strings.Join(tp.DaemonArgs(), " "); strings.Contains(got, "--ui-codec-endpoint") {
		t.Fatalf("headless dev server args %q name a codec endpoint", got)
	}
}
