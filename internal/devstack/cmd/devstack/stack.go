package main

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/usersync/usersync/internal/demo"
	"github.com/usersync/usersync/internal/devstack"
	"github.com/usersync/usersync/internal/store"
)

// stack is the demo stack's layout: one folder, fixed ports.
type stack struct {
	dir                                                    string // absolute after resolve
	root                                                   string // repository, binaries are built from it
	org                                                    string
	temporalPort, uiPort, postgresPort, ldapPort, scimPort int
	infraOnly                                              bool
	codecEndpoint                                          string // the web UI's codec server; "" none
	// directory is the demo's directory: "openldap" (slapd) or "samba" (a Samba AD DC on
	// 127.0.0.1:389 and :636, the organization's profile ad).
	directory string
}

// The demo's directories (--directory, DEMO_DIRECTORY).
const (
	directoryOpenLDAP = "openldap"
	directorySamba    = "samba"
)

func (s *stack) bind(fs *flag.FlagSet) {
	fs.StringVar(&s.dir, "dir", ".stack", "stack folder (relative paths: to the repository root)")
	fs.StringVar(&s.org, "org", "demo", "organization ID of the demo")
	fs.IntVar(&s.temporalPort, "temporal-port", 7233, "Temporal frontend port")
	fs.IntVar(&s.uiPort, "ui-port", 8233, "Temporal web UI port")
	fs.IntVar(&s.postgresPort, "postgres-port", 55432, "PostgreSQL port")
	fs.IntVar(&s.ldapPort, "ldap-port", 3389, "slapd (LDAP) port")
	fs.IntVar(&s.scimPort, "scim-port", 8090, "SCIM sandbox port")
	fs.StringVar(&s.codecEndpoint, "ui-codec-endpoint", "", "codec server the web UI decodes payloads with (starter codec-server's URL, e.g. http://127.0.0.1:8089)")
	fs.StringVar(&s.directory, "directory", os.Getenv("DEMO_DIRECTORY"),
		"the demo's directory: openldap (slapd) or samba (a Samba AD DC on 127.0.0.1:389/636, profile ad); "+
			"env DEMO_DIRECTORY; default: the stack's last one, else openldap")
}

func (s *stack) resolve() error {
	root, err := repoRoot()
	if err != nil {
		return err
	}
	s.root = root
	if !filepath.IsAbs(s.dir) {
		s.dir = filepath.Join(root, s.dir)
	}
	if s.directory == "" { // the stack's last one: status and down find what up started
		b, _ := os.ReadFile(s.path("directory"))
		s.directory = strings.TrimSpace(string(b))
	}
	switch s.directory {
	case "":
		s.directory = directoryOpenLDAP
	case directoryOpenLDAP, directorySamba:
	default:
		return fmt.Errorf("--directory (DEMO_DIRECTORY): %q is not %s or %s", s.directory, directoryOpenLDAP, directorySamba)
	}
	return nil
}

// samba is the demo's AD DC: the domain EXAMPLE.COM, whose base DN is the demo's suffix, so
// that the rules name the same groups as on OpenLDAP. It outlives `devstack up`.
func (s *stack) samba(password string) *devstack.SambaDC {
	return &devstack.SambaDC{Dir: s.path("samba"), Realm: "EXAMPLE.COM", Domain: "EXAMPLE",
		AdminPassword: password, Detached: true}
}

// sambaPassword is the DC Administrator's password (secrets/samba_admin_password): a
// generated secret with the upper case letter and symbol AD's complexity rules want.
func (s *stack) sambaPassword() (string, error) {
	v, err := s.secret("samba_admin_password")
	if err != nil || strings.HasPrefix(v, "Sa1-") {
		return v, err
	}
	v = "Sa1-" + v
	return v, os.WriteFile(s.secretFile("samba_admin_password"), []byte(v), 0o600)
}

func (s *stack) path(parts ...string) string {
	return filepath.Join(append([]string{s.dir}, parts...)...)
}
func (s *stack) bin(name string) string { return s.path("bin", name) }

const adminRDN = "cn=admin"

func (s *stack) adminDN() string { return adminRDN + "," + demo.Suffix }

func (s *stack) postgres() *devstack.Postgres {
	return &devstack.Postgres{Dir: s.path("postgres"), Port: s.postgresPort}
}

func (s *stack) temporal() *devstack.Temporal {
	return &devstack.Temporal{Dir: s.path("temporal"), Port: s.temporalPort, UIPort: s.uiPort, Persistent: true,
		CodecEndpoint: s.codecEndpoint}
}

// slapd needs the admin password only to start; status and down pass "".
func (s *stack) slapd(password string) *devstack.Slapd {
	return &devstack.Slapd{Dir: s.path("slapd"), Port: s.ldapPort, Suffix: demo.Suffix,
		AdminDN: s.adminDN(), AdminPassword: password}
}

func (s *stack) scimAddr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.scimPort)) }
func (s *stack) scimURL() string  { return "http://" + s.scimAddr() }

func (s *stack) scimSandbox() *devstack.Daemon {
	d := demo.Org()
	return &devstack.Daemon{
		Name: "scim-sandbox", Path: s.bin("scim-sandbox"),
		Args: []string{"--listen", s.scimAddr(),
			"--seats", seatsFlag(d.TargetSeats()),
			"--seed-existing", strings.Join(d.PreExisting, ","),
			"--token-file", s.secretFile("scim_token")},
		LogFile: s.path("scim-sandbox", "scim-sandbox.log"),
		PIDFile: s.path("scim-sandbox", "scim-sandbox.pid"),
	}
}

