package devstack

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// DatabaseName is the database Postgres.Start creates for usersync.
const DatabaseName = "usersync"

// Postgres is a PostgreSQL server of our own: its cluster lives in Dir/data,
// it listens on 127.0.0.1:Port only, and trusts loopback connections (a dev
// stack, never a production setup).
type Postgres struct {
	Dir  string
	Port int
	// NoSync turns fsync and synchronous commit off: much faster, and a
	// crash may lose the data. For tests.
	NoSync bool
	// Attached stops the server when this process exits (see Daemon).
	Attached bool
}

const postgresUser = "postgres" // OS user to run as when we are root; also the DB superuser

func (p *Postgres) dataDir() string { return filepath.Join(p.Dir, "data") }

func (p *Postgres) daemon(bin string) *Daemon {
	args := []string{
		"-D", p.dataDir(),
		"-p", strconv.Itoa(p.Port),
		"-c", "listen_addresses=127.0.0.1",
		"-c", "unix_socket_directories=", // TCP only: no clash with a system server
		"-c", "max_connections=200",
	}
	if p.NoSync {
		args = append(args, "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off")
	}
	return &Daemon{
		Name: "postgres", Path: bin, Args: args,
		LogFile:    filepath.Join(p.Dir, "postgres.log"),
		PIDFile:    filepath.Join(p.Dir, "postgres.pid"),
		AsUser:     postgresUser,
		Attached:   p.Attached,
		StopSignal: syscall.SIGINT, // "fast" shutdown: disconnect clients, then stop
	}
}

// Start creates the cluster when Dir/data does not exist yet, starts the
// server unless it already runs (then it is reused, on the port it runs on),
// creates the usersync database if missing and returns its URL.
func (p *Postgres) Start(ctx context.Context) (string, error) {
	if p.Dir == "" {
		return "", fmt.Errorf("postgres: Dir is empty")
	}
	if pid, ok := PIDFileAlive(filepath.Join(p.dataDir(), "postmaster.pid")); ok {
		port, err := p.runningPort()
		if err != nil {
			return "", fmt.Errorf("postgres already running (pid %d) but %w", pid, err)
		}
		p.Port = port
	} else {
		if p.Port == 0 {
			return "", fmt.Errorf("postgres: Port is 0")
		}
		if err := p.initCluster(ctx); err != nil {
			return "", err
		}
		bin, err := FindPostgresBinary("postgres")
		if err != nil {
			return "", err
		}
		d := p.daemon(bin)
		if err := d.Start(); err != nil {
			return "", err
		}
		if err := d.WaitReady(ctx, func(ctx context.Context) error { return p.ping(ctx, "postgres") }); err != nil {
			_ = d.Stop(10 * time.Second)
			return "", err
		}
	}
	if err := p.createDatabase(ctx, DatabaseName); err != nil {
		return "", err
	}
	return p.URL(), nil
}

// URL is the connection URL of the usersync database.
func (p *Postgres) URL() string { return p.urlOf(DatabaseName) }

// AdminURL is the connection URL of the server's postgres database, to create and drop
// databases from.
func (p *Postgres) AdminURL() string { return p.urlOf("postgres") }

func (p *Postgres) urlOf(db string) string {
	return fmt.Sprintf("postgres://%s@127.0.0.1:%d/%s?sslmode=disable", postgresUser, p.Port, db)
}

// Running reports whether the server of Dir runs.
func (p *Postgres) Running() bool {
	_, ok := PIDFileAlive(filepath.Join(p.dataDir(), "postmaster.pid"))
	return ok
}

// Stop shuts the server down (fast mode) and waits for it. Stopping a
// server that does not run is not an error.
func (p *Postgres) Stop() error {
	// postmaster.pid is the truth: it also finds a server started by
	// someone else with pg_ctl.
	pid, ok := PIDFileAlive(filepath.Join(p.dataDir(), "postmaster.pid"))
	if !ok {
		_ = os.Remove(filepath.Join(p.Dir, "postgres.pid"))
		return nil
	}
	if err := StopPID(pid, syscall.SIGINT, 30*time.Second); err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	_ = os.Remove(filepath.Join(p.Dir, "postgres.pid"))
	return nil
}

