#!/usr/bin/env bash
# Heap bytes one idle connection keeps in havend, measured exactly: RSS per connection (run.sh's
# idle scenario) moves by ~2 KiB between runs of the same binary, which hides a 3 % change.
#
#   contrib/bench/idle_heap.sh [--clients N] BUILD_DIR [BUILD_DIR...]
#
# For each build (havend, havenctl, contrib/bench/haven-bench), in a new temp dir on loopback:
# N accounts (default 400), havend under valgrind's massif with mimalloc's malloc replaced
# (--soname-synonyms), a detailed heap snapshot before the clients connect and one after they
# have been quiet for 40 s (past [c2s] hibernate_after_s, so parsers and TLS state are given
# back); prints (heap at idle - heap before) / N. Bytes requested, not the allocator's size
# classes: see RESULTS.md for how they map to resident memory. Bounded in time; processes are
# stopped by PID.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
# shellcheck source=contrib/bench/lib.sh
source "$here/lib.sh"
clients=400
port=27222
password=bench-password
while [[ $# -gt 0 ]]; do
    case "$1" in
        --clients) clients="$2"; shift 2 ;;
        --port) port="$2"; shift 2 ;;
        -h | --help) sed -n '2,13p' "$0"; exit 0 ;;
        *) break ;;
    esac
done
(($# > 0)) || { sed -n '2,13p' "$0" >&2; exit 2; }
command -v valgrind >/dev/null || { echo "idle_heap.sh: valgrind is not installed" >&2; exit 1; }

work=$(mktemp -d /tmp/haven-heap.XXXXXX)
pids=()
cleanup() {
    for p in "${pids[@]}"; do
        kill -KILL "$p" 2>/dev/null || true
    done
}
trap cleanup EXIT
"$root/certs/make-dev-cert.sh" "$work" localhost >/dev/null

heap_of() {  # SNAPSHOT -> "requested extra"
    awk -F= '/^mem_heap_B=/{h=$2} /^mem_heap_extra_B=/{x=$2} END{print h, x}' "$1"
}

for build in "$@"; do
    build="$(cd "$build" && pwd)"
    dir="$work/$(basename "$build")-$RANDOM"
    mkdir -p "$dir"
    bench_havend_config "$dir" "$work" "$port" >"$dir/havend.toml"
    printf '[peersupport]\nenabled = false\n' >>"$dir/havend.toml"
    bench_accounts "$build" "$dir/havend.toml" "$clients" "$password"
    (cd "$dir" && exec valgrind --tool=massif --soname-synonyms=somalloc='libmimalloc.so*' \
        --massif-out-file="$dir/massif.out" --vgdb=yes "$build/havend" \
        --config "$dir/havend.toml" >"$dir/havend.log" 2>&1) &
    srv=$!
    pids+=("$srv")
    for _ in $(seq 1 600); do
        ss -Hltn "( sport = :$port )" | grep -q . && break
        sleep 0.1
    done
    sleep 3
    vgdb --pid="$srv" detailed_snapshot "$dir/before.snap" >/dev/null 2>&1
    "$build/contrib/bench/haven-bench" idle --port "$port" --clients "$clients" \
        --users "$clients" --concurrency 10 --password "$password" --duration 90 --settle 100 \
        --login-timeout 200 --max-seconds 300 >"$dir/bench.log" 2>&1 &
    gen=$!
    pids+=("$gen")
    sleep 75  # logins under valgrind take ~10 s; then 40 s and more of quiet
    vgdb --pid="$srv" detailed_snapshot "$dir/idle.snap" >/dev/null 2>&1
    kill -TERM "$gen" 2>/dev/null || true
    kill -TERM "$srv" 2>/dev/null || true
    wait "$srv" 2>/dev/null || true
    wait "$gen" 2>/dev/null || true
    read -r b0 bx < <(heap_of "$dir/before.snap")
    read -r i0 ix < <(heap_of "$dir/idle.snap")
    echo "$build: $(((i0 - b0) / clients)) heap bytes requested per idle connection" \
        "($(((i0 + ix - b0 - bx) / clients)) with massif's allocator overhead; snapshots in $dir)"
done