func (s *stack) worker() *devstack.Daemon {
	return &devstack.Daemon{
		Name: "worker", Path: s.bin("worker"), Env: s.appEnv(store.WorkerRole),
		LogFile: s.path("worker", "worker.log"),
		PIDFile: s.path("worker", "worker.pid"),
	}
}

// appEnv is the configuration of the worker and the starter CLI, connecting to
// PostgreSQL as dbRole (store.WorkerRole, store.AdminRole). Secrets go by file;
// inherited secret variables are blanked so the files win.
func (s *stack) appEnv(dbRole string) []string {
	ldapEnv := []string{
		"LDAP_URL=" + s.slapd("").URL(),
		"LDAP_BIND_DN=" + s.adminDN(),
		"LDAP_BIND_PASSWORD=",
		"LDAP_BIND_PASSWORD_FILE=" + s.secretFile("ldap_admin_password"),
		// The demo's slapd listens on loopback only, without TLS: an explicit choice.
		"LDAP_ALLOW_PLAINTEXT_BIND=true",
		"LDAP_BASE_DN=" + demo.Suffix,
		"LDAP_PROFILE=" + directoryOpenLDAP,
		"LDAP_CA_FILE=",
	}
	if s.directory == directorySamba {
		dc := s.samba("")
		ldapEnv = []string{
			"LDAP_URL=" + dc.LDAPSURL(), // the DC's own CA, made by devstack
			"LDAP_BIND_DN=" + dc.AdminDN(),
			"LDAP_BIND_PASSWORD=",
			"LDAP_BIND_PASSWORD_FILE=" + s.secretFile("samba_admin_password"),
			"LDAP_ALLOW_PLAINTEXT_BIND=false",
			"LDAP_BASE_DN=" + demo.Suffix,
			"LDAP_PROFILE=ad",
			"LDAP_CA_FILE=" + dc.CAFile(),
		}
	}
	return append(ldapEnv, []string{
		"USERSYNC_ORG=" + s.org,
		"TEMPORAL_ADDRESS=" + net.JoinHostPort("127.0.0.1", strconv.Itoa(s.temporalPort)),
		"DATABASE_URL=" + s.databaseURL(dbRole),
		"SCIM_URL=" + s.scimURL(),
		"SCIM_TOKEN=",
		"SCIM_TOKEN_FILE=" + s.secretFile("scim_token"),
		"USERSYNC_SECRETS_KEY_FILE=" + s.secretFile(secretsKey),
	}...)
}

// databaseURL is the usersync database as role (the local server trusts loopback).
func (s *stack) databaseURL(role string) string {
	u, err := store.RoleURL(s.postgres().URL(), role)
	if err != nil {
		panic(err) // our own URL
	}
	return u
}

// secretsKey is the key file of the organizations' secrets, under secrets/.
const secretsKey = "secrets.keys"

// seatsFlag formats seat counts as the sandbox's --seats value, sorted so
// the command line is stable.
func seatsFlag(seats map[string]int) string {
	var parts []string
	for p, n := range seats {
		parts = append(parts, p+"="+strconv.Itoa(n))
	}
	slices.Sort(parts)
	return strings.Join(parts, ",")
}

func (s *stack) secretFile(name string) string { return s.path("secrets", name) }

// secret returns the secret in secrets/<name>, generating it on first use.
// Files are 0600 in a 0700 folder; values never go on a command line.
func (s *stack) secret(name string) (string, error) {
	path := s.secretFile(name)
	if b, err := os.ReadFile(path); err == nil && len(strings.TrimSpace(string(b))) > 0 {
		return strings.TrimSpace(string(b)), nil
	} else if err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("secret %s: %w", path, err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", fmt.Errorf("secret %s: %w", path, err)
	}
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("secret %s: %w", path, err)
	}
	v := hex.EncodeToString(b)
	// No trailing newline: ldapsearch -y and docker secrets use it verbatim.
	if err := os.WriteFile(path, []byte(v), 0o600); err != nil {
		return "", fmt.Errorf("secret %s: %w", path, err)
	}
	return v, nil
}

// writeEnvFile writes secrets-free shell exports for the starter CLI and
// for people: `source .stack/env`.
func (s *stack) writeEnvFile() error {
	var b strings.Builder
	b.WriteString("# usersync dev stack, written by `devstack up`. Use: source " + s.path("env") + "\n")
	for _, kv := range s.appEnv(store.AdminRole) { // for the starter CLI
		k, v, _ := strings.Cut(kv, "=")
		if v == "" {
			continue // blanked secret variables: leave the caller's alone
		}
		fmt.Fprintf(&b, "export %s=%s\n", k, shellQuote(v))
	}
	fmt.Fprintf(&b, "export PATH=%s:\"$PATH\"\n", shellQuote(s.path("bin")))
	return os.WriteFile(s.path("env"), []byte(b.String()), 0o644)
}

func shellQuote(v string) string { return "'" + strings.ReplaceAll(v, "'", `'\''`) + "'" }
