#!/usr/bin/env bash
# Runs the whole benchmark set on this machine and writes the raw reports
# (JSON, one file per run) to bench-results/. BENCHMARKS.md explains the
# figures and how they were summarised.
#
#   bash scripts/bench.sh            # everything, 3 runs of each comparison
#   RUNS=5 bash scripts/bench.sh     # more runs
#   SOAK=600s bash scripts/bench.sh  # with the 10-minute soak (default 60s)
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${RUNS:-3}
SOAK=${SOAK:-60s}
OUT=bench-results
mkdir -p "$OUT"
cargo build --release --locked --bins
BIN=target/release

# Fresh certificates for the run, from the server's own development CA code.
CERTS=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$CERTS"' EXIT
NEA_DEV_DIR="$CERTS/dev" timeout 5 "$BIN/servercli" --port 0 --bind 127.0.0.1 2>/dev/null &
sleep 2; kill %1 2>/dev/null || true; wait 2>/dev/null || true
CA="$CERTS/dev/ca.pem"; CERT="$CERTS/dev/server.pem"; KEY="$CERTS/dev/server-key.pem"

# start_server NAME ARGS...: starts nea (or the baseline) on a free port and
# sets PORT and PID.
start_server() {
    local kind=$1; shift
    local log="$OUT/$kind.log"
    if [ "$kind" = baseline ]; then
        "$BIN/loadcli" baseline-server --port 0 --cert "$CERT" --key "$KEY" 2>"$log" &
    else
        RUST_LOG=warn "$BIN/servercli" --bind 127.0.0.1 --port 0 --cert "$CERT" --key "$KEY" "$@" 2>"$log" &
    fi
    PID=$!
    for _ in $(seq 100); do
        PORT=$(grep -o 'listening on [0-9.:]*' "$log" 2>/dev/null | grep -o '[0-9]*$' || true)
        [ -n "$PORT" ] && return 0
        sleep 0.05
    done
    echo "server $kind did not start" >&2; exit 1
}
stop_server() { kill -TERM "$PID"; wait "$PID" 2>/dev/null || true; }

load() { "$BIN/loadcli" "$@" --ca "$CA" --port "$PORT" --pid "$PID" --json; }

# The two servers are measured alternately, in the same run, so that the
# machine's state affects both alike.
compare() {
    local name=$1; shift
    for run in $(seq "$RUNS"); do
        for kind in baseline nea; do
            if [ "$kind" = baseline ]; then
                start_server baseline; load "$@" --baseline >"$OUT/$name.$kind.$run.json"
            else
                RUST_LOG=warn start_server nea; load "$@" >"$OUT/$name.$kind.$run.json"
            fi
            stop_server
        done
    done
}

compare rtt-100x8x32    rtt -n 100 -k 8 -m 2000 -l 32
compare rtt-100x1x1000  rtt -n 100 -k 1 -m 500 -l 1000
compare rtt-1x1x32      rtt -n 1 -k 1 -m 20000 -l 32
compare handshakes      handshakes -n 2 -d 10s

for run in $(seq "$RUNS"); do
    start_server nea --date-period 1s
    load hold -n 0 -d 10s >"$OUT/hold-0.$run.json"
    load hold -n 100 -d 60s >"$OUT/hold-100.$run.json"
    stop_server
done
start_server nea --date-period 1s --max-clients 10000
load hold -n 10000 -d 60s >"$OUT/hold-10000.json"
stop_server

start_server nea --date-period 1s
load soak -n 100 --rate 10 -d "$SOAK" >"$OUT/soak.json"
stop_server

cargo bench --locked --bench micro -- --noplot 2>/dev/null | tee "$OUT/micro.txt" | grep -E '^(reverse|decode|encode)|time:'
echo "reports in $OUT/"
