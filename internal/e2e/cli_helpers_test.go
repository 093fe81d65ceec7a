package e2e

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/usersync/usersync/internal/demo"
	"github.com/usersync/usersync/internal/devstack/devstacktest"
)

// cliActor is the admin driving the CLI: the starter records $USER as the actor.
const cliActor = "carol"

// starterBuild is the starter binary, built once per test binary.
var starterBuild struct {
	once sync.Once
	dir  string
	path string
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	devstacktest.StopSambaDC() // frees the DC lock sooner; a no-op unless a DC still runs
	if starterBuild.dir != "" {
		_ = os.RemoveAll(starterBuild.dir)
	}
	os.Exit(code)
}

func starterBinary(t *testing.T) string {
	t.Helper()
	b := &starterBuild
	b.once.Do(func() {
		if b.dir, b.err = os.MkdirTemp("", "usersync-starter-"); b.err != nil {
			return
		}
		b.path = filepath.Join(b.dir, "starter")
		out, err := exec.Command("go", "build", "-o", b.path, "github.com/usersync/usersync/starter").CombinedOutput()
		if err != nil {
			b.err = errors.New("go build starter: " + err.Error() + "\n" + string(out))
		}
	})
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.path
}

// cliResult is one finished starter process.
type cliResult struct {
	args           []string
	stdout, stderr string
	code           int
}

// starter runs the CLI as a real process with the environment an admin of this stack has.
func (s *stack) starter(args ...string) cliResult {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(s.ctx, 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, starterBinary(s.t), args...)
	cmd.Env = append(os.Environ(),
		"USERSYNC_ORG="+org,
		"TEMPORAL_ADDRESS="+s.hostPort,
		"TEMPORAL_NAMESPACE=default",
		"DATABASE_URL="+s.dbURL,
		"LDAP_URL="+s.ldapURL,
		"LDAP_BIND_DN="+s.ldapBindDN,
		"LDAP_BIND_PASSWORD="+ldapSecret,
		"LDAP_BIND_PASSWORD_FILE=", "LDAP_ALLOW_PLAINTEXT_BIND=true",
		"LDAP_BASE_DN="+s.demo.Suffix,
		"LDAP_PROFILE=openldap",
		"USER="+cliActor,
	)
	cmd.Env = append(cmd.Env, s.cliEnv...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := cliResult{args: args, stdout: stdout.String(), stderr: stderr.String()}
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		r.code = exit.ExitCode()
	case err != nil:
		s.t.Fatalf("starter %s: %v", strings.Join(args, " "), err)
	}
	s.t.Logf("$ starter %s  (exit %d)\n%s%s", strings.Join(args, " "), r.code, clip(r.stdout), clip(r.stderr))
	return r
}

// cliOK runs a command that must exit 0 and returns its standard output.
func (s *stack) cliOK(args ...string) string {
	s.t.Helper()
	r := s.starter(args...)
	if r.code != 0 {
		s.t.Fatalf("starter %s: exit %d\nstderr: %s\nstdout: %s", strings.Join(args, " "), r.code, r.stderr, r.stdout)
	}
	return r.stdout
}

// cliFails runs a command that must exit non-zero and returns its standard error.
func (s *stack) cliFails(args ...string) string {
	s.t.Helper()
	r := s.starter(args...)
	if r.code == 0 {
		s.t.Fatalf("starter %s: exit 0, want a failure\nstdout: %s", strings.Join(args, " "), r.stdout)
	}
	return r.stderr
}

// demoEntry returns the demo entry with that DN.
func demoEntry(d demo.Demo, dn string) *ldap.AddRequest {
	for _, e := range d.Entries {
		if strings.EqualFold(e.DN, dn) {
			return e
		}
	}
	return nil
}

func entryValue(e *ldap.AddRequest, attr string) string {
	for _, a := range e.Attributes {
		if strings.EqualFold(a.Type, attr) && len(a.Vals) > 0 {
			return a.Vals[0]
		}
	}
	return ""
}

// demoMembers returns the direct member DNs of the demo group cn=<name>.
func demoMembers(d demo.Demo, name string) []string {
	e := demoEntry(d, "cn="+name+","+demo.GroupsDN)
	if e == nil {
		return nil
	}
	for _, a := range e.Attributes {
		if strings.EqualFold(a.Type, "member") {
			return a.Vals
		}
	}
	return nil
}

// demoMails returns the mail of each DN that is a user with a mail.
func demoMails(d demo.Demo, dns []string) []string {
	var out []string
	for _, dn := range dns {
		if e := demoEntry(d, dn); e != nil {
			if m := entryValue(e, "mail"); m != "" {
				out = append(out, m)
			}
		}
	}
	return out
}

// clip keeps logged output short.
func clip(s string) string {
	const max = 6000
	if len(s) > max {
		return s[:max] + "\n[... clipped]\n"
	}
	return s
}
