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
if ! command -v ip >/dev/null 2>&1; then
    # The network-fault tests make network namespaces and veth links.
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iproute2
fi
if ! command -v nft >/dev/null 2>&1; then
    # The network-fault tests drop packets silently with nftables rules.
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nftables
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
