#!/usr/bin/env bash
# The project's one test command (see README): installs what the tests need,
# then runs every check. Safe to run again; CI runs it through .ci/run.
#
# What it installs when missing (as root, from the registries this machine
# reaches): Debian's mosquitto (and its clients), victoria-metrics, influxdb and chromium (real
# servers and a real browser for the tests), the PyPI OpenTSDB clients, the
# web front end's npm dependencies, and the RISC-V targets for the ESP32
# firmware. Servers are started by the tests themselves on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }
started=$(date +%s)

step "system packages"
packages=(mosquitto mosquitto-clients victoria-metrics influxdb chromium)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
    if [ "$(id -u)" -ne 0 ]; then
        echo "missing Debian packages: ${missing[*]}; run as root or: sudo apt-get install -y ${missing[*]}" >&2
        exit 1
    fi
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
echo "ok: ${packages[*]}"

step "toolchain components and targets"
rustup component add clippy rustfmt >/dev/null 2>&1 || true
# The protocol core must build for the ESP32-C3 (riscv32imc) as it is; the
# firmware builds for the C3 and the C6.
rustup target add riscv32imc-unknown-none-elf riscv32imac-unknown-none-elf >/dev/null

step "web front end's npm dependencies (uPlot, playwright-core) from web/package-lock.json"
# crates/web's build script takes uPlot from web/node_modules when present
# (else it fetches the pinned tarball and checks its integrity hash).
if [ ! -d web/node_modules/uplot ] || [ ! -d web/node_modules/playwright-core ]; then
    (cd web && npm ci --no-audit --no-fund)
fi

step "format"
cargo fmt --all -- --check
cargo fmt --manifest-path fuzz/Cargo.toml -- --check
cargo fmt --manifest-path firmware/Cargo.toml -- --check

step "clippy (all targets, warnings are errors)"
cargo clippy --workspace --all-targets -- -D warnings
cargo clippy --manifest-path fuzz/Cargo.toml -- -D warnings

step "tic builds for riscv32imc-unknown-none-elf (no_std, no allocator)"
cargo build -p tic --release --target riscv32imc-unknown-none-elf

step "tests (unit, integration, doctests), real servers required"
# Tests that need a server skip with a message on a developer machine
# without it; here its absence is a failure.
export TELEINFO_REQUIRE_SERVERS=1 TELEINFO_REQUIRE_VM=1
cargo test --workspace --no-fail-fast

step "benchmark smoke run: both decoders accept every benchmark frame"
cargo test -p tic --benches

step "OpenTSDB clients from PyPI and Grafana's requests against teleinfo serve"
bash tests/python/run.sh

step "load tests: 1,000 simulated meters forwarded to VictoriaMetrics (crate, and through teleinfo serve)"
timeout 900 cargo test --release -p integrations --test load --test server_e2e -- --ignored --nocapture

step "dashboard in headless Chromium"
bash scripts/test-browser.sh

step "ESP32-C3 and ESP32-C6 firmware: release builds, clippy, image size and RAM"
bash firmware/check.sh

echo
echo "all checks passed in $(($(date +%s) - started)) s"
