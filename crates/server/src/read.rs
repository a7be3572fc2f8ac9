//! The JSON read API (`/api/v1/…`): meters, series, latest reading, range queries with
//! downsampling, energy and cost per local period, live stream, devices and raw frames.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::IntoResponse;
use axum::Json;
use futures_util::stream::{self, Stream};
use serde::Deserialize;
use serde_json::{json, Value};
use store::{Aggregator, Bucketing, Period, SeriesId, SeriesKey};

use crate::app::{blocking, now_ms, Shared};
use crate::error::{ApiError, ApiResult};
use crate::tsdb::{parse_duration_ms, parse_time};

/// Historic-mode index labels, in frame order.
pub const HISTORIC_INDEXES: &[&str] = &[
    "BASE", "HCHC", "HCHP", "EJPHN", "EJPHPM", "BBRHCJB", "BBRHPJB", "BBRHCJW", "BBRHPJW",
    "BBRHCJR", "BBRHPJR",
];

/// Standard-mode supplier index labels.
pub const STANDARD_INDEXES: &[&str] = &[
    "EASF01", "EASF02", "EASF03", "EASF04", "EASF05", "EASF06", "EASF07", "EASF08", "EASF09",
    "EASF10",
];

/// A `[from, to)` range checked against the configured maximum.
pub fn range(
    st: &Shared,
    from: Option<&str>,
    to: Option<&str>,
    default_span_ms: i64,
) -> ApiResult<(i64, i64)> {
    let now = now_ms();
    let to = match to {
        Some(t) => parse_time(t, now).map_err(ApiError::bad_request)?,
        None => now,
    };
    let from = match from {
        Some(f) => parse_time(f, now).map_err(ApiError::bad_request)?,
        None => to - default_span_ms,
    };
    let from = from.max(0);
    if from >= to {
        return Err(ApiError::bad_request(format!(
            "empty range: from ({from}) must be before to ({to})"
        )));
    }
    let max = st.cfg.limits.max_query_days.saturating_mul(86_400_000);
    if to - from > max {
        return Err(ApiError::bad_request(format!(
            "range of {} days exceeds the limit of {} days (limits.max_query_days); query a shorter range",
            (to - from) / 86_400_000,
            st.cfg.limits.max_query_days
        )));
    }
    if to > store::limits::MAX_TS_MS {
        return Err(ApiError::bad_request("end of range is after year 9999"));
    }
    Ok((from, to))
}

/// `GET /api/v1/meters`.
pub async fn meters(State(st): State<Shared>) -> ApiResult<Json<Value>> {
    let mut out: BTreeMap<String, Value> = BTreeMap::new();
    for m in st.store.tag_values("meter") {
        out.insert(m.clone(), json!({"meter": m}));
    }
    for f in st.live.all_latest() {
        out.insert(
            f.meter.clone(),
            json!({"meter": f.meter, "mode": f.mode, "last_ts_ms": f.ts_ms, "last_receive_ms": f.receive_ms, "device": f.device}),
        );
    }
    Ok(Json(
        json!({ "meters": out.into_values().collect::<Vec<_>>() }),
    ))
}

/// `GET /api/v1/meters/{meter}/latest`.
pub async fn latest(State(st): State<Shared>, Path(meter): Path<String>) -> ApiResult<Json<Value>> {
    match st.live.latest(&meter) {
        Some(f) => Ok(Json(serde_json::to_value(&*f).unwrap_or(Value::Null))),
        None => Err(ApiError::not_found(format!(
            "no frame from meter {meter:?}, neither archived nor received; see /api/v1/meters for known meters"
        ))),
    }
}

/// Query string of `/api/v1/series`.
#[derive(Debug, Deserialize)]
pub struct SeriesQuery {
    meter: Option<String>,
    metric: Option<String>,
    prefix: Option<String>,
}

/// Most series one listing returns.
const MAX_LISTED_SERIES: usize = 100_000;

