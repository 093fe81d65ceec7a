package devstack

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func sleepDaemon(t *testing.T, dir string) *Daemon {
	t.Helper()
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Fatalf("sleep: %v", err)
	}
	return &Daemon{Name: "sleeper", Path: sleep, Args: []string{"300"},
		LogFile: filepath.Join(dir, "sleeper.log"), PIDFile: filepath.Join(dir, "sleeper.pid")}
}

func TestDaemonStartIsFoundByPIDFileAndStops(t *testing.T) {
	dir := t.TempDir()
	d := sleepDaemon(t, dir)
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Stop(time.Second) })

	// A later invocation knows the daemon only by its pid file.
	later := sleepDaemon(t, dir)
	pid, ok := later.PID()
	if !ok || pid <= 0 {
		t.Fatalf("PID() = %d, %v after Start; want the running sleeper", pid, ok)
	}
	if err := later.Start(); err == nil || !strings.Contains(err.Error(), "already running") {
		t.Fatalf("second Start: err = %v, want 'already running'", err)
	}
	if err := later.Stop(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	if later.Running() || pidAlive(pid) {
		t.Fatalf("pid %d still alive after Stop", pid)
	}
	if _, err := os.Stat(d.PIDFile); !os.IsNotExist(err) {
		t.Fatalf("pid file still there after Stop: %v", err)
	}
	if err := later.Stop(time.Second); err != nil {
		t.Fatalf("Stop of a stopped daemon: %v", err)
	}
}

func TestDaemonThatExitsDuringStartupReportsItsLog(t *testing.T) {
	dir := t.TempDir()
	d := &Daemon{Name: "crasher", Path: "/bin/sh", Args: []string{"-c", "echo cannot bind port 1234; exit 3"},
		LogFile: filepath.Join(dir, "crasher.log"), PIDFile: filepath.Join(dir, "crasher.pid")}
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := d.WaitReady(ctx, func(context.Context) error { return os.ErrNotExist })
	if err == nil {
		t.Fatal("WaitReady succeeded for a process that exited")
	}
	if !strings.Contains(err.Error(), "exited during startup") || !strings.Contains(err.Error(), "cannot bind port 1234") {
		t.Fatalf("error = %q, want it to say the process exited and show its log", err)
	}
	if ctx.Err() != nil {
		t.Fatal("WaitReady waited for the deadline instead of noticing the exit")
	}
}

func TestDaemonStopsAStubbornProcessWithSIGKILL(t *testing.T) {
	dir := t.TempDir()
	d := &Daemon{Name: "stubborn", Path: "/bin/sh", Args: []string{"-c", "trap '' TERM; echo ready; while :; do sleep 1; done"},
		LogFile: filepath.Join(dir, "stubborn.log"), PIDFile: filepath.Join(dir, "stubborn.pid")}
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// Wait until the trap is installed, or SIGTERM would end it normally.
	if err := d.WaitReady(ctx, func(context.Context) error {
		if b, _ := os.ReadFile(d.LogFile); strings.Contains(string(b), "ready") {
			return nil
		}
		return os.ErrNotExist
	}); err != nil {
		t.Fatal(err)
	}
	pid, _ := d.PID()
	if err := d.Stop(200 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if pidAlive(pid) {
		t.Fatalf("pid %d ignored SIGTERM and survived Stop", pid)
	}
}

// An attached daemon must not outlive its parent, even when the parent
// exits without stopping it (a crashed or timed-out test binary).
func TestAttachedDaemonDiesWithItsParent(t *testing.T) {
	if os.Getenv("DEVSTACK_ATTACHED_PARENT") != "" {
		return // only in the helper process below
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestAttachedDaemonHelper$")
	cmd.Env = append(os.Environ(), "DEVSTACK_ATTACHED_PARENT="+dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("helper: %v\n%s", err, out)
	}
	pid, _ := PIDFileAlive(filepath.Join(dir, "sleeper.pid"))
	if pid == 0 {
		t.Fatal("helper wrote no pid file")
	}
	deadline := time.Now().Add(10 * time.Second)
	for pidAlive(pid) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if pidAlive(pid) {
		_ = syscall.Kill(pid, syscall.SIGKILL)
		t.Fatalf("attached child %d outlived its parent", pid)
	}
}

func TestAttachedDaemonHelper(t *testing.T) {
	dir := os.Getenv("DEVSTACK_ATTACHED_PARENT")
	if dir == "" {
		t.Skip("helper process for TestAttachedDaemonDiesWithItsParent")
	}
	d := sleepDaemon(t, dir)
	d.Attached = true
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	// Exit without Stop.
}

func TestWaitForPortSeesAListener(t *testing.T) {
	port := FreePort()
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	if PortOpen(addr) {
		t.Fatalf("FreePort returned %d, which is in use", port)
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := WaitForPort(ctx, addr); err != nil {
		t.Fatalf("WaitForPort(%s) with a listener: %v", addr, err)
	}
	l.Close()
	short, cancel2 := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel2()
	if err := WaitForPort(short, addr); err == nil {
		t.Fatalf("WaitForPort(%s) succeeded after the listener closed", addr)
	}
}
