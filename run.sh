#!/usr/bin/env bash
# Runs a local Haven: installs deps, builds, mints a dev cert, writes a config, creates demo
# accounts on first start, then runs havend in the foreground on 127.0.0.1:5222 (5223 direct TLS).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
root="$(pwd)"

scripts/install-deps.sh
scripts/build.sh
certs/make-dev-cert.sh "$root/certs" localhost

config=config/haven.local.toml
if [[ ! -f "$config" ]]; then
    mkdir -p config data
    # Absolute paths, so havend finds its files whatever it resolves relative paths against.
    cat > "$config" <<TOML
# Local development config written by run.sh; edit freely, delete it to regenerate.
[server]
domain = "localhost"
data_dir = "$root/data"

[tls]
cert = "$root/certs/localhost.crt"
key = "$root/certs/localhost.key"

[c2s]
address = "127.0.0.1"
port = 5222
direct_tls_port = 5223
require_encryption = true

[registration]
enabled = false

# A demo shared inbox (see modules/functional_addresses/README.md): members write to
# beratung@localhost, the staff (the demo supporter sam) answer as the address.
[[functional_addresses.addresses]]
jid = "beratung@localhost"
name = "Beratung"
staff = ["sam@localhost", "admin@localhost"]
auto_reply_en = "Your message has reached the team; our volunteers answer as soon as they can."
auto_reply_de = "Deine Nachricht ist beim Team angekommen; unsere Ehrenamtlichen antworten so bald wie möglich."

[log]
level = "info"
TOML
    echo "run.sh: wrote $config"
fi

ctl=(build/havenctl --config "$config")
# Demo accounts only on a fresh server: any listed JID means the admin has set things up.
if ! users="$("${ctl[@]}" user list)"; then
    echo "run.sh: 'havenctl user list' failed; check $config" >&2
    exit 1
fi
if ! grep -q '@' <<<"$users"; then
    echo
    echo "run.sh: created demo accounts (passwords are shown only this once):"
    for entry in alice:member bob:member sam:supporter admin:admin; do
        user="${entry%%:*}"
        role="${entry#*:}"
        password="$(openssl rand -base64 12)"
        printf '%s' "$password" |
            "${ctl[@]}" user add "$user@localhost" --role "$role" --password-stdin
        printf '  %-18s %-10s %s\n' "$user@localhost" "$role" "$password"
    done
    echo
fi

exec build/havend --config "$config"
