#!/usr/bin/env bash
# Starts the demo stack under ./.stack (see `go run ./internal/devstack/cmd/devstack help`).
# Extra arguments go to `devstack up`, e.g. --infra-only, or --directory samba (a Samba AD DC
# instead of OpenLDAP; also DEMO_DIRECTORY=samba).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec go run ./internal/devstack/cmd/devstack up "$@"