/// `GET /api/v1/series`.
pub async fn series(
    State(st): State<Shared>,
    Query(q): Query<SeriesQuery>,
) -> ApiResult<Json<Value>> {
    let list: Vec<Value> = st
        .store
        .list_series()
        .into_iter()
        .filter(|(_, k)| q.meter.as_deref().is_none_or(|m| k.tag("meter") == Some(m)))
        .filter(|(_, k)| q.metric.as_deref().is_none_or(|m| k.metric() == m))
        .filter(|(_, k)| {
            q.prefix
                .as_deref()
                .is_none_or(|p| k.metric().starts_with(p))
        })
        .take(MAX_LISTED_SERIES)
        .map(|(id, k)| json!({"id": id.0, "metric": k.metric(), "tags": k.tags()}))
        .collect();
    Ok(Json(json!({ "series": list })))
}

/// Query string of `/api/v1/query`.
#[derive(Debug, Deserialize)]
pub struct RangeQuery {
    metric: String,
    meter: Option<String>,
    /// Other tags, `k:v,k2:v2`.
    tags: Option<String>,
    from: Option<String>,
    to: Option<String>,
    /// Comma-separated: avg, min, max, first, last, sum, count.
    agg: Option<String>,
    /// Bucket width (`1m`, `15m`, `1h`, or milliseconds).
    width: Option<String>,
    /// Target number of buckets.
    points: Option<usize>,
}

/// Finds the one series of a metric and tags.
pub fn find_series(
    st: &Shared,
    metric: &str,
    meter: Option<&str>,
    tags: Option<&str>,
) -> ApiResult<SeriesId> {
    let mut kv: Vec<(String, String)> = Vec::new();
    if let Some(m) = meter {
        kv.push(("meter".into(), m.into()));
    }
    for part in tags.unwrap_or("").split(',').filter(|s| !s.is_empty()) {
        let (k, v) = part
            .split_once(':')
            .or_else(|| part.split_once('='))
            .ok_or_else(|| {
                ApiError::bad_request(format!("tag {part:?}: write tags as k:v,k2:v2"))
            })?;
        kv.push((k.into(), v.into()));
    }
    let key = SeriesKey::new(metric, kv).map_err(ApiError::from)?;
    st.store.find_series(&key).ok_or_else(|| {
        ApiError::not_found(format!(
            "no series {key}; list them with /api/v1/series?meter=…"
        ))
    })
}

/// `GET /api/v1/query`: one series, raw or downsampled.
pub async fn query(
    State(st): State<Shared>,
    Query(q): Query<RangeQuery>,
) -> ApiResult<Json<Value>> {
    let sid = find_series(&st, &q.metric, q.meter.as_deref(), q.tags.as_deref())?;
    let (from, to) = range(&st, q.from.as_deref(), q.to.as_deref(), 86_400_000)?;
    let aggs: Vec<(String, Aggregator)> = q
        .agg
        .as_deref()
        .unwrap_or("avg")
        .split(',')
        .map(|a| {
            Aggregator::parse(a.trim())
                .map(|g| (a.trim().to_string(), g))
                .ok_or_else(|| {
                    ApiError::bad_request(format!(
                        "unknown aggregator {a:?}; use avg, min, max, first, last, sum or count"
                    ))
                })
        })
        .collect::<ApiResult<_>>()?;
    let bucketing = match (&q.width, q.points) {
        (Some(w), _) => {
            let w = parse_duration_ms(w).map_err(ApiError::bad_request)?;
            Some(Bucketing::Width { width_ms: w })
        }
        (None, Some(p)) => {
            if p == 0 || p > st.cfg.limits.max_buckets {
                return Err(ApiError::bad_request(format!(
                    "points must be 1..={} (limits.max_buckets)",
                    st.cfg.limits.max_buckets
                )));
            }
            Some(Bucketing::TargetCount { points: p })
        }
        (None, None) => None,
    };
    let max_points = st.cfg.limits.max_query_points;
    let max_buckets = st.cfg.limits.max_buckets;
    let key = st.store.series_key(sid);
    let store = st.store.clone();
    st.counters.queries.fetch_add(1, Ordering::Relaxed);
    let (width, values) = blocking(move || {
        let mut values = serde_json::Map::new();
        let Some(b) = bucketing else {
            let p = store.read_range(sid, from, to).map_err(ApiError::from)?;
            if p.ts_ms.len() > max_points {
                return Err(ApiError::bad_request(format!(
                    "{} raw points exceed the limit of {max_points}; ask for buckets with width= or points=",
                    p.ts_ms.len()
                )));
            }
            let pts: Vec<Value> = p.ts_ms.iter().zip(&p.values).map(|(t, v)| json!([t, v])).collect();
            values.insert("raw".into(), Value::Array(pts));
            return Ok((None, values));
        };
        let bounds = store::bucket_boundaries(from, to, &b).map_err(ApiError::from)?;
        if bounds.len() > max_buckets + 1 {
            return Err(ApiError::bad_request(format!(
                "{} buckets exceed the limit of {max_buckets}; use wider buckets",
                bounds.len() - 1
            )));
        }
        let width = match b {
            Bucketing::Width { width_ms } => Some(width_ms),
            Bucketing::TargetCount { points } => Some(store::nice_width_ms(to - from, points)),
            Bucketing::Local { .. } => None,
        };
        let buckets = store.aggregate_boundaries(sid, &bounds).map_err(ApiError::from)?;
        for (name, g) in &aggs {
            let pts: Vec<Value> =
                buckets.iter().filter_map(|bk| bk.agg.map(|a| json!([bk.start_ms, a.get(*g)]))).collect();
            values.insert(name.clone(), Value::Array(pts));
        }
        Ok((width, values))
    })
    .await?;
    Ok(Json(json!({
        "metric": q.metric,
        "tags": key.as_ref().map(|k| k.tags().clone()),
        "from": from,
        "to": to,
        "bucket_ms": width,
        "values": values,
    })))
}

