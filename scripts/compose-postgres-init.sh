#!/bin/sh
# PostgreSQL's first start in docker compose (/docker-entrypoint-initdb.d, as the superuser):
# usersync's roles (internal/store/roles.sql) with their passwords from the secrets, and the
# usersync database owned by usersync_owner, apart from Temporal's databases. The migrations
# then run as the owner (`starter migrate` in demo-setup); migration 025 grants the worker and
# the starter their DML. Paths and names can be overridden for the test
# (internal/e2e/compose_test.go).
set -eu
roles_sql="${USERSYNC_ROLES_SQL:-/usersync/roles.sql}"
secrets="${USERSYNC_SECRETS_DIR:-/run/secrets}"
db="${USERSYNC_DB:-usersync}"
run() { psql -v ON_ERROR_STOP=1 -q --username "$POSTGRES_USER" --dbname postgres "$@"; }

run -f "$roles_sql"
for role in owner worker admin; do
  # psql reads the file itself (\set with backquotes): the password is on no command line.
  run <<SQL
\\set pw \`cat '$secrets/usersync_${role}_password'\`
ALTER ROLE usersync_${role} PASSWORD :'pw';
SQL
done
run <<SQL
CREATE DATABASE "$db" OWNER usersync_owner;
REVOKE ALL ON DATABASE "$db" FROM PUBLIC;
GRANT CONNECT ON DATABASE "$db" TO usersync_owner, usersync_worker, usersync_admin;
SQL
