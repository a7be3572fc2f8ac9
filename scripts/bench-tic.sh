#!/usr/bin/env bash
# Decoding throughput of the `tic` crate vs the teleinfo-nom crate vs a
# byte-sum loop (the memory-read limit), printed as one table.
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
# The table goes to stdout after criterion's own report; keep both visible
# but repeat the table last so it is easy to find in CI logs.
log=$(mktemp)
trap 'rm -f "$log"' EXIT
cargo bench -p tic --bench decode -- "$@" | tee "$log"
echo
sed -n '/^TIC decode throughput/,$p' "$log"
