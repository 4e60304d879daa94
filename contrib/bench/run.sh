#!/usr/bin/env bash
# Runs the haven-bench scenarios against havend and, with --compare, against Prosody and ejabberd
# from Debian, side by side in one run, and writes a markdown table of medians.
#
# Everything runs on loopback, in a temporary directory, as foreground processes this script
# starts and stops by PID. Every load run is bounded in clients and seconds.
#
#   contrib/bench/run.sh                 # havend only, default sizes, 3 runs
#   contrib/bench/run.sh --compare       # havend, Prosody 0.12 and ejabberd 23.01
#   contrib/bench/run.sh --quick         # 100 clients, 5 s, 1 run: a smoke test
#   contrib/bench/run.sh --help          # every option
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
orig_args=("$@")

# ---- defaults ----
servers="havend"
scenarios="login rate max idle capacity"
runs=3
build_dir=/tmp/build-bench
build=1
work=""
out=""
nice_level=-10
login_users=1000
login_conc=100
login_secs=10
msg_clients=1000
msg_secs=10
windows="4 16"
# policy: supporters among the --msg-clients (1000 clients: 50 supporters of 19 members each) and
# the share of members' messages that are inquiries to the functional address.
policy_supporters=50
policy_inquiry_pct=5
functional_address="team@localhost"
rates="1000 3000"
# muc: ROOMSxOCCUPANTS layouts; each is run at muc_rate room messages/s and at max rate
muc_layouts="50x20 5x200"
muc_rate=1000
idle_clients=5000
capacity_clients=15000
# Seconds the idle connections sit before RSS is read. An idle connection is one that has been
# quiet a while: havend gives parser and TLS cipher state back after [c2s] hibernate_after_s
# (default 10 s), so this must exceed that plus the login spread. The same for every server.
idle_settle=15
warmup=2
mech="SCRAM-SHA-256"
base_port=25222
max_run_seconds=600

usage() {
    cat <<EOF
usage: contrib/bench/run.sh [options]
  --compare              also run Prosody and ejabberd (installed from Debian if missing)
  --servers "LIST"       any of: havend prosody ejabberd [$servers]
  --scenarios "LIST"     any of: login rate max idle capacity policy muc [$scenarios]
                         policy: the max-rate messaging of "max" in the peer-support pattern,
                         against havend with the policy off and on (two instances), side by side
  --runs N               repetitions; the table shows medians [$runs]
  --quick                smoke test: 100 clients, 5 s, 1 run, capacity 500 (its RSS per
                         connection is allocator noise: that needs thousands of connections)
  --login-users N        accounts cycled by the login storm [$login_users]
  --login-concurrency N  logins in flight [$login_conc]
  --login-seconds S      measured storm length [$login_secs]
  --msg-clients N        online clients for messaging [$msg_clients]
  --msg-seconds S        measured messaging length [$msg_secs]
  --windows "W1 W2"      max rate: messages in flight per sender, one run each [$windows]
  --policy-supporters S  policy: supporters among the --msg-clients [$policy_supporters]
  --policy-inquiry-percent P  policy: share of members' messages to $functional_address
                         [$policy_inquiry_pct]
  --rates "R1 R2"        fixed offered rates in msgs/s for the equal-load comparison [$rates]
  --muc-layouts "RxN .." muc: rooms x occupants per room [$muc_layouts]
  --muc-rate R           muc: the fixed rate in room messages/s (also run at max rate) [$muc_rate]
  --idle-clients N       idle connections for the RSS comparison [$idle_clients]
  --capacity-clients N   idle connections held by havend alone [$capacity_clients]
  --idle-settle S        quiet seconds before idle RSS is read [$idle_settle]
  --mech M               SCRAM-SHA-256 | SCRAM-SHA-1 | PLAIN [$mech]
  --nice N               nice level of server and generator (other jobs on the box) [$nice_level]
  --base-port P          havend P/P+1, Prosody P+100/P+101, ejabberd P+200/P+201, policy:
                         havend policy off P+300/P+301, on P+302/P+303 [$base_port]
  --build-dir DIR        CMake build directory [$build_dir]
  --no-build             use the binaries already in --build-dir
  --workdir DIR          keep configs, data, logs, results here (default: a new temp dir)
  --out FILE             also copy the results table to FILE
EOF
}

