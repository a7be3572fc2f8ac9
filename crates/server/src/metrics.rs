//! `/metrics` in the Prometheus text format: the server's own health and each meter's latest
//! values.

use std::fmt::Write as _;
use std::sync::atomic::Ordering;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use crate::app::{now_ms, Shared};

fn esc(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Prometheus metric name from a series name (`SMAXSN-1` → `SMAXSN_1`).
fn prom_name(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// `GET /metrics`.
pub async fn metrics(State(st): State<Shared>) -> impl IntoResponse {
    let mut o = String::with_capacity(8192);
    let c = &st.counters;
    let now = now_ms();
    let mut counter = |name: &str, help: &str, v: u64| {
        let _ = writeln!(
            o,
            "# HELP teleinfo_{name} {help}\n# TYPE teleinfo_{name} counter\nteleinfo_{name} {v}"
        );
    };
    counter(
        "uplink_batches_total",
        "Uplink batches stored and acknowledged.",
        c.uplink_batches.load(Ordering::Relaxed),
    );
    counter(
        "uplink_rejected_total",
        "Uplink requests refused (token, format, storage).",
        c.uplink_rejected.load(Ordering::Relaxed),
    );
    counter(
        "put_points_total",
        "OpenTSDB points stored (HTTP and telnet).",
        c.put_points.load(Ordering::Relaxed),
    );
    counter(
        "put_failed_total",
        "OpenTSDB points refused.",
        c.put_failed.load(Ordering::Relaxed),
    );
    counter(
        "http_errors_total",
        "HTTP responses with a 4xx or 5xx status.",
        c.http_errors.load(Ordering::Relaxed),
    );
    counter(
        "queries_total",
        "Range and OpenTSDB queries answered.",
        c.queries.load(Ordering::Relaxed),
    );
    counter(
        "store_errors_total",
        "Store writes that failed (nothing acknowledged).",
        c.store_errors.load(Ordering::Relaxed),
    );
    let _ = writeln!(
        o,
        "# TYPE teleinfo_uptime_seconds gauge\nteleinfo_uptime_seconds {}",
        (now - st.started_ms) / 1000
    );
    if let Some(out) = st.ingest.outputs() {
        out.metrics(&mut o);
    }
    let series = st.store.list_series().len();
    let _ = writeln!(o, "# TYPE teleinfo_series gauge\nteleinfo_series {series}");

    let _ = writeln!(o, "# TYPE teleinfo_device_last_seen_seconds gauge");
    let devices = st.live.devices(now);
    for d in &devices {
        let l = format!("device=\"{}\"", esc(&d.device));
        let _ = writeln!(
            o,
            "teleinfo_device_last_seen_seconds{{{l}}} {}",
            d.last_seen_ms as f64 / 1000.0
        );
        let _ = writeln!(o, "teleinfo_device_frames_total{{{l}}} {}", d.frames);
        let _ = writeln!(
            o,
            "teleinfo_device_frames_per_minute{{{l}}} {}",
            d.frames_per_minute
        );
        let _ = writeln!(
            o,
            "teleinfo_device_duplicate_frames_total{{{l}}} {}",
            d.duplicate_frames
        );
        let _ = writeln!(
            o,
            "teleinfo_device_implausible_values_total{{{l}}} {}",
            d.implausible_values
        );
        for (k, n) in &d.rejected_groups {
            let _ = writeln!(
                o,
                "teleinfo_device_rejected_groups_total{{{l},kind=\"{k}\"}} {n}"
            );
        }
        if let Some(dr) = d.clock_drift_s {
            let _ = writeln!(o, "teleinfo_device_clock_drift_seconds{{{l}}} {dr}");
        }
        if let Some(t) = &d.telemetry {
            if let Some(r) = t.rssi_dbm {
                let _ = writeln!(o, "teleinfo_device_rssi_dbm{{{l}}} {r}");
            }
            let _ = writeln!(
                o,
                "teleinfo_device_buffer_fill_ratio{{{l}}} {}",
                t.buffer_fill
            );
            let _ = writeln!(o, "teleinfo_device_uptime_seconds{{{l}}} {}", t.uptime_s);
            let _ = writeln!(
                o,
                "teleinfo_device_free_heap_bytes{{{l}}} {}",
                t.free_heap_bytes
            );
            for (k, n) in &t.counters {
                let _ = writeln!(
                    o,
                    "teleinfo_device_counter_total{{{l},counter=\"{k}\"}} {n}"
                );
            }
        }
    }
    let _ = writeln!(o, "# HELP teleinfo_meter_value Latest value of each numeric TIC label of each meter.\n# TYPE teleinfo_meter_value gauge");
    for f in st.live.all_latest() {
        let m = esc(&f.meter);
        let _ = writeln!(
            o,
            "teleinfo_meter_last_frame_seconds{{meter=\"{m}\"}} {}",
            f.ts_ms as f64 / 1000.0
        );
        if let Some(fields) = f.frame["fields"].as_object() {
            for (label, v) in fields {
                if let Some(n) = v["number"].as_u64() {
                    let _ = writeln!(
                        o,
                        "teleinfo_meter_value{{meter=\"{m}\",label=\"{}\"}} {n}",
                        esc(&prom_name(label))
                    );
                }
            }
        }
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        o,
    )
}