// runningPort reads the port from postmaster.pid (its fourth line).
func (p *Postgres) runningPort() (int, error) {
	b, err := os.ReadFile(filepath.Join(p.dataDir(), "postmaster.pid"))
	if err != nil {
		return 0, err
	}
	lines := strings.Split(string(b), "\n")
	if len(lines) < 4 {
		return 0, fmt.Errorf("postmaster.pid has no port line yet")
	}
	port, err := strconv.Atoi(strings.TrimSpace(lines[3]))
	if err != nil {
		return 0, fmt.Errorf("postmaster.pid port %q: %w", lines[3], err)
	}
	return port, nil
}

func (p *Postgres) initCluster(ctx context.Context) error {
	if _, err := os.Stat(filepath.Join(p.dataDir(), "PG_VERSION")); err == nil {
		return nil
	}
	if err := os.MkdirAll(p.Dir, 0o755); err != nil {
		return fmt.Errorf("postgres dir %s: %w", p.Dir, err)
	}
	if err := chownTo(p.Dir, postgresUser); err != nil {
		return fmt.Errorf("postgres dir %s: %w", p.Dir, err)
	}
	initdb, err := FindPostgresBinary("initdb")
	if err != nil {
		return err
	}
	args := []string{"-D", p.dataDir(), "-U", postgresUser, "--auth=trust", "--encoding=UTF8", "--locale=C"}
	if p.NoSync {
		args = append(args, "--no-sync")
	}
	cmd := exec.CommandContext(ctx, initdb, args...)
	if os.Geteuid() == 0 {
		cred, err := credentialOf(postgresUser)
		if err != nil {
			return fmt.Errorf("initdb: %w", err)
		}
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		hint := ""
		if os.Geteuid() == 0 {
			hint = " (as root, the postgres user must be able to reach " + p.Dir + ": check its parent directories' permissions)"
		}
		return fmt.Errorf("initdb %s: %w%s\n%s", p.dataDir(), err, hint, out)
	}
	return nil
}

func (p *Postgres) ping(ctx context.Context, db string) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, p.urlOf(db))
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	return conn.Ping(ctx)
}

func (p *Postgres) createDatabase(ctx context.Context, name string) error {
	return CreateDatabase(ctx, p.urlOf("postgres"), name)
}

// CreateDatabase creates database name on the server of adminURL unless it
// exists.
func CreateDatabase(ctx context.Context, adminURL, name string) error {
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return fmt.Errorf("create database %s: %w", name, err)
	}
	defer conn.Close(context.Background())
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
		return fmt.Errorf("create database %s: %w", name, err)
	}
	if exists {
		return nil
	}
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return fmt.Errorf("create database %s: %w", name, err)
	}
	return nil
}

// FindPostgresBinary looks for a PostgreSQL program (initdb, postgres) on
// PATH, then in Debian's /usr/lib/postgresql/<version>/bin, newest first.
func FindPostgresBinary(name string) (string, error) {
	// Debian puts only wrappers (or nothing) on PATH for server programs;
	// prefer the versioned directory, which has them all together.
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return pgVersion(dirs[i]) > pgVersion(dirs[j]) })
	for _, d := range dirs {
		if p := filepath.Join(d, name); isExecutable(p) {
			return p, nil
		}
	}
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	return "", fmt.Errorf("%s not found on PATH or in /usr/lib/postgresql/*/bin: install PostgreSQL (scripts/setup.sh does: apt-get install postgresql)", name)
}

func pgVersion(binDir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return v
}

func isExecutable(path string) bool {
	st, err := os.Stat(path)
	return err == nil && !st.IsDir() && st.Mode()&0o111 != 0
}
