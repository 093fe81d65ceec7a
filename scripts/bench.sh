#!/usr/bin/env bash
# Benchmark on the real local stack; prints a table (see README, "Benchmarks").
# Usage: scripts/bench.sh [-n 1000,10000,100000] [-rate 10]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec go run ./internal/bench/cmd/usersync-bench "$@"
