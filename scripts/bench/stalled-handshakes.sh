#!/usr/bin/env bash
# Part `stalled-handshakes` (SPEC §6): `loadcli trickle` with its default
# flags against the server with its defaults, at STALLED_ADDRESSES (500
# and 2,000) addresses × 2 sockets. Each stalled socket sends a real
# ClientHello a byte a second and never its last byte; meanwhile 127.0.0.3
# measures 20 full handshakes, one at a time, each given a minute. Each run
# leaves stalled-handshakes.A.RUN.json (the report; a run whose
# handshakes failed or timed out is a measurement too, not an error) and a
# line in stalled-handshakes.txt: p50, p99, max, failed, timed out, and the
# server's memory before and with every stalled socket open.
set -euo pipefail
# shellcheck source=scripts/bench/lib.sh
. "$(dirname "$0")/lib.sh"

STALLED_ADDRESSES=${STALLED_ADDRESSES:-$(pick "500 2000" "20 50")}
# STALLED_SAMPLES measured handshakes per run (default 20; fewer for a
# server that keeps each waiting a minute, such as an older build).
STALLED_SAMPLES=${STALLED_SAMPLES:-$(pick 20 3)}
readonly STALLED_ADDRESSES STALLED_SAMPLES

# one_run ADDRESSES RUN: a trickle from ADDRESSES addresses against a
# fresh server.
one_run() {
    local addresses=$1 run=$2 name report status=0
    name=stalled-handshakes.$addresses.$run
    report=$(result "$name.json")
    local -a short=(--samples "$STALLED_SAMPLES")
    if quick; then short+=(--sample-timeout 10s); fi
    server_up nea nea
    load nea trickle --addresses "$addresses" "${short[@]}" >"$report" 2>"$(result "$name.err")" || status=$?
    server_stop nea
    # Status 1 with a report: the handshakes failed or timed out, which is
    # what is measured. Without one, the run could not be made.
    if [ "$status" -ne 0 ] && { [ "$status" -ne 1 ] || [ ! -s "$report" ]; }; then
        die "trickle from $addresses addresses did not run: $(cat "$(result "$name.err")")"
    fi
    echo "run $run: $(python3 "$BENCH_DIR/report.py" trickle "$report")" | tee -a "$(result stalled-handshakes.txt)"
}

part() {
    local run addresses
    for run in $(seq "$RUNS"); do
        for addresses in $STALLED_ADDRESSES; do one_run "$addresses" "$run"; done
    done
}

# require_room: fails unless the largest run's sockets fit in the
# open-file limit: two descriptors per stalled socket (loadcli's and the
# server's), two sockets per address.
require_room() {
    local largest
    largest=$(tr ' ' '\n' <<<"$STALLED_ADDRESSES" | sort -n | tail -1)
    require_open_files $((2 * 2 * largest + 1000)) "$largest addresses × 2 sockets"
}

require_room
bench_main part
