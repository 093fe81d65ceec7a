package store_test

import (
	"context"
	"errors"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"

	"github.com/usersync/usersync/internal/devstack/devstacktest"
	"github.com/usersync/usersync/internal/store"
	"github.com/usersync/usersync/internal/vocab"
)

func openAs(t *testing.T, ctx context.Context, url string) *store.Store {
	t.Helper()
	st, err := store.Open(ctx, url)
	require.NoError(t, err)
	t.Cleanup(st.Close)
	return st
}

// refused asserts err is PostgreSQL's permission denied (not the append-only trigger: the
// role has no such privilege at all).
func refused(t *testing.T, err error, what string) {
	t.Helper()
	var pgErr *pgconn.PgError
	require.True(t, errors.As(err, &pgErr), "%s: want permission denied, got %v", what, err)
	require.Equal(t, "42501", pgErr.Code, "%s: %v", what, err)
	require.Contains(t, pgErr.Message, "permission denied", what)
}

// The worker's and the CLI's roles append to the history and read it, never change or
// remove it, and change no schema; they open the migrated schema all the same.
func TestLeastPrivilegeRoles(t *testing.T) {
	roles := devstacktest.DatabaseWithRoles(t)
	ctx := context.Background()
	for _, c := range []struct{ role, url string }{{store.WorkerRole, roles.Worker}, {store.AdminRole, roles.Admin}} {
		t.Run(c.role, func(t *testing.T) {
			st := openAs(t, ctx, c.url)
			require.NoError(t, st.AddEvent(ctx, vocab.Event{Org: org, Actor: "alice", Type: vocab.EventSwitch, Action: "enable"}))
			events, err := st.History(ctx, org, store.HistoryFilter{})
			require.NoError(t, err)
			require.NotEmpty(t, events)
			require.Equal(t, c.role, events[0].DBRole)

			_, err = st.Pool().Exec(ctx, `UPDATE history SET actor = 'mallory'`)
			refused(t, err, "UPDATE history")
			_, err = st.Pool().Exec(ctx, `DELETE FROM history`)
			refused(t, err, "DELETE FROM history")
			_, err = st.Pool().Exec(ctx, `TRUNCATE history`)
			refused(t, err, "TRUNCATE history")
			_, err = st.Pool().Exec(ctx, `CREATE TABLE mine (x int)`)
			refused(t, err, "CREATE TABLE")
			_, err = st.Pool().Exec(ctx, `ALTER TABLE runs ADD COLUMN x int`)
			require.Error(t, err, "ALTER TABLE")
			_, err = st.Pool().Exec(ctx, `DELETE FROM schema_migrations`)
			refused(t, err, "DELETE FROM schema_migrations")

			// Statistics of the scratch tables go through the owner's function.
			require.NoError(t, st.AnalyzeSnapshot(ctx))
			var analyzed bool
			require.NoError(t, st.Pool().QueryRow(ctx,
				`SELECT last_analyze IS NOT NULL FROM pg_stat_user_tables WHERE relname = 'snapshot_users'`).Scan(&analyzed))
			require.True(t, analyzed, "snapshot_users not analyzed")
			_, err = st.Pool().Exec(ctx, `SELECT usersync_analyze(ARRAY['history'])`)
			require.ErrorContains(t, err, "not a scratch table")
		})
	}
}

// Every table, those of later migrations included, is granted to the worker and the CLI: a
// migration that forgot would fail their first statement in production.
func TestLeastPrivilegeGrantsEveryTable(t *testing.T) {
	roles := devstacktest.DatabaseWithRoles(t)
	ctx := context.Background()
	owner := openAs(t, ctx, roles.Owner)
	// A later migration, run as the owner, gets the grants by default privileges.
	_, err := owner.Pool().Exec(ctx, `CREATE TABLE later_migration (id bigint GENERATED ALWAYS AS IDENTITY, v text)`)
	require.NoError(t, err)

	rows, err := owner.Pool().Query(ctx, `SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1`)
	require.NoError(t, err)
	var tables []string
	for rows.Next() {
		var n string
		require.NoError(t, rows.Scan(&n))
		tables = append(tables, n)
	}
	require.NoError(t, rows.Err())
	require.Contains(t, tables, "history")
	for _, role := range []string{store.WorkerRole, store.AdminRole} {
		for _, table := range tables {
			var canRead, canWrite, canChange bool
			require.NoError(t, owner.Pool().QueryRow(ctx, `SELECT has_table_privilege($1, $2, 'SELECT'),
				has_table_privilege($1, $2, 'INSERT'), has_table_privilege($1, $2, 'UPDATE, DELETE')`,
				role, "public."+table).Scan(&canRead, &canWrite, &canChange))
			require.True(t, canRead, "%s may not read %s", role, table)
			switch table {
			case "history":
				require.True(t, canWrite, "%s may not append to history", role)
				require.False(t, canChange, "%s may change history", role)
			case "schema_migrations":
				require.False(t, canWrite || canChange, "%s may change schema_migrations", role)
			default:
				require.True(t, canWrite && canChange, "%s may not write %s", role, table)
			}
		}
	}
	worker := openAs(t, ctx, roles.Worker)
	_, err = worker.Pool().Exec(ctx, `INSERT INTO later_migration (v) VALUES ('x')`)
	require.NoError(t, err)
}

// A role without DDL rights cannot apply a pending migration: the error says what to run.
func TestLeastPrivilegePendingMigrationNamesStarterMigrate(t *testing.T) {
	roles := devstacktest.DatabaseWithRoles(t)
	ctx := context.Background()
	owner := openAs(t, ctx, roles.Owner)
	_, err := owner.Pool().Exec(ctx, `DELETE FROM schema_migrations WHERE version = (SELECT max(version) FROM schema_migrations)`)
	require.NoError(t, err)
	_, err = store.Open(ctx, roles.Worker)
	require.ErrorContains(t, err, "starter migrate")
	require.ErrorContains(t, err, store.WorkerRole)
}
