#!/usr/bin/env bash
# A long fuzz run measured in CPU time, not wall time (libFuzzer's -max_total_time is wall time):
#   tests/fuzz/long_run.sh HARNESS CPU_MINUTES [STOP_AT_EPOCH] [BINARY]
# Runs BINARY (default build-fuzz/tests/fuzz/HARNESS) in chunks of 5 wall minutes at nice 19 until the
# harness has used CPU_MINUTES of CPU or the clock reaches STOP_AT_EPOCH, over a scratch copy of
# the committed corpus (build-fuzz/long/HARNESS/corpus). Crashes do not end the run
# (-fork=1 -ignore_crashes=1); they are saved in build-fuzz/long/HARNESS/artifacts/.
# Progress, CPU seconds and executions go to build-fuzz/long/HARNESS/summary.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

h=$1
target_s=$(($2 * 60))
stop_at=${3:-0}
bin=${4:-build-fuzz/tests/fuzz/$h}
dir=build-fuzz/long/$h
mkdir -p "$dir/corpus" "$dir/artifacts"
cp -n tests/fuzz/corpus/"$h"/* "$dir/corpus/" 2>/dev/null || true
dict=()
case $h in
    fuzz_stanza | fuzz_stream) dict=(-dict=tests/fuzz/stanza.dict) ;;
esac
export ASAN_OPTIONS="abort_on_error=1:detect_leaks=1"
export UBSAN_OPTIONS="halt_on_error=1:abort_on_error=1:print_stacktrace=1"

cpu=0
execs=0
chunk=0
echo "start $(date -u +%FT%TZ) commit $(git rev-parse --short HEAD) binary $bin" >"$dir/summary"
while ((cpu < target_s)); do
    if ((stop_at > 0 && $(date +%s) + 60 > stop_at)); then
        echo "stopped by the deadline" >>"$dir/summary"
        break
    fi
    chunk=$((chunk + 1))
    log=$dir/chunk-$chunk.log
    # %U+%S of the fuzzer and its children (fork mode runs the inputs in a child).
    /usr/bin/time -f "%U %S" -o "$dir/time" nice -n 19 "$bin" -fork=1 -ignore_crashes=1 \
        -ignore_timeouts=1 -ignore_ooms=1 -max_total_time=300 -timeout=10 -rss_limit_mb=2048 \
        -max_len=16384 -print_final_stats=1 -artifact_prefix="$dir/artifacts/" "${dict[@]}" \
        "$dir/corpus" >"$log" 2>&1
    read -r user sys <"$dir/time" || true
    cpu=$((cpu + ${user%.*} + ${sys%.*}))
    n=$(grep -oE 'exec/s: [0-9]+' "$log" | tail -1 | grep -oE '[0-9]+' || echo 0)
    runs=$(grep -oE '#[0-9]+' "$log" | tail -1 | tr -d '#' || echo 0)
    execs=$((execs + ${runs:-0}))
    crashes=$(ls "$dir/artifacts" | wc -l)
    echo "chunk $chunk: cpu_s_total=$cpu execs_total=$execs exec_per_s=$n corpus=$(ls "$dir/corpus" | wc -l) artifacts=$crashes" >>"$dir/summary"
done
echo "end $(date -u +%FT%TZ) cpu_minutes=$((cpu / 60)) execs=$execs" >>"$dir/summary"
