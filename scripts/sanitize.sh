#!/usr/bin/env bash
# Builds everything (havend, havenctl, unit, e2e and fuzz-replay tests) with ASan/UBSan into
# build-asan/ and runs the whole ctest suite under the sanitizers. Extra args go to ctest.
# Uses the default compiler (gcc on Debian); CXX=clang++ works too.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

build=build-asan
if [[ ! -f $build/CMakeCache.txt ]]; then
    launcher=()
    if command -v ccache >/dev/null 2>&1; then
        launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
    fi
    cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DHAVEN_SANITIZE=ON \
        -DHAVEN_BENCH=OFF "${launcher[@]}"
fi
cmake --build "$build" -j "${SANITIZE_BUILD_JOBS:-$(nproc)}"

# Every report fails its test: UBSan aborts like ASan (-fno-sanitize-recover in the build too).
# havend children inherit these through ctest's environment.
export ASAN_OPTIONS="${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1:strict_string_checks=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}"
# ASan keeps freed memory in quarantine (to catch use-after-free), so resident-memory bounds in the
# tests mean nothing here: tests that measure RSS skip those assertions when this is set.
export HAVEN_SANITIZED=1
exec ctest --test-dir "$build" --output-on-failure -j2 "$@"
