package e2e

import (
	"context"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/usersync/usersync/internal/devstack/devstacktest"
	"github.com/usersync/usersync/internal/store"
)

// Compose's PostgreSQL init script, run against a local server as the image would run it:
// usersync's roles get their passwords from the secrets, the database belongs to the owner,
// the owner migrates, the worker's role appends to the history and may not change it.
func TestComposePostgresInitScript(t *testing.T) {
	if _, err := exec.LookPath("psql"); err != nil {
		devstacktest.SkipUnlessRequired(t, "psql not installed: %v", err)
	}
	admin, err := url.Parse(devstacktest.Database(t))
	require.NoError(t, err)
	db := strings.TrimPrefix(admin.Path, "/") + "_compose" // unique per test
	secrets := t.TempDir()
	for _, role := range []string{"owner", "worker", "admin"} {
		require.NoError(t, os.WriteFile(filepath.Join(secrets, "usersync_"+role+"_password"), []byte("pw-"+role+"-x'y"), 0o600))
	}
	cmd := exec.Command("sh", "../../scripts/compose-postgres-init.sh")
	cmd.Env = append(os.Environ(), "PGHOST="+admin.Hostname(), "PGPORT="+admin.Port(), "POSTGRES_USER="+admin.User.Username(),
		"USERSYNC_ROLES_SQL=../store/roles.sql", "USERSYNC_SECRETS_DIR="+secrets, "USERSYNC_DB="+db)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	require.NotContains(t, string(out), "pw-", "no password printed")

	ctx := context.Background()
	superuser, err := store.Open(ctx, admin.String())
	require.NoError(t, err)
	t.Cleanup(superuser.Close) // after the drop below (cleanups run last first)
	var owner string
	require.NoError(t, superuser.Pool().QueryRow(ctx,
		`SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = $1`, db).Scan(&owner))
	require.Equal(t, store.OwnerRole, owner)
	for _, role := range []string{store.OwnerRole, store.WorkerRole, store.AdminRole} {
		var hasPassword bool
		require.NoError(t, superuser.Pool().QueryRow(ctx,
			`SELECT rolpassword IS NOT NULL FROM pg_authid WHERE rolname = $1`, role).Scan(&hasPassword))
		require.True(t, hasPassword, "%s has no password", role)
	}

	as := func(role string) string {
		u := *admin
		u.User = url.User(role)
		u.Path = "/" + db
		return u.String()
	}
	t.Cleanup(func() {
		_, _ = superuser.Pool().Exec(context.Background(), `DROP DATABASE IF EXISTS `+db+` WITH (FORCE)`)
	})
	require.NoError(t, store.Migrate(ctx, as(store.OwnerRole)))
	worker, err := store.Open(ctx, as(store.WorkerRole))
	require.NoError(t, err)
	defer worker.Close()
	_, err = worker.Pool().Exec(ctx, `INSERT INTO history (org, actor, type, action, status) VALUES ('acme', 'alice', 'switch', 'enable', 'ok')`)
	require.NoError(t, err)
	_, err = worker.Pool().Exec(ctx, `DELETE FROM history`)
	require.ErrorContains(t, err, "permission denied")
}
