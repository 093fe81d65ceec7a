#!/usr/bin/env bash
# Generates the secrets docker-compose.yml reads from ./.secrets (once; files
# that exist are kept). Values never appear in the compose file or in env.
set -euo pipefail
cd "$(dirname "$0")/.."
umask 077
mkdir -p .secrets
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
# Compose bind-mounts these files: the containers' non-root users must read
# them. The 0700 folder keeps other users of this machine out.
chmod 0644 .secrets/*
# The key that encrypts organizations' secrets in PostgreSQL: "<keyid> <base64 of 32 bytes>",
# 0600 (usersync refuses a key file others can read). The worker and the starter run as this
# user (USERSYNC_UID/GID in .env, read by compose) so that they can read it.
if [ ! -s .secrets/secrets.keys ]; then
  printf '%s-%s %s\n' "$(date -u +%Y%m%d)" "$(head -c 4 /dev/urandom | od -An -tx1 | tr -d ' \n')" \
    "$(head -c 32 /dev/urandom | base64 -w0)" > .secrets/secrets.keys
fi
chmod 0600 .secrets/secrets.keys
[ -s .env ] || printf 'USERSYNC_UID=%s\nUSERSYNC_GID=%s\n' "$(id -u)" "$(id -g)" > .env
echo "secrets in $(pwd)/.secrets"