while [[ $# -gt 0 ]]; do
    case "$1" in
        --compare) servers="havend prosody ejabberd" ;;
        --servers) servers="$2"; shift ;;
        --scenarios) scenarios="$2"; shift ;;
        --muc-layouts) muc_layouts="$2"; shift ;;
        --muc-rate) muc_rate="$2"; shift ;;
        --runs) runs="$2"; shift ;;
        --quick)
            runs=1; login_users=100; login_conc=20; login_secs=5; msg_clients=100; msg_secs=5
            idle_clients=100; capacity_clients=500; rates="500"; windows="8"; warmup=1
            muc_layouts="5x20"; muc_rate=200 ;;
        --login-users) login_users="$2"; shift ;;
        --login-concurrency) login_conc="$2"; shift ;;
        --login-seconds) login_secs="$2"; shift ;;
        --msg-clients) msg_clients="$2"; shift ;;
        --msg-seconds) msg_secs="$2"; shift ;;
        --windows) windows="$2"; shift ;;
        --policy-supporters) policy_supporters="$2"; shift ;;
        --policy-inquiry-percent) policy_inquiry_pct="$2"; shift ;;
        --rates) rates="$2"; shift ;;
        --idle-clients) idle_clients="$2"; shift ;;
        --capacity-clients) capacity_clients="$2"; shift ;;
        --idle-settle) idle_settle="$2"; shift ;;
        --mech) mech="$2"; shift ;;
        --nice) nice_level="$2"; shift ;;
        --base-port) base_port="$2"; shift ;;
        --build-dir) build_dir="$2"; shift ;;
        --no-build) build=0 ;;
        --workdir) work="$2"; shift ;;
        --out) out="$2"; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "run.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
    esac
    shift
done

log() { printf '[run.sh %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "error: $*"; exit 1; }

# ---- scheduling ----
# Linux autogroups share CPU time between sessions whatever the nice values inside them, so on a
# busy machine a plain "nice" does not protect the measurement. Run in a session of our own and
# raise that session's autogroup priority instead (bounded runs; other sessions get CPU back as
# soon as we finish). Servers and generator inherit it.
if [[ "$nice_level" != 0 && -z "${HAVEN_BENCH_SESSION:-}" && $(id -u) == 0 ]] &&
    [[ -w /proc/self/autogroup ]] && command -v setsid >/dev/null; then
    export HAVEN_BENCH_SESSION=$$
    exec setsid --wait "$0" "${orig_args[@]}"
fi
sched_note="nice $nice_level"
if [[ -n "${HAVEN_BENCH_SESSION:-}" ]] && echo "$nice_level" > /proc/self/autogroup 2>/dev/null; then
    sched_note="own session, autogroup nice $nice_level"
    nice_level=0  # per-process nice is meaningless inside our own autogroup
fi

# ---- machine: cores, limits ----
ncpu=$(nproc)
if (( ncpu >= 2 )); then
    srv_cpu=0
    gen_cpu=1
    pin_note="server on CPU $srv_cpu, generator on CPU $gen_cpu (taskset)"
else
    srv_cpu=""
    gen_cpu=""
    pin_note="single CPU: no pinning"
fi
pin() {  # pin CPU CMD...: taskset when there are two cores
    local cpu="$1"; shift
    if [[ -n "$cpu" ]]; then taskset -c "$cpu" "$@"; else "$@"; fi
}
# As many descriptors as we may have (containers often cap the hard limit).
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
fd_limit=$(ulimit -n)
need_fds=$(( capacity_clients > idle_clients ? capacity_clients : idle_clients ))
if [[ " $scenarios " != *" capacity "* ]]; then
    need_fds=$idle_clients
fi
if (( fd_limit < need_fds + 512 )); then
    die "ulimit -n is $fd_limit; $need_fds connections need more (raise the hard limit)"
fi
# Generator connections: spread over 127.0.0.1..N so ephemeral ports never run short.
source_ips=$(( need_fds / 10000 + 2 ))
if [[ "$nice_level" != 0 && $(id -u) != 0 ]]; then
    log "not root: running at nice 0"
    nice_level=0
fi
run_nice() { nice -n "$nice_level" "$@"; }

# ---- build ----
if (( build )); then
    log "building havend, havenctl, haven-bench in $build_dir"
    cmake -S "$root" -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
    ninja -C "$build_dir" havend havenctl haven-bench >/dev/null
    # What was built, for the results table (the tree may move on before a --no-build run).
    echo "$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)$(
        git -C "$root" diff --quiet HEAD -- 2>/dev/null || echo +)" > "$build_dir/haven-bench.version"
