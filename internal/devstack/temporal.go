package devstack

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	"go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"

	"github.com/usersync/usersync/workflows"
)

// TemporalCLIVersion is the Temporal CLI release the dev stack is tested with.
const TemporalCLIVersion = "v1.5.1"

// TemporalInstallHint says how to get the temporal CLI (there is no
// prebuilt download in our environments).
const TemporalInstallHint = "go install github.com/temporalio/cli/cmd/temporal@" + TemporalCLIVersion +
	" (a cold build takes about 14 minutes; scripts/setup.sh does it)"

// FindTemporal returns the path of the temporal CLI: on PATH, else in
// $(go env GOPATH)/bin.
func FindTemporal() (string, error) {
	if p, err := exec.LookPath("temporal"); err == nil {
		return p, nil
	}
	for _, dir := range goBinDirs() {
		if p := filepath.Join(dir, "temporal"); isExecutable(p) {
			return p, nil
		}
	}
	return "", fmt.Errorf("temporal CLI not found on PATH or in GOPATH/bin: install it with %s", TemporalInstallHint)
}

func goBinDirs() []string {
	var dirs []string
	if gobin := os.Getenv("GOBIN"); gobin != "" {
		dirs = append(dirs, gobin)
	}
	if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
		for _, p := range filepath.SplitList(string(trimNL(out))) {
			dirs = append(dirs, filepath.Join(p, "bin"))
		}
	}
	if home, err := os.UserHomeDir(); err == nil {
		dirs = append(dirs, filepath.Join(home, "go", "bin")) // go's default GOPATH
	}
	return dirs
}

func trimNL(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}

// eagerActivities lets a worker that polls the workflow's task queue run
// activities without a round trip through matching: faster syncs.
var eagerActivities = []string{"--dynamic-config-value", "system.enableActivityEagerExecution=true"}

// EagerActivityArgs are the dev server's arguments that enable eager activities (as
// every server devstack starts has them).
func EagerActivityArgs() []string { return append([]string(nil), eagerActivities...) }

// Temporal is a Temporal dev server (temporal server start-dev) running in
// the background, for the demo stack.
type Temporal struct {
	Dir    string // pid file, log and (when Persistent) the SQLite database
	Port   int    // frontend gRPC
	UIPort int    // web UI
	// Persistent keeps workflows in Dir/temporal.db across restarts;
	// otherwise they live in memory.
	Persistent bool
	// DBFile, when set, is the SQLite database file instead of Dir/temporal.db (it implies
	// Persistent): a server stopped and started again on it finds its workflows.
	DBFile string
	// HTTPPort is the HTTP API's port; 0 leaves it to the server (frontend port + 1000,
	// which another server may hold: tests pick a free one).
	HTTPPort int
	// Headless starts no web UI (UIPort is then not used).
	Headless bool
	// CodecEndpoint is the codec server the web UI decodes payloads with (starter
	// codec-server's URL); "" shows them as stored.
	CodecEndpoint string
	// Attached stops the server when this process exits (see Daemon): for tests.
	Attached bool
}

// dbFile is the SQLite database of a persistent server ("" when in memory).
func (t *Temporal) dbFile() string {
	switch {
	case t.DBFile != "":
		return t.DBFile
	case t.Persistent:
		return filepath.Join(t.Dir, "temporal.db")
	}
	return ""
}

func (t *Temporal) daemon(bin string) *Daemon {
	args := []string{"server", "start-dev",
		"--ip", "127.0.0.1",
		"--port", strconv.Itoa(t.Port),
		"--namespace", "default",
		"--log-level", "warn",
	}
	if t.Headless {
		args = append(args, "--headless")
	} else {
		args = append(args, "--ui-port", strconv.Itoa(t.UIPort))
		if t.CodecEndpoint != "" {
			args = append(args, UICodecArgs(t.CodecEndpoint)...)
		}
	}
	if t.HTTPPort != 0 {
		args = append(args, "--http-port", strconv.Itoa(t.HTTPPort))
	}
	args = append(args, eagerActivities...)
	// The search attributes the workflows upsert: their tasks fail until the server knows them.
	args = append(args, workflows.DevServerSearchAttributeArgs()...)
	if db := t.dbFile(); db != "" {
		args = append(args, "--db-filename", db,
			"--sqlite-pragma", "journal_mode=wal", "--sqlite-pragma", "synchronous=normal")
	}
	return &Daemon{
		Name: "temporal", Path: bin, Args: args,
		LogFile:  filepath.Join(t.Dir, "temporal.log"),
		PIDFile:  filepath.Join(t.Dir, "temporal.pid"),
		Attached: t.Attached,
	}
}

// UICodecArgs are the dev server's arguments that point its web UI at the codec server at
// endpoint. The flag sets the endpoint only: the UI sends cookies to it (which starter
// codec-server's sign-in sets) once "Include cross-origin credentials" is on in its codec
// settings; a self-hosted UI has TEMPORAL_CODEC_INCLUDE_CREDENTIALS for that.
func UICodecArgs(endpoint string) []string { return []string{"--ui-codec-endpoint", endpoint} }

// HostPort is the frontend address clients and workers dial.
func (t *Temporal) HostPort() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(t.Port)) }

// UIURL is the web UI's address.
func (t *Temporal) UIURL() string { return fmt.Sprintf("http://127.0.0.1:%d", t.UIPort) }

// Running reports whether the server of Dir runs.
func (t *Temporal) Running() bool { return t.daemon("").Running() }

// Start starts the server detached unless it already runs, and waits until
// its frontend answers health checks.
func (t *Temporal) Start(ctx context.Context) error {
	if t.Running() {
		return WaitTemporal(ctx, t.HostPort())
	}
	if PortOpen(t.HostPort()) {
		return fmt.Errorf("temporal: port %d is taken by another process", t.Port)
	}
	bin, err := FindTemporal()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(t.Dir, 0o755); err != nil {
		return fmt.Errorf("temporal dir %s: %w", t.Dir, err)
	}
	d := t.daemon(bin)
	if err := d.Start(); err != nil {
		return err
	}
	if err := d.WaitReady(ctx, func(ctx context.Context) error { return checkTemporal(ctx, t.HostPort()) }); err != nil {
		_ = d.Stop(10 * time.Second)
		return err
	}
	return nil
}

// Stop stops the server (it persists its state first when Persistent or DBFile is set).
func (t *Temporal) Stop() error { return t.daemon("").Stop(30 * time.Second) }

// WaitTemporal blocks until the frontend at hostPort answers a health check.
func WaitTemporal(ctx context.Context, hostPort string) error {
	return poll(ctx, func(ctx context.Context) error { return checkTemporal(ctx, hostPort) })
}

func checkTemporal(ctx context.Context, hostPort string) error {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	c, err := client.DialContext(ctx, client.Options{HostPort: hostPort, Logger: quietLogger()})
	if err != nil {
		return err
	}
	defer c.Close()
	_, err = c.CheckHealth(ctx, &client.CheckHealthRequest{})
	return err
}

// quietLogger drops the SDK's informational lines (dial attempts).
func quietLogger() tlog.Logger {
	return tlog.NewStructuredLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))
}

func fileExists(path string) bool { _, err := os.Stat(path); return err == nil }
