package store_test

import (
	"context"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/usersync/usersync/internal/devstack/devstacktest"
	"github.com/usersync/usersync/internal/store"
)

const org = "acme"

// openStore opens a store on a new, empty database of its own.
func openStore(t *testing.T) (*store.Store, context.Context) {
	t.Helper()
	st, ctx, _ := openStoreURL(t)
	return st, ctx
}

// beginRun begins run (BeginRun) and returns its snapshot attempt.
func beginRun(t *testing.T, ctx context.Context, st *store.Store, run, kind string, dryRun bool) int64 {
	t.Helper()
	attempt, err := st.BeginRun(ctx, org, run, kind, dryRun)
	require.NoError(t, err)
	return attempt
}

func openStoreURL(t *testing.T) (*store.Store, context.Context, string) {
	t.Helper()
	url := devstacktest.Database(t)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	st, err := store.Open(ctx, url)
	require.NoError(t, err)
	t.Cleanup(st.Close)
	return st, ctx, url
}

// migrationFiles counts the SQL migrations shipped with the package.
func migrationFiles(t *testing.T) int {
	t.Helper()
	entries, err := os.ReadDir("migrations")
	require.NoError(t, err)
	require.NotEmpty(t, entries)
	return len(entries)
}

// appliedMigrations returns how often each migration version is recorded.
func appliedMigrations(t *testing.T, ctx context.Context, st *store.Store) map[int]int {
	t.Helper()
	rows, err := st.Pool().Query(ctx, `SELECT version, count(*) FROM schema_migrations GROUP BY version`)
	require.NoError(t, err)
	defer rows.Close()
	out := map[int]int{}
	for rows.Next() {
		var v, n int
		require.NoError(t, rows.Scan(&v, &n))
		out[v] = n
	}
	require.NoError(t, rows.Err())
	return out
}

// A worker restart (second Open on the same database) re-runs no migration and keeps the data.
func TestOpenTwiceAppliesEachMigrationOnce(t *testing.T) {
	st, ctx, url := openStoreURL(t)
	require.NoError(t, st.SetLicense(ctx, org, "alice", "Webinar", 7))
	st.Close()

	again, err := store.Open(ctx, url)
	require.NoError(t, err)
	defer again.Close()

	applied := appliedMigrations(t, ctx, again)
	require.Len(t, applied, migrationFiles(t))
	for v, n := range applied {
		require.Equal(t, 1, n, "migration %d recorded once", v)
	}
	ls, err := again.Licenses(ctx, org)
	require.NoError(t, err)
	require.Equal(t, []store.License{{Product: "Webinar", Seats: 7}}, ls, "data survives the second Open")
}

// A worker and the CLI starting together on a fresh database both come up.
func TestConcurrentOpensOnAFreshDatabase(t *testing.T) {
	url := devstacktest.Database(t)
	ctx := context.Background()
	const n = 6
	stores := make([]*store.Store, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			stores[i], errs[i] = store.Open(ctx, url)
		}()
	}
	close(start)
	wg.Wait()
	for i := range n {
		require.NoError(t, errs[i], "Open #%d", i)
		defer stores[i].Close()
	}
	applied := appliedMigrations(t, ctx, stores[0])
	require.Len(t, applied, migrationFiles(t))
	for v, c := range applied {
		require.Equal(t, 1, c, "migration %d recorded once", v)
	}
}

// The database password never shows in an error (it ends up in logs and the CLI's output).
func TestOpenErrorsNeverShowThePassword(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, url := range []string{
		"postgres://usersync:s3cr3t-pw@127.0.0.1:1/usersync?sslmode=disable&connect_timeout=notanumber",
		"postgres://usersync:s3cr3t-pw@127.0.0.1:1/usersync?sslmode=disable&connect_timeout=2", // nobody listens
		"host=127.0.0.1 port=notaport user=usersync password=s3cr3t-pw",
		"host=127.0.0.1 port=1 user=usersync password=s3cr3t-pw connect_timeout=2",
	} {
		st, err := store.Open(ctx, url)
		if st != nil {
			st.Close()
		}
		require.Error(t, err, url)
		require.NotContains(t, err.Error(), "s3cr3t-pw")
		t.Log(err)
	}
}

// A pool smaller than the worker's caps need would have its steps wait on each other until
// their timeouts (seen with 100 organizations read at once on a 16-connection pool): the
// pool grows to the need, and a pool_max_conns in the URL below it is refused, naming it.
func TestPoolIsSizedForTheWorkersCaps(t *testing.T) {
	url := devstacktest.Database(t)
	ctx := context.Background()
	st, err := store.OpenFor(ctx, url, 40)
	require.NoError(t, err)
	require.EqualValues(t, 40, st.Pool().Config().MaxConns)
	st.Close()

	sep := "?"
	if strings.Contains(url, "?") {
		sep = "&"
	}
	_, err = store.OpenFor(ctx, url+sep+"pool_max_conns=8", 40)
	require.ErrorContains(t, err, "pool_max_conns=8 is below the 40 connections")
	require.ErrorContains(t, err, "--syncs")

	st, err = store.OpenFor(ctx, url+sep+"pool_max_conns=50", 40)
	require.NoError(t, err)
	require.EqualValues(t, 50, st.Pool().Config().MaxConns)
	st.Close()
}
