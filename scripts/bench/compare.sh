#!/usr/bin/env bash
# Part `compare`: nea against the baseline server, alternately, RUNS runs
# each: server CPU per line at three shapes of load, and per full handshake
# (with nea's default log line per client, and without it).
#   compare   rtt-100x8x32, rtt-100x1x1000, rtt-1x1x32, handshakes,
#             handshakes-quiet: NAME.{baseline,nea}.RUN.json
set -euo pipefail
# shellcheck source=scripts/bench/lib.sh
. "$(dirname "$0")/lib.sh"

part() {
    compare rtt-100x8x32 rtt -n 100 -k 8 -m "$(pick 2000 50)" -l 32
    compare rtt-100x1x1000 rtt -n 100 -k 1 -m "$(pick 500 20)" -l 1000
    compare rtt-1x1x32 rtt -n 1 -k 1 -m "$(pick 20000 500)" -l 32
    compare_handshakes
}

bench_main part
