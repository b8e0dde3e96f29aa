#!/usr/bin/env bash
# Part `soak`: 100 clients at 10 lines/s each for SOAK (default 60s; the
# figures in BENCHMARKS.md are SOAK=600s): nothing lost, dates on time,
# flat memory (soak.json).
set -euo pipefail
# shellcheck source=scripts/bench/lib.sh
. "$(dirname "$0")/lib.sh"

part() {
    server_up nea nea --date-period 1s
    load nea soak -n 100 --rate 10 -d "${SOAK:-$(pick 60s 5s)}" >"$(result soak.json)"
    server_stop nea
}

bench_main part
