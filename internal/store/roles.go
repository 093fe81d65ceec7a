package store

import (
	"context"
	_ "embed"
	"fmt"
	"net/url"

	"github.com/jackc/pgx/v5"
)

// RolesSQL creates usersync's database roles (roles.sql): run it as a superuser once per
// server, before the first migration.
//
//go:embed roles.sql
var RolesSQL string

// The roles of roles.sql; migration 025_least_privilege.sql grants them what they need.
const (
	OwnerRole  = "usersync_owner"  // owns the schema, runs the migrations
	WorkerRole = "usersync_worker" // the worker
	AdminRole  = "usersync_admin"  // the starter CLI
)

// SetupRoles runs roles.sql on the server of superuserURL and hands database db to the owner
// role, as the local stack and the tests do (compose: scripts/compose-postgres-init.sh).
func SetupRoles(ctx context.Context, superuserURL, db string) error {
	conn, err := pgx.Connect(ctx, superuserURL)
	if err != nil {
		return fmt.Errorf("database roles: %w", redact(err))
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, RolesSQL); err != nil {
		return fmt.Errorf("database roles: %w", err)
	}
	if _, err := conn.Exec(ctx, "ALTER DATABASE "+pgx.Identifier{db}.Sanitize()+" OWNER TO "+OwnerRole); err != nil {
		return fmt.Errorf("database roles: database %s: %w", db, err)
	}
	return nil
}

// RoleURL is url with its user set to role and no password (for servers that authenticate
// otherwise: trust on loopback, a pgpass file, certificates).
func RoleURL(raw, role string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("database url: not a URL") // the URL may hold a password: not printed
	}
	u.User = url.User(role)
	return u.String(), nil
}
