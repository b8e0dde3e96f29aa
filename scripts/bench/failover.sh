#!/usr/bin/env bash
# Part `failover` (issue 12): FAILOVER_CLIENTS (8,000) clients of `loadcli
# storm` connect to HAProxy, run with the shipped contrib/haproxy/haproxy.cfg,
# in front of three servers. Once every client is connected, server 1 gets
# SIGTERM and is started again on its ports as soon as it has exited; 8 s
# later server 2 is killed (SIGKILL) and started again. loadcli checks that
# every line is answered once, in order, and times each wave of
# reconnections. Each run leaves failover.RUN.json, failover.RUN.csv and
# failover.RUN.events. HAProxy holds two descriptors per client, so 8,000
# clients need an open-file limit of about 17,000.
set -euo pipefail
# shellcheck source=scripts/bench/lib.sh
. "$(dirname "$0")/lib.sh"

FAILOVER_CLIENTS=${FAILOVER_CLIENTS:-$(pick 8000 200)}
readonly FAILOVER_CLIENTS

# backend_start RUN I: server I of run RUN on its ports (again, after a
# stop), behind HAProxy; retries while its old process still holds them.
# Its ports are in $BENCH_TMP/failover.RUN.I.{port,admin}.
backend_start() {
    local name=failover.$1.$2 port admin
    port=$(cat "$BENCH_TMP/$name.port")
    admin=$(cat "$BENCH_TMP/$name.admin")
    until SERVER_PORT=$port server_start "$name" nea --max-clients "$FAILOVER_CLIENTS" \
        --admin-addr "127.0.0.1:$admin" --proxy-protocol-from 127.0.0.1/32; do sleep 0.01; done
}

# haproxy_start RUN FRONT STATS: HAProxy on 127.0.0.1:FRONT with its stats
# socket at STATS, in front of run RUN's three servers; returns once it
# has all three UP. Its pid goes to $BENCH_TMP/haproxy.pid.
haproxy_start() {
    local run=$1 front=$2 stats=$3 i
    local -a env=(NEA_FRONTEND="127.0.0.1:$front" NEA_HAPROXY_STATS="$stats")
    for i in 1 2 3; do
        env+=("NEA_SERVER_$i=127.0.0.1:$(cat "$BENCH_TMP/failover.$run.$i.port")")
        env+=("NEA_ADMIN_PORT_$i=$(cat "$BENCH_TMP/failover.$run.$i.admin")")
    done
    (ulimit -n "$(ulimit -Hn)"
     exec env "${env[@]}" haproxy -db -f "$ROOT/contrib/haproxy/haproxy.cfg") \
        >"$(result "failover-haproxy.$run.log")" 2>&1 &
    echo $! >"$BENCH_TMP/haproxy.pid"
    for _ in $(seq 200); do
        [ -S "$stats" ] && [ "$(servers_up "$stats" 2>/dev/null)" = 3 ] && return 0
        sleep 0.1
    done
    die "HAProxy has not every server up"
}

# one_run RUN: the storm through a SIGTERM and a SIGKILL.
one_run() {
    local run=$1 i front stats storm term_at up1_at kill_at up2_at
    local -a admins=()
    for i in 1 2 3; do
        free_port >"$BENCH_TMP/failover.$run.$i.port"
        free_port >"$BENCH_TMP/failover.$run.$i.admin"
        admins+=("$(cat "$BENCH_TMP/failover.$run.$i.admin")")
        backend_start "$run" "$i"
    done
    front=$(free_port)
    stats=$BENCH_TMP/haproxy.sock
    haproxy_start "$run" "$front" "$stats"
    "$BIN/loadcli" storm -n "$FAILOVER_CLIENTS" --rate 1 -d "$(pick 40s 20s)" --ramp 128 \
        --series "$(result "failover.$run.csv")" --host 127.0.0.1 --ca "$CA" \
        --port "$front" --json >"$(result "failover.$run.json")" 2>"$(result "failover.$run.err")" &
    storm=$!
    wait_for_clients "$FAILOVER_CLIENTS" "$storm" "$(result "failover.$run.err")" "${admins[@]}"
    sleep "$(pick 5 2)"
    term_at=$(now)
    server_stop "failover.$run.1"
    backend_start "$run" 1
    up1_at=$(now)
    sleep "$(pick 8 3)"
    kill_at=$(now)
    server_stop "failover.$run.2" KILL
    backend_start "$run" 2
    up2_at=$(now)
    printf 'TERM_AT=%s\nUP1_AT=%s\nKILL_AT=%s\nUP2_AT=%s\n' "$term_at" "$up1_at" "$kill_at" "$up2_at" \
        >"$(result "failover.$run.events")"
    wait "$storm" || echo "failover run $run failed: $(cat "$(result "failover.$run.err")")" >&2
    for i in 1 2 3; do server_stop "failover.$run.$i"; done
    kill -TERM "$(cat "$BENCH_TMP/haproxy.pid")"
    wait "$(cat "$BENCH_TMP/haproxy.pid")" 2>/dev/null || true
    python3 "$BENCH_DIR/report.py" brief failover "$run" "$(result "failover.$run.json")" \
        clients lines lost duplicates out_of_order wrong gave_up waves
}

part() {
    local run
    for run in $(seq "$RUNS"); do one_run "$run"; done
}

require haproxy
require_open_files $((2 * FAILOVER_CLIENTS + 1000)) "failover with $FAILOVER_CLIENTS clients (HAProxy holds two per client)"
bench_main part
