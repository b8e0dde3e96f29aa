#!/usr/bin/env bash
# Part `scale`: 10,000 silent clients held 60 s (hold-10000.json), the same
# with glibc's per-thread cache off and one arena (hold-10000-tuned.json:
# BENCHMARKS.md, "What limits..."), and what that setting costs a full
# handshake (handshakes-tuned.{baseline,nea}.RUN.json).
set -euo pipefail
# shellcheck source=scripts/bench/lib.sh
. "$(dirname "$0")/lib.sh"

# The glibc setting that gives the memory back, at a cost per handshake.
TUNABLES=glibc.malloc.arena_max=1:glibc.malloc.tcache_count=0

part() {
    local clients held
    clients=$(pick 10000 200)
    held=$(pick 60s 2s)
    server_up nea nea --date-period 1s --max-clients 10000
    load nea hold -n "$clients" -d "$held" >"$(result hold-10000.json)"
    server_stop nea
    NEA_TUNABLES=$TUNABLES server_up nea nea --date-period 1s --max-clients 10000
    load nea hold -n "$clients" -d "$held" >"$(result hold-10000-tuned.json)"
    server_stop nea
    NEA_TUNABLES=$TUNABLES compare handshakes-tuned handshakes -n 2 -d "$(pick 10s 1s)"
}

bench_main part