/// Query string of `/api/v1/meters/{meter}/energy`.
#[derive(Debug, Deserialize)]
pub struct EnergyQuery {
    /// hour, day, week, month, year.
    period: Option<String>,
    from: Option<String>,
    to: Option<String>,
    /// IANA zone; default the configured one.
    tz: Option<String>,
}

fn local_text(ms: i64, tz: &jiff::tz::TimeZone) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .map(|t| {
            t.to_zoned_datetime(tz.clone())
                .strftime("%Y-%m-%dT%H:%M:%S%:z")
                .to_string()
        })
        .unwrap_or_default()
}

/// The `period` query parameter of the energy endpoints; a day when absent.
pub(crate) fn parse_period(period: Option<&str>) -> ApiResult<Period> {
    match period.unwrap_or("day") {
        "hour" => Ok(Period::Hour),
        "day" => Ok(Period::Day),
        "week" => Ok(Period::Week),
        "month" => Ok(Period::Month),
        "year" => Ok(Period::Year),
        p => Err(ApiError::bad_request(format!(
            "unknown period {p:?}; use hour, day, week, month or year"
        ))),
    }
}

/// `GET /api/v1/meters/{meter}/energy`: energy per local period and tariff index from index
/// deltas, with cost from the configured prices.
pub async fn energy(
    State(st): State<Shared>,
    Path(meter): Path<String>,
    Query(q): Query<EnergyQuery>,
) -> ApiResult<Json<Value>> {
    let period = parse_period(q.period.as_deref())?;
    let tz_name = q.tz.clone().unwrap_or_else(|| st.cfg.time_zone.clone());
    let tz = store::time_zone(&tz_name).map_err(ApiError::from)?;
    let (from, to) = range(&st, q.from.as_deref(), q.to.as_deref(), 7 * 86_400_000)?;
    let mut indexes: Vec<(String, SeriesId)> = st
        .store
        .list_series()
        .into_iter()
        .filter(|(_, k)| k.tag("meter") == Some(meter.as_str()) && k.tags().len() == 1)
        .filter(|(_, k)| {
            STANDARD_INDEXES.contains(&k.metric()) || HISTORIC_INDEXES.contains(&k.metric())
        })
        .map(|(id, k)| (k.metric().to_string(), id))
        .collect();
    if indexes.is_empty() {
        if let Ok(k) = SeriesKey::new("energy.import", [("meter", meter.as_str())]) {
            if let Some(id) = st.store.find_series(&k) {
                indexes.push(("energy.import".into(), id));
            }
        }
    }
    if indexes.is_empty() {
        return Err(ApiError::not_found(format!(
            "meter {meter:?} has no energy index series; see /api/v1/meters"
        )));
    }
    let max_buckets = st.cfg.limits.max_buckets;
    let store = st.store.clone();
    let tzn = tz_name.clone();
    let per_index = blocking(move || {
        let b = store::local_period_boundaries(from, to, period, &tzn).map_err(ApiError::from)?;
        if b.len() > max_buckets + 1 {
            return Err(ApiError::bad_request(format!(
                "{} periods exceed the limit of {max_buckets}",
                b.len() - 1
            )));
        }
        indexes
            .into_iter()
            .map(|(name, id)| {
                Ok((
                    name,
                    store
                        .energy_per_period(id, from, to, period, &tzn)
                        .map_err(ApiError::from)?,
                ))
            })
            .collect::<ApiResult<Vec<_>>>()
    })
    .await?;
    let pricing = &st.cfg.pricing;
    let n = per_index.first().map_or(0, |(_, v)| v.len());
    let mut periods = Vec::with_capacity(n);
    let (mut total_wh, mut total_cost) = (0.0, 0.0);
    for i in 0..n {
        let (start, end) = (per_index[0].1[i].start_ms, per_index[0].1[i].end_ms);
        let mut wh = serde_json::Map::new();
        let mut cost = serde_json::Map::new();
        let (mut sum, mut csum) = (0.0, 0.0);
        for (name, buckets) in &per_index {
            let d = buckets.get(i).and_then(|b| b.delta);
            wh.insert(name.clone(), json!(d));
            if let Some(d) = d {
                sum += d;
                if let Some(p) = pricing.per_kwh.get(name) {
                    let c = d / 1000.0 * p;
                    cost.insert(name.clone(), json!(c));
                    csum += c;
                }
            }
        }
        let days = (end - start) as f64 / 86_400_000.0;
        let sub = pricing.subscription_per_day
            * if matches!(period, Period::Hour) {
                days
            } else {
                days.round().max(1.0)
            };
        total_wh += sum;
        total_cost += csum + sub;
        periods.push(json!({
            "start_ms": start,
            "end_ms": end,
            "start_local": local_text(start, &tz),
            "hours": (end - start) as f64 / 3_600_000.0,
            "energy_wh": wh,
            "total_wh": sum,
            "cost": cost,
            "subscription": sub,
            "total_cost": csum + sub,
        }));
    }
    Ok(Json(json!({
        "meter": meter,
        "period": q.period.as_deref().unwrap_or("day"),
        "time_zone": tz_name,
        "currency": pricing.currency,
        "indexes": per_index.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>(),
        "periods": periods,
        "total_wh": total_wh,
        "total_cost": total_cost,
    })))
}

