#!/usr/bin/env bash
# Runs the terminal (pseudo-terminal) tests RUNS times in a row (default
# 20), keeping each run's whole output in OUT (default target/pty-loop/):
# run-N.log, and summary.txt with one line per run. Exits 1 if any run
# failed. The terminal tests drive the real clientcli in a real
# pseudo-terminal, where timing is the machine's: a loop shows they hold
# run after run, not in one lucky run.
#
#   bash scripts/pty-loop.sh
#   RUNS=5 bash scripts/pty-loop.sh
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${RUNS:-20}
OUT=${OUT:-target/pty-loop}
mkdir -p "$OUT"
rm -f "$OUT"/run-*.log "$OUT/summary.txt"

# Built once, so that every run measures the tests, not the build.
cargo nextest run --locked -p nea-cli --test it --no-run
failed=0
for run in $(seq "$RUNS"); do
    log=$OUT/run-$run.log
    if cargo nextest run --locked -p nea-cli --test it --no-fail-fast -E 'test(/^terminal::/)' >"$log" 2>&1; then
        verdict=passed
    else
        verdict=FAILED
        failed=$((failed + 1))
    fi
    echo "run $run: $verdict: $(grep -E '^ +Summary' "$log" | tail -1 | sed 's/^ *//')" | tee -a "$OUT/summary.txt"
done
echo "$((RUNS - failed)) of $RUNS runs passed; each run's output is in $OUT" | tee -a "$OUT/summary.txt"
[ "$failed" -eq 0 ]