fi
# Absolute: servers start in their own directories.
build_dir="$(cd "$build_dir" 2>/dev/null && pwd)" || die "no build directory $build_dir"
havend_bin="$build_dir/havend"
havenctl_bin="$build_dir/havenctl"
bench_bin="$build_dir/contrib/bench/haven-bench"
for b in "$havend_bin" "$havenctl_bin" "$bench_bin"; do
    [[ -x "$b" ]] || die "$b missing (build first or drop --no-build)"
done

# ---- work dir ----
if [[ -z "$work" ]]; then
    work="$(mktemp -d /tmp/haven-bench.XXXXXX)"
fi
mkdir -p "$work"
chmod 755 "$work"
results="$work/results.jsonl"
: > "$results"
log "work dir: $work"
"$root/certs/make-dev-cert.sh" "$work" localhost >/dev/null

# ---- process bookkeeping: everything we start, we stop by PID ----
declare -A server_pid=()
stop_pid() {
    local pid="$1" i
    [[ -n "$pid" ]] || return 0
    kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 1 100); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    log "PID $pid ignored SIGTERM for 10 s: SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}
gen_pid=""
cleanup() {
    local s
    if [[ -n "$gen_pid" ]]; then
        kill -TERM "$gen_pid" 2>/dev/null || true
    fi
    for s in "${!server_pid[@]}"; do
        stop_pid "${server_pid[$s]}"
    done
}
trap cleanup EXIT
trap 'exit 130' INT TERM
if [[ -n "${HAVEN_BENCH_SESSION:-}" ]]; then
    # Our own session gets no terminal signals: follow the launcher (setsid --wait) instead.
    ( while kill -0 "$HAVEN_BENCH_SESSION" 2>/dev/null; do sleep 1; done
      kill -TERM $$ 2>/dev/null ) &
fi

port_of() {
    case "$1" in
        havend) echo "$base_port" ;;
        prosody) echo $((base_port + 100)) ;;
        ejabberd) echo $((base_port + 200)) ;;
        havend-policy-off) echo $((base_port + 300)) ;;
        havend-policy-on) echo $((base_port + 302)) ;;
    esac
}

# The server a run's results belong to: the policy scenario's two instances are both havend.
server_of() { echo "${1%%-policy-*}"; }

port_free() { ! ss -Hltn "( sport = :$1 )" | grep -q .; }

wait_listening() {  # PORT PID SECONDS
    local i
    for i in $(seq 1 $(( $3 * 10 ))); do
        kill -0 "$2" 2>/dev/null || return 1
        if ss -Hltn "( sport = :$1 )" | grep -q .; then
            return 0
        fi
        sleep 0.1
    done
    return 1
}

# ---- Debian packages for --compare, never auto-started ----
install_pkg() {  # install_pkg PACKAGE
    dpkg -s "$1" >/dev/null 2>&1 && return 0
    [[ $(id -u) == 0 ]] || die "$1 is not installed (apt-get install $1, as root)"
    log "installing $1 from Debian (policy-rc.d keeps it from starting)"
    local created=0
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
        chmod +x /usr/sbin/policy-rc.d
        created=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$1" >/dev/null
    (( created )) && rm -f /usr/sbin/policy-rc.d
    return 0
}

