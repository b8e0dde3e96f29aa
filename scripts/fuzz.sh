#!/usr/bin/env bash
# Coverage-guided fuzzing of the targets in fuzz/ (see FUZZING.md).
#
#   bash scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]
#
# Runs each target (default: all) for SECONDS_PER_TARGET (default 60),
# then minimises its corpus into fuzz/corpus/<target>/ (checked in, and
# replayed on stable by crates/nea-cli/tests/fuzz_corpus.rs), copies any crashing input
# into fuzz/regressions/<target>/ (checked in too, so that a fixed bug
# stays fixed), and exits non-zero if any target crashed.
#
# FUZZ_SANITIZER picks cargo-fuzz's sanitizer (default: address);
# FUZZ_MAX_CORPUS_FILES the corpus size past which minimising keeps only
# edge coverage (default 500).
set -euo pipefail
cd "$(dirname "$0")/.."

SECONDS_PER_TARGET=${1:-60}
shift || true
if ! [[ $SECONDS_PER_TARGET =~ ^[0-9]+$ ]] || [ "$SECONDS_PER_TARGET" -eq 0 ]; then
    echo "usage: bash scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]" >&2
    exit 2
fi
SANITIZER=${FUZZ_SANITIZER:-address}
MAX_CORPUS_FILES=${FUZZ_MAX_CORPUS_FILES:-500}

# libFuzzer needs a nightly compiler (sanitizer and coverage flags); the
# project itself builds on stable, so nightly is only ever used here.
if ! rustup toolchain list | grep -q '^nightly'; then
    rustup toolchain install nightly --profile minimal
fi
if ! command -v cargo-fuzz >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi

if [ "$#" -gt 0 ]; then
    targets=("$@")
else
    # Every target cargo-fuzz knows, from fuzz/Cargo.toml.
    mapfile -t targets < <(cargo +nightly fuzz list)
fi

crashed=()
for target in "${targets[@]}"; do
    corpus="$PWD/fuzz/corpus/$target"
    # Findings of an earlier run are not this run's: start with none.
    rm -rf "fuzz/artifacts/$target"
    mkdir -p "$corpus" "fuzz/artifacts/$target"
    # A dictionary of the format's tokens, where the target has one.
    dict=()
    if [ -f "fuzz/dict/$target.dict" ]; then
        dict=("-dict=$PWD/fuzz/dict/$target.dict")
    fi
    log="fuzz/artifacts/$target.log"
    echo "== $target: ${SECONDS_PER_TARGET}s (log: $log)"
    # A crash ends the run with a non-zero status; record it and go on, so
    # that one finding does not hide the state of the other targets.
    # -print_final_stats gives the executions and exec/s that FUZZING.md
    # reports.
    if ! cargo +nightly fuzz run --sanitizer "$SANITIZER" "$target" "$corpus" -- \
        -max_total_time="$SECONDS_PER_TARGET" -print_final_stats=1 "${dict[@]}" \
        >"$log" 2>&1; then
        crashed+=("$target")
    fi
    grep -E '^#[0-9]+[[:space:]]+DONE|^Done [0-9]+ runs' "$log" || tail -n 20 "$log"

    # Keep every crashing (or leaking, or slow) input as a regression.
    shopt -s nullglob
    findings=("fuzz/artifacts/$target"/{crash,leak,oom,timeout}-*)
    shopt -u nullglob
    if [ "${#findings[@]}" -gt 0 ]; then
        mkdir -p "fuzz/regressions/$target"
        cp "${findings[@]}" "fuzz/regressions/$target/"
        echo "   findings copied to fuzz/regressions/$target/: ${findings[*]##*/}"
        [[ " ${crashed[*]} " == *" $target "* ]] || crashed+=("$target")
    fi

    # Minimise: keep only inputs that add coverage, so the checked-in
    # corpus stays small and its replay fast. If that still leaves more
    # than MAX_CORPUS_FILES, minimise again with -use_counters=0: one input
    # per covered edge rather than per hit-count bucket of each edge; every
    # edge stays covered, with about a third of the files.
    before=$(find "$corpus" -type f | wc -l)
    cargo +nightly fuzz cmin --sanitizer "$SANITIZER" "$target" "$corpus" \
        >"fuzz/artifacts/$target.cmin.log" 2>&1
    after=$(find "$corpus" -type f | wc -l)
    if [ "$after" -gt "$MAX_CORPUS_FILES" ]; then
        cargo +nightly fuzz cmin --sanitizer "$SANITIZER" "$target" "$corpus" -- -use_counters=0 \
            >>"fuzz/artifacts/$target.cmin.log" 2>&1
        after=$(find "$corpus" -type f | wc -l)
    fi
    echo "   corpus: $before inputs, $after after minimising"
done

if [ "${#crashed[@]}" -gt 0 ]; then
    echo "crashed: ${crashed[*]} (inputs in fuzz/regressions/)" >&2
    exit 1
fi
echo "no crash in: ${targets[*]}"
