#!/usr/bin/env bash
# Part `instructions`: instruction counts (callgrind), which repeat
# exactly where times on a shared machine do not. Each figure is the
# difference of two runs of different lengths, divided by the difference
# in work, so that start-up cancels out: per reversal
# (examples/reverse_loop.rs), per line and per full handshake (the server
# under valgrind, loadcli outside it). Writes instructions.txt.
set -euo pipefail
# shellcheck source=scripts/bench/lib.sh
. "$(dirname "$0")/lib.sh"

# ir LOGFILE: the instruction total callgrind logged.
ir() {
    sed -n 's/.*Collected : \([0-9]*\).*/\1/p' "$1"
}

# callgrind PROGRAM ARGS...: the instructions PROGRAM executes.
callgrind() {
    local log
    log=$(result callgrind.log)
    valgrind --tool=callgrind --callgrind-out-file=/dev/null --log-file="$log" "$@" >/dev/null
    ir "$log"
}

# under_callgrind NAME KIND [ARGS...]: server NAME started under callgrind
# (slow to start: up to a minute).
under_callgrind() {
    SERVER_WRAPPER="valgrind --tool=callgrind --callgrind-out-file=/dev/null --log-file=$(result callgrind.log)" \
        SERVER_START_TIMEOUT=60 server_up "$@"
}

# server_ir KIND LINES ARGS...: the server's instructions over one
# `loadcli rtt ARGS -m LINES` run.
server_ir() {
    local kind=$1 lines=$2
    shift 2
    local -a protocol=()
    [ "$kind" = baseline ] && protocol=(--baseline)
    under_callgrind ir "$kind" --handshake-timeout 60s
    "$BIN/loadcli" rtt "$@" -m "$lines" --host 127.0.0.1 --ca "$CA" --port "$(server_port ir)" \
        "${protocol[@]}" >/dev/null
    server_stop ir
    ir "$(result callgrind.log)"
}

# server_hs_ir KIND DURATION [RUST_LOG]: "INSTRUCTIONS HANDSHAKES", the
# server's over one `loadcli handshakes -n 2 -d DURATION` run.
server_hs_ir() {
    local kind=$1 duration=$2 handshakes
    local -a protocol=()
    [ "$kind" = baseline ] && protocol=(--baseline)
    NEA_LOG=${3:-warn,nea=info} under_callgrind ir "$kind" --handshake-timeout 60s
    handshakes=$("$BIN/loadcli" handshakes -n 2 -d "$duration" --host 127.0.0.1 --ca "$CA" \
        --port "$(server_port ir)" "${protocol[@]}" --json | python3 "$BENCH_DIR/report.py" field handshakes)
    server_stop ir
    echo "$(ir "$(result callgrind.log)") $handshakes"
}

# per_reversal: instructions per call of each reversal, by text and length.
per_reversal() {
    local kind len n fn a b
    for kind in $(pick "ascii chat non_ascii" ascii); do
        for len in $(pick "32 1024 65536" 32); do
            n=$((400000 / (len + 32) + 1))
            for fn in nea naive; do
                a=$(callgrind "$BIN/examples/reverse_loop" "$fn" "$kind" "$len" "$n")
                b=$(callgrind "$BIN/examples/reverse_loop" "$fn" "$kind" "$len" $((6 * n)))
                echo "reverse $fn $kind $len: $(((b - a) / (5 * n))) instructions per call"
            done
        done
    done
}

# per_line: the servers' instructions per line, 32 B and 1,000 B.
per_line() {
    local kind clients a b
    clients=$(pick 100 10)
    for kind in baseline nea; do
        a=$(server_ir "$kind" 50 -n "$clients" -k 8 -l 32)
        b=$(server_ir "$kind" 250 -n "$clients" -k 8 -l 32)
        echo "server $kind, 32 B lines: $(((b - a) / (200 * clients))) instructions per line"
        a=$(server_ir "$kind" 20 -n "$clients" -k 1 -l 1000)
        b=$(server_ir "$kind" 120 -n "$clients" -k 1 -l 1000)
        echo "server $kind, 1,000 B lines: $(((b - a) / (100 * clients))) instructions per line"
    done
}

# per_handshake: the servers' instructions per full handshake, from runs
# of two lengths (the count of handshakes differs from run to run).
per_handshake() {
    local kind log a ha b hb
    for kind in baseline nea nea-quiet; do
        log=warn,nea=info
        [ "$kind" = nea-quiet ] && log=warn
        read -r a ha < <(server_hs_ir "${kind%-quiet}" "$(pick 10s 2s)" "$log")
        read -r b hb < <(server_hs_ir "${kind%-quiet}" "$(pick 30s 4s)" "$log")
        echo "server $kind, full handshakes: $(((b - a) / (hb - ha))) instructions per handshake"
    done
}

part() {
    (cd "$ROOT" && cargo build --profile profiling --locked --example reverse_loop)
    per_reversal | tee "$(result instructions.txt)"
    per_line | tee -a "$(result instructions.txt)"
    per_handshake | tee -a "$(result instructions.txt)"
}

require valgrind
bench_main part
