#!/usr/bin/env bash
# Part `abuse` (SPEC §6, §7): 600 stalled handshakes from 127.0.0.2 while
# 127.0.0.3 measures 50 handshakes, RUNS runs (flood-600.RUN.json); 10,000
# clients connecting at once from one address (hold-10000-at-once.json); 50
# clients that never read, each sent 30 lines of 65,536 control characters,
# replies six times that size (unread-50.json).
set -euo pipefail
# shellcheck source=scripts/bench/lib.sh
. "$(dirname "$0")/lib.sh"

part() {
    local run
    for run in $(seq "$RUNS"); do
        server_up nea nea
        load nea flood --stalled 600 --probes "$(pick 50 5)" >"$(result "flood-600.$run.json")"
        server_stop nea
    done
    server_up nea nea --date-period 1s --max-clients 10000
    load nea hold -n "$(pick 10000 200)" -d "$(pick 10s 2s)" --ramp 10000 >"$(result hold-10000-at-once.json)"
    server_stop nea
    server_up nea nea --write-timeout 60s
    load nea unread -n "$(pick 50 5)" -m "$(pick 30 5)" -l 65536 >"$(result unread-50.json)"
    server_stop nea
}

bench_main part
