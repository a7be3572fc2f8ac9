#!/usr/bin/env bash
# Integration tests of crates/integrations against real servers from Debian: mosquitto
# (MQTT + Home Assistant discovery, broker restart), VictoriaMetrics (OpenTSDB /api/put
# forwarding through an outage and a gateway restart; load test with 1,000 meters) and
# InfluxDB 1.x (line protocol forwarding through an outage), and the whole path through
# `teleinfo serve` (device uplink → store → MQTT + forwarder; 1,000 devices).
#
# The tests start each server themselves on 127.0.0.1, on free ports, with data in a
# temporary directory, and kill it when they end. Here the servers are required: a missing
# binary fails the run (plain `cargo test` skips those tests with a message instead).
#
#   bash scripts/test-integrations.sh            # install what is missing (root), then test
#   TELEINFO_LOAD_DEVICES=2000 bash scripts/test-integrations.sh
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

packages=(mosquitto mosquitto-clients victoria-metrics influxdb)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
    step "installing ${missing[*]}"
    if [ "$(id -u)" -ne 0 ]; then
        echo "run as root, or: sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
        exit 1
    fi
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

export TELEINFO_REQUIRE_SERVERS=1

step "integrations: unit tests, mosquitto, VictoriaMetrics, InfluxDB"
timeout 900 cargo test -p integrations

step "integrations: load test (${TELEINFO_LOAD_DEVICES:-1000} meters into VictoriaMetrics, release build)"
timeout 900 cargo test --release -p integrations --test load -- --ignored --nocapture

step "integrations: ${TELEINFO_LOAD_DEVICES:-1000} devices through teleinfo serve's HTTP uplink into VictoriaMetrics (release build)"
timeout 900 cargo test --release -p integrations --test server_e2e -- --ignored --nocapture
