package main

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/go-ldap/ldap/v3"
	"github.com/stretchr/testify/require"

	"github.com/usersync/usersync/internal/demo"
	"github.com/usersync/usersync/internal/devstack"
	"github.com/usersync/usersync/internal/devstack/devstacktest"
)

// compose's demo-setup: load-directory also adds the worker's read-only service account,
// whose password (from its file) then binds.
func TestLoadDirectoryAddsTheReaderAccount(t *testing.T) {
	if _, err := os.Stat(devstack.SlapdBinary); err != nil {
		devstacktest.SkipUnlessRequired(t, "slapd not installed: %v", err)
	}
	admin := "cn=admin," + demo.Suffix
	s := &devstack.Slapd{Dir: t.TempDir(), Suffix: demo.Suffix, AdminDN: admin, AdminPassword: "admin-pw"}
	require.NoError(t, s.Start(context.Background()))
	t.Cleanup(func() { _ = s.Stop() })
	pwFile := filepath.Join(t.TempDir(), "ldap_reader_password")
	require.NoError(t, os.WriteFile(pwFile, []byte("reader-pw\n"), 0o600))
	t.Setenv("LDAP_BIND_PASSWORD", "admin-pw")
	t.Setenv("LDAP_READER_PASSWORD", "")
	t.Setenv("LDAP_READER_PASSWORD_FILE", pwFile)
	reader := "cn=usersync-reader," + demo.Suffix
	require.NoError(t, loadDirectory(context.Background(), []string{"--ldap-url", s.URL(), "--bind-dn", admin, "--reader-dn", reader}))

	c, err := ldap.DialURL(s.URL())
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.Bind(reader, "reader-pw"))
	require.Error(t, c.Bind(reader, "wrong"))
}
