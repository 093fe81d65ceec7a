package devstack

import (
	"context"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
)

func requireTemporal(t *testing.T) {
	t.Helper()
	if _, err := FindTemporal(); err != nil {
		SkipUnlessRequired(t, "temporal not installed: %v", err)
	}
}

func TestTestTemporalServesTheDefaultNamespace(t *testing.T) {
	requireTemporal(t)
	hostPort := TestTemporal(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := client.NewNamespaceClient(client.Options{HostPort: hostPort, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Describe(ctx, "default"); err != nil {
		t.Fatalf("namespace default on %s: %v", hostPort, err)
	}
}

func TestTemporalDemoServerPersistsAndStops(t *testing.T) {
	requireTemporal(t)
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	tp := &Temporal{Dir: dir, Port: FreePort(), UIPort: FreePort(), Persistent: true}
	t.Cleanup(func() { _ = tp.Stop() })
	if err := tp.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if !tp.Running() {
		t.Fatal("Running() = false after Start")
	}
	pid, _ := tp.daemon("").PID()

	// `devstack up` twice: the second reuses the server.
	again := &Temporal{Dir: dir, Port: tp.Port, UIPort: tp.UIPort, Persistent: true}
	if err := again.Start(ctx); err != nil {
		t.Fatalf("second Start: %v", err)
	}
	if pid2, _ := again.daemon("").PID(); pid2 != pid {
		t.Fatalf("second Start started pid %d, want reuse of %d", pid2, pid)
	}
	if !PortOpen(tp.UIURL()[len("http://"):]) {
		t.Fatalf("web UI not listening on %s", tp.UIURL())
	}

	if err := tp.Stop(); err != nil {
		t.Fatal(err)
	}
	if tp.Running() || PortOpen(tp.HostPort()) {
		t.Fatal("server still up after Stop")
	}
	if !fileExists(dir + "/temporal.db") {
		t.Fatal("persistent server left no temporal.db")
	}
}
