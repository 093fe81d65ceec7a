// Package bench measures usersync on the real local stack: a Temporal dev server, PostgreSQL,
// slapd seeded with generated users, the SCIM sandbox, and the worker as its own process.
package bench

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/testsuite"

	"github.com/usersync/usersync/internal/demo"
	"github.com/usersync/usersync/internal/devstack"
	"github.com/usersync/usersync/internal/orgs"
	"github.com/usersync/usersync/internal/scimsandbox"
	"github.com/usersync/usersync/internal/store"
	"github.com/usersync/usersync/workflows"
)

const (
	token      = "bench-token"
	ldapSecret = "bench-ldap-secret"
	// CeilingNamespace holds the empty fan-out used to measure the dev server's ceiling.
	CeilingNamespace = "ceiling"
)

// Stack is one benchmark stack. Close stops everything.
type Stack struct {
	Dir      string
	DBURL    string
	HostPort string
	// MetricsAddr is the fleet worker's /metrics (host:port).
	MetricsAddr string
	Slapd       *devstack.Slapd
	Sandbox     *scimsandbox.Server
	SCIMURL     string
	Store       *store.Store
	Client      client.Client
	KeyFile     string // the secrets key file the worker reads (USERSYNC_SECRETS_KEY_FILE)
	Probe       *Probe // nil: no probe
	// FullReads turns the worker's incremental directory reads off (LDAP_INCREMENTAL=false):
	// every sync reads the whole directory.
	FullReads bool
	// ResyncsOnly measures, after the initial sync, only the unchanged resync and the 1%
	// change (no rule edit, ceilings or rate-limited sync).
	ResyncsOnly bool
	// LaggingMark adds, after the load, one entry beyond slapd's sync mark (contextCSN):
	// the state a parallel load leaves now and then, which made every later read list the
	// whole directory (Slapd.AddBeyondTheMark).
	LaggingMark bool
	worker      *exec.Cmd
	closers     []func()

	stopInProcess func() // the in-process worker's stop
}

func quiet() tlog.Logger {
	return tlog.NewStructuredLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})))
}

// Start brings up PostgreSQL, slapd and the Temporal dev server (in memory, eager
// activities on, with the ceiling namespace) under dir.
func Start(ctx context.Context, dir string, probe *Probe) (*Stack, error) {
	s := &Stack{Dir: dir, KeyFile: filepath.Join(dir, "secrets.keys"), Probe: probe}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	if _, err := orgs.AddKey(s.KeyFile); err != nil {
		return nil, err
	}
	pg := &devstack.Postgres{Dir: filepath.Join(dir, "pg"), Port: devstack.FreePort(), NoSync: true, Attached: true}
	url, err := pg.Start(ctx)
	if err != nil {
		return nil, err
	}
	s.closers = append(s.closers, func() { _ = pg.Stop() })
	s.DBURL = url
	if probe != nil && probe.PGStats {
		if err := enablePGStats(ctx, pg); err != nil {
			s.Close()
			return nil, err
		}
	}

	s.Slapd = &devstack.Slapd{Dir: filepath.Join(dir, "slapd"), Suffix: demo.Suffix,
		AdminDN: "cn=admin," + demo.Suffix, AdminPassword: ldapSecret}
	if err := s.Slapd.Start(ctx); err != nil {
		s.Close()
		return nil, err
	}
	s.closers = append(s.closers, func() { _ = s.Slapd.Stop() })

	bin, err := devstack.FindTemporal()
	if err != nil {
		s.Close()
		return nil, err
	}
	s.HostPort = net.JoinHostPort("127.0.0.1", strconv.Itoa(devstack.FreePort()))
	srv, err := testsuite.StartDevServer(ctx, testsuite.DevServerOptions{
		ExistingPath: bin, ClientOptions: &client.Options{HostPort: s.HostPort, Logger: quiet()},
		LogLevel: "error", Stdout: io.Discard, Stderr: os.Stderr,
		ExtraArgs: append([]string{"--dynamic-config-value", "system.enableActivityEagerExecution=true",
			"--namespace", CeilingNamespace}, workflows.DevServerSearchAttributeArgs()...),
	})
	if err != nil {
		s.Close()
		return nil, err
	}
	s.closers = append(s.closers, func() { _ = srv.Stop() })
	if s.Client, err = client.Dial(client.Options{HostPort: s.HostPort, Logger: quiet()}); err != nil {
		s.Close()
		return nil, err
	}
	s.closers = append(s.closers, s.Client.Close)
	if s.Store, err = store.Open(ctx, url); err != nil {
		s.Close()
		return nil, err
	}
	s.closers = append(s.closers, s.Store.Close)
	s.ResetSandbox()
	return s, nil
}

