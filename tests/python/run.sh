#!/usr/bin/env bash
# Client tests of `teleinfo serve`: real OpenTSDB clients from PyPI (potsdb, opentsdb-py),
# Grafana's request bodies, and VictoriaMetrics (Debian) as an oracle. Installs what it needs.
set -euo pipefail
cd "$(dirname "$0")/../.."
python3 -m pip install --quiet --disable-pip-version-check pytest potsdb opentsdb-py
if ! command -v victoria-metrics >/dev/null; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq victoria-metrics) >/dev/null
fi
cargo build --quiet -p teleinfo
export TELEINFO_BIN="${CARGO_TARGET_DIR:-target}/debug/teleinfo"
export TELEINFO_REQUIRE_VM=1
exec python3 -m pytest -q -p no:cacheprovider tests/python "$@"
