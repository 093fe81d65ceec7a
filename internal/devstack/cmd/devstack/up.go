package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"time"

	"github.com/go-ldap/ldap/v3"
	"github.com/jackc/pgx/v5"

	"github.com/usersync/usersync/internal/demo"
	"github.com/usersync/usersync/internal/devstack"
	"github.com/usersync/usersync/internal/orgs"
	"github.com/usersync/usersync/internal/store"
)

func (s *stack) up(ctx context.Context) error {
	if err := os.MkdirAll(s.dir, 0o755); err != nil {
		return err
	}
	ldapPassword, err := s.secret("ldap_admin_password")
	if err != nil {
		return err
	}
	if _, err := s.secret("scim_token"); err != nil {
		return err
	}
	// The key that encrypts the organizations' secrets in PostgreSQL (0600, made once).
	if _, err := os.Stat(s.secretFile(secretsKey)); errors.Is(err, os.ErrNotExist) {
		if _, err := orgs.AddKey(s.secretFile(secretsKey)); err != nil {
			return err
		}
	}

	workerChanged := false
	step("building binaries into " + s.path("bin"))
	for _, b := range s.binaries() {
		changed, err := s.build(ctx, b.name, b.pkg)
		if err != nil {
			return err
		}
		if b.name == "worker" {
			workerChanged = changed
		}
	}

	step(fmt.Sprintf("PostgreSQL on 127.0.0.1:%d", s.postgresPort))
	pg := s.postgres()
	if _, err := pg.Start(ctx); err != nil {
		return err
	}
	// Least privilege as in production: the owner role migrates, the worker and the
	// starter connect as their own roles (internal/store/roles.sql).
	if err := store.SetupRoles(ctx, pg.AdminURL(), devstack.DatabaseName); err != nil {
		return err
	}
	if err := store.Migrate(ctx, s.databaseURL(store.OwnerRole)); err != nil {
		return fmt.Errorf("migrations as %s: %w (a stack made before the roles: remove %s and run up again)", store.OwnerRole, err, pg.Dir)
	}
	if err := ownedByOwner(ctx, pg.URL()); err != nil {
		return fmt.Errorf("%w: this stack's database predates the roles, remove %s and run up again", err, pg.Dir)
	}

	if err := os.WriteFile(s.path("directory"), []byte(s.directory+"\n"), 0o644); err != nil {
		return err
	}
	if s.directory == directorySamba {
		if err := s.upSamba(ctx); err != nil {
			return err
		}
	} else {
		sl := s.slapd(ldapPassword)
		step(fmt.Sprintf("slapd on %s, loading the demo directory", sl.URL()))
		if err := sl.Start(ctx); err != nil {
			return err
		}
		if err := devstack.LoadEntries(ctx, sl.URL(), sl.AdminDN, ldapPassword, demo.Org().Entries); err != nil {
			return err
		}
	}

	tp := s.temporal()
	step(fmt.Sprintf("Temporal dev server on %s (UI %s)", tp.HostPort(), tp.UIURL()))
	if err := tp.Start(ctx); err != nil {
		return err
	}

	step("SCIM sandbox on " + s.scimURL())
	// Never restarted when running: it holds the target's accounts in memory.
	if sb := s.scimSandbox(); !sb.Running() {
		if err := sb.Start(); err != nil {
			return err
		}
		if err := sb.WaitReady(ctx, func(ctx context.Context) error { return devstack.WaitForPort(ctx, s.scimAddr()) }); err != nil {
			return err
		}
	}

	if err := s.writeEnvFile(); err != nil {
		return err
	}
	if s.infraOnly {
		s.status(os.Stdout)
		return nil
	}

	step("worker")
	if err := s.startWorker(ctx, workerChanged); err != nil {
		return err
	}

	step("seeding the demo configuration and enabling User Sync")
	for _, args := range [][]string{{"seed-demo"}, {"enable"}, {"status", "--wait"}} {
		if err := s.starter(ctx, args...); err != nil {
			return err
		}
	}
	s.status(os.Stdout)
	return nil
}

type binary struct{ name, pkg string }

func (s *stack) binaries() []binary {
	bins := []binary{{"scim-sandbox", "./internal/scimsandbox/cmd/scim-sandbox"}}
	if !s.infraOnly {
		bins = append(bins, binary{"worker", "./worker"}, binary{"starter", "./starter"})
	}
	return bins
}

