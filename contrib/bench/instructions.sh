#!/usr/bin/env bash
# Instructions havend executes per delivered message, counted by valgrind's callgrind: a
# measure of the message path's cost that, unlike messages/s, does not move with the load on
# the machine, the CPU's clock or the other process on the core. Use it to settle small A/B
# differences that run.sh's throughput numbers cannot (their run-to-run spread is ~10-25 %).
#
#   contrib/bench/instructions.sh [--clients N] [--rate R] [--policy S] BUILD_DIR [BUILD_DIR...]
#
# --policy S: the peer-support traffic (haven-bench --supporters S, 5 % of the members'
# messages to a functional address) against each build twice, with [peersupport] enabled =
# false and = true, so the two lines show what the policy costs per message.
#
# For each build dir (with havend, havenctl and contrib/bench/haven-bench built), in a new temp
# dir on loopback: N accounts, havend under callgrind, then two messaging runs of the same shape
# against two fresh servers, a short one and a long one (same clients, same offered rate). The
# difference of their instruction totals over the difference of their delivered messages is
# the cost of one message (receive, route, deliver: parse, policy hooks, serialise, TLS records
# both ways); start-up and logins are in both runs and cancel out. Prints one line per build.
# Bounded: every run has a time cap; processes are stopped by PID.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
# shellcheck source=contrib/bench/lib.sh
source "$here/lib.sh"
clients=50
rate=200
short_s=4
long_s=16
port=26222
password=bench-password
supporters=0

while [[ $# -gt 0 ]]; do
    case "$1" in
        --clients) clients="$2"; shift 2 ;;
        --rate) rate="$2"; shift 2 ;;
        --port) port="$2"; shift 2 ;;
        --policy) supporters="$2"; shift 2 ;;
        -h | --help) sed -n '2,15p' "$0"; exit 0 ;;
        *) break ;;
    esac
done
(($# > 0)) || { sed -n '2,15p' "$0" >&2; exit 2; }
command -v valgrind >/dev/null || { echo "instructions.sh: valgrind is not installed" >&2; exit 1; }

work=$(mktemp -d /tmp/haven-instr.XXXXXX)
srv_pid=""
cleanup() {
    if [[ -n $srv_pid ]] && kill -0 "$srv_pid" 2>/dev/null; then
        kill -KILL "$srv_pid" 2>/dev/null || true
    fi
}
trap cleanup EXIT
"$root/certs/make-dev-cert.sh" "$work" localhost >/dev/null

# One havend under callgrind; its totals line after a clean exit.
run_one() {  # BUILD DIR SECONDS -> prints "IR DELIVERED"
    local build="$1" dir="$2" secs="$3"
    rm -f "$dir/callgrind.out.$secs"
    (cd "$dir" && exec valgrind --tool=callgrind --callgrind-out-file="$dir/callgrind.out.$secs" \
        "$build/havend" --config "$dir/havend.toml" >>"$dir/havend.log" 2>&1) &
    srv_pid=$!
    local i
    for i in $(seq 1 600); do
        ss -Hltn "( sport = :$port )" | grep -q . && break
        kill -0 "$srv_pid" 2>/dev/null || { echo "havend died: $dir/havend.log" >&2; exit 1; }
        sleep 0.1
    done
    local traffic=()
    if ((supporters > 0)); then
        traffic=(--supporters "$supporters" --inquiry-percent 5
                 --functional-address team@localhost)
    fi
    timeout 300 "$build/contrib/bench/haven-bench" message --port "$port" --clients "$clients" \
        --users "$clients" --concurrency 10 --rate "$rate" --duration "$secs" --warmup 1 \
        --login-timeout 120 --password "$password" --server-pid "$srv_pid" \
        "${traffic[@]}" --max-seconds 280 >"$dir/bench.$secs.log" 2>&1 || true
    kill -TERM "$srv_pid"
    for i in $(seq 1 600); do
        kill -0 "$srv_pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$srv_pid" 2>/dev/null || true
    wait "$srv_pid" 2>/dev/null || true
    srv_pid=""
    local ir delivered
    ir=$(grep -m1 '^totals:' "$dir/callgrind.out.$secs" | awk '{print $2}')
    delivered=$(grep '^RESULT ' "$dir/bench.$secs.log" | grep -oE '"delivered":[0-9]+' |
        cut -d: -f2)
    [[ -n $ir && -n $delivered ]] || { echo "no result: $dir/bench.$secs.log" >&2; exit 1; }
    echo "$ir $delivered"
}

echo "instructions.sh: profiles in $work/*/callgrind.out.{$short_s,$long_s} (callgrind_annotate)" >&2
variants=(plain)
((supporters > 0)) && variants=(policy-off policy-on)
for build in "$@"; do
  for variant in "${variants[@]}"; do
    build="$(cd "$build" && pwd)"
    dir="$work/$(basename "$build")-$variant-$RANDOM"
    mkdir -p "$dir"
    bench_havend_config "$dir" "$work" "$port" >"$dir/havend.toml"
    if [[ $variant == plain ]]; then
        printf '[peersupport]\nenabled = false\n' >>"$dir/havend.toml"
    else
        staff=$(seq 0 $((supporters - 1)) | sed 's/.*/"bench&@localhost"/' | paste -sd,)
        cat >>"$dir/havend.toml" <<EOF
[peersupport]
enabled = $([[ $variant == policy-on ]] && echo true || echo false)
supporters = [$staff]
[functional_addresses]
addresses = [{jid = "team@localhost", name = "Team", staff = ["bench0@localhost"]}]
EOF
    fi
    bench_accounts "$build" "$dir/havend.toml" "$clients" "$password"
    read -r ir1 d1 < <(run_one "$build" "$dir" "$short_s")
    read -r ir2 d2 < <(run_one "$build" "$dir" "$long_s")
    ((d2 > d1)) || { echo "instructions.sh: no more messages in the long run" >&2; exit 1; }
    per=$(((ir2 - ir1) / (d2 - d1)))
    echo "$build ($variant): $per instructions per delivered message" \
        "($d1 and $d2 delivered; totals $ir1, $ir2)"
  done
done
