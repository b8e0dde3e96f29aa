# shellcheck shell=bash
# Shared by the bench parts (scripts/bench/*.sh); sourced, not run.
#
# What it owns: where the binaries and the results are, the certificates of
# a run, starting a server and waiting for its port file, stopping it, free
# ports, loadcli against a started server, the baseline/nea comparison, and
# the live gauges the parts wait on. Every function gives its result on
# stdout or in a file; none sets a variable for its caller. The variables
# below are the run's configuration, set once and read-only.
#
# Configuration, from the environment:
#   RUNS=3        runs of each repeated measurement
#   OUT=DIR       where reports go (default bench-results/, or
#                 bench-results/quick/ with QUICK=1)
#   QUICK=1       every part end to end with small numbers and short
#                 durations: checks that the parts run, its figures mean
#                 nothing
#   SERVERCLI=BIN measure another build of the server (an older commit's,
#                 say) with this commit's loadcli and baseline
#   NEA_LOG       the measured server's RUST_LOG (default warn,nea=info:
#                 its default logging, as deployed)
#   NEA_TUNABLES  GLIBC_TUNABLES for the measured server
#   CARGO_TARGET_DIR  where cargo builds (default target/): the binaries
#                 measured are its profiling/ ones (the release build,
#                 with the symbols callgrind and perf need)

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$BENCH_DIR/../.." && pwd)
RUNS=${RUNS:-3}
if [ "${QUICK:-0}" = 1 ]; then OUT=${OUT:-$ROOT/bench-results/quick}; else OUT=${OUT:-$ROOT/bench-results}; fi
case ${CARGO_TARGET_DIR:-target} in
    /*) BIN=$CARGO_TARGET_DIR/profiling ;;
    *) BIN=$ROOT/${CARGO_TARGET_DIR:-target}/profiling ;;
esac
SERVERCLI=${SERVERCLI:-$BIN/servercli}
readonly BENCH_DIR ROOT RUNS OUT BIN SERVERCLI

# die SENTENCE: the part stops, saying why in one line.
die() {
    echo "bench: $*" >&2
    exit 1
}

# require TOOL...: fails in one line naming the first tool missing.
require() {
    local tool
    for tool in "$@"; do
        command -v "$tool" >/dev/null 2>&1 || die "$tool is missing: run scripts/setup.sh"
    done
}

# require_open_files N WHAT: fails unless this shell may open N files (the
# programs raise their soft limit to the hard one, which must leave room).
require_open_files() {
    local needed=$1 what=$2 hard
    hard=$(ulimit -Hn)
    if [ "$hard" != unlimited ] && [ "$hard" -lt "$needed" ]; then
        die "$what needs $needed open files, and the hard limit is $hard: raise it (ulimit -Hn, LimitNOFILE)"
    fi
}

# quick: whether this is a QUICK=1 run.
quick() {
    [ "${QUICK:-0}" = 1 ]
}

# pick FULL SHORT: the setting of a real run, or of a QUICK=1 one.
pick() {
    if quick; then echo "$2"; else echo "$1"; fi
}

# result NAME: the path of the report file NAME.
result() {
    echo "$OUT/$1"
}

# now: Unix time, in seconds with nanoseconds.
now() {
    date +%s.%N
}

# free_port: a TCP port of 127.0.0.1 that nothing listens on now.
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# server_dir NAME: where the pid and port files of server NAME are.
server_dir() {
    echo "$BENCH_TMP/servers/$1"
}

# server_start NAME KIND [ARGS...]: starts server NAME, nea (with ARGS) or
# the baseline (KIND baseline), logging to $OUT/NAME.log, and returns once
# it listens: once its port file is written. Fails (status 1, nothing said)
# if it exits first or takes more than SERVER_START_TIMEOUT seconds (10).
# SERVER_PORT picks its port (default 0: any free one); SERVER_BINARY runs
# another build of servercli than SERVERCLI; SERVER_WRAPPER is a
# command to run it under (valgrind), split on spaces. Call it from the
# shell that will stop it, not from a pipeline.
server_start() {
    local name=$1 kind=$2
    shift 2
    local dir log port=${SERVER_PORT:-0}
    dir=$(server_dir "$name")
    log=$(result "$name.log")
    rm -rf "$dir"
    mkdir -p "$dir"
    local -a wrapper=()
    if [ -n "${SERVER_WRAPPER:-}" ]; then read -r -a wrapper <<<"$SERVER_WRAPPER"; fi
    if [ "$kind" = baseline ]; then
        "${wrapper[@]}" "$BIN/loadcli" baseline-server --port "$port" --cert "$CERT" --key "$KEY" \
            --port-file "$dir/port" >>"$log" 2>&1 &
    else
        env ${NEA_TUNABLES:+GLIBC_TUNABLES=$NEA_TUNABLES} RUST_LOG="${NEA_LOG:-warn,nea=info}" \
            "${wrapper[@]}" "${SERVER_BINARY:-$SERVERCLI}" --bind 127.0.0.1 --port "$port" --cert "$CERT" --key "$KEY" \
            --port-file "$dir/port" "$@" >>"$log" 2>&1 &
    fi
    echo $! >"$dir/pid"
    wait_for_port_file "$dir/port" "$!" "${SERVER_START_TIMEOUT:-10}"
}

# server_up NAME KIND [ARGS...]: server_start, and the part stops if the
# server did not start.
server_up() {
    server_start "$@" || die "server $1 did not start: see $(result "$1.log")"
}

# wait_for_port_file FILE PID SECONDS: until FILE is written; fails if
# process PID exits first or SECONDS pass.
wait_for_port_file() {
    local file=$1 pid=$2 deadline=$((SECONDS + $3))
    until [ -s "$file" ]; do
        if ! kill -0 "$pid" 2>/dev/null || [ "$SECONDS" -ge "$deadline" ]; then
            wait "$pid" 2>/dev/null || true
            return 1
        fi
        sleep 0.01
    done
}

# server_port NAME, server_pid NAME: where server NAME listens, its process.
server_port() {
    cat "$(server_dir "$1")/port"
}
server_pid() {
    cat "$(server_dir "$1")/pid"
}

# server_stop NAME [SIGNAL]: stops server NAME (SIGTERM, or SIGNAL) and
# waits until it has exited.
server_stop() {
    local pid
    pid=$(server_pid "$1")
    kill -"${2:-TERM}" "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

# load SERVER ARGS...: loadcli ARGS against server SERVER, reading its
# process's counters, the report as JSON on stdout.
load() {
    local server=$1
    shift
    "$BIN/loadcli" "$@" --host 127.0.0.1 --ca "$CA" --port "$(server_port "$server")" \
        --pid "$(server_pid "$server")" --json
}

# compare NAME ARGS...: RUNS runs of `loadcli ARGS` against the baseline
# and against nea, alternately and each on a fresh server, so that the
# machine's state affects both alike; reports in
# NAME.{baseline,nea}.RUN.json.
compare() {
    local name=$1 run kind
    shift
    for run in $(seq "$RUNS"); do
        for kind in baseline nea; do
            local -a protocol=()
            [ "$kind" = baseline ] && protocol=(--baseline)
            server_up "$kind" "$kind"
            load "$kind" "$@" "${protocol[@]}" >"$(result "$name.$kind.$run.json")"
            server_stop "$kind"
        done
    done
}

# compare_handshakes: the full-handshake comparisons (parts compare and
# handshakes): with nea's default log line per client, and without it.
compare_handshakes() {
    local duration
    duration=$(pick 10s 1s)
    compare handshakes handshakes -n 2 -d "$duration"
    NEA_LOG=warn compare handshakes-quiet handshakes -n 2 -d "$duration"
}

# clients_connected ADMIN_PORT...: the sum of the servers'
# nea_clients_connected gauges (a server that does not answer counts 0).
clients_connected() {
    python3 "$BENCH_DIR/gauges.py" clients-connected "$@"
}

# wait_for_clients COUNT LOADCLI ERRORS ADMIN_PORT...: until the servers'
# gauges add up to COUNT clients; fails, quoting the file ERRORS, if
# loadcli (process LOADCLI) ended first.
wait_for_clients() {
    local count=$1 loadcli=$2 errors=$3
    shift 3
    until [ "$(clients_connected "$@")" -ge "$count" ]; do
        kill -0 "$loadcli" 2>/dev/null || die "loadcli ended early: $(cat "$errors")"
        sleep 0.2
    done
}

# servers_up SOCKET: how many of HAProxy's nea servers it has UP.
servers_up() {
    python3 "$BENCH_DIR/gauges.py" haproxy-up "$1"
}

# make_certs DIR: the server's own development CA and certificate, made by
# servercli in DIR (as NEA_DEV_DIR) and the server stopped again.
make_certs() {
    local dir=$1 pid
    NEA_DEV_DIR="$dir" "$BIN/servercli" --bind 127.0.0.1 --port 0 --port-file "$BENCH_TMP/certs.port" \
        >/dev/null 2>&1 &
    pid=$!
    wait_for_port_file "$BENCH_TMP/certs.port" "$pid" 10 || die "servercli did not make its development certificates"
    kill -TERM "$pid"
    wait "$pid" || true
}

# build: the release binaries, unless the runner built them already.
build() {
    if [ -z "${BENCH_BUILT:-}" ]; then
        (cd "$ROOT" && cargo build --profile profiling --locked --bins)
    fi
}

# cleanup: on exit, stops whatever the part left running and removes the
# run's temporary files.
cleanup() {
    local pids
    pids=$(jobs -p)
    if [ -n "$pids" ]; then
        # shellcheck disable=SC2086
        kill $pids 2>/dev/null || true
    fi
    rm -rf "$BENCH_TMP"
}

# bench_main PART: what every part starts with (its tools are there, the
# binaries built, fresh certificates in a temporary directory that goes
# away with it), then the function PART.
bench_main() {
    require cargo python3
    mkdir -p "$OUT"
    BENCH_TMP=$(mktemp -d)
    CA=$BENCH_TMP/dev/ca.pem
    CERT=$BENCH_TMP/dev/server.pem
    KEY=$BENCH_TMP/dev/server-key.pem
    readonly BENCH_TMP CA CERT KEY
    trap cleanup EXIT
    build
    make_certs "$BENCH_TMP/dev"
    "$@"
}
