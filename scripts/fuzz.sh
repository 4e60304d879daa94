#!/usr/bin/env bash
# Builds the libFuzzer harnesses (clang, ASan/UBSan) into build-fuzz/ and runs each for a bounded
# time: scripts/fuzz.sh [SECONDS_PER_HARNESS] [HARNESS...]   (default 60 s, every harness).
# Fails on any crash, sanitizer report, leak or timeout and says where the reproducer is.
# New inputs go to build-fuzz/corpus-new/<harness>/, never into the committed corpus
# (tests/fuzz/corpus/<harness>/): it only grows deliberately (tests/fuzz/README.md).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

seconds="${1:-60}"
shift || true
harnesses=("$@")
if ((${#harnesses[@]} == 0)); then
    harnesses=(fuzz_stream fuzz_stanza fuzz_sasl fuzz_tls_records)
fi
build=build-fuzz
jobs="${FUZZ_BUILD_JOBS:-$(nproc)}"

if ! command -v clang++ >/dev/null 2>&1; then
    echo "fuzz.sh: clang++ not found (scripts/install-deps.sh installs clang)" >&2
    exit 1
fi
if [[ ! -f $build/CMakeCache.txt ]]; then
    launcher=()
    if command -v ccache >/dev/null 2>&1; then
        launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
    fi
    CC=clang CXX=clang++ cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
        -DHAVEN_FUZZ=ON -DHAVEN_BENCH=OFF "${launcher[@]}"
fi
cmake --build "$build" -j "$jobs" --target "${harnesses[@]}"

# halt_on_error: UBSan reports abort like ASan ones, so libFuzzer saves the input and stops.
export ASAN_OPTIONS="${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1:symbolize=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-halt_on_error=1:abort_on_error=1:print_stacktrace=1}"

failed=()
for h in "${harnesses[@]}"; do
    corpus=tests/fuzz/corpus/$h
    scratch=$build/corpus-new/$h
    artifacts=$build/artifacts/$h/
    mkdir -p "$corpus" "$scratch" "$artifacts"
    # A fixed seed (FUZZ_SEED, default 1) makes the short CI run repeatable: on a given
    # corpus it tries the same mutations in the same order, so what passed before a submission
    # passes in CI; long runs (tests/fuzz/long_run.sh) explore with random seeds.
    args=(-seed="${FUZZ_SEED:-1}" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048
          -max_len=16384
          -print_final_stats=1 -artifact_prefix="$artifacts")
    case $h in
        fuzz_stanza | fuzz_stream) args+=(-dict=tests/fuzz/stanza.dict) ;;
    esac
    log=$build/$h.log
    echo "fuzz.sh: $h for ${seconds}s (log $log)"
    # The scratch dir comes first: libFuzzer writes new inputs to the first corpus dir only.
    if "$build/tests/fuzz/$h" "${args[@]}" "$scratch" "$corpus" >"$log" 2>&1; then
        grep -E '^(stat::number_of_executed_units|stat::new_units_added)' "$log" | tr '\n' ' '
        echo
    else
        echo "fuzz.sh: $h FAILED; last lines of $log:" >&2
        tail -n 40 "$log" >&2
        for f in "$artifacts"*; do
            [[ -e $f ]] || continue
            echo "fuzz.sh: reproducer: $f  (replay: $build/tests/fuzz/$h $f)" >&2
        done
        failed+=("$h")
    fi
done

if ((${#failed[@]} > 0)); then
    echo "fuzz.sh: failed: ${failed[*]}" >&2
    exit 1
fi
echo "fuzz.sh: all harnesses ran ${seconds}s without a report"
