#!/usr/bin/env bash
# Kept so that the commands written down before the bench moved to
# scripts/bench/ still run: the runner is scripts/bench/run.sh, each part
# a script of its own beside it.
exec bash "$(dirname "$0")/bench/run.sh" "$@"
