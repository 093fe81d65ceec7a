package devstack

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
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

// TestTemporal starts an in-memory Temporal dev server for this test, stopped
// when the test ends, and returns its frontend address.
func TestTemporal(t testing.TB) string {
	t.Helper()
	if _, err := FindTemporal(); err != nil {
		SkipUnlessRequired(t, "temporal not installed: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv, hostPort, err := StartTestServer(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Stop() })
	return hostPort
}

// TestSCIMMY starts the SCIMMY server (scripts/scimmy) configured by s for
// this test, stopped when the test ends, and returns its SCIM base URL. Dir
// defaults to t.TempDir() and Port to a free port; Token must be set, the
// caller needs it. It skips when node or the server's node_modules is
// missing (fails under USERSYNC_REQUIRE_INTEGRATION=1).
func TestSCIMMY(t testing.TB, s SCIMMY) string {
	t.Helper()
	if _, err := FindNode(); err != nil {
		SkipUnlessRequired(t, "scimmy: %v", err)
	}
	if _, err := FindSCIMMYServer(); err != nil {
		SkipUnlessRequired(t, "%v", err)
	}
	if s.Dir == "" {
		s.Dir = t.TempDir()
	}
	if s.Token == "" {
		t.Fatal("TestSCIMMY: set Token, the caller needs it to talk to the server")
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

// TestDatabase returns the URL of a new, empty database for this test,
// dropped when the test ends. The server is the one of DATABASE_URL when set
// (its user needs CREATEDB); otherwise one PostgreSQL per test binary,
// started on first use in a temporary directory and stopped when the test
// binary exits.
func TestDatabase(t testing.TB) string {
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
	if err := CreateDatabase(ctx, admin, name); err != nil {
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
		if _, err := FindPostgresBinary("postgres"); err != nil {
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
		pg := &Postgres{Dir: dir, Port: FreePort(), NoSync: true, Attached: true}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if _, err := pg.Start(ctx); err != nil {
			testServer.err = fmt.Errorf("test postgres: %w", err)
			return
		}
		testServer.url = pg.urlOf("postgres")
	})
	return testServer.url, testServer.err
}

// removeStaleTestDirs deletes the clusters of earlier test binaries whose
// server is gone (the kernel stopped it, nobody removed its directory).
func removeStaleTestDirs() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), "usersync-testpg-*"))
	for _, d := range dirs {
		if _, alive := PIDFileAlive(filepath.Join(d, "data", "postmaster.pid")); alive {
			continue
		}
		// Our pid file is written as the server starts: if its process is
		// gone, so is the test binary that owned it.
		started := false
		if _, err := os.Stat(filepath.Join(d, "postgres.pid")); err == nil {
			started = true
		}
		_, serverAlive := PIDFileAlive(filepath.Join(d, "postgres.pid"))
		st, err := os.Stat(d)
		old := err == nil && time.Since(st.ModTime()) > 10*time.Minute // else initdb may still run
		if (started && !serverAlive) || (!started && old) {
			_ = os.RemoveAll(d)
		}
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
