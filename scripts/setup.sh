#!/usr/bin/env bash
# Installs what the test suite and the benchmarks need and a fresh machine
# may lack; CI runs it first. Idempotent: each step is skipped when its
# tool is already there. The bench scripts (scripts/bench/) install
# nothing: they stop, naming the missing tool and this script.
set -euo pipefail

# Whether this run has read the package lists yet (apt_install does it
# once, and only if something is missing).
apt_lists_read=false

# apt_install PACKAGE...: installs Debian packages.
apt_install() {
    if [ "$apt_lists_read" = false ]; then
        apt-get update -qq
        apt_lists_read=true
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# ensure TOOL PACKAGE: installs PACKAGE unless the command TOOL is there.
ensure() {
    command -v "$1" >/dev/null 2>&1 || apt_install "$2"
}

# The tests.
ensure openssl openssl                        # the interoperability tests drive `openssl s_client`
ensure systemd-socket-activate systemd        # the service-manager tests (and the bench's activated storm) pass a socket through it
ensure promtool prometheus                    # the metrics and alerting tests: a live scrape, the rules and their unit tests
ensure haproxy haproxy                        # the load-balancer tests (and the bench's failover part) run a real HAProxy
ensure nginx libnginx-mod-stream              # the nginx example's tests run a real nginx; its stream module pulls in nginx itself
ensure prlimit util-linux                     # the file-descriptor exhaustion test runs the server under it
ensure ip iproute2                            # the network-fault tests make network namespaces and veth links
ensure nft nftables                           # the network-fault tests drop packets silently with nftables rules

# The benchmarks (scripts/bench/).
ensure python3 python3                        # free ports, the gauges, the reports, the summary
ensure gnuplot gnuplot-nox                    # the storm part's figure
ensure valgrind valgrind                      # the instructions part's counts (callgrind)

# The release (scripts/release.sh) and its check (scripts/check-release.sh).
ensure musl-gcc musl-tools                    # a C compiler for musl (aws-lc-rs builds C)
ensure lintian lintian                        # the package's check
ensure podman podman                          # the image
ensure dpkg-deb dpkg-dev                      # the package's contents
ensure file file                              # static binaries
ensure jq jq                                  # the image's JSON
ensure man man-db                             # systemd-analyze verify looks the units' man pages up with it
if ! rustup target list --installed 2>/dev/null | grep -qx x86_64-unknown-linux-musl; then
    rustup target add x86_64-unknown-linux-musl
fi
if ! command -v cargo-deb >/dev/null 2>&1; then
    cargo install cargo-deb --locked
fi

# Coverage and the test runner.
if ! rustup component list --installed 2>/dev/null | grep -q '^llvm-tools'; then
    rustup component add llvm-tools
fi
if ! command -v cargo-llvm-cov >/dev/null 2>&1; then
    cargo install cargo-llvm-cov --locked
fi
if ! command -v cargo-nextest >/dev/null 2>&1; then
    cargo install cargo-nextest --locked
fi
