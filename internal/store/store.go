// Package store keeps usersync's configuration, sync state, failures and history in PostgreSQL.
// It selects, streams and writes; the decisions are plan's, the words vocab's. One file per
// concern:
//
//   - store.go: Open, the embedded migrations (migrations/), the pool
//   - config.go: rules, mappings, catalog, domains
//   - seats.go: seat pools bought (licenses) and the seats users hold
//   - accounts.go: the applied state of linked target accounts (user_state)
//   - failures.go: current failures of users, and their banners
//   - intents.go: write intents (a SCIM write recorded before it is sent, closed with its outcome)
//   - adoptions.go: admins' approvals to adopt an unlinked target account
//   - groups.go: the target's group IDs, memberships written, group deltas of a run
//   - target.go: the target's custom extension settings and discovered profile
//   - runs.go: runs (begin, finish, list)
//   - snapshots.go, memberships.go: a run's directory snapshot and its group graph
//   - planning.go: the storage of a streaming plan (plan.Store)
//   - work.go: a run's work items
//   - history.go: the administrative history
//   - pacer.go: the request pace shared by every worker
package store

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Store is the PostgreSQL store. It is safe for concurrent use, except the Store that InTx
// hands out, which is one transaction's.
type Store struct {
	pool conn          // the pool, or InTx's transaction
	own  *pgxpool.Pool // nil in InTx
}

// conn is what the pool and a transaction both offer. A method's own transaction
// (pgx.BeginFunc) is a savepoint inside InTx's.
type conn interface {
	dbtx
	Begin(ctx context.Context) (pgx.Tx, error)
	CopyFrom(ctx context.Context, table pgx.Identifier, columns []string, src pgx.CopyFromSource) (int64, error)
}

// InTx runs fn with a Store whose methods all run in one transaction: every change fn makes
// through it (with its validation and history rows) commits together, or none does when fn
// returns an error. That Store is fn's only and must not be used concurrently.
func (s *Store) InTx(ctx context.Context, fn func(tx *Store) error) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error { return fn(&Store{pool: tx}) })
}

// ErrNotFound is returned when a named record does not exist.
var ErrNotFound = errors.New("not found")

// ErrInvalidValue is a write PostgreSQL refused for a value it cannot hold (SQLSTATE class
// 22, data exception): writing it again cannot succeed.
var ErrInvalidValue = errors.New("a value the database cannot hold")

// DefaultMaxConns is the connection pool size unless the URL sets pool_max_conns.
const DefaultMaxConns = 16

// Open connects and brings the schema up to date.
func Open(ctx context.Context, url string) (*Store, error) { return OpenFor(ctx, url, 0) }

// OpenFor is Open for a process that needs up to need connections at once (0: the default
// pool). A pool smaller than what its steps hold at once does not just slow down: steps that
// hold one connection while waiting for a second (a snapshot keeps its read open while its
// writer and membership index take theirs) wait on each other until their timeouts. So the
// pool grows to need, and a pool_max_conns in the URL below it is refused.
func OpenFor(ctx context.Context, url string, need int) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("database url: %w", redact(err))
	}
	if !strings.Contains(url, "pool_max_conns") {
		// pgx's default (4 on a small machine) is too few: a bulk step holds a streaming read
		// and writes on a second connection, while per-user steps need one each.
		cfg.MaxConns = int32(max(DefaultMaxConns, need))
	} else if int(cfg.MaxConns) < need {
		return nil, fmt.Errorf("database url: pool_max_conns=%d is below the %d connections this worker's caps need at once (3 per sync in flight, 1 per page, 4 more): raise it or lower --syncs/--pages",
			cfg.MaxConns, need)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to database: %w", redact(err))
	}
	s := &Store{pool: pool, own: pool}
	if err := s.migrate(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	return s, nil
}

// redact keeps the error but never a password from a connection string.
func redact(err error) error {
	msg := err.Error()
	if i := strings.Index(msg, "password="); i >= 0 {
		return errors.New(msg[:i] + "password=***")
	}
	return err
}

// Close releases the connections.
func (s *Store) Close() {
	if s.own != nil {
		s.own.Close()
	}
}

// Pool exposes the pool for tests and benchmarks.
func (s *Store) Pool() *pgxpool.Pool { return s.own }

// migrate applies the embedded migrations in order, once each. An advisory lock makes two
// processes starting together safe.
func (s *Store) migrate(ctx context.Context) error {
	entries, err := migrations.ReadDir("migrations")
	if err != nil {
		return err
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	// A role without DDL rights (the worker's, the CLI's) may open a current schema: only
	// pending migrations need the owner.
	if current, err := s.schemaCurrent(ctx, names); err == nil && current {
		return nil
	}
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(4242001)`); err != nil {
			return fmt.Errorf("migrations lock: %w", err)
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			version int PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
			return fmt.Errorf("schema_migrations: %w", err)
		}
		for _, name := range names {
			version, err := strconv.Atoi(strings.SplitN(name, "_", 2)[0])
			if err != nil {
				return fmt.Errorf("migration file %q: name must start with a number", name)
			}
			var done bool
			if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM schema_migrations WHERE version=$1)`, version).Scan(&done); err != nil {
				return err
			}
			if done {
				continue
			}
			sql, err := migrations.ReadFile("migrations/" + name)
			if err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, string(sql)); err != nil {
				return fmt.Errorf("migration %s: %w", name, err)
			}
			if _, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, name) VALUES ($1, $2)`, version, name); err != nil {
				return err
			}
		}
		return nil
	})
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "42501" { // insufficient_privilege
		var role string
		_ = s.pool.QueryRow(ctx, `SELECT session_user`).Scan(&role)
		return fmt.Errorf("%w\nthe database schema needs migrations and role %q may not apply them: run `starter migrate` with DATABASE_URL naming the schema's owner (usersync_owner, see internal/store/roles.sql)", err, role)
	}
	return err
}

// Migrate brings the schema up to date and returns: `starter migrate`, run as the owner role.
func Migrate(ctx context.Context, url string) error {
	s, err := Open(ctx, url)
	if err != nil {
		return err
	}
	s.Close()
	return nil
}

// schemaCurrent reports whether every embedded migration is applied, reading only.
func (s *Store) schemaCurrent(ctx context.Context, names []string) (bool, error) {
	var exists bool
	if err := s.pool.QueryRow(ctx, `SELECT to_regclass('schema_migrations') IS NOT NULL`).Scan(&exists); err != nil || !exists {
		return false, err
	}
	var applied []int32
	if err := s.pool.QueryRow(ctx, `SELECT coalesce(array_agg(version), '{}') FROM schema_migrations`).Scan(&applied); err != nil {
		return false, err
	}
	have := map[int32]bool{}
	for _, v := range applied {
		have[v] = true
	}
	for _, name := range names {
		v, err := strconv.Atoi(strings.SplitN(name, "_", 2)[0])
		if err != nil || !have[int32(v)] {
			return false, nil
		}
	}
	return true, nil
}

// dbtx is what both the pool and a transaction offer.
type dbtx interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
