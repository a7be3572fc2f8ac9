#!/usr/bin/env bash
# Server benchmarks, teleinfo and VictoriaMetrics (Debian package) side by side, in one run,
# on 127.0.0.1. Prints one table. Needs: cargo, curl, python3; installs victoria-metrics.
#
#   scripts/bench-server.sh            # full run (a few minutes on 2 cores)
#   BENCH_ONLY=storage scripts/bench-server.sh   # one section: ingest, uplink, storage,
#                                                # queries or rss (others print "-")
#   BENCH_NO_BUILD=1 …                 # use the binaries already built
#
# Figures:
#   ingest: the same pre-encoded OpenTSDB JSON batches (1 M points) POSTed to both /api/put;
#   uplink: standard-mode 3-phase frames through /api/v1/uplink, acked only once durable;
#   storage: a simulated week of a 3-phase standard meter (one frame per 2 s, every numeric
#            label) in both, bytes per value after teleinfo's checkpoint / VM's force-merge;
#   queries: a year of SINSTS at one point per 2 s into 1,000 avg+max buckets, and a year of
#            daily energy of two indexes (points every 30 s); median of 5 runs;
#   rss: peak resident memory of `teleinfo serve` while 1,000 devices post frames.
set -euo pipefail
cd "$(dirname "$0")/.."
T="${CARGO_TARGET_DIR:-target}"
[ "${BENCH_NO_BUILD:-}" = 1 ] || cargo build --quiet --release -p teleinfo -p server --bin teleinfo --example bench_load
BIN="$T/release/teleinfo"
LOAD="$T/release/examples/bench_load"
if ! command -v victoria-metrics >/dev/null; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq victoria-metrics) >/dev/null
fi
WORK=$(mktemp -d /tmp/bench-server.XXXXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

start_teleinfo() { # DIR -> sets TI_ADDR, TI_PID
  "$BIN" serve --data "$1" --listen 127.0.0.1:0 --log-level warn >"$1.out" 2>"$1.err" &
  TI_PID=$!; PIDS+=("$TI_PID")
  for _ in $(seq 1 300); do
    TI_ADDR=$(sed -n 's/^teleinfo serve: http listening on //p' "$1.out" 2>/dev/null || true)
    [ -n "$TI_ADDR" ] && return 0
    sleep 0.1
  done
  echo "teleinfo did not start" >&2; cat "$1.err" >&2; exit 1
}
stop_teleinfo() { kill "$TI_PID"; wait "$TI_PID" 2>/dev/null || true; }

start_vm() { # DIR -> sets VM_URL, VM_PUT, VM_PID
  local p1 p2; p1=$(free_port); p2=$(free_port)
  victoria-metrics -storageDataPath "$1" -httpListenAddr "127.0.0.1:$p1" -opentsdbHTTPListenAddr "127.0.0.1:$p2" \
    -retentionPeriod 100y -search.latencyOffset 0s -loggerLevel ERROR >/dev/null 2>&1 &
  VM_PID=$!; PIDS+=("$VM_PID")
  VM_URL="http://127.0.0.1:$p1"; VM_PUT="http://127.0.0.1:$p2/api/put"
  for _ in $(seq 1 300); do curl -sf "$VM_URL/health" >/dev/null && return 0; sleep 0.1; done
  echo "victoria-metrics did not start" >&2; exit 1
}
stop_vm() { kill "$VM_PID"; wait "$VM_PID" 2>/dev/null || true; }
vm_flush_merge() { curl -sf "$VM_URL/internal/force_flush" >/dev/null; curl -sf "$VM_URL/internal/force_merge" >/dev/null || true; sleep 3; }

median_ms() { # URL... : median of 5 runs of the sum of the URLs' times, ms
  python3 - "$@" <<'PY'
import sys, time, urllib.request
urls = sys.argv[1:]
import json
for u in urls:  # warm up, and check the answer is a success
    body = urllib.request.urlopen(u, timeout=300).read()
    v = json.loads(body)
    assert not (isinstance(v, dict) and v.get("status") == "error"), body[:300]
runs = []
for _ in range(5):
    t0 = time.perf_counter()
    for u in urls:
        body = urllib.request.urlopen(u, timeout=300).read()
    runs.append((time.perf_counter() - t0) * 1000)
runs.sort()
print(f"{runs[2]:.1f}")
PY
}
q() { python3 -c 'import sys,urllib.parse; print(urllib.parse.quote(sys.argv[1]))' "$1"; }

declare -A R
ONLY="${BENCH_ONLY:-}"
want() { [ -z "$ONLY" ] || [ "$ONLY" = "$1" ]; }

# 1. ingest through /api/put, same batches to both.
if want ingest; then
start_teleinfo "$WORK/ti1"; start_vm "$WORK/vm1"
out=$("$LOAD" put "http://$TI_ADDR/api/put" "$VM_PUT")
R[put_ti]=$(echo "$out" | awk -v u="http://$TI_ADDR/api/put" '$2==u {print $3}')
R[put_vm]=$(echo "$out" | awk -v u="$VM_PUT" '$2==u {print $3}')
stop_teleinfo; stop_vm
fi

# 2. uplink frames/s (durable acks), 4 devices in parallel, and one device alone.
if want uplink; then
mkdir -p "$WORK/ti2"
: >"$WORK/tokens4"
for i in 1 2 3 4; do echo "bench$i $("$BIN" device add "bench$i" --data "$WORK/ti2")" >>"$WORK/tokens4"; done
start_teleinfo "$WORK/ti2"
out=$("$LOAD" uplink-multi "$TI_ADDR" "$WORK/tokens4" 10000)
R[uplink]=$(echo "$out" | awk '{print $2}')
# The raw-frame archive of those frames, once checkpointed, against the TIC bytes sent.
raw_tic=$(echo "$out" | sed -n 's/.*raw_bytes=\([0-9]*\).*/\1/p')
curl -sf -X POST "http://$TI_ADDR/api/v1/admin/checkpoint" >/dev/null
archived=$(curl -sf "http://$TI_ADDR/api/v1/stats" | python3 -c 'import json,sys; print(json.load(sys.stdin)["raw_frame_bytes"])')
R[archive_pct]=$(python3 -c "print(f'{100*$archived/$raw_tic:.2f} % ({$raw_tic/$archived:.0f}x)')")
stop_teleinfo
fi

# 3. storage: a simulated week of a three-phase standard meter.
if want storage; then
start_teleinfo "$WORK/ti3"; start_vm "$WORK/vm3"
out=$("$LOAD" week "http://$TI_ADDR/api/put" "$VM_PUT")
values=$(echo "$out" | awk '$1=="week_values"{print $2}')
curl -sf -X POST "http://$TI_ADDR/api/v1/admin/checkpoint" >/dev/null
stats=$(curl -sf "http://$TI_ADDR/api/v1/stats")
ti_chunks=$(echo "$stats" | python3 -c 'import json,sys; s=json.load(sys.stdin); print(s["chunk_bytes"])')
ti_rollups=$(echo "$stats" | python3 -c 'import json,sys; s=json.load(sys.stdin); print(s["rollup_bytes"])')
stop_teleinfo
ti_file=$(du -sb "$WORK/ti3" | awk '{print $1}')
[ -z "$ONLY" ] || (cd "$WORK/ti3" && find . -type f -printf '  teleinfo %p %s bytes\n' | sort) >&2
vm_flush_merge; stop_vm
vm_dir=$(du -sb "$WORK/vm3" | awk '{print $1}')
bpv() { python3 -c "print(f'{$1/$2:.3f}')"; }
R[bpv_ti_chunks]=$(bpv "$ti_chunks" "$values"); R[bpv_ti_all]=$(bpv "$((ti_chunks + ti_rollups))" "$values")
R[bpv_ti_dir]=$(bpv "$ti_file" "$values"); R[bpv_vm]=$(bpv "$vm_dir" "$values")
fi

# 4. a year: 1,000 avg/max buckets of SINSTS and daily energy of two indexes.
if want queries; then
start_teleinfo "$WORK/ti4"; start_vm "$WORK/vm4"
"$LOAD" year "http://$TI_ADDR/api/put" "$VM_PUT" >"$WORK/year.out"
curl -sf -X POST "http://$TI_ADDR/api/v1/admin/checkpoint" >/dev/null
vm_flush_merge
FROM=1735686000; TO=1767222000   # 2025 in Paris
R[q_buckets_ti]=$(median_ms "http://$TI_ADDR/api/v1/query?metric=SINSTS&meter=bench&from=$FROM&to=$TO&agg=avg,max&points=1000")
STEP=$(( (TO - FROM) / 1000 ))
R[q_buckets_vm]=$(median_ms "$VM_URL/api/v1/query_range?nocache=1&start=$((FROM+STEP))&end=$TO&step=$STEP&query=$(q "avg_over_time(SINSTS{meter=\"bench\"}[${STEP}s])")" \
                            "$VM_URL/api/v1/query_range?nocache=1&start=$((FROM+STEP))&end=$TO&step=$STEP&query=$(q "max_over_time(SINSTS{meter=\"bench\"}[${STEP}s])")")
R[q_energy_ti]=$(median_ms "http://$TI_ADDR/api/v1/meters/bench/energy?period=day&from=$FROM&to=$TO")
# (one query per index: increase() drops the metric name, so a regex over both collides.)
R[q_energy_vm]=$(median_ms "$VM_URL/api/v1/query_range?nocache=1&start=$((FROM+86400))&end=$TO&step=86400&query=$(q 'increase(EASF01{meter="bench"}[1d])')" \
                           "$VM_URL/api/v1/query_range?nocache=1&start=$((FROM+86400))&end=$TO&step=86400&query=$(q 'increase(EASF02{meter="bench"}[1d])')")
stop_teleinfo; stop_vm
fi

# 5. RSS while 1,000 devices post frames.
if want rss; then
mkdir -p "$WORK/ti5"
python3 - "$BIN" "$WORK/ti5" >"$WORK/tokens1000" <<'PY'
import subprocess, sys
b, d = sys.argv[1], sys.argv[2]
for i in range(1000):
    t = subprocess.run([b, "device", "add", f"dev{i:04}", "--data", d], capture_output=True, text=True, check=True).stdout.strip()
    print(f"dev{i:04} {t}")
PY
start_teleinfo "$WORK/ti5"
( peak=0; while kill -0 "$TI_PID" 2>/dev/null; do
    r=$(awk '/VmRSS/{print $2}' "/proc/$TI_PID/status" 2>/dev/null || echo 0); [ "${r:-0}" -gt "$peak" ] && peak=$r
    echo "$peak" >"$WORK/rss"; sleep 0.1; done ) &
PIDS+=($!)
R[uplink1000]=$("$LOAD" uplink-multi "$TI_ADDR" "$WORK/tokens1000" 60 | awk '{print $2}')
sleep 0.3
R[rss_mb]=$(python3 -c "print(f'{$(cat "$WORK/rss")/1024:.0f}')")
stop_teleinfo
fi

for k in put_ti put_vm uplink archive_pct bpv_ti_dir bpv_vm bpv_ti_chunks bpv_ti_all q_buckets_ti q_buckets_vm q_energy_ti q_energy_vm rss_mb uplink1000; do R[$k]="${R[$k]:--}"; done
printf '\n%-62s %16s %16s\n' "benchmark (2 cores, 127.0.0.1)" "teleinfo" "VictoriaMetrics"
printf '%-62s %16s %16s\n' "ingest /api/put, same 1 M points, 4 connections (points/s)" "${R[put_ti]}" "${R[put_vm]}"
printf '%-62s %16s %16s\n' "uplink standard 3-phase frames, durable acks, 4 devices (fr/s)" "${R[uplink]}" "-"
printf '%-62s %16s %16s\n' "  raw-frame archive of those frames (% of the TIC bytes)" "${R[archive_pct]}" "-"
printf '%-62s %16s %16s\n' "storage, week of a 3-phase meter (bytes/value, whole dir)" "${R[bpv_ti_dir]}" "${R[bpv_vm]}"
printf '%-62s %16s %16s\n' "  teleinfo: raw chunks only / chunks + rollups (bytes/value)" "${R[bpv_ti_chunks]} / ${R[bpv_ti_all]}" "-"
printf '%-62s %16s %16s\n' "query: year of SINSTS @2 s -> 1,000 avg+max buckets (ms)" "${R[q_buckets_ti]}" "${R[q_buckets_vm]}"
printf '%-62s %16s %16s\n' "query: year of daily energy, 2 indexes (ms)" "${R[q_energy_ti]}" "${R[q_energy_vm]}"
printf '%-62s %16s %16s\n' "RSS while 1,000 devices post (MB peak)" "${R[rss_mb]}" "-"
printf '%-62s %16s %16s\n' "  uplink frames/s during that run" "${R[uplink1000]}" "-"
