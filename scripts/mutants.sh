#!/usr/bin/env bash
# Mutation testing of the modules whose unit tests should catch every
# change: the line decoder, the reversal, the wire format, durations, the
# client's reconnection schedule, line accounting and pins, the escaping
# of text from elsewhere, the client's display and input handling, and
# flag parsing. cargo-mutants changes the
# code one small edit at a time (a `>` made `>=`, a body replaced by a
# default) and runs the unit tests; a change no test notices is a gap in the
# tests, or an edit that cannot change behaviour (listed in MUTANTS.md).
#
#   bash scripts/mutants.sh           # one mutant at a time
#   JOBS=2 bash scripts/mutants.sh    # on a machine with cores to spare
#
# Needs cargo-mutants 27 (`cargo install cargo-mutants --locked`). Prints
# the counts, and exits non-zero if a mutant survives that MUTANTS.md does
# not list, or if cargo-mutants itself fails.
set -euo pipefail
cd "$(dirname "$0")/.."

JOBS=${JOBS:-1}
OUT=mutants.out

# Library modules, tested by the library's unit tests alone (`--lib`): the
# integration tests in tests/ start real servers and would take minutes per
# mutant, and the binaries' unit tests only check main.rs's glue, which is
# not mutated here (rebuilding their harnesses would double each mutant's
# build time for nothing).
LIB_FILES=(
    src/codec.rs
    src/reverse.rs
    src/protocol.rs
    src/duration.rs
    src/pin.rs
    src/client/backoff.rs
    src/client/lines.rs
)
# The programs' shared support (nea-cli's library), tested by its unit tests.
CLI_LIB_FILES=(
    crates/nea-cli/src/escape.rs
    crates/nea-cli/src/flags.rs
    crates/nea-cli/src/usage.rs
)
# The programs' own modules, tested by the programs' unit tests: the
# client's display and piped input, and the flag definitions (clap derives
# only today, which give no mutants; code added there, a value parser, will
# be tested as soon as it appears).
BIN_FILES=(
    crates/nea-cli/src/bin/clientcli/display.rs
    crates/nea-cli/src/bin/clientcli/pipe.rs
    crates/nea-cli/src/bin/servercli/flags.rs
    crates/nea-cli/src/bin/clientcli/flags.rs
)
# What unit tests cannot reach, so that a survivor there says nothing about
# the tests:
# - lines.rs: `until_abort`, which waits on the session's input channel;
#   the integration tests cover it.
# - pipe.rs: `run` and the printer, which own the process's stdin and
#   stdout. Kept: the input reader (`read_lines`, `to_input`) and its limit.
# - logging.rs: `init_logging` and `init_server_logging`, which install
#   the process-wide subscriber.
EXCLUDE_RE=(
    '^src/client/lines\.rs:.*\buntil_abort\b'
    '^crates/nea-cli/src/bin/clientcli/pipe\.rs:.*\b(run|print_events|write_flush)\b'
    '^crates/nea-cli/src/logging\.rs:.*\binit_(server_)?logging\b'
)

# cargo-mutants builds each mutant in a scratch copy of the tree. One job at
# a time, the copies of every run share target/mutants, so dependencies
# (aws-lc-sys takes minutes) are built once, not once per run. Not the
# tree's own target directory: the copy's artifacts have the same names as
# the tree's, and a build here during a run would be taken for the
# mutant's (or the last mutant's for the tree's). With more jobs, copies
# would use each other's builds the same way, so each builds for itself.
if [[ $JOBS == 1 && -z ${CARGO_TARGET_DIR:-} ]]; then
    export CARGO_TARGET_DIR="$PWD/target/mutants"
fi

# One cargo-mutants run; its exit status is 0 (all caught), 2 (some missed)
# or 3 (some timed out); anything else is a failure of the run itself.
# `target` (--lib or --bins) is given to every cargo command, the build too:
# `cargo test --no-run` alone would also build every integration test and
# example for each mutant.
run() {
    local out=$1 package=$2 target=$3
    shift 3
    local args=(--package "$package" --jobs "$JOBS" --output "$OUT/$out"
        --minimum-test-timeout 40 "--cargo-arg=$target")
    local file re
    for file in "$@"; do args+=(--file "$file"); done
    for re in "${EXCLUDE_RE[@]}"; do args+=(--exclude-re "$re"); done
    local status=0
    nice -n 10 cargo mutants "${args[@]}" || status=$?
    if [[ $status != 0 && $status != 2 && $status != 3 ]]; then
        echo "cargo mutants failed (status $status)" >&2
        exit "$status"
    fi
}

rm -rf "$OUT"
mkdir -p "$OUT/lib" "$OUT/cli-lib" "$OUT/bins"
run lib nea --lib "${LIB_FILES[@]}"
run cli-lib nea-cli --lib "${CLI_LIB_FILES[@]}"
run bins nea-cli --bins "${BIN_FILES[@]}"

# Outcomes of both runs, one mutant a line, in $OUT/<outcome>.txt.
for outcome in caught missed unviable timeout; do
    cat "$OUT"/*/mutants.out/"$outcome".txt 2>/dev/null >"$OUT/$outcome.txt" || true
done
count() { grep -c "$2" "$OUT/$1.txt" || true; }

echo
printf '%-28s %7s %7s %9s %8s\n' file caught missed unviable timeout
for file in "${LIB_FILES[@]}" "${CLI_LIB_FILES[@]}" "${BIN_FILES[@]}"; do
    printf '%-28s %7s %7s %9s %8s\n' "$file" \
        "$(count caught "^$file:")" "$(count missed "^$file:")" \
        "$(count unviable "^$file:")" "$(count timeout "^$file:")"
done
caught=$(count caught .)
missed=$(count missed .)
unviable=$(count unviable .)
timeout=$(count timeout .)
viable=$((caught + missed + timeout))
printf '%-28s %7s %7s %9s %8s\n' total "$caught" "$missed" "$unviable" "$timeout"
percent() { echo "$(($1 * 1000 / viable / 10)).$(($1 * 1000 / viable % 10))%"; }
if ((viable > 0)); then
    # A timeout is a mutant that made some test hang (a server test waiting
    # for a reply that never comes): the tests did not pass, but it is not
    # counted as caught.
    echo "caught: $(percent "$caught") of $viable viable mutants;" \
        "caught or timed out: $(percent $((caught + timeout)))"
fi

# Every survivor must be listed in MUTANTS.md as "<file>: <description>",
# the way cargo-mutants names it without line and column (those move with
# every edit above).
unlisted=0
while IFS= read -r mutant; do
    key=$(sed -E 's/^([^:]+):[0-9]+:[0-9]+: /\1: /' <<<"$mutant")
    if ! grep -qF -- "$key" MUTANTS.md; then
        echo "not caught and not in MUTANTS.md: $mutant" >&2
        unlisted=$((unlisted + 1))
    fi
done <"$OUT/missed.txt"
if ((unlisted > 0)); then
    echo "$unlisted surviving mutant(s): add a test, or list it in MUTANTS.md with why it cannot change behaviour" >&2
    exit 1
fi
