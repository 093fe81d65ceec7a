#!/usr/bin/env bash
# Installs what the dev stack and the integration tests need, on Debian or
# Ubuntu: slapd + ldap-utils, PostgreSQL, the Temporal CLI, node + npm with
# the packages of the SCIMMY test server (scripts/scimmy), and Chromium with
# playwright-core for the browser test (scripts/uitest). Safe to re-run: it
# installs only what is missing. Needs Go (see go.mod) on PATH.
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
command -v chromium >/dev/null || missing+=(chromium) # the browser test drives the Temporal UI in it

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

# The SCIMMY test server: its packages, as pinned by its package-lock.json,
# reinstalled when the lock file is newer than node_modules.
scimmy_dir=scripts/scimmy
if [ ! -d "$scimmy_dir/node_modules" ] || [ "$scimmy_dir/package-lock.json" -nt "$scimmy_dir/node_modules" ]; then
  if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    if ! command -v apt-get >/dev/null; then
      echo "setup: the SCIMMY test server needs node (18 or later) and npm; please install them (no apt-get on this machine)" >&2
      exit 1
    fi
    echo "setup: node or npm is missing (the SCIMMY test server needs them); installing nodejs npm"
    "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
  fi
  if ! node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 18 ? 0 : 1)'; then
    echo "setup: the SCIMMY test server needs node 18 or later, this is $(node --version); install a newer one (e.g. from nodejs.org)" >&2
    exit 1
  fi
  echo "setup: installing the SCIMMY test server's packages (npm ci in $scimmy_dir)"
  npm ci --prefix "$scimmy_dir" --no-audit --no-fund
  touch "$scimmy_dir/node_modules" # npm ci may keep an old directory's time
fi

# The browser test's Playwright (internal/e2e/ui_test.go runs scripts/uitest/retry.mjs), as
# pinned by its package-lock.json; the browser is the system's chromium, nothing downloaded.
uitest_dir=scripts/uitest
if [ ! -d "$uitest_dir/node_modules/playwright-core" ] || [ "$uitest_dir/package-lock.json" -nt "$uitest_dir/node_modules" ]; then
  echo "setup: installing the browser test's packages (npm ci in $uitest_dir)"
  npm ci --prefix "$uitest_dir" --no-audit --no-fund
  touch "$uitest_dir/node_modules"
fi

# The Samba AD domain controller of the Active Directory integration tests
# (internal/devstack/samba.go): the tests provision a throwaway domain and run
# samba themselves, as root, on 127.0.0.1:389 and :636, one at a time.
samba_missing=()
[ -x /usr/sbin/samba ] || samba_missing+=(samba)
command -v samba-tool >/dev/null || samba_missing+=(samba-common-bin)
[ -d /usr/share/samba/setup ] || samba_missing+=(samba-ad-provision)
compgen -G '/usr/lib/*/samba/ldb/samba_dsdb.so' >/dev/null || samba_missing+=(samba-dsdb-modules)
if [ "${#samba_missing[@]}" -gt 0 ]; then
  if ! command -v apt-get >/dev/null; then
    echo "setup: the Samba AD tests need ${samba_missing[*]}; please install them (no apt-get on this machine)" >&2
    exit 1
  fi
  samba_missing+=(samba-ad-dc winbind)
  echo "setup: installing ${samba_missing[*]} (the Samba AD DC of the AD tests)"
  "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  # The package's own services do not serve AD (no domain is provisioned) and do not use 389.
  "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${samba_missing[@]}" >/dev/null
fi
for port in 389 636; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "setup: warning: something listens on 127.0.0.1:$port (the system slapd?); the Samba AD tests need" \
      "ports 389 and 636 free (e.g. sudo systemctl disable --now slapd)" >&2
  fi
done
