#!/usr/bin/env bash
# Installs deps, builds, and runs the test suite; extra args go to ctest (e.g. ./test.sh -L unit).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

scripts/install-deps.sh
scripts/build.sh
exec ctest --test-dir build --output-on-failure -j2 "$@"