/// `GET /api/v1/meters/{meter}/live`: Server-Sent Events, one `frame` event per decoded frame
/// (`*` = every meter). Starts with the latest frame if there is one.
pub async fn live_stream(
    State(st): State<Shared>,
    Path(meter): Path<String>,
) -> ApiResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    let permit = st.live_streams.clone().try_acquire_owned().map_err(|_| {
        ApiError::unavailable(format!(
            "too many live streams (limits.max_live_streams = {}); close one and retry",
            st.cfg.limits.max_live_streams
        ))
    })?;
    let rx = st.live.subscribe();
    let first = if meter == "*" {
        None
    } else {
        st.live.latest(&meter)
    };
    let sd = st.shutdown.subscribe();
    let s = stream::unfold(
        (rx, first, meter, permit, sd),
        |(mut rx, first, meter, permit, mut sd)| async move {
            if let Some(f) = first {
                let ev = Event::default()
                    .event("frame")
                    .json_data(&*f)
                    .unwrap_or_default();
                return Some((Ok(ev), (rx, None, meter, permit, sd)));
            }
            loop {
                if *sd.borrow() {
                    return None;
                }
                let r = tokio::select! {
                    // The stream ends when the server shuts down, so that graceful shutdown
                    // does not wait for clients that never disconnect.
                    _ = sd.changed() => return None,
                    r = rx.recv() => r,
                };
                match r {
                    Ok(f) if meter == "*" || f.meter == meter => {
                        let ev = Event::default()
                            .event("frame")
                            .json_data(&*f)
                            .unwrap_or_default();
                        return Some((Ok(ev), (rx, None, meter, permit, sd)));
                    }
                    Ok(_) => continue,
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                        let ev = Event::default()
                            .event("lagged")
                            .data(format!("{n} frames skipped: the client reads too slowly"));
                        return Some((Ok(ev), (rx, None, meter, permit, sd)));
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
                }
            }
        },
    );
    Ok(Sse::new(s).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

/// `GET /api/v1/devices`: registered devices and their health.
pub async fn devices(State(st): State<Shared>) -> ApiResult<Json<Value>> {
    let now = now_ms();
    let health = st.live.devices(now);
    let registered = st
        .devices
        .list()
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let mut out: BTreeMap<String, Value> = BTreeMap::new();
    for (name, rec) in registered {
        out.insert(
            name.clone(),
            json!({"device": name, "registered": true, "created_ms": rec.created_ms, "revoked_ms": rec.revoked_ms}),
        );
    }
    for h in health {
        let mut v = serde_json::to_value(&h).unwrap_or(Value::Null);
        if let Some(reg) = out.get(&h.device) {
            for k in ["registered", "created_ms", "revoked_ms"] {
                v[k] = reg[k].clone();
            }
        } else {
            v["registered"] = json!(false);
        }
        out.insert(h.device.clone(), v);
    }
    Ok(Json(
        json!({ "devices": out.into_values().collect::<Vec<_>>() }),
    ))
}

/// Query of `/api/v1/devices/{device}/frames`.
#[derive(Debug, Deserialize)]
pub struct FramesQuery {
    from: Option<String>,
    to: Option<String>,
    /// `text` (default: bytes as Latin-1 text, TIC is ASCII) or `none` (metadata only).
    raw: Option<String>,
}

/// `GET /api/v1/devices/{device}/frames`: archived raw frames.
pub async fn frames(
    State(st): State<Shared>,
    Path(device): Path<String>,
    Query(q): Query<FramesQuery>,
) -> ApiResult<Json<Value>> {
    let (from, to) = range(&st, q.from.as_deref(), q.to.as_deref(), 3_600_000)?;
    let max = st.cfg.limits.max_frames_per_request;
    let store = st.store.clone();
    let with_raw = q.raw.as_deref() != Some("none");
    let frames = blocking(move || {
        store
            .raw_frames(&device, from, to, max)
            .map_err(ApiError::from)
    })
    .await?;
    let list: Vec<Value> = frames
        .iter()
        .map(|f| {
            let mut v = json!({"boot_id": f.boot_id, "seq": f.seq, "ts_ms": f.ts_ms});
            if with_raw {
                v["raw"] = f
                    .bytes
                    .iter()
                    .map(|&b| b as char)
                    .collect::<String>()
                    .into();
            }
            v
        })
        .collect();
    Ok(Json(json!({"count": list.len(), "frames": list})))
}

/// Helper for handlers that return nothing but a status.
pub async fn ok() -> impl IntoResponse {
    axum::http::StatusCode::NO_CONTENT
}

/// `GET /api/v1/stats`: store size figures (series, points, bytes).
pub async fn stats(State(st): State<Shared>) -> ApiResult<Json<Value>> {
    let store = st.store.clone();
    let s = blocking(move || store.stats().map_err(ApiError::from)).await?;
    Ok(Json(json!({
        "series": s.series,
        "chunk_points": s.chunk_points,
        "chunk_bytes": s.chunk_bytes,
        "rollup_bytes": s.rollup_bytes,
        "raw_frames": s.raw_frames,
        "raw_frame_bytes": s.raw_frame_bytes,
        "head_points": s.head_points,
        "file_bytes": s.file_bytes,
        "checkpoint_failures": s.checkpoint_failures,
    })))
}

/// `POST /api/v1/admin/checkpoint`: folds the head into compressed chunks now (benchmarks and
/// backups; the server also does it by itself). Same guard as reads.
pub async fn checkpoint(State(st): State<Shared>) -> ApiResult<axum::http::StatusCode> {
    let store = st.store.clone();
    blocking(move || store.checkpoint().map_err(ApiError::from)).await?;
    Ok(axum::http::StatusCode::NO_CONTENT)
}
