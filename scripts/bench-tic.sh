#!/usr/bin/env bash
# Decoding throughput of the `tic` crate vs the teleinfo-nom crate vs two
# byte-sum loops (what reading the buffer costs), printed as one table.
#
#   scripts/bench-tic.sh              criterion run, then the interleaved table
#   scripts/bench-tic.sh --table      the table only (faster)
#
# Environment: TIC_BENCH_MB (stream size, default 64), TIC_BENCH_ROUNDS
# (interleaved rounds, default 5), TIC_TESTDATA (captures folder, default
# ../shared/testdata/real next to the checkout; frames built with
# tic::encode are used when it is missing).
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ "${1:-}" == "--table" ]]; then
    export TIC_BENCH_TABLE_ONLY=1
    shift
fi
# Criterion's report and the table are kept in a log; on success, print
# criterion's time/throughput lines, then the table, so the table comes last.
log=$(mktemp)
trap 'rm -f "$log"' EXIT
if ! cargo bench -p tic --bench decode -- "$@" >"$log" 2>&1; then
    cat "$log"
    exit 1
fi
# Each benchmark's own time and throughput lines, not the change since the last run.
awk '/^decode\//{n = 1; print; next} n > 0 {print; n--}' "$log"
sed -n '/^TIC decode throughput/,$p' "$log"
