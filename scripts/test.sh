#!/usr/bin/env bash
# The whole test suite: formatting, lints, then every unit and integration
# test under cargo-llvm-cov, failing if line coverage drops below the gate,
# and a build of the benchmarks.
set -euo pipefail
cd "$(dirname "$0")/.."

# Line coverage of src/ (library and binaries) that the suite must reach.
COVERAGE_GATE=90

bash scripts/setup.sh
cargo fmt --all -- --check
cargo clippy --all-targets --locked -- -D warnings
cargo llvm-cov nextest --locked --fail-under-lines "$COVERAGE_GATE"
# The micro-benchmarks must keep building (scripts/bench.sh runs them).
cargo bench --locked --no-run
