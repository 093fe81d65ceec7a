#!/usr/bin/env bash
# Runs every test, integration tests included: with USERSYNC_REQUIRE_INTEGRATION=1
# a test whose server binary is missing fails instead of skipping.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
# The fuzz targets run briefly first (their seed corpora also run with every test below):
# DN handling, directory entries, SCIM answers. A finding fails the run; its input is saved
# under the package's testdata/fuzz. The budget is a count of inputs, not a duration: with a
# duration, go1.26's fuzz coordinator can report its own deadline as a failure on a busy
# machine ("context deadline exceeded", no input saved: go.dev/issue/75804).
fuzzlog=$(mktemp)
trap 'rm -f "$fuzzlog"' EXIT
for target in "FuzzNormalizeDN ./internal/rules" "FuzzSimpleDN ./internal/rules" \
  "FuzzUserOfEntry ./internal/directory" "FuzzParseUser ./internal/scim"; do
  set -- $target
  go test -run '^$' -fuzz "^$1\$" -fuzztime "${USERSYNC_FUZZTIME:-200000x}" "$2" >"$fuzzlog" 2>&1 || {
    tail -n 30 "$fuzzlog" >&2
    echo "fuzz target $1 ($2) failed: rerun: go test -run '^$' -fuzz '^$1\$' $2" >&2; exit 1; }
done
rm -f "$fuzzlog"
# go test's summary is the last thing printed.
USERSYNC_REQUIRE_INTEGRATION=1 exec go test -count=1 -timeout 80m ./...
