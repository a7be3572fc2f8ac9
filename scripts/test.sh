#!/usr/bin/env bash
# The project's one test command (see README): installs what the tests need,
# then runs every check. Safe to run again; CI runs it through .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "toolchain components and targets"
rustup component add clippy rustfmt >/dev/null 2>&1 || true
# The protocol core must build for the ESP32-C3 (riscv32imc) as it is.
rustup target add riscv32imc-unknown-none-elf riscv32imac-unknown-none-elf >/dev/null

step "format"
cargo fmt --all -- --check

step "clippy (all targets, warnings are errors)"
cargo clippy --workspace --all-targets -- -D warnings

step "tic builds for riscv32imc-unknown-none-elf (no_std, no allocator)"
cargo build -p tic --release --target riscv32imc-unknown-none-elf

step "tests (unit, integration, doctests)"
cargo test --workspace

step "dashboard in headless chromium against teleinfo demo (scripts/test-browser.sh; TELEINFO_SKIP_BROWSER=1 skips)"
if [ "${TELEINFO_SKIP_BROWSER:-}" != 1 ]; then
  scripts/test-browser.sh
fi
