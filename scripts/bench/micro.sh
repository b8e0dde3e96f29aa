#!/usr/bin/env bash
# Part `micro`: the criterion micro-benchmarks (reversal, decoding,
# encoding), their output in micro.txt.
set -euo pipefail
# shellcheck source=scripts/bench/lib.sh
. "$(dirname "$0")/lib.sh"

part() {
    local -a short=()
    if quick; then short=(--warm-up-time 0.1 --measurement-time 0.1 --sample-size 10); fi
    (cd "$ROOT" && cargo bench --locked --bench micro -- --noplot "${short[@]}") 2>/dev/null \
        | tee "$(result micro.txt)" | grep -E '^(reverse|decode|encode)|time:'
}

bench_main part
