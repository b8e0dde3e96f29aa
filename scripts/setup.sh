#!/usr/bin/env bash
# Installs what the test suite needs and a fresh machine may lack. Idempotent:
# each step is skipped when its tool is already there.
set -euo pipefail

if ! command -v openssl >/dev/null 2>&1; then
    # The interoperability tests drive `openssl s_client`.
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openssl
fi
if ! command -v systemd-socket-activate >/dev/null 2>&1; then
    # The service-manager tests pass a listening socket through it.
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq systemd
fi
if ! command -v promtool >/dev/null 2>&1; then
    # The metrics test checks a live scrape with promtool (package prometheus).
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus
fi
if ! command -v haproxy >/dev/null 2>&1; then
    # The load-balancer tests run several servers behind a real HAProxy.
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends haproxy
fi
if ! command -v prlimit >/dev/null 2>&1; then
    # The file-descriptor exhaustion test runs the server under it.
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq util-linux
fi
# The release (scripts/release.sh) and its check (scripts/check-release.sh):
# a C compiler for musl (aws-lc-rs builds C), lintian, podman for the
# image, dpkg-deb, file, jq for the image's JSON, and man (systemd-analyze
# verify looks the units' man pages up with it).
missing=()
command -v musl-gcc >/dev/null 2>&1 || missing+=(musl-tools)
command -v lintian >/dev/null 2>&1 || missing+=(lintian)
command -v podman >/dev/null 2>&1 || missing+=(podman)
command -v dpkg-deb >/dev/null 2>&1 || missing+=(dpkg-dev)
command -v file >/dev/null 2>&1 || missing+=(file)
command -v jq >/dev/null 2>&1 || missing+=(jq)
command -v man >/dev/null 2>&1 || missing+=(man-db)
if [ "${#missing[@]}" -gt 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
if ! rustup target list --installed 2>/dev/null | grep -qx x86_64-unknown-linux-musl; then
    rustup target add x86_64-unknown-linux-musl
fi
if ! command -v cargo-deb >/dev/null 2>&1; then
    cargo install cargo-deb --locked
fi
if ! rustup component list --installed 2>/dev/null | grep -q '^llvm-tools'; then
    rustup component add llvm-tools
fi
if ! command -v cargo-llvm-cov >/dev/null 2>&1; then
    cargo install cargo-llvm-cov --locked
fi
if ! command -v cargo-nextest >/dev/null 2>&1; then
    cargo install cargo-nextest --locked
fi
