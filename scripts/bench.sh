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
#   PARTS=handshakes bash scripts/bench.sh    # only the full-handshake comparisons
#   PARTS=storm bash scripts/bench.sh         # the reconnect storm (not in the
#                                             # default set: about a minute a
#                                             # run, and it installs gnuplot)
#   PARTS=failover bash scripts/bench.sh      # failover at scale through HAProxy
#                                             # (not in the default set either)
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${RUNS:-3}
PARTS=${PARTS:-compare admin hold scale abuse soak instructions micro}
part() { [[ " $PARTS " == *" $1 "* ]]; }
SOAK=${SOAK:-60s}
TUNABLES=glibc.malloc.arena_max=1:glibc.malloc.tcache_count=0
OUT=bench-results
mkdir -p "$OUT"
# The profiling profile: the release build's code, with the symbols and
# line tables that callgrind and perf attribute costs by.
cargo build --profile profiling --locked --bins
BIN=target/profiling
# SERVERCLI=PATH measures another build of the server (an older commit's,
# say) with this commit's load tool and baseline.
SERVERCLI=${SERVERCLI:-$BIN/servercli}

# Fresh certificates for the run, from the server's own development CA code.
CERTS=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$CERTS"' EXIT
NEA_DEV_DIR="$CERTS/dev" timeout 5 "$BIN/servercli" --port 0 --bind 127.0.0.1 2>/dev/null &
sleep 2; kill %1 2>/dev/null || true; wait 2>/dev/null || true
CA="$CERTS/dev/ca.pem"; CERT="$CERTS/dev/server.pem"; KEY="$CERTS/dev/server-key.pem"