# ---- servers ----
# Accounts bench0..bench(N-1), password bench-password, on every server; havend also needs the
# capacity run's accounts.
accounts=$login_users
for n in "$msg_clients" "$idle_clients"; do if (( n > accounts )); then accounts=$n; fi; done
if [[ " $scenarios " == *" muc "* ]]; then
    for layout in $muc_layouts; do
        n=$(( ${layout%x*} * ${layout#*x} ))
        if (( n > accounts )); then accounts=$n; fi
    done
fi
havend_accounts=$accounts
if [[ " $scenarios " == *" capacity "* ]] && (( capacity_clients > accounts )); then
    havend_accounts=$capacity_clients
fi
password="bench-password"

havend_config() {  # havend_config NAME: the config every havend instance shares, on stdout
    local dir="$work/$1" port
    port=$(port_of "$1")
    cat <<EOF
# havend for haven-bench: loopback only.
[server]
domain = "localhost"
data_dir = "$dir/data"
[tls]
cert = "$work/localhost.crt"
key = "$work/localhost.key"
[c2s]
address = "127.0.0.1"
port = $port
direct_tls_port = $((port + 1))
require_encryption = true
[log]
level = "warn"
EOF
    # Everything comes from 127.0.0.1, so the caps before login (one address's share of
    # connections and TLS handshakes in progress) would throttle the generator, not measure
    # the server: lift them, like Prosody's and ejabberd's rate limits. Older builds lack them.
    # (grep without -q reads all of it: with pipefail, -q's early exit would SIGPIPE havend.)
    if "$havend_bin" --print-example-config 2>/dev/null | grep max_unauthenticated_per_address \
        >/dev/null; then
        cat <<EOF
[limits]
max_unauthenticated_per_address = 1000000
max_unauthenticated = 1000000
max_tls_handshakes_per_address = 1000000
max_tls_handshakes = 1000000
EOF
    fi
}

havend_accounts_in() {  # havend_accounts_in NAME N: bench0..bench(N-1), created once per data dir
    local dir="$work/$1" want="$2" have
    have=$("$havenctl_bin" --config "$dir/havend.toml" user list 2>/dev/null | grep -c '^bench' || true)
    if (( have < want )); then
        log "$1: creating $((want - have)) accounts with havenctl"
        # The first one alone: it creates the data directory and key files.
        echo "$password" | "$havenctl_bin" --config "$dir/havend.toml" user add bench0@localhost \
            --password-stdin >/dev/null 2>&1 || true
        seq 1 $((want - 1)) | xargs -P 4 -I{} sh -c "echo '$password' | '$havenctl_bin' \
            --config '$dir/havend.toml' user add bench{}@localhost --password-stdin \
            >/dev/null 2>&1 || true"
        have=$("$havenctl_bin" --config "$dir/havend.toml" user list | grep -c '^bench' || true)
        (( have >= want )) || die "$1: only $have of $want accounts exist"
    fi
}

setup_havend() {
    local dir="$work/havend"
    mkdir -p "$dir"
    {
        havend_config havend
        cat <<EOF
# The peer-support policy refuses member-to-member chat, which is exactly the bench's traffic:
# measure the XMPP core like the other servers (every other module stays at its default).
[peersupport]
enabled = false
EOF
    } > "$dir/havend.toml"
    havend_accounts_in havend "$havend_accounts"
}

setup_havend_policy() {  # setup_havend_policy off|on: the policy scenario's two instances
    local name="havend-policy-$1" dir="$work/havend-policy-$1" i list=""
    mkdir -p "$dir"
    for (( i = 0; i < policy_supporters; i++ )); do
        list+="${list:+, }\"bench$i@localhost\""
    done
    {
        havend_config "$name"
        echo "# The only difference between the two instances: the policy and the supporter role."
        echo "[peersupport]"
        if [[ "$1" == on ]]; then
            echo "enabled = true"
            echo "supporters = [$list]"
        else
            echo "enabled = false"
        fi
        cat <<EOF
# Members' inquiries; no auto-reply, so the staff (bench0) get only the inquiry notices and copies.
[functional_addresses]
[[functional_addresses.addresses]]
jid = "$functional_address"
name = "Team"
staff = ["bench0@localhost"]
EOF
    } > "$dir/havend.toml"
    havend_accounts_in "$name" "$msg_clients"
}

start_havend() {  # start_havend [NAME]: havend, or one of the policy scenario's instances
    local name="${1:-havend}" dir port
    dir="$work/$name"
    port=$(port_of "$name")
    port_free "$port" || die "port $port is in use"
    ( cd "$dir" && exec nice -n "$nice_level" $(pin_cmd "$srv_cpu") "$havend_bin" \
        --config "$dir/havend.toml" >>"$dir/havend.log" 2>&1 ) &
    server_pid[$name]=$!
    wait_listening "$port" "${server_pid[$name]}" 20 || die "$name did not start: $dir/havend.log"
}

setup_prosody() {
    install_pkg prosody
    local dir="$work/prosody" port
    port=$(port_of prosody)
    mkdir -p "$dir/data" "$dir/certs"
    cp "$work/localhost.crt" "$work/localhost.key" "$dir/certs/"
    cat > "$dir/prosody.cfg.lua" <<EOF
-- Prosody for haven-bench: loopback only, foreground, no s2s/http, no rate limits.
pidfile = "$dir/prosody.pid"
data_path = "$dir/data"
certificates = "$dir/certs"
network_backend = "epoll"
interfaces = { "127.0.0.1" }
c2s_ports = { $port }
c2s_direct_tls_ports = { $((port + 1)) }
s2s_ports = { }
http_ports = { }
https_ports = { }
log = { { levels = { min = "warn" }, to = "file", filename = "$dir/prosody.log" } }
modules_enabled = { "roster"; "saslauth"; "tls"; "disco"; "ping"; "register"; "posix" }
modules_disabled = { "s2s" }
authentication = "internal_hashed"
password_hash = "SHA-256"
default_iteration_count = 4096
storage = "internal"
allow_registration = true
c2s_require_encryption = true
ssl = { certificate = "$dir/certs/localhost.crt"; key = "$dir/certs/localhost.key" }
VirtualHost "localhost"
-- muc: rooms made by a groupchat 1.0 join are usable at once, as on havend and ejabberd.
Component "groups.localhost" "muc"
    muc_room_locking = false
    restrict_room_creation = false
    max_history_messages = 20
EOF
    chown -R prosody:prosody "$dir"
}

start_prosody() {
    local dir="$work/prosody" port
    port=$(port_of prosody)
    port_free "$port" || die "port $port is in use"
    ( cd "$dir" && exec nice -n "$nice_level" setpriv --reuid=prosody --regid=prosody \
        --init-groups -- $(pin_cmd "$srv_cpu") prosody --config "$dir/prosody.cfg.lua" -F \
        >>"$dir/stdout.log" 2>&1 ) &
    server_pid[prosody]=$!
    wait_listening "$port" "${server_pid[prosody]}" 30 || die "prosody did not start: $dir"
}

setup_ejabberd() {
    install_pkg ejabberd
    local dir="$work/ejabberd" port
    port=$(port_of ejabberd)
    mkdir -p "$dir/spool" "$dir/log"
    cat "$work/localhost.crt" "$work/localhost.key" > "$dir/localhost.pem"
    chmod 600 "$dir/localhost.pem"
    cat > "$dir/ejabberd.yml" <<EOF
# ejabberd for haven-bench: loopback only, no shapers, SCRAM-SHA-256 password storage.
hosts:
  - localhost
loglevel: warning
log_rotate_count: 0
certfiles:
  - "$dir/localhost.pem"
listen:
  -
    port: $port
    ip: "127.0.0.1"
    module: ejabberd_c2s
    starttls_required: true
    max_stanza_size: 262144
    shaper: none
    backlog: 1024
  -
    port: $((port + 1))
    ip: "127.0.0.1"
    module: ejabberd_c2s
    tls: true
    max_stanza_size: 262144
    shaper: none
    backlog: 1024
auth_method: internal
auth_password_format: scram
auth_scram_hash: sha256
registration_timeout: infinity
access_rules:
  local:
    allow: all
  c2s:
    allow: all
  register:
    allow: all
shaper_rules: {}
modules:
  mod_roster: {}
  mod_disco: {}
  mod_ping: {}
  mod_register:
    access: register
    ip_access: all
  mod_muc:
    host: "groups.localhost"
    access: all
    access_create: all
    max_users: 1000
    max_user_conferences: 1000
    history_size: 20
EOF
    chown -R ejabberd:ejabberd "$dir"
}

start_ejabberd() {
    local dir="$work/ejabberd" port
    port=$(port_of ejabberd)
    port_free "$port" || die "port $port is in use"
    # erl directly (what "ejabberdctl foreground" runs), without a node name: no epmd daemon to
    # clean up, and the PID we start is beam.smp itself.
    ( cd "$dir" && exec env HOME="$dir" EJABBERD_CONFIG_PATH="$dir/ejabberd.yml" \
        EJABBERD_LOG_PATH="$dir/log/ejabberd.log" ERL_LIBS=/usr/lib/x86_64-linux-gnu \
        ERL_MAX_PORTS=$((need_fds + 1024)) ERL_CRASH_DUMP="$dir/log/erl_crash.dump" \
        ERL_CRASH_DUMP_BYTES=0 nice -n "$nice_level" setpriv --reuid=ejabberd --regid=ejabberd \
        --init-groups -- $(pin_cmd "$srv_cpu") /usr/bin/erl +K true +P 1000000 -noinput \
        -mnesia dir "\"$dir/spool\"" -s ejabberd >>"$dir/stdout.log" 2>&1 ) &
    server_pid[ejabberd]=$!
    wait_listening "$port" "${server_pid[ejabberd]}" 60 || die "ejabberd did not start: $dir/log"
}

pin_cmd() { if [[ -n "$1" ]]; then echo "taskset -c $1"; fi; }

stop_server() {
    stop_pid "${server_pid[$1]:-}"
    unset "server_pid[$1]"
}

version_of() {
    case "$1" in
        havend) cat "$build_dir/haven-bench.version" 2>/dev/null || echo "(unknown build)" ;;
        prosody) dpkg-query -W -f='${Version}' prosody 2>/dev/null ;;
        ejabberd) dpkg-query -W -f='${Version}' ejabberd 2>/dev/null ;;
    esac
}

