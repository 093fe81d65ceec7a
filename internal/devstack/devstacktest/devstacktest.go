// Package devstacktest gives tests throw-away servers from package devstack: a Temporal dev
// server, a PostgreSQL database, SCIMMY and a Samba AD DC, each stopped or dropped when the
// test (or the test binary) ends. A server whose binary is missing skips the test, or fails
// it under USERSYNC_REQUIRE_INTEGRATION=1.
package devstacktest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/testsuite"

	"github.com/usersync/usersync/internal/devstack"
	"github.com/usersync/usersync/internal/store"
	"github.com/usersync/usersync/workflows"
)

// RequireIntegrationEnv, set to 1, turns "binary missing" skips into
// failures (CI sets it, so integration tests cannot silently not run).
const RequireIntegrationEnv = "USERSYNC_REQUIRE_INTEGRATION"

// SkipUnlessRequired skips the test because something it needs is not
// installed, or fails it when USERSYNC_REQUIRE_INTEGRATION=1.
func SkipUnlessRequired(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv(RequireIntegrationEnv) == "1" {
		t.Fatalf("%s (%s=1: integration tests must run)", msg, RequireIntegrationEnv)
	}
	t.Skip(msg)
}

// Temporal starts an in-memory Temporal dev server for this test, stopped
// when the test ends, and returns its frontend address.
func Temporal(t testing.TB) string {
	t.Helper()
	if _, err := devstack.FindTemporal(); err != nil {
		SkipUnlessRequired(t, "temporal not installed: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv, hostPort, _, err := startTemporal(ctx, false, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Stop() })
	return hostPort
}

// TemporalWithUI is Temporal with the dev server's web UI on a free port: it returns the
// frontend address and the UI's URL.
func TemporalWithUI(t testing.TB) (hostPort, uiURL string) {
	t.Helper()
	return TemporalWithUICodec(t, "")
}

// TemporalWithUICodec is TemporalWithUI whose web UI decodes payloads with the codec server at
// codecEndpoint ("" none).
func TemporalWithUICodec(t testing.TB, codecEndpoint string) (hostPort, uiURL string) {
	t.Helper()
	if _, err := devstack.FindTemporal(); err != nil {
		SkipUnlessRequired(t, "temporal not installed: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv, hostPort, uiURL, err := startTemporal(ctx, true, codecEndpoint)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Stop() })
	return hostPort, uiURL
}

// SCIMMY starts the SCIMMY server (scripts/scimmy) configured by s for
// this test, stopped when the test ends, and returns its SCIM base URL. Dir
// defaults to t.TempDir() and Port to a free port; Token must be set, the
// caller needs it. It skips when node or the server's node_modules is
// missing (fails under USERSYNC_REQUIRE_INTEGRATION=1).
func SCIMMY(t testing.TB, s devstack.SCIMMY) string {
	t.Helper()
	if _, err := devstack.FindNode(); err != nil {
		SkipUnlessRequired(t, "scimmy: %v", err)
	}
	if _, err := devstack.FindSCIMMYServer(); err != nil {
		SkipUnlessRequired(t, "%v", err)
	}
	if s.Dir == "" {
		s.Dir = t.TempDir()
	}
	if s.Token == "" {
		t.Fatal("devstacktest.SCIMMY: set Token, the caller needs it to talk to the server")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Errorf("stop scimmy: %v", err)
		}
	})
	return s.URL()
}

// Database returns the URL of a new, empty database for this test,
// dropped when the test ends. The server is the one of DATABASE_URL when set
// (its user needs CREATEDB); otherwise one PostgreSQL per test binary,
// started on first use in a temporary directory and stopped when the test
// binary exits.
func Database(t testing.TB) string {
	t.Helper()
	admin, err := testServerURL()
	if err != nil {
		if strings.Contains(err.Error(), "not found") {
			SkipUnlessRequired(t, "postgres not installed: %v", err)
		}
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	name := "usersync_test_" + randomHex(6)
	if err := devstack.CreateDatabase(ctx, admin, name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, admin)
		if err != nil {
			t.Errorf("drop test database %s: %v", name, err)
			return
		}
		defer conn.Close(ctx)
		// WITH (FORCE): a test that leaked a connection must not block the drop.
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			t.Errorf("drop test database %s: %v", name, err)
		}
	})
	u, err := url.Parse(admin)
	if err != nil {
		t.Fatalf("database URL: %v", err) // the URL itself may hold a password: not printed
	}
	u.Path = "/" + name
	return u.String()
}

