#!/usr/bin/env bash
# Part `versus`: this build's servercli against another build of it
# (BASE=PATH, e.g. an older commit's), alternately, each on a fresh server,
# RUNS runs each: server CPU per line at the three shapes of load of part
# `compare`. A change that must cost nothing per line (live counters,
# escaping) is shown within noise here, in the same session.
#   versus    versus-SHAPE.{base,this}.RUN.json, and versus.txt: the
#             median of each build's runs per shape
set -euo pipefail
# shellcheck source=scripts/bench/lib.sh
. "$(dirname "$0")/lib.sh"

BASE=${BASE:-}
readonly BASE

# versus NAME ARGS...: RUNS runs of `loadcli ARGS` against each build,
# alternately.
versus() {
    local name=$1 run build
    shift
    for run in $(seq "$RUNS"); do
        for build in base this; do
            local binary=$SERVERCLI
            [ "$build" = base ] && binary=$BASE
            SERVER_BINARY=$binary server_up "$build" nea
            load "$build" "$@" >"$(result "versus-$name.$build.$run.json")"
            server_stop "$build"
        done
    done
    python3 "$BENCH_DIR/report.py" versus "$name" "$OUT" "$RUNS" | tee -a "$(result versus.txt)"
}

part() {
    [ -x "$BASE" ] || die "part versus needs BASE=PATH, another build of servercli"
    versus 100x8x32 rtt -n 100 -k 8 -m "$(pick 2000 50)" -l 32
    versus 100x1x1000 rtt -n 100 -k 1 -m "$(pick 500 20)" -l 1000
    versus 1x1x32 rtt -n 1 -k 1 -m "$(pick 20000 500)" -l 32
}

bench_main part
