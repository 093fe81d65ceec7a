#!/usr/bin/env bash
# Installs what the dev stack and the integration tests need, on Debian or
# Ubuntu: slapd + ldap-utils, PostgreSQL, and the Temporal CLI. Safe to re-run:
# it installs only what is missing. Needs Go (see go.mod) on PATH.
set -euo pipefail
cd "$(dirname "$0")/.."

sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then sudo_cmd=(sudo); fi

have_pg_server() {
  compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || command -v initdb >/dev/null
}

missing=()
[ -x /usr/sbin/slapd ] || command -v slapd >/dev/null || missing+=(slapd)
command -v ldapsearch >/dev/null || missing+=(ldap-utils)
have_pg_server || missing+=(postgresql)

if [ "${#missing[@]}" -gt 0 ]; then
  if ! command -v apt-get >/dev/null; then
    echo "setup: please install ${missing[*]} (no apt-get on this machine)" >&2
    exit 1
  fi
  echo "setup: installing ${missing[*]}"
  "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  # The packages may start their system services (slapd on 389, PostgreSQL
  # on 5432); the dev stack uses its own instances and ports, so they can stay.
  "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if ! command -v go >/dev/null; then
  echo "setup: Go is not on PATH; install the version go.mod names" >&2
  exit 1
fi

temporal_version=v1.5.1
if ! command -v temporal >/dev/null && [ ! -x "$(go env GOPATH)/bin/temporal" ]; then
  echo "setup: building the Temporal CLI $temporal_version (go install; a cold build takes about 14 minutes)"
  go install "github.com/temporalio/cli/cmd/temporal@$temporal_version"
fi
