#!/usr/bin/env bash
# Runs the benchmark parts named in PARTS, in the order below, and writes
# their raw reports (JSON, one file per run) to bench-results/.
# BENCHMARKS.md explains the figures; scripts/bench/summary.py makes its
# tables. Each part is a script of its own (scripts/bench/PART.sh) that
# also runs alone: `bash scripts/bench/storm.sh` is `PARTS=storm` here.
#
#   bash scripts/bench/run.sh              # the default set, 3 runs of each comparison
#   RUNS=5 bash scripts/bench/run.sh       # more runs
#   SOAK=600s bash scripts/bench/run.sh    # with the 10-minute soak (default 60s)
#   PARTS="hold soak" bash scripts/bench/run.sh   # only some parts
#   QUICK=1 RUNS=1 PARTS="..." bash scripts/bench/run.sh
#                                          # every part end to end, small and
#                                          # short: a check of the scripts, its
#                                          # figures (in bench-results/quick/)
#                                          # mean nothing
#
# The parts (the default set is the first line's less handshakes):
#   compare handshakes admin hold scale abuse soak instructions micro
#   storm               the reconnect storm through a restart (about a minute a run)
#   failover            the storm through HAProxy in front of three servers
#   stalled-handshakes  fresh handshakes while many addresses stall theirs
#   versus              CPU per line of this build against BASE=PATH, another
#                       build of servercli, alternately
# lib.sh lists the settings every part reads (RUNS, OUT, SERVERCLI, ...).
set -euo pipefail

# Every part, in the order they run.
ALL_PARTS="compare handshakes admin hold scale abuse storm failover stalled-handshakes versus soak instructions micro"
DEFAULT_PARTS="compare admin hold scale abuse soak instructions micro"

# shellcheck source=scripts/bench/lib.sh
. "$(dirname "$0")/lib.sh"

main() {
    local parts part
    parts=${PARTS:-$DEFAULT_PARTS}
    for part in $parts; do
        [[ " $ALL_PARTS " == *" $part "* ]] || {
            echo "bench: no part '$part' (the parts: $ALL_PARTS)" >&2
            exit 2
        }
    done
    require cargo python3
    build
    for part in $ALL_PARTS; do
        if [[ " $parts " == *" $part "* ]]; then
            echo "bench: part $part" >&2
            BENCH_BUILT=1 bash "$BENCH_DIR/$part.sh"
        fi
    done
    echo "reports in $OUT/" >&2
}

main "$@"
