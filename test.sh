#!/usr/bin/env bash
# Installs deps, builds, and runs the test suite; extra args go to ctest (e.g. ./test.sh -L unit).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

scripts/install-deps.sh
scripts/build.sh
status=0
ctest --test-dir build --output-on-failure -j2 "$@" || status=$?
# The full run (no ctest arguments, as .ci/run does) ends with the short sanitizer fuzz step
# (tests/fuzz/README.md); ctest's status wins when both fail. HAVEN_SKIP_FUZZ=1 skips it.
if (($# == 0)) && [[ -z "${HAVEN_SKIP_FUZZ:-}" ]]; then
    fuzz_status=0
    scripts/fuzz.sh 45 || fuzz_status=$?
    if ((status == 0)); then
        status=$fuzz_status
    fi
fi
exit "$status"
