#!/usr/bin/env bash
# Part `storm` (issue 12): STORM_CLIENTS (10,000) clients of `loadcli
# storm` reconnecting as `clientcli --reconnect` does, one line a second
# each; once all are connected (the server's own gauge) and the lines have
# flowed for 5 s, the server is stopped (SIGTERM) and a new one started on
# the same port, as a service manager's restart does. STORM_RESTART says
# when the new one starts:
#   wait       (default) as soon as the old one has exited;
#   overlap    right after the SIGTERM: the old one closes its listening
#              socket first thing, so the new one can bind while the old one
#              still says goodbye to its clients;
#   activated  the socket is systemd-socket-activate's, passed to both
#              processes, so that nothing is refused while the new one
#              starts.
# Each run leaves storm.RUN.json (the report), storm.RUN.csv (the series),
# storm.RUN.events (the restart's times) and storm.RUN.svg (the figure in
# BENCHMARKS.md, drawn by plot-storm.gp).
set -euo pipefail
# shellcheck source=scripts/bench/lib.sh
. "$(dirname "$0")/lib.sh"

STORM_CLIENTS=${STORM_CLIENTS:-$(pick 10000 200)}
STORM_RESTART=${STORM_RESTART:-wait}
readonly STORM_CLIENTS STORM_RESTART

# activated_start RUN PORT ARGS...: systemd-socket-activate listening on
# PORT, running nea twice on the socket it passes (as a service manager
# restarts a socket-activated unit); returns once the first run listens,
# recorded as server storm.RUN.old (and the activator as
# storm.RUN.activator). The second run's pid appears in
# $(server_dir storm.RUN.activator)/2 when it starts.
activated_start() {
    local run=$1 port=$2
    shift 2
    local dir
    dir=$(server_dir "storm.$run.activator")
    rm -rf "$dir"
    mkdir -p "$dir" "$(server_dir "storm.$run.old")"
    # shellcheck disable=SC2016
    systemd-socket-activate -l "127.0.0.1:$port" --setenv=PATH --setenv=RUNS_DIR="$dir" \
        --setenv=RUST_LOG="${NEA_LOG:-warn,nea=info}" \
        bash -c 'for run in 1 2; do (echo "$BASHPID" >"$RUNS_DIR/$run"; export LISTEN_PID=$BASHPID; exec "$@"); done' restart \
        "$SERVERCLI" --bind 127.0.0.1 --port 1 --cert "$CERT" --key "$KEY" --port-file "$dir/port" "$@" \
        >>"$(result "storm.$run.server.log")" 2>&1 &
    echo $! >"$dir/pid"
    # The activator starts its program at the first connection.
    until (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do sleep 0.01; done
    until [ -s "$dir/port" ] && [ -s "$dir/1" ]; do sleep 0.01; done
    cp "$dir/1" "$(server_dir "storm.$run.old")/pid"
    echo "$port" >"$(server_dir "storm.$run.old")/port"
}

# restart RUN PORT ARGS...: SIGTERM to server storm.RUN.old, and a new one
# (storm.RUN.new) as STORM_RESTART says; the times go to storm.RUN.events.
restart() {
    local run=$1 port=$2
    shift 2
    local old term_at exit_at up_at
    old=$(server_pid "storm.$run.old")
    term_at=$(now)
    kill -TERM "$old"
    case $STORM_RESTART in
        activated)
            # The activator holds the socket; its script starts run 2 as soon
            # as run 1 has exited, and connections wait in the backlog.
            local dir
            dir=$(server_dir "storm.$run.activator")
            rm -f "$dir/port"
            while kill -0 "$old" 2>/dev/null; do sleep 0.01; done
            exit_at=$(now)
            until [ -s "$dir/port" ]; do sleep 0.01; done
            up_at=$(now)
            mkdir -p "$(server_dir "storm.$run.new")"
            cp "$dir/2" "$(server_dir "storm.$run.new")/pid"
            ;;
        overlap)
            until SERVER_PORT=$port server_start "storm.$run.new" nea "$@"; do sleep 0.01; done
            up_at=$(now)
            wait "$old" || true
            exit_at=$(now)
            ;;
        wait)
            wait "$old" || true
            exit_at=$(now)
            SERVER_PORT=$port server_up "storm.$run.new" nea "$@"
            up_at=$(now)
            ;;
        *) die "STORM_RESTART is wait, overlap or activated, not '$STORM_RESTART'" ;;
    esac
    printf 'RESTART=%s\nTERM_AT=%s\nEXIT_AT=%s\nUP_AT=%s\n' "$STORM_RESTART" "$term_at" "$exit_at" "$up_at" \
        >"$(result "storm.$run.events")"
}

# figure RUN: storm.RUN.svg, from the run's series, report and events.
figure() {
    local run=$1 started back answered events
    events=$(result "storm.$run.events")
    read -r started back answered < <(python3 "$BENCH_DIR/report.py" storm-times "$(result "storm.$run.json")")
    gnuplot -e "out='$(result "storm.$run.svg")'; csv='$(result "storm.$run.csv")'" \
        -e "clients='$STORM_CLIENTS'; restart='$STORM_RESTART'" \
        -e "tsig=$(event "$events" TERM_AT) - $started; tup=$(event "$events" UP_AT) - $started" \
        -e "tback=$back; tdone=$answered" \
        "$BENCH_DIR/plot-storm.gp"
}

# event FILE KEY: the value of KEY in an events file.
event() {
    sed -n "s/^$2=//p" "$1"
}

# one_run RUN: a storm through one restart.
one_run() {
    local run=$1 port admin storm
    local -a args
    port=$(free_port)
    admin=$(free_port)
    args=(--max-clients "$STORM_CLIENTS")
    if [ "$STORM_RESTART" = activated ]; then
        activated_start "$run" "$port" "${args[@]}" --admin-addr "127.0.0.1:$admin"
    else
        SERVER_PORT=$port server_up "storm.$run.old" nea "${args[@]}" --admin-addr "127.0.0.1:$admin"
    fi
    "$BIN/loadcli" storm -n "$STORM_CLIENTS" --rate 1 -d "$(pick 30s 10s)" --ramp 128 \
        --series "$(result "storm.$run.csv")" --host 127.0.0.1 --ca "$CA" --port "$port" --json \
        >"$(result "storm.$run.json")" 2>"$(result "storm.$run.err")" &
    storm=$!
    wait_for_clients "$STORM_CLIENTS" "$storm" "$(result "storm.$run.err")" "$admin"
    # The lines flow for a while before the restart.
    sleep "$(pick 5 2)"
    restart "$run" "$port" "${args[@]}"
    wait "$storm" || echo "storm run $run failed: $(cat "$(result "storm.$run.err")")" >&2
    server_stop "storm.$run.new"
    if [ "$STORM_RESTART" = activated ]; then wait "$(server_pid "storm.$run.activator")" || true; fi
    figure "$run"
    python3 "$BENCH_DIR/report.py" brief storm "$run" "$(result "storm.$run.json")" \
        lost gave_up peak_handshakes_per_s waves
}

part() {
    local run
    for run in $(seq "$RUNS"); do one_run "$run"; done
}

require gnuplot
if [ "$STORM_RESTART" = activated ]; then require systemd-socket-activate; fi
# One descriptor per client in loadcli and in the server, plus the sockets
# waiting for a handshake slot.
require_open_files $((STORM_CLIENTS + 1000)) "a storm of $STORM_CLIENTS clients"
bench_main part