# ---- the generator ----
bench() {  # bench SERVER KIND RUN ARGS...: runs haven-bench, records its RESULT line
    local s="$1" kind="$2" run="$3"
    shift 3
    local logf="$work/$s.$kind.$run.log" pid="${server_pid[$s]}"
    log "$s: $kind (run $run)"
    set +e
    run_nice $(pin_cmd "$gen_cpu") "$bench_bin" "$@" --port "$(port_of "$s")" --mech "$mech" \
        --password "$password" --server-pid "$pid" --scram-cache "$work/$s.scram-cache" \
        --label "$s" --max-seconds "$max_run_seconds" >"$logf" 2>&1 &
    gen_pid=$!
    wait "$gen_pid"
    local rc=$?
    gen_pid=""
    set -e
    grep -v '^RESULT ' "$logf" | sed "s/^/    /" >&2
    local res
    res=$(grep '^RESULT ' "$logf" | tail -1 | cut -d' ' -f2-)
    if [[ -n "$res" ]]; then
        printf '{"server":"%s","kind":"%s","run":%s,"rc":%s,"result":%s}\n' \
            "$(server_of "$s")" "$kind" "$run" "$rc" "$res" >> "$results"
    else
        log "$s: $kind produced no result (exit $rc), see $logf"
    fi
}

