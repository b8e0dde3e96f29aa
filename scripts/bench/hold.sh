#!/usr/bin/env bash
# Part `hold`: silent clients on a server with --date-period 1s, RUNS runs:
# the idle server (hold-0.RUN.json), 100 clients held 60 s
# (hold-100.RUN.json), and the idle server again once they have left
# (hold-0-after.RUN.json: still no periodic work).
set -euo pipefail
# shellcheck source=scripts/bench/lib.sh
. "$(dirname "$0")/lib.sh"

part() {
    local run idle held clients
    idle=$(pick 10s 1s)
    held=$(pick 60s 2s)
    clients=$(pick 100 5)
    for run in $(seq "$RUNS"); do
        server_up nea nea --date-period 1s
        load nea hold -n 0 -d "$idle" >"$(result "hold-0.$run.json")"
        load nea hold -n "$clients" -d "$held" >"$(result "hold-100.$run.json")"
        load nea hold -n 0 -d "$idle" >"$(result "hold-0-after.$run.json")"
        server_stop nea
    done
}

bench_main part
