#!/usr/bin/env bash
# Runs every test, integration tests included: with USERSYNC_REQUIRE_INTEGRATION=1
# a test whose server binary is missing fails instead of skipping.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
# The fuzz targets' seed corpora (testdata/fuzz: every input a past exploration found) run as
# ordinary tests below; exploring for new inputs is random, so it is `make fuzz`, not this.
# go test's summary is the last thing printed.
USERSYNC_REQUIRE_INTEGRATION=1 exec go test -count=1 -timeout 80m ./...