register_accounts() {  # prosody/ejabberd: in-band registration (XEP-0077), once
    local s="$1"
    [[ "$s" == havend ]] && return 0
    [[ -f "$work/$s.registered" ]] && return 0
    bench "$s" register 0 register --users "$accounts" --concurrency 50
    touch "$work/$s.registered"
}

has() { [[ " $scenarios " == *" $1 "* ]]; }

# ---- run ----
{
    echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //') x $ncpu"
    echo "memory: $(free -g | awk '/Mem:/{print $2}') GiB; kernel $(uname -r)"
    echo "pinning: $pin_note; $sched_note; fd limit $fd_limit; source IPs 127.0.0.1..$source_ips"
    echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
} > "$work/machine.txt"
cat "$work/machine.txt" >&2

printf '{' > "$work/versions.json"
first=1
for s in $servers; do
    # (policy alone uses havend instances of its own, set up below)
    if has login || has rate || has max || has idle || has capacity || has muc; then
        "setup_$s"
    fi
    (( first )) || printf ',' >> "$work/versions.json"
    first=0
    printf '"%s":"%s"' "$s" "$(version_of "$s")" >> "$work/versions.json"
done
printf '}\n' >> "$work/versions.json"
run_policy=0
if has policy; then
    if [[ " $servers " == *" havend "* ]]; then
        (( policy_supporters > 0 && policy_supporters < msg_clients )) ||
            die "--policy-supporters must be between 1 and --msg-clients - 1"
        setup_havend_policy off
        setup_havend_policy on
        run_policy=1
    else
        log "policy: havend only (not in --servers), skipped"
    fi
fi

