#!/usr/bin/env bash
# Generates the secrets docker-compose.yml reads from ./.secrets (once; files
# that exist are kept). Values never appear in the compose file or in env.
set -euo pipefail
cd "$(dirname "$0")/.."
umask 077
mkdir -p .secrets
gen() { head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n'; }
for name in postgres_password ldap_admin_password scim_token; do
  [ -s ".secrets/$name" ] || printf '%s' "$(gen)" > ".secrets/$name"
done
# pgpass for the worker and starter (pgx reads PGPASSFILE): host:port:db:user:password
[ -s .secrets/pgpass ] || printf '*:*:*:postgres:%s\n' "$(cat .secrets/postgres_password)" > .secrets/pgpass
# Compose bind-mounts these files: the containers' non-root users must read
# them. The 0700 folder keeps other users of this machine out.
chmod 0644 .secrets/*
echo "secrets in $(pwd)/.secrets"
