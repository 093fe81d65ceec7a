package devstacktest

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"go.temporal.io/sdk/client"

	"github.com/usersync/usersync/internal/devstack"
)

func TestTemporalServesTheDefaultNamespace(t *testing.T) {
	hostPort := Temporal(t)
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

func TestDatabaseGivesEachTestItsOwnEmptyDatabase(t *testing.T) {
	if os.Getenv("DATABASE_URL") == "" {
		if _, err := devstack.FindPostgresBinary("postgres"); err != nil {
			SkipUnlessRequired(t, "postgres not installed: %v", err)
		}
	}
	var first string
	t.Run("first", func(t *testing.T) {
		first = Database(t)
		if err := exec1(t, first, "CREATE TABLE mine (id int)"); err != nil {
			t.Fatal(err)
		}
	})
	second := Database(t)
	if second == first {
		t.Fatalf("two tests got the same database %q", first)
	}
	if err := exec1(t, second, "CREATE TABLE mine (id int)"); err != nil {
		t.Fatalf("second database is not empty or not usable: %v", err)
	}
	if err := exec1(t, first, "SELECT 1"); err == nil {
		t.Fatal("first test's database still exists after that test ended")
	}
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