common=(--warmup "$warmup")
if has login || has rate || has max; then
    # All servers up at once (each idle while another is measured), runs interleaved so slow
    # drifts in background load hit every server alike.
    for s in $servers; do
        "start_$s"
        register_accounts "$s"
    done
    for run in $(seq 1 "$runs"); do
        for s in $servers; do
            if has login; then
                bench "$s" login "$run" login --users "$login_users" \
                    --concurrency "$login_conc" --duration "$login_secs" --source-ips "$source_ips" \
                    "${common[@]}"
            fi
            if has rate; then
                for r in $rates; do
                    bench "$s" "msg_rate_$r" "$run" message --clients "$msg_clients" \
                        --concurrency 200 --rate "$r" --duration "$msg_secs" "${common[@]}"
                done
            fi
            if has max; then
                for w in $windows; do
                    bench "$s" "msg_max_w$w" "$run" message --clients "$msg_clients" \
                        --concurrency 200 --window "$w" --duration "$msg_secs" "${common[@]}"
                done
            fi
        done
    done
    for s in $servers; do
        stop_server "$s"
    done
fi

if has muc; then
    for s in $servers; do
        "start_$s"
        register_accounts "$s"
    done
    # Every MUC run starts from a freshly started server: a slow server is still working
    # through millions of queued deliveries when a run ends, and that backlog would be measured
    # as the next run's numbers (or keep its clients from logging in at all).
    restart() { stop_server "$1"; "start_$1"; }
    for run in $(seq 1 "$runs"); do
        for s in $servers; do
            for layout in $muc_layouts; do
                r=${layout%x*}
                n=${layout#*x}
                restart "$s"
                bench "$s" "msg_muc_${layout}_rate" "$run" message --clients $((r * n)) \
                    --rooms "$r" --concurrency 200 --rate "$muc_rate" --duration "$msg_secs" \
                    "${common[@]}"
                restart "$s"
                bench "$s" "msg_muc_${layout}_max" "$run" message --clients $((r * n)) \
                    --rooms "$r" --concurrency 200 --window 2 --duration "$msg_secs" \
                    "${common[@]}"
            done
        done
    done
    for s in $servers; do
        stop_server "$s"
    done
fi

if (( run_policy )); then
    # Both instances up at once (each idle while the other is measured), the same traffic
    # against both, runs interleaved and the order alternated so drifting load hits both alike.
    start_havend havend-policy-off
    start_havend havend-policy-on
    for run in $(seq 1 "$runs"); do
        order="off on"
        if (( run % 2 == 0 )); then order="on off"; fi
        for w in $windows; do
            for p in $order; do
                bench "havend-policy-$p" "msg_policy_${p}_w$w" "$run" message \
                    --clients "$msg_clients" --concurrency 200 --window "$w" \
                    --duration "$msg_secs" --supporters "$policy_supporters" \
                    --inquiry-percent "$policy_inquiry_pct" \
                    --functional-address "$functional_address" "${common[@]}"
            done
        done
    done
    stop_server havend-policy-off
    stop_server havend-policy-on
fi

if has idle || has capacity; then
    for run in $(seq 1 "$runs"); do
        for s in $servers; do
            # A fresh server per run: RSS growth is measured from its post-start baseline.
            "start_$s"
            register_accounts "$s"
            sleep 2
            if has idle; then
                bench "$s" idle "$run" idle --clients "$idle_clients" --concurrency 200 \
                    --duration 10 --settle "$idle_settle" --source-ips "$source_ips"
            fi
            stop_server "$s"
        done
    done
    if has capacity && [[ " $servers " == *" havend "* ]]; then
        for run in $(seq 1 "$runs"); do
            start_havend
            sleep 1
            bench havend idle_capacity "$run" idle --clients "$capacity_clients" \
                --concurrency 200 --duration 30 --settle "$idle_settle" --source-ips "$source_ips"
            stop_server havend
        done
    fi
fi

echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)" >> "$work/machine.txt"
python3 "$here/report.py" "$results" "$work/versions.json" > "$work/results.md"
{
    echo
    echo '```text'
    cat "$work/machine.txt"
    echo '```'
} >> "$work/results.md"
cat "$work/results.md"
if [[ -n "$out" ]]; then
    cp "$work/results.md" "$out"
fi
log "done: $work/results.md (raw: $results, logs: $work/*.log)"