var testServer struct {
	once sync.Once
	url  string // of a database to run CREATE DATABASE from
	err  error
}

func testServerURL() (string, error) {
	testServer.once.Do(func() {
		if u := os.Getenv("DATABASE_URL"); u != "" {
			testServer.url = u
			return
		}
		if _, err := devstack.FindPostgresBinary("postgres"); err != nil {
			testServer.err = err
			return
		}
		removeStaleTestDirs()
		// Under /tmp, not t.TempDir(): the postgres user (we may be root)
		// must be able to reach it, and it outlives the first test.
		dir, err := os.MkdirTemp("", "usersync-testpg-")
		if err != nil {
			testServer.err = err
			return
		}
		pg := &devstack.Postgres{Dir: dir, Port: devstack.FreePort(), NoSync: true, Attached: true}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if _, err := pg.Start(ctx); err != nil {
			testServer.err = fmt.Errorf("test postgres: %w", err)
			return
		}
		testServer.url = pg.AdminURL()
	})
	return testServer.url, testServer.err
}

// removeStaleTestDirs deletes the clusters of earlier test binaries whose
// server is gone (the kernel stopped it, nobody removed its directory).
func removeStaleTestDirs() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), "usersync-testpg-*"))
	for _, d := range dirs {
		if _, alive := devstack.PIDFileAlive(filepath.Join(d, "data", "postmaster.pid")); alive {
			continue
		}
		// Our pid file is written as the server starts: if its process is
		// gone, so is the test binary that owned it.
		started := false
		if _, err := os.Stat(filepath.Join(d, "postgres.pid")); err == nil {
			started = true
		}
		_, serverAlive := devstack.PIDFileAlive(filepath.Join(d, "postgres.pid"))
		st, err := os.Stat(d)
		old := err == nil && time.Since(st.ModTime()) > 10*time.Minute // else initdb may still run
		if (started && !serverAlive) || (!started && old) {
			_ = os.RemoveAll(d)
		}
	}
}

var testSamba struct {
	once sync.Once
	mu   sync.Mutex
	dc   *devstack.SambaDC
	err  error
}

// SambaDC returns the Samba AD DC of this test binary, provisioned and started on
// first use (a minute or so; waiting first while another test binary's DC runs) and
// stopped by StopSambaDC or when the binary exits. It skips when samba is not
// installed or we are not root (fails under USERSYNC_REQUIRE_INTEGRATION=1).
// Realm CORP.EXAMPLE.TEST, domain CORP; the Administrator's password is in the result.
func SambaDC(t testing.TB) *devstack.SambaDC {
	t.Helper()
	if err := devstack.SambaAvailable(); err != nil {
		SkipUnlessRequired(t, "%v", err)
	}
	testSamba.once.Do(func() {
		removeStaleSambaDirs()
		dir, err := os.MkdirTemp("", "usersync-samba-")
		if err != nil {
			testSamba.err = err
			return
		}
		dc := &devstack.SambaDC{Dir: dir, Realm: "CORP.EXAMPLE.TEST", Domain: "CORP",
			AdminPassword: "Adm1n-" + randomHex(8) + "-Pw!"}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
		defer cancel()
		if err := dc.Start(ctx); err != nil {
			testSamba.err = err
			_ = os.RemoveAll(dir)
			return
		}
		testSamba.mu.Lock()
		testSamba.dc = dc
		testSamba.mu.Unlock()
	})
	if testSamba.err != nil {
		if errors.Is(testSamba.err, devstack.ErrSambaUnavailable) {
			SkipUnlessRequired(t, "%v", testSamba.err)
		}
		t.Fatalf("test samba DC: %v", testSamba.err)
	}
	testSamba.mu.Lock()
	defer testSamba.mu.Unlock()
	if testSamba.dc == nil {
		t.Fatal("test samba DC: stopped already (StopSambaDC)")
	}
	return testSamba.dc
}

