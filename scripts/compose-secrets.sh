#!/usr/bin/env bash
# Generates the secrets docker-compose.yml reads from ./.secrets (once; files that exist are
# kept). Values never appear in the compose file or in env.
#
# Compose (not swarm) bind-mounts each secret file as it is: the container sees the host file's
# owner and mode. So each file is 0400 and owned by the user of the containers that read it
# (internal/config/compose_test.go checks this against each service's `user:`):
#   USERSYNC_UID:USERSYNC_GID (.env; default 65532:65532, distroless "nonroot"): worker,
#     demo-setup, usersync-migrate and scim-sandbox (our images; compose sets their user);
#   1000:1000 ("temporal" of the temporalio/server and admin-tools images; compose sets it):
#     temporal_postgres_password, a copy of postgres_password for temporal and temporal-schema;
#   999:999 ("postgres" of the postgres image): postgres_password (its entrypoint reads it as
#     root, before it drops to postgres) and the usersync_*_password files (its init script
#     reads them as postgres);
#   osixia/openldap's startup runs as root and reads ldap_admin_password as root (root reads
#     any file), so that file belongs to demo-setup's user, its other reader.
# Giving files to other users takes root: run it with sudo.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then
  echo "compose-secrets.sh: run it as root (sudo $0): it gives each secret file to the user of the container that reads it" >&2
  exit 1
fi
umask 077
mkdir -p .secrets
chmod 0700 .secrets
gen() { head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n'; }
for name in postgres_password ldap_admin_password ldap_reader_password scim_token \
            usersync_owner_password usersync_worker_password usersync_admin_password; do
  [ -s ".secrets/$name" ] || printf '%s' "$(gen)" > ".secrets/$name"
done
# pgpass files (pgx reads PGPASSFILE): host:port:db:user:password. The worker's holds its role
# only; the starter's its role and the owner's (demo-setup runs `starter migrate` as it).
# Rewritten each time: they derive from the password files.
pgpass() { printf 'postgresql:5432:usersync:usersync_%s:%s\n' "$1" "$(cat ".secrets/usersync_$1_password")"; }
pgpass worker > .secrets/pgpass
{ pgpass admin; pgpass owner; } > .secrets/pgpass_admin
# Temporal's own copy of the database superuser's password (its containers run as another user
# than PostgreSQL's).
cat .secrets/postgres_password > .secrets/temporal_postgres_password
# The key that encrypts organizations' secrets in PostgreSQL: "<keyid> <base64 of 32 bytes>"
# (usersync refuses a key file others can read).
if [ ! -s .secrets/secrets.keys ]; then
  printf '%s-%s %s\n' "$(date -u +%Y%m%d)" "$(head -c 4 /dev/urandom | od -An -tx1 | tr -d ' \n')" \
    "$(head -c 32 /dev/urandom | base64 -w0)" > .secrets/secrets.keys
fi
# usersync's containers run as USERSYNC_UID/GID (.env, read by compose): written once.
[ -s .env ] || printf 'USERSYNC_UID=65532\nUSERSYNC_GID=65532\n' > .env
env_value() { sed -n "s/^$1=\([0-9][0-9]*\)\$/\1/p" .env | tail -n 1; }
uid="$(env_value USERSYNC_UID)" gid="$(env_value USERSYNC_GID)"
usersync="${uid:-65532}:${gid:-65532}"
give() { owner="$1"; shift; for f in "$@"; do chown "$owner" ".secrets/$f"; chmod 0400 ".secrets/$f"; done; }
give "$usersync" pgpass pgpass_admin ldap_admin_password ldap_reader_password scim_token secrets.keys
give 1000:1000 temporal_postgres_password
give 999:999 postgres_password usersync_owner_password usersync_worker_password usersync_admin_password
echo "secrets in $(pwd)/.secrets (usersync's services run as $usersync)"
