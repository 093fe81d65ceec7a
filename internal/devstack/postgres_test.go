package devstack_test

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/usersync/usersync/internal/devstack"
	"github.com/usersync/usersync/internal/devstack/devstacktest"
)

// postgresDir is a fresh directory the postgres user can reach even when the
// tests run as root (t.TempDir's parent is private to root).
func postgresDir(t *testing.T) string {
	t.Helper()
	if _, err := devstack.FindPostgresBinary("initdb"); err != nil {
		devstacktest.SkipUnlessRequired(t, "postgres not installed: %v", err)
	}
	dir, err := os.MkdirTemp("", "usersync-pgtest-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	return dir
}

func exec1(t *testing.T, url, sql string) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, sql)
	return err
}

func countRows(t *testing.T, url, table string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM "+table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestPostgresStartReuseStopAndRestartKeepsData(t *testing.T) {
	dir := postgresDir(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	port := devstack.FreePort()
	pg := &devstack.Postgres{Dir: dir, Port: port, NoSync: true, Attached: true}
	t.Cleanup(func() { _ = pg.Stop() })

	url, err := pg.Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(url, "127.0.0.1:") || !strings.Contains(url, "/usersync") {
		t.Fatalf("URL %q: want the usersync database on 127.0.0.1", url)
	}
	if err := exec1(t, url, "CREATE TABLE kept (id int); INSERT INTO kept VALUES (1)"); err != nil {
		t.Fatalf("usersync database not usable: %v", err)
	}

	// Starting again (say, a second `devstack up` asking for another port)
	// reuses the running server instead of failing or starting a second one.
	again := &devstack.Postgres{Dir: dir, Port: devstack.FreePort(), NoSync: true}
	url2, err := again.Start(ctx)
	if err != nil {
		t.Fatalf("second Start: %v", err)
	}
	if url2 != url {
		t.Fatalf("second Start URL = %q, want the running server's %q", url2, url)
	}

	if err := again.Stop(); err != nil {
		t.Fatal(err)
	}
	if pg.Running() {
		t.Fatal("Running() after Stop")
	}
	if err := exec1(t, url, "SELECT 1"); err == nil {
		t.Fatal("server still answers after Stop")
	}
	if err := pg.Stop(); err != nil {
		t.Fatalf("Stop of a stopped server: %v", err)
	}

	url3, err := pg.Start(ctx)
	if err != nil {
		t.Fatalf("restart: %v", err)
	}
	if got := countRows(t, url3, "kept"); got != 1 {
		t.Fatalf("after restart table kept has %d rows, want 1", got)
	}
}

func TestPostgresListensOnLoopbackOnly(t *testing.T) {
	dir := postgresDir(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	pg := &devstack.Postgres{Dir: dir, Port: devstack.FreePort(), NoSync: true, Attached: true}
	t.Cleanup(func() { _ = pg.Stop() })
	url, err := pg.Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ctx2, cancel2 := context.WithTimeout(ctx, 30*time.Second)
	defer cancel2()
	conn, err := pgx.Connect(ctx2, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx2)
	var listen string
	if err := conn.QueryRow(ctx2, "SHOW listen_addresses").Scan(&listen); err != nil {
		t.Fatal(err)
	}
	if listen != "127.0.0.1" {
		t.Fatalf("listen_addresses = %q, want 127.0.0.1", listen)
	}
}