// build runs go build into the stack's bin folder and reports whether the
// binary changed (a running worker is then restarted).
func (s *stack) build(ctx context.Context, name, pkg string) (bool, error) {
	out := s.bin(name)
	before := fileHash(out)
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, pkg)
	cmd.Dir = s.root
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return false, fmt.Errorf("go build %s: %w", pkg, err)
	}
	return !bytes.Equal(before, fileHash(out)), nil
}

func fileHash(path string) []byte {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	h := sha256.Sum256(b)
	return h[:]
}

func (s *stack) startWorker(ctx context.Context, rebuilt bool) error {
	w := s.worker()
	if w.Running() {
		if !rebuilt {
			return nil
		}
		fmt.Println("   worker binary changed: restarting it")
		if err := w.Stop(30 * time.Second); err != nil {
			return err
		}
	}
	if err := w.Start(); err != nil {
		return err
	}
	// The worker has no port to probe; a bad configuration makes it exit
	// at once, so give it a moment to do that.
	settle, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	err := w.WaitReady(settle, func(context.Context) error { return errNotYet })
	if settle.Err() != nil && ctx.Err() == nil {
		return nil // still running after the grace period
	}
	return err
}

var errNotYet = fmt.Errorf("not yet")

// starter runs the starter CLI with the stack's configuration.
func (s *stack) starter(ctx context.Context, args ...string) error {
	cmd := exec.CommandContext(ctx, s.bin("starter"), args...)
	cmd.Env = append(os.Environ(), s.appEnv(store.AdminRole)...)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("starter %v: %w", args, err)
	}
	return nil
}

func step(msg string) { fmt.Println("==> " + msg) }

// ownedByOwner checks the schema belongs to the owner role: in a database migrated before the
// roles existed, the grants of migration 025 did not apply and the worker could not write.
func ownedByOwner(ctx context.Context, superuserURL string) error {
	conn, err := pgx.Connect(ctx, superuserURL)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	var owner string
	if err := conn.QueryRow(ctx, `SELECT tableowner FROM pg_tables WHERE schemaname = 'public' AND tablename = 'history'`).Scan(&owner); err != nil {
		return fmt.Errorf("history table: %w", err)
	}
	if owner != store.OwnerRole {
		return fmt.Errorf("the history table belongs to %s, not %s", owner, store.OwnerRole)
	}
	return nil
}

// upSamba starts the demo's Samba AD DC (provisioned on first use, a minute or two) unless it
// runs, and loads the demo organization into it (what is there already stays).
func (s *stack) upSamba(ctx context.Context) error {
	if s.slapd("").Running() {
		return fmt.Errorf("this stack's slapd runs: stop the stack (devstack down) before switching it to --directory samba")
	}
	pw, err := s.sambaPassword()
	if err != nil {
		return err
	}
	dc := s.samba(pw)
	step(fmt.Sprintf("Samba AD DC on %s and %s (domain EXAMPLE.COM), loading the demo directory", dc.URL(), dc.LDAPSURL()))
	if !dc.Process().Running() {
		if err := dc.Start(ctx); err != nil {
			return err
		}
	}
	adds, members, err := demo.Org().ADEntries()
	if err != nil {
		return err
	}
	pem, err := os.ReadFile(dc.CAFile())
	if err != nil {
		return err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	c, err := ldap.DialURL(dc.LDAPSURL(), ldap.DialWithTLSConfig(&tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}))
	if err != nil {
		return fmt.Errorf("samba: %w", err)
	}
	defer c.Close()
	if err := c.Bind(dc.AdminDN(), pw); err != nil {
		return fmt.Errorf("samba: bind as %s: %w", dc.AdminDN(), err)
	}
	for _, a := range adds {
		if err := c.Add(a); err != nil && !ldap.IsErrorWithCode(err, ldap.LDAPResultEntryAlreadyExists) {
			return fmt.Errorf("samba: add %s: %w", a.DN, err)
		}
	}
	for _, m := range members {
		for _, ch := range m.Changes { // one member at a time: a rerun finds some there already
			for _, v := range ch.Modification.Vals {
				one := ldap.NewModifyRequest(m.DN, nil)
				one.Add("member", []string{v})
				if err := c.Modify(one); err != nil && !ldap.IsErrorWithCode(err, ldap.LDAPResultAttributeOrValueExists) {
					return fmt.Errorf("samba: add member %s to %s: %w", v, m.DN, err)
				}
			}
		}
	}
	return nil
}