// StopSambaDC stops the DC of SambaDC, if it runs, and deletes its directory. A
// TestMain calls it after m.Run, so that the next test binary gets the ports sooner.
func StopSambaDC() {
	testSamba.mu.Lock()
	dc := testSamba.dc
	testSamba.dc = nil
	testSamba.mu.Unlock()
	if dc != nil {
		_ = dc.Stop()
		_ = os.RemoveAll(dc.Dir)
	}
}

// removeStaleSambaDirs deletes the directories of earlier test binaries' DCs whose
// samba is gone.
func removeStaleSambaDirs() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), "usersync-samba-*"))
	for _, d := range dirs {
		pidFile := filepath.Join(d, "samba-child.pid")
		_, statErr := os.Stat(pidFile)
		if _, alive := devstack.PIDFileAlive(pidFile); alive {
			continue
		}
		st, err := os.Stat(d)
		old := err == nil && time.Since(st.ModTime()) > time.Hour // else it may be provisioning
		if statErr == nil || old {
			_ = os.RemoveAll(d)
		}
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// startTemporal starts an in-memory Temporal dev server on a free port and returns it with
// its frontend address. The caller stops it.
func startTemporal(ctx context.Context, ui bool, codecEndpoint string) (_ *testsuite.DevServer, hostPort, uiURL string, _ error) {
	bin, err := devstack.FindTemporal()
	if err != nil {
		return nil, "", "", err
	}
	// Each port is picked free, the HTTP API's too: left to the server it is the frontend
	// port + 1000, which another test's server may hold, and the dev server then crashes.
	// A port taken between picking and binding is retried on fresh ports.
	var codecArgs []string
	if ui && codecEndpoint != "" {
		codecArgs = devstack.UICodecArgs(codecEndpoint)
	}
	var lastErr error
	for range 3 {
		hostPort := net.JoinHostPort("127.0.0.1", strconv.Itoa(devstack.FreePort()))
		uiPort := ""
		if ui {
			uiPort = strconv.Itoa(devstack.FreePort())
		}
		srv, err := testsuite.StartDevServer(ctx, testsuite.DevServerOptions{
			ExistingPath:  bin, // never download
			EnableUI:      ui,
			UIPort:        uiPort,
			ClientOptions: &client.Options{HostPort: hostPort, Logger: quietLogger()},
			LogLevel:      "error",
			Stdout:        io.Discard, // a banner; errors still reach stderr
			Stderr:        os.Stderr,
			ExtraArgs: slices.Concat([]string{"--http-port", strconv.Itoa(devstack.FreePort())}, devstack.EagerActivityArgs(),
				workflows.DevServerSearchAttributeArgs(), codecArgs),
		})
		if err == nil {
			if ui {
				uiURL = "http://127.0.0.1:" + uiPort
			}
			return srv, hostPort, uiURL, nil
		}
		lastErr = fmt.Errorf("temporal test server on %s: %w", hostPort, err)
		if ctx.Err() != nil {
			break
		}
	}
	return nil, "", "", lastErr
}

// quietLogger drops the SDK's informational lines (dial attempts).
func quietLogger() tlog.Logger {
	return tlog.NewStructuredLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))
}

// RoleURLs are the connection URLs of one test database as each of usersync's roles.
// RoleURLs are the URLs of one database for each of usersync's roles, and for the server's
// superuser (Super: for tests that administer the server itself).
type RoleURLs struct{ Owner, Worker, Admin, Super string }

// DatabaseWithRoles is Database with usersync's roles (store.SetupRoles): the database
// belongs to the owner role, the schema is migrated as it. The server's user must be a
// superuser; the server must let the roles in without a password (the test server does).
func DatabaseWithRoles(t testing.TB) RoleURLs {
	t.Helper()
	db := Database(t)
	u, err := url.Parse(db)
	if err != nil {
		t.Fatalf("database URL: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := store.SetupRoles(ctx, db, strings.TrimPrefix(u.Path, "/")); err != nil {
		t.Fatal(err)
	}
	r := RoleURLs{Super: db}
	for role, dst := range map[string]*string{store.OwnerRole: &r.Owner, store.WorkerRole: &r.Worker, store.AdminRole: &r.Admin} {
		if *dst, err = store.RoleURL(db, role); err != nil {
			t.Fatal(err)
		}
	}
	if err := store.Migrate(ctx, r.Owner); err != nil {
		t.Fatal(err)
	}
	return r
}