// ResetSandbox replaces the SCIM target by an empty, unthrottled sandbox.
func (s *Stack) ResetSandbox() {
	s.Sandbox = scimsandbox.New(scimsandbox.Options{Token: token})
	srv := httptest.NewServer(s.Sandbox)
	s.SCIMURL = srv.URL
	s.closers = append(s.closers, srv.Close)
}

// StartWorker (re)starts the worker process, whose environment makes orgName's settings (its
// single-organization shortcut) with the given SCIM rate (0: unthrottled).
func (s *Stack) StartWorker(ctx context.Context, workerBin, orgName string, rate float64) error {
	s.StopWorker()
	if s.Probe.inProcess() {
		return s.startInProcessWorker(ctx, orgName, rate)
	}
	return s.startWorkerProcess(ctx, workerBin, append(os.Environ(),
		"USERSYNC_ORG="+orgName, "USERSYNC_SECRETS_KEY_FILE="+s.KeyFile, "TEMPORAL_ADDRESS="+s.HostPort, "DATABASE_URL="+s.DBURL,
		"LDAP_URL="+s.Slapd.URL(), "LDAP_BIND_DN="+s.Slapd.AdminDN, "LDAP_BIND_PASSWORD="+ldapSecret, "LDAP_ALLOW_PLAINTEXT_BIND=true",
		"LDAP_BASE_DN="+demo.Suffix, "LDAP_PROFILE=openldap", "SCIM_URL="+s.SCIMURL, "SCIM_TOKEN="+token,
		"SCIM_RATE="+strconv.FormatFloat(rate, 'f', -1, 64), "LDAP_INCREMENTAL="+strconv.FormatBool(!s.FullReads),
		"USERSYNC_METRICS_ADDR=127.0.0.1:0")) // served, as in production, on a free port
}

// startWorkerProcess starts the worker with env, its output in worker.log, and checks that
// it is still running a second later (its pollers are up).
func (s *Stack) startWorkerProcess(ctx context.Context, workerBin string, env []string) error {
	cmd := exec.Command(workerBin)
	cmd.Env = env
	logf, err := os.Create(filepath.Join(s.Dir, "worker.log"))
	if err != nil {
		return err
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return err
	}
	s.worker = cmd
	time.Sleep(time.Second)
	if stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", cmd.Process.Pid)); err != nil ||
		strings.Contains(string(stat), ") Z ") {
		s.StopWorker()
		return fmt.Errorf("worker exited: see %s", logf.Name())
	}
	return ctx.Err()
}

// StopWorker stops the worker process.
func (s *Stack) StopWorker() {
	if s.stopInProcess != nil {
		s.stopInProcess()
		s.stopInProcess = nil
	}
	if s.worker != nil {
		_ = s.worker.Process.Signal(os.Interrupt)
		_ = s.worker.Wait()
		s.worker = nil
	}
}

// ResetPeakRSS starts a new peak-memory measurement of the worker.
func (s *Stack) ResetPeakRSS() {
	if s.worker != nil {
		_ = os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", s.worker.Process.Pid), []byte("5"), 0)
	}
}

// PeakRSS is the worker's peak resident memory since the last reset, in MB.
func (s *Stack) PeakRSS() float64 {
	if s.worker == nil {
		return 0
	}
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", s.worker.Process.Pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(rest), " kB"))
			return float64(kb) / 1024
		}
	}
	return 0
}

// Close stops everything, newest first.
func (s *Stack) Close() {
	s.StopWorker()
	for i := len(s.closers) - 1; i >= 0; i-- {
		s.closers[i]()
	}
}
