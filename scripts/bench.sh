#!/usr/bin/env bash
# Runs the whole benchmark set on this machine and writes the raw reports
# (JSON, one file per run) to bench-results/. BENCHMARKS.md explains the
# figures and how they were summarised.
#
#   bash scripts/bench.sh            # everything, 3 runs of each comparison
#   RUNS=5 bash scripts/bench.sh     # more runs
#   SOAK=600s bash scripts/bench.sh  # with the 10-minute soak (default 60s)
#   PARTS="hold soak" bash scripts/bench.sh   # only some parts (compare hold
#                                             # admin scale abuse soak instructions micro)
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${RUNS:-3}
PARTS=${PARTS:-compare admin hold scale abuse soak instructions micro}
part() { [[ " $PARTS " == *" $1 "* ]]; }
SOAK=${SOAK:-60s}
TUNABLES=glibc.malloc.arena_max=1:glibc.malloc.tcache_count=0
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

# start_server KIND ARGS...: starts nea (default logging, as deployed; set
# NEA_LOG to change it, NEA_TUNABLES to set GLIBC_TUNABLES for it) or the
# baseline on a free port; sets PORT and PID.
start_server() {
    local kind=$1; shift
    PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    if [ "$kind" = baseline ]; then
        "$BIN/loadcli" baseline-server --port "$PORT" --cert "$CERT" --key "$KEY" 2>"$OUT/$kind.log" &
    else
        env ${NEA_TUNABLES:+GLIBC_TUNABLES=$NEA_TUNABLES} RUST_LOG="${NEA_LOG:-warn,nea=info}" \
            "$BIN/servercli" --bind 127.0.0.1 --port "$PORT" \
            --cert "$CERT" --key "$KEY" "$@" 2>"$OUT/$kind.log" &
    fi
    PID=$!
    for _ in $(seq 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && return 0
        sleep 0.05
    done
    echo "server $kind did not start" >&2; exit 1
}
stop_server() { kill -TERM "$PID"; wait "$PID" 2>/dev/null || true; }

load() { "$BIN/loadcli" "$@" --host 127.0.0.1 --ca "$CA" --port "$PORT" --pid "$PID" --json; }

# The two servers are measured alternately, in the same run, so that the
# machine's state affects both alike.
compare() {
    local name=$1; shift
    for run in $(seq "$RUNS"); do
        for kind in baseline nea; do
            if [ "$kind" = baseline ]; then
                start_server baseline; load "$@" --baseline >"$OUT/$name.$kind.$run.json"
            else
                start_server nea; load "$@" >"$OUT/$name.$kind.$run.json"
            fi
            stop_server
        done
    done
}

if part compare; then
    compare rtt-100x8x32    rtt -n 100 -k 8 -m 2000 -l 32
    compare rtt-100x1x1000  rtt -n 100 -k 1 -m 500 -l 1000
    compare rtt-1x1x32      rtt -n 1 -k 1 -m 20000 -l 32
    compare handshakes      handshakes -n 2 -d 10s
    NEA_LOG=warn compare handshakes-quiet handshakes -n 2 -d 10s
fi

# The metrics' cost: nea alone, then with --admin-addr (scraped once a
# second meanwhile, as Prometheus would at the most), run by run.
if part admin; then
    for run in $(seq "$RUNS"); do
        start_server nea
        load rtt -n 100 -k 8 -m 2000 -l 32 >"$OUT/rtt-admin-off.$run.json"
        stop_server
        ADMIN=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
        start_server nea --admin-addr "127.0.0.1:$ADMIN"
        (while sleep 1; do
            { exec 3<>"/dev/tcp/127.0.0.1/$ADMIN" && printf 'GET /metrics HTTP/1.0\r\n\r\n' >&3 && cat <&3 >/dev/null; } 2>/dev/null || true
        done) &
        SCRAPER=$!
        load rtt -n 100 -k 8 -m 2000 -l 32 >"$OUT/rtt-admin-on.$run.json"
        kill "$SCRAPER"
        stop_server
    done
fi

if part hold; then
    for run in $(seq "$RUNS"); do
        start_server nea --date-period 1s
        load hold -n 0 -d 10s >"$OUT/hold-0.$run.json"
        load hold -n 100 -d 60s >"$OUT/hold-100.$run.json"
        # After the clients left: still no periodic work.
        load hold -n 0 -d 10s >"$OUT/hold-0-after.$run.json"
        stop_server
    done
fi

if part scale; then
    start_server nea --date-period 1s --max-clients 10000
    load hold -n 10000 -d 60s >"$OUT/hold-10000.json"
    stop_server
    # The same with glibc's per-thread cache off and one arena (BENCHMARKS.md,
    # "What limits..."): the memory comes back, at a cost per handshake.
    NEA_TUNABLES=$TUNABLES start_server nea --date-period 1s --max-clients 10000
    load hold -n 10000 -d 60s >"$OUT/hold-10000-tuned.json"
    stop_server
    NEA_TUNABLES=$TUNABLES compare handshakes-tuned handshakes -n 2 -d 10s
fi

# Abuse (SPEC §6, §7): 600 stalled handshakes from 127.0.0.2 while
# 127.0.0.3 measures 50 handshakes; 10,000 clients connecting at once from
# one address; 50 clients that never read, each sent 30 lines of 65,536
# control characters (replies six times that size).
if part abuse; then
    for run in $(seq "$RUNS"); do
        start_server nea
        load flood --stalled 600 --probes 50 >"$OUT/flood-600.$run.json"
        stop_server
    done
    start_server nea --date-period 1s --max-clients 10000
    load hold -n 10000 -d 10s --ramp 10000 >"$OUT/hold-10000-at-once.json"
    stop_server
    start_server nea --write-timeout 60s
    load unread -n 50 -m 30 -l 65536 >"$OUT/unread-50.json"
    stop_server
fi

if part soak; then
    start_server nea --date-period 1s
    load soak -n 100 --rate 10 -d "$SOAK" >"$OUT/soak.json"
    stop_server
fi

# Instruction counts (callgrind): they repeat exactly, where times on a shared
# machine do not. Each figure is the difference of two runs of different
# lengths, divided by the difference in work, so start-up cancels out.
ir() { # ir LOGFILE: the instruction total callgrind logged
    sed -n 's/.*Collected : \([0-9]*\).*/\1/p' "$1"
}
callgrind() { valgrind --tool=callgrind --callgrind-out-file=/dev/null --log-file="$OUT/callgrind.log" "$@"; }
server_ir() { # server_ir KIND LINES ARGS...: server instructions over one rtt run
    local kind=$1 lines=$2; shift 2
    PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    # valgrind itself in the background (not a function), so that $! is the
    # server and stop_server reaches it; no output, or $(...) would wait.
    local vg=(valgrind --tool=callgrind --callgrind-out-file=/dev/null --log-file="$OUT/callgrind.log")
    if [ "$kind" = baseline ]; then
        "${vg[@]}" "$BIN/loadcli" baseline-server --port "$PORT" --cert "$CERT" --key "$KEY" \
            >/dev/null 2>&1 &
    else
        RUST_LOG=warn,nea=info "${vg[@]}" "$BIN/servercli" --bind 127.0.0.1 --port "$PORT" \
            --cert "$CERT" --key "$KEY" --handshake-timeout 60s >/dev/null 2>&1 &
    fi
    PID=$!
    for _ in $(seq 300); do
        (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
        sleep 0.1
    done
    local extra=(); [ "$kind" = baseline ] && extra=(--baseline)
    "$BIN/loadcli" rtt "$@" -m "$lines" --host 127.0.0.1 --ca "$CA" --port "$PORT" "${extra[@]}" >/dev/null
    stop_server
    ir "$OUT/callgrind.log"
}
server_hs_ir() { # server_hs_ir KIND DURATION [RUST_LOG]: "INSTRUCTIONS HANDSHAKES" over one handshakes run
    local kind=$1 duration=$2 log=${3:-warn,nea=info}
    PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    local vg=(valgrind --tool=callgrind --callgrind-out-file=/dev/null --log-file="$OUT/callgrind.log")
    if [ "$kind" = baseline ]; then
        "${vg[@]}" "$BIN/loadcli" baseline-server --port "$PORT" --cert "$CERT" --key "$KEY" \
            >/dev/null 2>&1 &
    else
        RUST_LOG=$log "${vg[@]}" "$BIN/servercli" --bind 127.0.0.1 --port "$PORT" \
            --cert "$CERT" --key "$KEY" --handshake-timeout 60s >/dev/null 2>&1 &
    fi
    PID=$!
    for _ in $(seq 300); do
        (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
        sleep 0.1
    done
    local extra=(); [ "$kind" = baseline ] && extra=(--baseline)
    local handshakes
    handshakes=$("$BIN/loadcli" handshakes -n 2 -d "$duration" --host 127.0.0.1 --ca "$CA" --port "$PORT" \
        "${extra[@]}" --json | python3 -c 'import json, sys; print(json.load(sys.stdin)["handshakes"])')
    stop_server
    echo "$(ir "$OUT/callgrind.log") $handshakes"
}
if part instructions; then
    if ! command -v valgrind >/dev/null; then
        echo "instructions: valgrind is not installed; skipped" >&2
    else
        cargo build --release --locked --example reverse_loop
        for kind in ascii chat non_ascii; do
            for len in 32 1024 65536; do
                n=$((400000 / (len + 32) + 1))
                for fn in nea naive; do
                    callgrind target/release/examples/reverse_loop "$fn" "$kind" "$len" "$n" >/dev/null
                    a=$(ir "$OUT/callgrind.log")
                    callgrind target/release/examples/reverse_loop "$fn" "$kind" "$len" $((6 * n)) >/dev/null
                    b=$(ir "$OUT/callgrind.log")
                    echo "reverse $fn $kind $len: $(((b - a) / (5 * n))) instructions per call"
                done
            done
        done | tee "$OUT/instructions.txt"
        for kind in baseline nea; do
            a=$(server_ir "$kind" 50 -n 100 -k 8 -l 32); b=$(server_ir "$kind" 250 -n 100 -k 8 -l 32)
            echo "server $kind, 32 B lines: $(((b - a) / 20000)) instructions per line"
            a=$(server_ir "$kind" 20 -n 100 -k 1 -l 1000); b=$(server_ir "$kind" 120 -n 100 -k 1 -l 1000)
            echo "server $kind, 1,000 B lines: $(((b - a) / 10000)) instructions per line"
        done | tee -a "$OUT/instructions.txt"
        # Full handshakes: runs of 10 s and 30 s, differenced (the count of
        # handshakes differs from run to run; start-up cancels out).
        for kind in baseline nea nea-quiet; do
            log=warn,nea=info; [ "$kind" = nea-quiet ] && log=warn
            read -r a ha < <(server_hs_ir "${kind%-quiet}" 10s "$log")
            read -r b hb < <(server_hs_ir "${kind%-quiet}" 30s "$log")
            echo "server $kind, full handshakes: $(((b - a) / (hb - ha))) instructions per handshake"
        done | tee -a "$OUT/instructions.txt"
    fi
fi

if part micro; then
    cargo bench --locked --bench micro -- --noplot 2>/dev/null | tee "$OUT/micro.txt" \
        | grep -E '^(reverse|decode|encode)|time:'
fi
echo "reports in $OUT/"
