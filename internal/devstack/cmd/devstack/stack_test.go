package main

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

func TestSecretIsGeneratedOnceAndPrivate(t *testing.T) {
	s := &stack{dir: t.TempDir()}
	first, err := s.secret("scim_token")
	if err != nil {
		t.Fatal(err)
	}
	if len(first) < 32 {
		t.Fatalf("secret %q is too short to be a token", first)
	}
	again, err := s.secret("scim_token")
	if err != nil {
		t.Fatal(err)
	}
	if again != first {
		t.Fatal("second `up` generated a new secret: running services would no longer match")
	}
	st, err := os.Stat(s.secretFile("scim_token"))
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("secret file mode %v, want 0600", st.Mode().Perm())
	}
	b, _ := os.ReadFile(s.secretFile("scim_token"))
	if string(b) != first {
		t.Fatalf("secret file holds %q, want exactly the secret (tools read it verbatim)", b)
	}
}

func TestEnvFileExportsTheWorkerConfigurationWithoutSecrets(t *testing.T) {
	s := &stack{dir: t.TempDir(), org: "demo", temporalPort: 7233, uiPort: 8233, postgresPort: 55432, ldapPort: 3389, scimPort: 8090}
	token, err := s.secret("scim_token")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.writeEnvFile(); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(s.path("env"))
	if strings.Contains(string(b), token) {
		t.Fatal("env file contains the SCIM token itself")
	}
	cmd := exec.Command("sh", "-c", `. "$1" && echo "$DATABASE_URL|$SCIM_TOKEN_FILE|$LDAP_BASE_DN|$USERSYNC_ORG"`, "sh", s.path("env"))
	cmd.Env = []string{"PATH=/usr/bin:/bin"}
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("sourcing the env file: %v", err)
	}
	want := "postgres://usersync_admin@127.0.0.1:55432/usersync?sslmode=disable|" + s.secretFile("scim_token") + "|dc=example,dc=com|demo\n"
	if string(out) != want {
		t.Fatalf("after sourcing: %q, want %q", out, want)
	}
}

// --directory (DEMO_DIRECTORY) picks the demo's directory; without it the stack keeps the one
// it was started with, so that status and down find its DC; a bad value is named.
func TestDirectoryIsTheFlagElseTheStacksLast(t *testing.T) {
	dir := t.TempDir()
	s := &stack{dir: dir}
	if err := s.resolve(); err != nil || s.directory != directoryOpenLDAP {
		t.Fatalf("new stack: directory %q, %v; want openldap", s.directory, err)
	}
	if err := os.WriteFile(s.path("directory"), []byte("samba\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	s = &stack{dir: dir}
	if err := s.resolve(); err != nil || s.directory != directorySamba {
		t.Fatalf("stack started with samba: directory %q, %v", s.directory, err)
	}
	env := strings.Join(s.appEnv("usersync_worker"), "\n")
	for _, want := range []string{"LDAP_PROFILE=ad", "LDAP_URL=ldaps://127.0.0.1:636", "LDAP_CA_FILE=" + s.path("samba", "tls", "ca.pem")} {
		if !strings.Contains(env, want) {
			t.Errorf("samba stack's environment lacks %s:\n%s", want, env)
		}
	}
	s = &stack{dir: dir, directory: "ldap"}
	if err := s.resolve(); err == nil || !strings.Contains(err.Error(), `"ldap"`) || !strings.Contains(err.Error(), "--directory") {
		t.Fatalf("bad directory: %v", err)
	}
}
