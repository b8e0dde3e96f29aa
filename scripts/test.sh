#!/usr/bin/env bash
# The whole test suite: formatting, lints, then every unit and integration
# test under cargo-llvm-cov, failing if line coverage drops below the gate,
# a build of the benchmarks, and the release built and checked as users
# get it.
set -euo pipefail
cd "$(dirname "$0")/.."

# Line coverage of the workspace (library, binaries and loadcli) that the
# suite must reach.
COVERAGE_GATE=90

bash scripts/setup.sh
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo llvm-cov nextest --workspace --locked --fail-under-lines "$COVERAGE_GATE"
# nextest does not run doc tests: the crate's embedding example runs here.
cargo test --workspace --doc --locked
# The API documentation builds without a broken or private link.
RUSTDOCFLAGS="-D warnings" cargo doc -p nea --no-deps --locked
# The micro-benchmarks must keep building (scripts/bench/micro.sh runs them).
cargo bench --workspace --locked --no-run
# Every default is written once, as a constant: a flag whose default is a
# string literal would repeat (and could contradict) it.
if grep -rn 'default_value = "' crates/nea-cli/src/bin tools/loadcli/src; then
    echo "a flag's default is a literal; use the constant with default_value_t" >&2
    exit 1
fi
# The product's dependency tree is the product's alone: nothing that only
# the programs or the load tool need may reach it.
if cargo tree --locked -p nea -e normal --prefix none \
    | grep -E '^(hdrhistogram|clap|clap_builder|crossterm|tracing-subscriber|tracing-appender|listenfd|sd-notify) '; then
    echo "nea depends on a crate only the programs or loadcli need (above)" >&2
    exit 1
fi
# The release as users get it: the static binaries, the Debian package and
# the container image built by the one command, then each unpacked and
# checked (scripts/check-release.sh says what).
bash scripts/release.sh
bash scripts/check-release.sh
