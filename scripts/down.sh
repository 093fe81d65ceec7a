#!/usr/bin/env bash
# Stops the demo stack. --purge also deletes ./.stack (data, logs, secrets).
set -euo pipefail
cd "$(dirname "$0")/.."
exec go run ./internal/devstack/cmd/devstack down "$@"
