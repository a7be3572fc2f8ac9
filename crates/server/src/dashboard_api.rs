//! Read endpoints the dashboard needs beyond `read.rs`:
//! `GET /api/v1/meters/{meter}/injection` — energy injected (EAIT) per local period, the
//! producer's counterpart of `/energy`.

use axum::extract::{Path, Query, State};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use store::SeriesKey;

use crate::app::{blocking, Shared};
use crate::error::{ApiError, ApiResult};

/// Routes (mounted with the other reads, behind the read token).
pub fn routes() -> Router<Shared> {
    Router::new().route("/api/v1/meters/{meter}/injection", get(injection))
}

/// Query string of `/injection`: the same as `/energy`.
#[derive(Debug, Deserialize)]
pub struct InjectionQuery {
    period: Option<String>,
    from: Option<String>,
    to: Option<String>,
    tz: Option<String>,
}

/// `GET /api/v1/meters/{meter}/injection`: EAIT deltas per local period, Wh.
pub async fn injection(
    State(st): State<Shared>,
    Path(meter): Path<String>,
    Query(q): Query<InjectionQuery>,
) -> ApiResult<Json<Value>> {
    let period = crate::read::parse_period(q.period.as_deref())?;
    let tz = q.tz.clone().unwrap_or_else(|| st.cfg.time_zone.clone());
    store::time_zone(&tz).map_err(ApiError::from)?;
    let (from, to) = crate::read::range(&st, q.from.as_deref(), q.to.as_deref(), 7 * 86_400_000)?;
    let key = SeriesKey::new("EAIT", [("meter", meter.as_str())]).map_err(ApiError::from)?;
    let sid = st.store.find_series(&key).ok_or_else(|| {
        ApiError::not_found(format!(
            "meter {meter:?} has no injection index (EAIT): not a producer"
        ))
    })?;
    let max_buckets = st.cfg.limits.max_buckets;
    let store = st.store.clone();
    let tzn = tz.clone();
    let buckets = blocking(move || {
        let b = store::local_period_boundaries(from, to, period, &tzn).map_err(ApiError::from)?;
        if b.len() > max_buckets + 1 {
            return Err(ApiError::bad_request(format!(
                "{} periods exceed the limit of {max_buckets}",
                b.len() - 1
            )));
        }
        store
            .energy_per_period(sid, from, to, period, &tzn)
            .map_err(ApiError::from)
    })
    .await?;
    let total: f64 = buckets.iter().filter_map(|b| b.delta).sum();
    let periods: Vec<Value> = buckets
        .iter()
        .map(|b| json!({"start_ms": b.start_ms, "end_ms": b.end_ms, "wh": b.delta}))
        .collect();
    Ok(Json(json!({
        "meter": meter,
        "period": q.period.as_deref().unwrap_or("day"),
        "time_zone": tz,
        "periods": periods,
        "total_wh": total,
    })))
}
