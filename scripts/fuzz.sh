#!/usr/bin/env bash
# Explores the fuzz targets (DN handling, directory entries, SCIM answers) for new inputs:
# `make fuzz`. A finding fails the run; its input is saved under the package's testdata/fuzz,
# where every later `go test` (and so `make test` and CI) runs it as a seed. Exploration is not
# part of `make test`: its inputs are random, and CI must answer the same for the same commit.
# The budget is a count of inputs, not a duration: with a duration, go1.26's fuzz coordinator
# can report its own deadline as a failure on a busy machine ("context deadline exceeded", no
# input saved: go.dev/issue/75804).
set -euo pipefail
cd "$(dirname "$0")/.."
fuzzlog=$(mktemp)
trap 'rm -f "$fuzzlog"' EXIT
for target in "FuzzNormalizeDN ./internal/rules" "FuzzSimpleDN ./internal/rules" \
  "FuzzUserOfEntry ./internal/directory" "FuzzParseUser ./internal/scim"; do
  set -- $target
  echo "fuzz: $1 ($2), ${USERSYNC_FUZZTIME:-2000000x} inputs"
  go test -run '^$' -fuzz "^$1\$" -fuzztime "${USERSYNC_FUZZTIME:-2000000x}" "$2" >"$fuzzlog" 2>&1 || {
    tail -n 30 "$fuzzlog" >&2
    echo "fuzz target $1 ($2) failed: rerun: go test -run '^$' -fuzz '^$1\$' $2" >&2; exit 1; }
done