# free_port: a TCP port of 127.0.0.1 that nothing listens on now.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# start_server KIND ARGS...: starts nea (default logging, as deployed; set
# NEA_LOG to change it, NEA_TUNABLES to set GLIBC_TUNABLES for it) or the
# baseline on a free port; sets PORT and PID.
start_server() {
    local kind=$1; shift
    PORT=$(free_port)
    if [ "$kind" = baseline ]; then
        "$BIN/loadcli" baseline-server --port "$PORT" --cert "$CERT" --key "$KEY" 2>"$OUT/$kind.log" &
    else
        env ${NEA_TUNABLES:+GLIBC_TUNABLES=$NEA_TUNABLES} RUST_LOG="${NEA_LOG:-warn,nea=info}" \
            "$SERVERCLI" --bind 127.0.0.1 --port "$PORT" \
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

# Only the full-handshake comparisons of `compare` (issue 11's target), for
# a quick check: PARTS=handshakes.
if part handshakes; then
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
        ADMIN=$(free_port)
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

# Reconnect storm (issue 12): STORM_CLIENTS (10,000) clients reconnecting
# as `clientcli --reconnect` does, one line a second each; once all are
# connected and the lines flow, the server is stopped (SIGTERM) and a new
# one started on the same port as soon as the old one has exited, as a
# service manager's restart does. With STORM_RESTART=activated the socket
# is systemd-socket-activate's, passed to both processes, so that nothing
# is refused while the new one starts. With STORM_RESTART=overlap the new one is
# started right after the SIGTERM instead: the old one closes its listening
# socket first thing, so the new one can bind while the old one still says
# goodbye to its clients. Each run leaves storm.N.json (the report),
# storm.N.csv (the series), storm.N.events (the restart's times) and
# storm.N.svg (the figure in BENCHMARKS.md).
STORM_CLIENTS=${STORM_CLIENTS:-10000}
STORM_RESTART=${STORM_RESTART:-wait}
# clients_connected ADMIN_PORT...: the sum of the servers' gauges (a server
# that does not answer counts 0).
clients_connected() {
    python3 - "$@" <<'PY'
import sys, urllib.request
total = 0
for port in sys.argv[1:]:
    try:
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
        total += next(float(l.split()[1]) for l in text.splitlines() if l.startswith("nea_clients_connected "))
    except OSError:
        pass
print(int(total))
PY
}
# start_nea_on PORT ARGS...: nea on a given port (for the restart); sets PID,
# and succeeds once the port file says it listens; fails if it exited (the
# port was still taken) or took more than 10 s.
start_nea_on() {
    local port=$1; shift
    rm -f "$CERTS/port"
    RUST_LOG="${NEA_LOG:-warn,nea=info}" "$SERVERCLI" --bind 127.0.0.1 --port "$port" \
        --cert "$CERT" --key "$KEY" --port-file "$CERTS/port" "$@" 2>>"$OUT/storm-server.log" &
    PID=$!
    for _ in $(seq 1000); do
        [ -s "$CERTS/port" ] && return 0
        kill -0 "$PID" 2>/dev/null || { wait "$PID" || true; return 1; }
        sleep 0.01
    done
    return 1
}
now() { date +%s.%N; }
# start_activated PORT ARGS...: systemd-socket-activate listening on PORT,
# running nea twice on the socket it passes (as a service manager restarts
# a socket-activated unit: STORM_RESTART=activated); sets PID to the first
# run's once it listens, and ACTIVATOR.
start_activated() {
    local port=$1; shift
    rm -rf "$CERTS/runs" "$CERTS/port"; mkdir -p "$CERTS/runs"
    # shellcheck disable=SC2016
    systemd-socket-activate -l "127.0.0.1:$port" --setenv=PATH --setenv=RUNS_DIR="$CERTS/runs" \
        --setenv=RUST_LOG="${NEA_LOG:-warn,nea=info}" \
        bash -c 'for run in 1 2; do (echo "$BASHPID" >"$RUNS_DIR/$run"; export LISTEN_PID=$BASHPID; exec "$@"); done' restart \
        "$SERVERCLI" --bind 127.0.0.1 --port 1 --cert "$CERT" --key "$KEY" --port-file "$CERTS/port" "$@" \
        2>>"$OUT/storm-server.log" &
    ACTIVATOR=$!
    # The activator starts its program at the first connection.
    until (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do sleep 0.01; done
    until [ -s "$CERTS/port" ] && [ -s "$CERTS/runs/1" ]; do sleep 0.01; done
    PID=$(cat "$CERTS/runs/1")
}
# storm_figure RUN: the SVG of a run, from its series and events.
storm_figure() {
    local run=$1 started back answered
    # When lines started (Unix time), and when the first wave had every
    # client back and every line answered (seconds since the lines
    # started; far off the right edge if it never did).
    read -r started back answered < <(python3 - "$OUT/storm.$run.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
w = (r["waves"] or [{}])[0]
loss = w.get("first_loss_s", 0)
at = lambda key: loss + w[key] if w.get(key) is not None else 1e9
print(r["started_unix_s"], at("reconnected_after_s"), at("answered_after_s"))
PY
)
    # shellcheck disable=SC1090
    . "$OUT/storm.$run.events"
    gnuplot <<GNUPLOT
set terminal svg size 900,640 dynamic enhanced font "sans,13" background "white"
set output "$OUT/storm.$run.svg"
set datafile separator ","
set datafile columnheaders
set multiplot layout 2,1 title "Reconnect storm: $STORM_CLIENTS clients, server restarted (SIGTERM, new process on the same port, restart: $STORM_RESTART)"
tsig = $TERM_AT - $started; tup = $UP_AT - $started; tback = $back; tdone = $answered
set xrange [tsig - 2 : (tdone < 1e8 ? tdone : tsig + 20) + 2]
set grid
set key outside below horizontal
set arrow 1 from tsig, graph 0 to tsig, graph 1 nohead dt 2 lc rgb "red"
set label 1 "SIGTERM" at tsig, graph 0.92 right offset -0.5,0 tc rgb "red"
set arrow 2 from tup, graph 0 to tup, graph 1 nohead dt 2 lc rgb "dark-green"
set label 2 "new server listening" at tup, graph 0.5 left offset 0.5,0 tc rgb "dark-green"
set arrow 3 from tback, graph 0 to tback, graph 1 nohead dt 3 lc rgb "black"
set label 3 "every client back" at tback, graph 0.2 right offset -0.5,0
set ylabel "clients connected"
set yrange [0:*]
set y2label "handshakes per second"
set y2tics
set y2range [0:*]
set ytics nomirror
plot "$OUT/storm.$run.csv" using 1:2 with lines lw 2 lc rgb "blue" title "clients connected", \\
     pt = 0, "" using 1:(dt = \$1 - pt, pt = \$1, \$0 == 0 || dt <= 0 ? 1/0 : \$5 / dt) axes x1y2 with steps lc rgb "orange" title "handshakes/s"
unset label 2
unset label 3
set arrow 3 from tdone, graph 0 to tdone, graph 1 nohead dt 3 lc rgb "black"
set label 4 "every pending line answered" at tdone, graph 0.85 right offset -0.5,0
set xlabel "seconds since the lines started"
set ylabel "lines answered per second"
set y2label "lines not answered yet"
plot pa = 0, pb = 0, "$OUT/storm.$run.csv" using 1:(da = \$4 - pa, pa = \$4, db = \$1 - pb, pb = \$1, \$0 == 0 || db <= 0 ? 1/0 : da / db) with steps lw 2 lc rgb "blue" title "lines answered/s", \\
     "" using 1:(\$3 - \$4) axes x1y2 with lines lc rgb "purple" title "lines due, not answered yet"
unset multiplot
GNUPLOT
}
if part storm; then
    if ! command -v gnuplot >/dev/null; then
        apt-get install -y -qq gnuplot-nox >/dev/null || { apt-get update -qq && apt-get install -y -qq gnuplot-nox >/dev/null; }
    fi
    # One descriptor per client in loadcli and in the server, plus the
    # sockets waiting for a handshake slot: both raise their soft limit to
    # the hard one, which must leave room.
    if [ "$(ulimit -Hn)" != unlimited ] && [ "$(ulimit -Hn)" -lt $((STORM_CLIENTS + 1000)) ]; then
        echo "storm: the open-file hard limit ($(ulimit -Hn)) is below $((STORM_CLIENTS + 1000)); raise it (ulimit -Hn, LimitNOFILE)" >&2
        exit 1
    fi
    for run in $(seq "$RUNS"); do
        PORT=$(free_port)
        ADMIN=$(free_port)
        if [ "$STORM_RESTART" = activated ]; then
            start_activated "$PORT" --max-clients "$STORM_CLIENTS" --admin-addr "127.0.0.1:$ADMIN"
        else
            start_nea_on "$PORT" --max-clients "$STORM_CLIENTS" --admin-addr "127.0.0.1:$ADMIN" \
                || { echo "storm: the server did not start" >&2; exit 1; }
        fi
        "$BIN/loadcli" storm -n "$STORM_CLIENTS" --rate 1 -d 30s --ramp 128 \
            --series "$OUT/storm.$run.csv" --host 127.0.0.1 --ca "$CA" --port "$PORT" --json \
            >"$OUT/storm.$run.json" 2>"$OUT/storm.$run.err" &
        STORM=$!
        # Every client connected (the server's own gauge), then lines flow
        # for five seconds before the restart.
        until [ "$(clients_connected "$ADMIN")" -ge "$STORM_CLIENTS" ]; do
            kill -0 "$STORM" 2>/dev/null || { echo "storm: loadcli ended early: $(cat "$OUT/storm.$run.err")" >&2; exit 1; }
            sleep 0.2
        done
        sleep 5
        TERM_AT=$(now)
        OLD=$PID
        kill -TERM "$OLD"
        if [ "$STORM_RESTART" = activated ]; then
            # The activator holds the socket; its script starts run 2 as
            # soon as run 1 has exited, and connections wait in the backlog.
            rm -f "$CERTS/port"
            while kill -0 "$OLD" 2>/dev/null; do sleep 0.01; done
            EXIT_AT=$(now)
            until [ -s "$CERTS/port" ]; do sleep 0.01; done
            UP_AT=$(now)
            PID=$(cat "$CERTS/runs/2")
        elif [ "$STORM_RESTART" = overlap ]; then
            until start_nea_on "$PORT" --max-clients "$STORM_CLIENTS"; do sleep 0.01; done
            UP_AT=$(now)
            wait "$OLD" || true
            EXIT_AT=$(now)
        else
            wait "$OLD" || true
            EXIT_AT=$(now)
            start_nea_on "$PORT" --max-clients "$STORM_CLIENTS" \
                || { echo "storm: the new server did not start" >&2; exit 1; }
            UP_AT=$(now)
        fi
        printf 'RESTART=%s\nTERM_AT=%s\nEXIT_AT=%s\nUP_AT=%s\n' "$STORM_RESTART" "$TERM_AT" "$EXIT_AT" "$UP_AT" \
            >"$OUT/storm.$run.events"
        wait "$STORM" || echo "storm run $run failed: $(cat "$OUT/storm.$run.err")" >&2
        stop_server
        if [ "$STORM_RESTART" = activated ]; then wait "$ACTIVATOR" || true; fi
        storm_figure "$run"
        python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print("storm", sys.argv[2], {k: r[k] for k in ("lost","gave_up","peak_handshakes_per_s","waves")})' "$OUT/storm.$run.json" "$run"
    done
fi

# Failover at scale through HAProxy (issue 12): FAILOVER_CLIENTS (8,000)
# clients of `loadcli storm` connect to HAProxy, run with the shipped
# contrib/haproxy/haproxy.cfg, in front of three servers. Once every client
# is connected, server 1 gets SIGTERM and is started again on its ports as
# soon as it has exited; 8 s later server 2 is killed (SIGKILL) and started
# again. loadcli checks that every line is answered once, in order, and
# times each wave of reconnections. Each run leaves failover.N.json,
# failover.N.csv and failover.N.events. HAProxy holds two descriptors per
# client, so 8,000 clients need an open-file limit of about 17,000.
FAILOVER_CLIENTS=${FAILOVER_CLIENTS:-8000}
# servers_up SOCKET: how many of HAProxy's servers it has UP.
servers_up() {
    python3 - "$1" <<'PY'
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1]); s.sendall(b"show stat\n")
data = b""
while chunk := s.recv(65536):
    data += chunk
rows = [l.split(",") for l in data.decode().splitlines() if l and not l.startswith("#")]
print(sum(1 for r in rows if r[0] == "nea" and r[1].startswith("nea") and r[17] == "UP"))
PY
}
if part failover; then
    command -v haproxy >/dev/null || { apt-get update -qq && apt-get install -y -qq haproxy >/dev/null; }
    if [ "$(ulimit -Hn)" != unlimited ] && [ "$(ulimit -Hn)" -lt $((2 * FAILOVER_CLIENTS + 1000)) ]; then
        echo "failover: the open-file hard limit ($(ulimit -Hn)) is below $((2 * FAILOVER_CLIENTS + 1000)) (HAProxy holds two per client)" >&2
        exit 1
    fi
    declare -a FPORT FADMIN FPID
    # start_backend I: server I on its ports (again, after a stop), behind
    # HAProxy; retries while its old process still holds the port.
    start_backend() {
        local i=$1
        until start_nea_on "${FPORT[$i]}" --max-clients "$FAILOVER_CLIENTS" \
            --admin-addr "127.0.0.1:${FADMIN[$i]}" --proxy-protocol-from 127.0.0.1/32; do sleep 0.01; done
        FPID[$i]=$PID
    }
    for run in $(seq "$RUNS"); do
        for i in 1 2 3; do FPORT[$i]=$(free_port); FADMIN[$i]=$(free_port); start_backend "$i"; done
        FRONT=$(free_port)
        STATS="$CERTS/haproxy.sock"
        (ulimit -n "$(ulimit -Hn)"
         NEA_FRONTEND="127.0.0.1:$FRONT" NEA_HAPROXY_STATS="$STATS" \
         NEA_SERVER_1="127.0.0.1:${FPORT[1]}" NEA_SERVER_2="127.0.0.1:${FPORT[2]}" NEA_SERVER_3="127.0.0.1:${FPORT[3]}" \
         NEA_ADMIN_PORT_1="${FADMIN[1]}" NEA_ADMIN_PORT_2="${FADMIN[2]}" NEA_ADMIN_PORT_3="${FADMIN[3]}" \
         exec haproxy -db -f contrib/haproxy/haproxy.cfg) >"$OUT/failover-haproxy.$run.log" 2>&1 &
        HAPROXY=$!
        for _ in $(seq 200); do
            [ -S "$STATS" ] && [ "$(servers_up "$STATS" 2>/dev/null)" = 3 ] && break
            sleep 0.1
        done
        [ "$(servers_up "$STATS")" = 3 ] || { echo "failover: HAProxy has not every server up" >&2; exit 1; }
        "$BIN/loadcli" storm -n "$FAILOVER_CLIENTS" --rate 1 -d 40s --ramp 128 \
            --series "$OUT/failover.$run.csv" --host 127.0.0.1 --ca "$CA" \
            --port "$FRONT" --json >"$OUT/failover.$run.json" 2>"$OUT/failover.$run.err" &
        STORM=$!
        until [ "$(clients_connected "${FADMIN[@]}")" -ge "$FAILOVER_CLIENTS" ]; do
            kill -0 "$STORM" 2>/dev/null || { echo "failover: loadcli ended early: $(cat "$OUT/failover.$run.err")" >&2; exit 1; }
            sleep 0.2
        done
        sleep 5
        TERM_AT=$(now)
        kill -TERM "${FPID[1]}"; wait "${FPID[1]}" || true
        start_backend 1
        UP1_AT=$(now)
        sleep 8
        KILL_AT=$(now)
        kill -KILL "${FPID[2]}"; wait "${FPID[2]}" 2>/dev/null || true
        start_backend 2
        UP2_AT=$(now)
        printf 'TERM_AT=%s\nUP1_AT=%s\nKILL_AT=%s\nUP2_AT=%s\n' "$TERM_AT" "$UP1_AT" "$KILL_AT" "$UP2_AT" \
            >"$OUT/failover.$run.events"
        wait "$STORM" || echo "failover run $run failed: $(cat "$OUT/failover.$run.err")" >&2
        for i in 1 2 3; do kill -TERM "${FPID[$i]}" 2>/dev/null || true; wait "${FPID[$i]}" 2>/dev/null || true; done
        kill -TERM "$HAPROXY"; wait "$HAPROXY" 2>/dev/null || true
        python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print("failover", sys.argv[2], {k: r[k] for k in ("clients","lines","lost","duplicates","out_of_order","wrong","gave_up","waves")})' "$OUT/failover.$run.json" "$run"
    done
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
    PORT=$(free_port)
    # valgrind itself in the background (not a function), so that $! is the
    # server and stop_server reaches it; no output, or $(...) would wait.
    local vg=(valgrind --tool=callgrind --callgrind-out-file=/dev/null --log-file="$OUT/callgrind.log")
    if [ "$kind" = baseline ]; then
        "${vg[@]}" "$BIN/loadcli" baseline-server --port "$PORT" --cert "$CERT" --key "$KEY" \
            >/dev/null 2>&1 &
    else
        RUST_LOG=warn,nea=info "${vg[@]}" "$SERVERCLI" --bind 127.0.0.1 --port "$PORT" \
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
    PORT=$(free_port)
    local vg=(valgrind --tool=callgrind --callgrind-out-file=/dev/null --log-file="$OUT/callgrind.log")
    if [ "$kind" = baseline ]; then
        "${vg[@]}" "$BIN/loadcli" baseline-server --port "$PORT" --cert "$CERT" --key "$KEY" \
            >/dev/null 2>&1 &
    else
        RUST_LOG=$log "${vg[@]}" "$SERVERCLI" --bind 127.0.0.1 --port "$PORT" \
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
        cargo build --profile profiling --locked --example reverse_loop
        for kind in ascii chat non_ascii; do
            for len in 32 1024 65536; do
                n=$((400000 / (len + 32) + 1))
                for fn in nea naive; do
                    callgrind target/profiling/examples/reverse_loop "$fn" "$kind" "$len" "$n" >/dev/null
                    a=$(ir "$OUT/callgrind.log")
                    callgrind target/profiling/examples/reverse_loop "$fn" "$kind" "$len" $((6 * n)) >/dev/null
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
