#!/usr/bin/env bash
# Mints a self-signed P-256 development certificate: make-dev-cert.sh [OUTDIR] [NAME=localhost].
# Writes OUTDIR/NAME.crt and OUTDIR/NAME.key (mode 0600); does nothing when both already exist.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
outdir="${1:-$here}"
name="${2:-localhost}"

case "$name" in
    ''|*[!A-Za-z0-9.-]*)
        echo "make-dev-cert.sh: invalid host name '$name'" >&2
        exit 2
        ;;
esac
if ! command -v openssl >/dev/null 2>&1; then
    echo "make-dev-cert.sh: openssl not found (run scripts/install-deps.sh)" >&2
    exit 1
fi

mkdir -p "$outdir"
crt="$outdir/$name.crt"
key="$outdir/$name.key"
if [[ -s "$crt" && -s "$key" ]]; then
    echo "make-dev-cert.sh: $crt already exists, keeping it"
    exit 0
fi

# Write to temporaries and rename so an interrupted run never leaves a half-written pair, and
# create the key under umask 077 so it is never readable by others, not even briefly.
tmp_key="$(mktemp "$outdir/.$name.key.XXXXXX")"
tmp_crt="$(mktemp "$outdir/.$name.crt.XXXXXX")"
trap 'rm -f "$tmp_key" "$tmp_crt"' EXIT
(
    umask 077
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$tmp_key" 2>/dev/null
)
chmod 600 "$tmp_key"
# Clients and tests connect to 127.0.0.1 as "localhost", so those names are always included.
san="DNS:$name, IP:127.0.0.1, IP:::1"
if [[ "$name" != localhost ]]; then
    san="DNS:$name, DNS:localhost, IP:127.0.0.1, IP:::1"
fi
HAVEN_CERT_NAME="$name" HAVEN_CERT_SAN="$san" openssl req -x509 -new -sha256 -days 825 \
    -config "$here/openssl.cnf" -key "$tmp_key" -out "$tmp_crt"
chmod 644 "$tmp_crt"
mv -f "$tmp_key" "$key"
mv -f "$tmp_crt" "$crt"
trap - EXIT
echo "make-dev-cert.sh: wrote $crt and $key"
