#!/usr/bin/env bash
# Part `admin`: the metrics' cost. nea alone, then with --admin-addr
# (scraped once a second meanwhile, as Prometheus would at the most), run
# by run: rtt-admin-off.RUN.json and rtt-admin-on.RUN.json.
set -euo pipefail
# shellcheck source=scripts/bench/lib.sh
. "$(dirname "$0")/lib.sh"

# scrape_every_second PORT: GET /metrics from 127.0.0.1:PORT once a second,
# for ever (run it in the background).
scrape_every_second() {
    while sleep 1; do
        { exec 3<>"/dev/tcp/127.0.0.1/$1" && printf 'GET /metrics HTTP/1.0\r\n\r\n' >&3 && cat <&3 >/dev/null; } 2>/dev/null || true
    done
}

part() {
    local run admin scraper lines
    lines=$(pick 2000 50)
    for run in $(seq "$RUNS"); do
        server_up nea nea
        load nea rtt -n 100 -k 8 -m "$lines" -l 32 >"$(result "rtt-admin-off.$run.json")"
        server_stop nea
        admin=$(free_port)
        server_up nea nea --admin-addr "127.0.0.1:$admin"
        scrape_every_second "$admin" &
        scraper=$!
        load nea rtt -n 100 -k 8 -m "$lines" -l 32 >"$(result "rtt-admin-on.$run.json")"
        kill "$scraper"
        wait "$scraper" 2>/dev/null || true
        server_stop nea
    done
}

bench_main part
