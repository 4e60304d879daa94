# Shared by the valgrind scripts (instructions.sh, idle_heap.sh); source it, do not run it.

# bench_havend_config DIR WORK PORT: the config of a havend on 127.0.0.1:PORT with its data in
# DIR/data and the dev certificate from WORK, STARTTLS only, warnings only. Callers append
# module sections.
bench_havend_config() {
    cat <<EOF
[server]
domain = "localhost"
data_dir = "$1/data"
[tls]
cert = "$2/localhost.crt"
key = "$2/localhost.key"
[c2s]
address = "127.0.0.1"
port = $3
direct_tls_port = 0
[log]
level = "warn"
EOF
}

# bench_accounts BUILD CONFIG N PASSWORD: accounts bench0 .. bench(N-1) made with havenctl (one
# after the other: the first creates the data directory and its key files).
bench_accounts() {
    local n
    for n in $(seq 0 $(($3 - 1))); do
        echo "$4" | "$1/havenctl" --config "$2" user add "bench$n@localhost" \
            --password-stdin >/dev/null
    done
}
