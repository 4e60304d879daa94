#!/usr/bin/env bash
# Configures (Ninja, Release) and builds Haven into build/; extra args go to cmake --build.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if [[ -f build/CMakeCache.txt ]]; then
    # Re-running with -G on a tree configured by another generator is an error; keep its choice.
    cmake -S . -B build
else
    cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release
fi
cmake --build build -j "$(nproc)" "$@"
