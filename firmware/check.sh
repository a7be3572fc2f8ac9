#!/usr/bin/env bash
# Builds the firmware in release for ESP32-C3 and ESP32-C6, runs clippy with
# warnings as errors for both, and prints each image's size, its static RAM
# and the heap chosen. Run from anywhere; uses firmware/target.
set -euo pipefail
cd "$(dirname "$0")"

rustup target add riscv32imc-unknown-none-elf riscv32imac-unknown-none-elf >/dev/null

# chip feature target
CHIPS=(
  "esp32c3 riscv32imc-unknown-none-elf"
  "esp32c6 riscv32imac-unknown-none-elf"
)

for entry in "${CHIPS[@]}"; do
  set -- $entry
  chip=$1 target=$2
  echo "== $chip ($target)"
  start=$(date +%s)
  cargo build --release --no-default-features --features "$chip" --target "$target"
  cargo clippy --release --no-default-features --features "$chip" --target "$target" -- -D warnings
  echo "   build + clippy: $(( $(date +%s) - start )) s"
  python3 tools/elf_size.py "target/$target/release/teleinfo-firmware" --chip "$chip"
done
