#!/usr/bin/env bash
# Part `handshakes`: only the full-handshake comparisons of `compare`
# (issue 11's target), for a quick check: handshakes and handshakes-quiet,
# NAME.{baseline,nea}.RUN.json.
set -euo pipefail
# shellcheck source=scripts/bench/lib.sh
. "$(dirname "$0")/lib.sh"

bench_main compare_handshakes
