#!/usr/bin/env bash
# Installs Haven's build and test dependencies on Debian 12, skipping whatever is already there.
set -euo pipefail

packages=(
    build-essential cmake ninja-build pkg-config
    libboost1.81-dev libexpat1-dev libssl-dev openssl libsqlite3-dev sqlite3 libsodium-dev
    libtomlplusplus-dev libmimalloc-dev libidn2-dev libicu-dev libcurl4-openssl-dev libc-ares-dev
    doctest-dev libstrophe-dev python3 python3-slixmpp
    # tests/e2e/test_email_notices.py: a real SMTP server on loopback
    python3-aiosmtpd
    # modules/groups: signed Jitsi links (libjwt, JSON claims through jansson)
    libjwt-dev libjansson-dev
    # scripts/fuzz.sh: clang with libFuzzer and the sanitizer runtimes (libclang_rt.fuzzer)
    clang libclang-rt-14-dev
)

if ! command -v dpkg-query >/dev/null 2>&1; then
    echo "install-deps.sh: no dpkg here (not Debian?); install these yourself: ${packages[*]}" >&2
    exit 0
fi

# One dpkg query for the whole list keeps the common case (everything present) instant.
# Unknown packages make dpkg-query exit non-zero; they simply count as missing.
declare -A installed=()
while read -r pkg status; do
    if [[ "$status" == "install ok installed" ]]; then
        installed[$pkg]=1
    fi
done < <(dpkg-query -W -f='${Package} ${Status}\n' "${packages[@]}" 2>/dev/null || true)

missing=()
for pkg in "${packages[@]}"; do
    if [[ -z "${installed[$pkg]:-}" ]]; then
        missing+=("$pkg")
    fi
done

if ((${#missing[@]} == 0)); then
    echo "install-deps.sh: all ${#packages[@]} packages already installed"
    exit 0
fi

echo "install-deps.sh: installing ${missing[*]}"
as_root=()
if ((EUID != 0)); then
    if ! command -v sudo >/dev/null 2>&1; then
        echo "install-deps.sh: not root and no sudo; as root run: apt-get install ${missing[*]}" >&2
        exit 1
    fi
    # sudo resets the environment, so the non-interactive frontend is passed through env.
    as_root=(sudo)
fi
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y --no-install-recommends "${missing[@]}"
