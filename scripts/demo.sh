#!/usr/bin/env bash
# Starts the demo stack under ./.stack (see `go run ./internal/devstack/cmd/devstack help`).
# Extra arguments go to `devstack up`, e.g. --infra-only.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec go run ./internal/devstack/cmd/devstack up "$@"
