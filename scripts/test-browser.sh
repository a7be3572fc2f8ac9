#!/usr/bin/env bash
# Browser test of the built-in dashboard: installs chromium and the npm dependencies if they
# are missing, builds, starts `teleinfo demo` on a free 127.0.0.1 port, runs
# tests/browser/dashboard.test.mjs (playwright-core driving headless chromium) and stops the
# server. Screenshots and timings land in test-output/ (gitignored). Bounded: the demo is
# killed after 10 minutes whatever happens, the test itself after 3.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${TEST_OUTPUT:-test-output}
step() { printf '\n==> %s\n' "$*"; }

if ! command -v chromium >/dev/null; then
  step "installing chromium (Debian package)"
  if [ "$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq chromium >/dev/null
fi
if [ ! -d web/node_modules/playwright-core ] || [ ! -d web/node_modules/uplot ]; then
  step "npm dependencies (web/package-lock.json)"
  (cd web && npm ci --no-audit --no-fund)
fi

step "build"
cargo build --release -p teleinfo
BIN=${CARGO_TARGET_DIR:-target}/release/teleinfo

step "teleinfo demo on a free port"
mkdir -p "$OUT"
LOG="$OUT/demo.log"
start=$(date +%s.%N)
timeout 600 "$BIN" demo --listen 127.0.0.1:0 >"$LOG" 2>&1 &
DEMO=$!
trap 'kill $DEMO 2>/dev/null || true; wait $DEMO 2>/dev/null || true' EXIT
URL=
for _ in $(seq 1 240); do
  URL=$(grep -o 'http://127\.0\.0\.1:[0-9]*/' "$LOG" | head -1 || true)
  [ -n "$URL" ] && break
  kill -0 $DEMO 2>/dev/null || { cat "$LOG"; echo "teleinfo demo exited early" >&2; exit 1; }
  sleep 0.25
done
[ -n "$URL" ] || { cat "$LOG"; echo "teleinfo demo did not print its URL within 60 s" >&2; exit 1; }
ready=$(echo "$(date +%s.%N) - $start" | bc)
echo "demo ready at $URL after ${ready} s (history backfilled, views populated)"
echo "{\"demo_ready_s\": $ready}" >"$OUT/demo-startup.json"
# Let both meters send a few live frames before the test looks at them.
sleep 3

step "browser test"
timeout 180 node tests/browser/dashboard.test.mjs "$URL" "$OUT"
