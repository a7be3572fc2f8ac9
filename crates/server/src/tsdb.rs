//! The OpenTSDB read API that Grafana's built-in OpenTSDB datasource uses
//! (opentsdb-api.md §1): `/api/query`, `/api/suggest`, `/api/search/lookup`,
//! `/api/aggregators`, `/api/config/filters`, `/api/version`.
//!
//! Per series: downsample (from the store's rollups) → rate → then interpolate and aggregate
//! across the series of each group, as OpenTSDB does. Empty buckets are omitted for the `none`,
//! `null` and `nan` fill policies (Grafana turns `null` into 0 and cannot parse NaN); `zero`
//! emits zeros.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::sync::atomic::Ordering;

use axum::extract::{Query, RawQuery, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use store::{Aggregator, SeriesId, SeriesKey};

use crate::app::{blocking, now_ms, Shared};
use crate::error::{ApiError, ApiResult};

// ------------------------------------------------------------------ time

/// Parses a duration `N<unit>` with unit ms, s, m, h, d, w, n (30 d), y (365 d); a bare
/// number is milliseconds.
pub fn parse_duration_ms(s: &str) -> Result<i64, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: i64 = num.parse().map_err(|_| {
        format!("invalid duration {s:?}: write N followed by ms, s, m, h, d, w, n or y")
    })?;
    let mult = match unit {
        "" | "ms" => 1,
        "s" => 1000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        "w" => 7 * 86_400_000,
        "n" => 30 * 86_400_000,
        "y" => 365 * 86_400_000,
        _ => {
            return Err(format!(
                "invalid duration unit in {s:?}: use ms, s, m, h, d, w, n or y"
            ))
        }
    };
    let v = n
        .checked_mul(mult)
        .ok_or_else(|| format!("duration {s:?} is too long"))?;
    if v <= 0 {
        return Err(format!("duration {s:?} must be positive"));
    }
    Ok(v)
}

/// Parses a time as OpenTSDB does: Unix seconds (≤ 10 digits) or ms, `sec.frac`, `now`,
/// `<duration>-ago`, `YYYY/MM/DD[-HH:MM[:SS]]` (UTC) — and RFC 3339 too. Returns Unix ms.
pub fn parse_time(s: &str, now_ms: i64) -> Result<i64, String> {
    let s = s.trim();
    if s.is_empty() {
        return Err("empty time".into());
    }
    if s == "now" {
        return Ok(now_ms);
    }
    if let Some(d) = s.strip_suffix("-ago") {
        return Ok(now_ms - parse_duration_ms(d)?);
    }
    if s.bytes().all(|b| b.is_ascii_digit()) {
        let n: i64 = s.parse().map_err(|_| format!("invalid time {s:?}"))?;
        return Ok(if s.len() <= 10 {
            n.saturating_mul(1000)
        } else {
            n
        });
    }
    if let Some((a, b)) = s.split_once('.') {
        if a.bytes().all(|c| c.is_ascii_digit())
            && b.bytes().all(|c| c.is_ascii_digit())
            && !a.is_empty()
            && !b.is_empty()
        {
            let secs: i64 = a.parse().map_err(|_| format!("invalid time {s:?}"))?;
            let frac: String = b.chars().chain("000".chars()).take(3).collect();
            return Ok(secs.saturating_mul(1000) + frac.parse::<i64>().unwrap_or(0));
        }
    }
    if let Ok(t) = s.parse::<jiff::Timestamp>() {
        return Ok(t.as_millisecond());
    }
    // "2026/12/04-15:00:00" → "2026-12-04T15:00:00".
    let mut parts = s.splitn(2, ['-', ' ']);
    let date = parts.next().unwrap_or("");
    let time = parts.next().unwrap_or("00:00:00");
    let date = date.replace('/', "-");
    let time = if time.len() == 5 {
        format!("{time}:00")
    } else {
        time.to_string()
    };
    let text = format!("{date}T{time}");
    text.parse::<jiff::civil::DateTime>()
        .ok()
        .and_then(|dt| dt.to_zoned_datetime(jiff::tz::TimeZone::UTC).ok())
        .map(|z| z.timestamp().as_millisecond())
        .ok_or_else(|| format!("invalid time {s:?}: use Unix seconds or ms, `1h-ago`, `now`, `YYYY/MM/DD-HH:MM:SS` or RFC 3339"))
}

fn json_time(v: &Value, now: i64) -> Result<i64, String> {
    match v {
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                Ok(if i.abs() < 10_000_000_000 {
                    i * 1000
                } else {
                    i
                })
            } else {
                let f = n.as_f64().unwrap_or(0.0);
                Ok((f * 1000.0) as i64)
            }
        }
        Value::String(s) => parse_time(s, now),
        _ => Err("start/end must be a number or a string".into()),
    }
}

// ------------------------------------------------------------------ filters

#[derive(Debug, Clone)]
enum FilterKind {
    LiteralOr(Vec<String>),
    ILiteralOr(Vec<String>),
    NotLiteralOr(Vec<String>),
    NotILiteralOr(Vec<String>),
    Wildcard(String),
    IWildcard(String),
    Regexp(regex_lite::Regex),
    NotKey,
}

/// One tag filter.
#[derive(Debug, Clone)]
pub struct Filter {
    tagk: String,
    kind: FilterKind,
    group_by: bool,
}

fn wildcard_match(pat: &str, s: &str) -> bool {
    // Glob with `*` only, iterative with backtracking to the last star.
    let (p, s) = (pat.as_bytes(), s.as_bytes());
    let (mut i, mut j, mut star, mut mark) = (0, 0, None, 0);
    while j < s.len() {
        if i < p.len() && p[i] != b'*' && p[i] == s[j] {
            i += 1;
            j += 1;
        } else if i < p.len() && p[i] == b'*' {
            star = Some(i);
            mark = j;
            i += 1;
        } else if let Some(st) = star {
            i = st + 1;
            mark += 1;
            j = mark;
        } else {
            return false;
        }
    }
    while i < p.len() && p[i] == b'*' {
        i += 1;
    }
    i == p.len()
}

impl Filter {
    fn new(kind: &str, tagk: &str, filter: &str, group_by: bool) -> Result<Filter, String> {
        let list = |f: &str| f.split('|').map(str::to_string).collect::<Vec<_>>();
        let k = match kind {
            "literal_or" => FilterKind::LiteralOr(list(filter)),
            "iliteral_or" => FilterKind::ILiteralOr(list(&filter.to_lowercase())),
            "not_literal_or" => FilterKind::NotLiteralOr(list(filter)),
            "not_iliteral_or" => FilterKind::NotILiteralOr(list(&filter.to_lowercase())),
            "wildcard" => FilterKind::Wildcard(filter.to_string()),
            "iwildcard" => FilterKind::IWildcard(filter.to_lowercase()),
            "regexp" => {
                if filter.len() > 1000 {
                    return Err("regexp filter longer than 1000 characters".into());
                }
                FilterKind::Regexp(
                    regex_lite::Regex::new(filter)
                        .map_err(|e| format!("invalid regexp {filter:?}: {e}"))?,
                )
            }
            "not_key" => FilterKind::NotKey,
            other => {
                return Err(format!(
                    "unknown filter type {other:?}; see /api/config/filters"
                ))
            }
        };
        Ok(Filter {
            tagk: tagk.to_string(),
            kind: k,
            group_by,
        })
    }

    /// A legacy `tags` map entry: `*` → wildcard, `f(x)` → filter f, else literal_or.
    fn from_tag(tagk: &str, v: &str) -> Result<Filter, String> {
        if let Some(open) = v.find('(') {
            if v.ends_with(')') {
                return Filter::new(&v[..open], tagk, &v[open + 1..v.len() - 1], true);
            }
        }
        if v.contains('*') {
            return Filter::new("wildcard", tagk, v, true);
        }
        Filter::new("literal_or", tagk, v, true)
    }

    fn matches(&self, k: &SeriesKey) -> bool {
        let v = k.tag(&self.tagk);
        match (&self.kind, v) {
            (FilterKind::NotKey, v) => v.is_none(),
            (_, None) => false,
            (FilterKind::LiteralOr(l), Some(v)) => l.iter().any(|x| x == v),
            (FilterKind::ILiteralOr(l), Some(v)) => {
                let v = v.to_lowercase();
                l.contains(&v)
            }
            (FilterKind::NotLiteralOr(l), Some(v)) => !l.iter().any(|x| x == v),
            (FilterKind::NotILiteralOr(l), Some(v)) => {
                let v = v.to_lowercase();
                !l.contains(&v)
            }
            (FilterKind::Wildcard(p), Some(v)) => wildcard_match(p, v),
            (FilterKind::IWildcard(p), Some(v)) => wildcard_match(p, &v.to_lowercase()),
            (FilterKind::Regexp(r), Some(v)) => r.is_match(v),
        }
    }
}

// ------------------------------------------------------------------ aggregators

/// Aggregators across series, as `/api/aggregators` lists them.
pub const AGGREGATORS: &[&str] = &[
    "avg", "count", "dev", "first", "last", "max", "mimmax", "mimmin", "min", "none", "sum",
    "zimsum",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cross {
    Sum,
    Avg,
    Min,
    Max,
    Count,
    Dev,
    First,
    Last,
    ZimSum,
    MimMin,
    MimMax,
    None,
}

impl Cross {
    fn parse(s: &str) -> Option<Cross> {
        Some(match s {
            "sum" => Cross::Sum,
            "avg" => Cross::Avg,
            "min" => Cross::Min,
            "max" => Cross::Max,
            "count" => Cross::Count,
            "dev" => Cross::Dev,
            "first" => Cross::First,
            "last" => Cross::Last,
            "zimsum" => Cross::ZimSum,
            "mimmin" => Cross::MimMin,
            "mimmax" => Cross::MimMax,
            "none" => Cross::None,
            _ => return None,
        })
    }
    fn interpolates(self) -> bool {
        !matches!(self, Cross::ZimSum | Cross::MimMin | Cross::MimMax)
    }
    fn reduce(self, v: &[f64]) -> Option<f64> {
        if v.is_empty() {
            return None;
        }
        let n = v.len() as f64;
        Some(match self {
            Cross::Sum | Cross::ZimSum => v.iter().sum(),
            Cross::Avg => v.iter().sum::<f64>() / n,
            Cross::Min | Cross::MimMin => v.iter().copied().fold(f64::INFINITY, f64::min),
            Cross::Max | Cross::MimMax => v.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            Cross::Count => n,
            Cross::Dev => {
                let m = v.iter().sum::<f64>() / n;
                (v.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / n).sqrt()
            }
            Cross::First | Cross::None => v[0],
            Cross::Last => v[v.len() - 1],
        })
    }
}

// ------------------------------------------------------------------ query model

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fill {
    None,
    Zero,
}

#[derive(Debug, Clone)]
struct Downsample {
    /// `None` = one bucket for the whole range (`0all`).
    width_ms: Option<i64>,
    agg: Aggregator,
    fill: Fill,
}

fn parse_downsample(s: &str) -> Result<Downsample, String> {
    let mut parts = s.split('-');
    let interval = parts.next().unwrap_or("");
    let agg = parts.next().ok_or_else(|| {
        format!("invalid downsample {s:?}: write <interval>-<aggregator>[-<fill>]")
    })?;
    let fill = match parts.next() {
        None | Some("none") | Some("null") | Some("nan") => Fill::None,
        Some("zero") => Fill::Zero,
        Some(f) => {
            return Err(format!(
                "invalid fill policy {f:?}: use none, nan, null or zero"
            ))
        }
    };
    let agg = match agg {
        "none" => return Err("'none' is not a valid downsample aggregator".into()),
        a => Aggregator::parse(a).ok_or_else(|| {
            format!("unsupported downsample aggregator {a:?}: use avg, min, max, sum, count, first or last")
        })?,
    };
    let interval = interval.strip_suffix('c').unwrap_or(interval);
    let width_ms = if interval.ends_with("all") {
        None
    } else {
        Some(parse_duration_ms(interval)?)
    };
    Ok(Downsample {
        width_ms,
        agg,
        fill,
    })
}

#[derive(Debug, Clone, Default)]
struct Rate {
    counter: bool,
    counter_max: Option<f64>,
    reset_value: Option<f64>,
    drop_resets: bool,
}

#[derive(Debug, Clone)]
struct SubQuery {
    index: usize,
    metric: String,
    cross: Cross,
    downsample: Option<Downsample>,
    rate: Option<Rate>,
    filters: Vec<Filter>,
    explicit_tags: bool,
    raw: Value,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RateOptionsIn {
    #[serde(default)]
    counter: bool,
    counter_max: Option<f64>,
    reset_value: Option<f64>,
    #[serde(default)]
    drop_resets: bool,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct FilterIn {
    #[serde(rename = "type")]
    kind: String,
    tagk: String,
    filter: String,
    #[serde(default)]
    group_by: bool,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SubQueryIn {
    metric: Option<String>,
    aggregator: Option<String>,
    downsample: Option<String>,
    #[serde(default)]
    rate: bool,
    rate_options: Option<RateOptionsIn>,
    tags: Option<BTreeMap<String, String>>,
    filters: Option<Vec<FilterIn>>,
    #[serde(default)]
    explicit_tags: bool,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct QueryIn {
    start: Option<Value>,
    end: Option<Value>,
    #[serde(default)]
    queries: Vec<Value>,
    #[serde(default)]
    ms_resolution: bool,
    #[serde(default)]
    show_query: bool,
}

struct Request {
    start: i64,
    end: i64,
    queries: Vec<SubQuery>,
    ms: bool,
    show_query: bool,
    arrays: bool,
}

fn build_sub(index: usize, raw: Value) -> Result<SubQuery, String> {
    let q: SubQueryIn =
        serde_json::from_value(raw.clone()).map_err(|e| format!("query {index}: {e}"))?;
    let metric = q
        .metric
        .filter(|m| !m.is_empty())
        .ok_or_else(|| format!("query {index}: missing metric"))?;
    let agg = q.aggregator.as_deref().unwrap_or("sum");
    let cross = Cross::parse(agg)
        .ok_or_else(|| format!("No such aggregator: {agg}; see /api/aggregators"))?;
    let downsample = q
        .downsample
        .as_deref()
        .filter(|s| !s.is_empty())
        .map(parse_downsample)
        .transpose()?;
    let rate = q.rate.then(|| {
        let o = q.rate_options.as_ref();
        Rate {
            counter: o.is_some_and(|o| o.counter),
            counter_max: o.and_then(|o| o.counter_max).filter(|v| *v > 0.0),
            reset_value: o.and_then(|o| o.reset_value).filter(|v| *v > 0.0),
            drop_resets: o.is_some_and(|o| o.drop_resets),
        }
    });
    let mut filters = Vec::new();
    for (k, v) in q.tags.unwrap_or_default() {
        filters.push(Filter::from_tag(&k, &v)?);
    }
    for f in q.filters.unwrap_or_default() {
        filters.push(Filter::new(&f.kind, &f.tagk, &f.filter, f.group_by)?);
    }
    Ok(SubQuery {
        index,
        metric,
        cross,
        downsample,
        rate,
        filters,
        explicit_tags: q.explicit_tags,
        raw,
    })
}

/// Parses the URI form `m=agg:[interval-agg:][rate[{counter,max,reset}]:]metric[{tags}][{filters}]`.
fn parse_m(index: usize, m: &str) -> Result<SubQuery, String> {
    // Tag braces start after the metric, i.e. after the last ':' (rate{…} has braces too).
    let metric_at = m.rfind(':').map_or(0, |i| i + 1);
    let (head, braces) = match m[metric_at..].find('{') {
        Some(i) => (&m[..metric_at + i], &m[metric_at + i..]),
        None => (m, ""),
    };
    let parts: Vec<&str> = head.split(':').collect();
    if parts.len() < 2 {
        return Err(format!(
            "invalid m={m:?}: write aggregator:[downsample:][rate:]metric"
        ));
    }
    let mut raw = json!({"aggregator": parts[0], "metric": parts[parts.len() - 1]});
    for p in &parts[1..parts.len() - 1] {
        if p.starts_with("rate") {
            raw["rate"] = json!(true);
            let counter = p.contains("counter");
            let nums: Vec<f64> = p
                .trim_start_matches("rate")
                .trim_matches(|c| c == '{' || c == '}')
                .split(',')
                .skip(1)
                .filter_map(|x| x.trim().parse().ok())
                .collect();
            raw["rateOptions"] =
                json!({"counter": counter, "counterMax": nums.first(), "resetValue": nums.get(1)});
        } else {
            raw["downsample"] = json!(p);
        }
    }
    // Group-by tags in the first braces, non-group-by filters in the second.
    let mut filters = Vec::new();
    for (i, group) in braces.split('}').filter(|g| !g.is_empty()).enumerate() {
        for kv in group
            .trim_start_matches('{')
            .split(',')
            .filter(|s| !s.is_empty())
        {
            let (k, v) = kv
                .split_once('=')
                .ok_or_else(|| format!("invalid tag {kv:?} in m={m:?}"))?;
            let f = Filter::from_tag(k, v)?;
            let (kind, filter) = match v.find('(') {
                Some(o) if v.ends_with(')') => {
                    (v[..o].to_string(), v[o + 1..v.len() - 1].to_string())
                }
                _ if v.contains('*') => ("wildcard".to_string(), v.to_string()),
                _ => ("literal_or".to_string(), v.to_string()),
            };
            drop(f);
            filters.push(json!({"type": kind, "tagk": k, "filter": filter, "groupBy": i == 0}));
        }
    }
    raw["filters"] = Value::Array(filters);
    build_sub(index, raw)
}

fn bad(msg: impl Into<String>) -> ApiError {
    ApiError::bad_request(msg)
}

fn finish_request(
    st: &Shared,
    start: Option<&Value>,
    end: Option<&Value>,
    queries: Vec<SubQuery>,
    ms: bool,
    show: bool,
    arrays: bool,
) -> ApiResult<Request> {
    let now = now_ms();
    let start = json_time(start.ok_or_else(|| bad("Missing start time"))?, now).map_err(bad)?;
    let end = match end {
        Some(e) => json_time(e, now).map_err(bad)?,
        None => now,
    };
    if start >= end {
        return Err(bad(format!("start ({start}) must be before end ({end})")));
    }
    let max = st.cfg.limits.max_query_days.saturating_mul(86_400_000);
    if end - start > max {
        return Err(bad(format!(
            "query range of {} days exceeds the limit of {} days (limits.max_query_days)",
            (end - start) / 86_400_000,
            st.cfg.limits.max_query_days
        )));
    }
    if start < 0 || end > store::limits::MAX_TS_MS {
        return Err(bad("query range outside 1970..9999"));
    }
    if queries.is_empty() {
        return Err(bad("Missing queries: give at least one sub query"));
    }
    if queries.len() > 100 {
        return Err(bad("more than 100 sub queries in one request"));
    }
    Ok(Request {
        start,
        end,
        queries,
        ms,
        show_query: show,
        arrays,
    })
}

// ------------------------------------------------------------------ execution

struct SeriesData {
    key: SeriesKey,
    ts: Vec<i64>,
    val: Vec<f64>,
}

fn fetch(
    st: &Shared,
    sid: SeriesId,
    key: SeriesKey,
    sq: &SubQuery,
    start: i64,
    end: i64,
    budget: &mut usize,
) -> ApiResult<SeriesData> {
    let store = &st.store;
    let (mut ts, mut val) = (Vec::new(), Vec::new());
    match &sq.downsample {
        None => {
            let p = store.read_range(sid, start, end).map_err(ApiError::from)?;
            if p.ts_ms.len() > *budget {
                return Err(bad(format!(
                    "the query reads more than {} raw points (limits.max_query_points); add a downsample such as 1m-avg",
                    st.cfg.limits.max_query_points
                )));
            }
            *budget -= p.ts_ms.len();
            ts = p.ts_ms;
            val = p.values;
        }
        Some(ds) => {
            let bounds = match ds.width_ms {
                None => vec![start, end],
                Some(w) => {
                    let n = (end - start) / w + 2;
                    if n as usize > st.cfg.limits.max_buckets {
                        return Err(bad(format!(
                            "downsample gives {n} buckets, more than {} (limits.max_buckets); use a wider interval",
                            st.cfg.limits.max_buckets
                        )));
                    }
                    store::bucket_boundaries(start, end, &store::Bucketing::Width { width_ms: w })
                        .map_err(ApiError::from)?
                }
            };
            let buckets = store
                .aggregate_boundaries(sid, &bounds)
                .map_err(ApiError::from)?;
            for b in buckets {
                let t = match ds.width_ms {
                    Some(w) => b.start_ms.div_euclid(w) * w,
                    None => b.start_ms,
                };
                match b.agg {
                    Some(a) => {
                        ts.push(t);
                        val.push(a.get(ds.agg));
                    }
                    None if ds.fill == Fill::Zero => {
                        ts.push(t);
                        val.push(0.0);
                    }
                    None => {}
                }
            }
        }
    }
    if let Some(r) = &sq.rate {
        let (mut rt, mut rv) = (Vec::with_capacity(ts.len()), Vec::with_capacity(ts.len()));
        for i in 1..ts.len() {
            let dt = (ts[i] - ts[i - 1]) as f64 / 1000.0;
            if dt <= 0.0 {
                continue;
            }
            let d = val[i] - val[i - 1];
            let mut rate = d / dt;
            if r.counter && d < 0.0 {
                if r.drop_resets {
                    continue;
                }
                match r.counter_max {
                    Some(m) => rate = (m - val[i - 1] + val[i]) / dt,
                    None => rate = val[i] / dt,
                }
            }
            if let Some(reset) = r.reset_value {
                if rate > reset {
                    rate = 0.0;
                }
            }
            rt.push(ts[i]);
            rv.push(rate);
        }
        ts = rt;
        val = rv;
    }
    Ok(SeriesData { key, ts, val })
}

/// Value of a series at `t`: exact, or linearly interpolated inside its range.
fn value_at(s: &SeriesData, t: i64, interpolate: bool) -> Option<f64> {
    let i = s.ts.partition_point(|&x| x < t);
    if i < s.ts.len() && s.ts[i] == t {
        return Some(s.val[i]);
    }
    if !interpolate || i == 0 || i >= s.ts.len() {
        return None;
    }
    let (t0, t1, v0, v1) = (s.ts[i - 1], s.ts[i], s.val[i - 1], s.val[i]);
    Some(v0 + (v1 - v0) * (t - t0) as f64 / (t1 - t0) as f64)
}

struct Group {
    tags: BTreeMap<String, String>,
    aggregate_tags: Vec<String>,
    ts: Vec<i64>,
    val: Vec<f64>,
}

fn aggregate_group(members: &[SeriesData], cross: Cross) -> Group {
    let mut tags: BTreeMap<String, String> = members[0].key.tags().clone();
    let mut all_keys: BTreeSet<String> = BTreeSet::new();
    for m in members {
        for (k, v) in m.key.tags() {
            all_keys.insert(k.clone());
            if tags.get(k).is_some_and(|x| x != v) {
                tags.remove(k);
            }
        }
        tags.retain(|k, _| m.key.tags().contains_key(k));
    }
    let aggregate_tags: Vec<String> = all_keys
        .into_iter()
        .filter(|k| !tags.contains_key(k))
        .collect();
    if members.len() == 1 {
        return Group {
            tags,
            aggregate_tags,
            ts: members[0].ts.clone(),
            val: members[0].val.clone(),
        };
    }
    let times: BTreeSet<i64> = members.iter().flat_map(|m| m.ts.iter().copied()).collect();
    let (mut ts, mut val) = (
        Vec::with_capacity(times.len()),
        Vec::with_capacity(times.len()),
    );
    let mut buf = Vec::with_capacity(members.len());
    for t in times {
        buf.clear();
        for m in members {
            match value_at(m, t, cross.interpolates()) {
                Some(v) => buf.push(v),
                None if cross == Cross::ZimSum => buf.push(0.0),
                None => {}
            }
        }
        if let Some(v) = cross.reduce(&buf) {
            ts.push(t);
            val.push(v);
        }
    }
    Group {
        tags,
        aggregate_tags,
        ts,
        val,
    }
}

fn write_num(out: &mut String, v: f64) {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        let _ = write!(out, "{}", v as i64);
    } else {
        let _ = write!(out, "{v}");
    }
}

fn run_query(st: &Shared, req: &Request) -> ApiResult<String> {
    let all = st.store.list_series();
    let mut out = String::from("[");
    let mut first_result = true;
    let mut budget = st.cfg.limits.max_query_points;
    for sq in &req.queries {
        let matching: Vec<(SeriesId, SeriesKey)> = all
            .iter()
            .filter(|(_, k)| k.metric() == sq.metric)
            .filter(|(_, k)| sq.filters.iter().all(|f| f.matches(k)))
            .filter(|(_, k)| {
                !sq.explicit_tags || {
                    let qk: BTreeSet<&str> = sq.filters.iter().map(|f| f.tagk.as_str()).collect();
                    let sk: BTreeSet<&str> = k.tags().keys().map(String::as_str).collect();
                    qk == sk
                }
            })
            .cloned()
            .collect();
        if matching.is_empty() && !all.iter().any(|(_, k)| k.metric() == sq.metric) {
            return Err(bad(format!("No such name for 'metrics': '{}'", sq.metric)));
        }
        if matching.len() > st.cfg.limits.max_query_series {
            return Err(bad(format!(
                "the query matches {} series, more than {} (limits.max_query_series); add tag filters",
                matching.len(),
                st.cfg.limits.max_query_series
            )));
        }
        let group_keys: Vec<&str> = sq
            .filters
            .iter()
            .filter(|f| f.group_by)
            .map(|f| f.tagk.as_str())
            .collect();
        let mut groups: BTreeMap<Vec<String>, Vec<SeriesData>> = BTreeMap::new();
        for (i, (sid, key)) in matching.into_iter().enumerate() {
            let gk: Vec<String> = if sq.cross == Cross::None {
                vec![i.to_string()]
            } else {
                group_keys
                    .iter()
                    .map(|k| key.tag(k).unwrap_or("").to_string())
                    .collect()
            };
            let data = fetch(st, sid, key, sq, req.start, req.end, &mut budget)?;
            groups.entry(gk).or_default().push(data);
        }
        for members in groups.values() {
            let g = aggregate_group(members, sq.cross);
            if !first_result {
                out.push(',');
            }
            first_result = false;
            out.push_str("{\"metric\":");
            out.push_str(&serde_json::to_string(&sq.metric).unwrap_or_default());
            out.push_str(",\"tags\":");
            out.push_str(&serde_json::to_string(&g.tags).unwrap_or_default());
            out.push_str(",\"aggregateTags\":");
            out.push_str(&serde_json::to_string(&g.aggregate_tags).unwrap_or_default());
            if req.show_query {
                let mut q = sq.raw.clone();
                q["index"] = json!(sq.index);
                out.push_str(",\"query\":");
                out.push_str(&q.to_string());
            }
            out.push_str(if req.arrays {
                ",\"dps\":["
            } else {
                ",\"dps\":{"
            });
            let mut last_key: Option<i64> = None;
            let mut first = true;
            let n = g.ts.len();
            for i in 0..n {
                let key = if req.ms {
                    g.ts[i]
                } else {
                    g.ts[i].div_euclid(1000)
                };
                // Several ms points in one second: keep the last (what a JSON map would keep).
                if i + 1 < n {
                    let next = if req.ms {
                        g.ts[i + 1]
                    } else {
                        g.ts[i + 1].div_euclid(1000)
                    };
                    if next == key {
                        continue;
                    }
                }
                if last_key == Some(key) {
                    continue;
                }
                last_key = Some(key);
                if !first {
                    out.push(',');
                }
                first = false;
                if req.arrays {
                    let _ = write!(out, "[{key},");
                    write_num(&mut out, g.val[i]);
                    out.push(']');
                } else {
                    let _ = write!(out, "\"{key}\":");
                    write_num(&mut out, g.val[i]);
                }
            }
            out.push_str(if req.arrays { "]}" } else { "}}" });
        }
    }
    out.push(']');
    Ok(out)
}

fn json_response(body: String) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

fn query_flag(q: &Option<String>, name: &str) -> bool {
    q.as_deref().is_some_and(|q| {
        q.split('&').any(|kv| {
            let mut it = kv.splitn(2, '=');
            it.next() == Some(name) && it.next().is_none_or(|v| v != "false")
        })
    })
}

async fn execute(st: Shared, req: Request) -> ApiResult<Response> {
    st.counters.queries.fetch_add(1, Ordering::Relaxed);
    let st2 = st.clone();
    let body = blocking(move || run_query(&st2, &req)).await?;
    Ok(json_response(body))
}

/// `POST /api/query`.
pub async fn query_post(
    State(st): State<Shared>,
    RawQuery(qs): RawQuery,
    body: axum::body::Bytes,
) -> ApiResult<Response> {
    let q: QueryIn = serde_json::from_slice(&body)
        .map_err(|e| bad(format!("Unable to parse the given JSON: {e}")))?;
    let subs = q
        .queries
        .into_iter()
        .enumerate()
        .map(|(i, raw)| build_sub(i, raw))
        .collect::<Result<Vec<_>, _>>()
        .map_err(bad)?;
    let arrays = query_flag(&qs, "arrays");
    let req = finish_request(
        &st,
        q.start.as_ref(),
        q.end.as_ref(),
        subs,
        q.ms_resolution || query_flag(&qs, "ms"),
        q.show_query || query_flag(&qs, "show_query"),
        arrays,
    )?;
    execute(st, req).await
}

/// `GET /api/query?start=…&m=…`.
pub async fn query_get(State(st): State<Shared>, RawQuery(qs): RawQuery) -> ApiResult<Response> {
    let pairs: Vec<(String, String)> = url_pairs(qs.as_deref().unwrap_or(""));
    let get = |k: &str| {
        pairs
            .iter()
            .find(|(a, _)| a == k)
            .map(|(_, v)| Value::String(v.clone()))
    };
    let subs = pairs
        .iter()
        .filter(|(k, _)| k == "m")
        .enumerate()
        .map(|(i, (_, m))| parse_m(i, m))
        .collect::<Result<Vec<_>, _>>()
        .map_err(bad)?;
    let req = finish_request(
        &st,
        get("start").as_ref(),
        get("end").as_ref(),
        subs,
        query_flag(&qs, "ms"),
        query_flag(&qs, "show_query"),
        query_flag(&qs, "arrays"),
    )?;
    execute(st, req).await
}

fn url_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() && s.is_char_boundary(i + 1) && s.is_char_boundary(i + 3) => {
                match u8::from_str_radix(&s[i + 1..i + 3], 16) {
                    Ok(v) => {
                        out.push(v);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn url_pairs(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|s| !s.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (url_decode(k), url_decode(v))
        })
        .collect()
}

/// Query of `/api/suggest`.
#[derive(Debug, Deserialize)]
pub struct SuggestQuery {
    #[serde(rename = "type")]
    kind: Option<String>,
    q: Option<String>,
    max: Option<i64>,
}

/// `GET /api/suggest`.
pub async fn suggest(
    State(st): State<Shared>,
    Query(q): Query<SuggestQuery>,
) -> ApiResult<Json<Vec<String>>> {
    let kind = q
        .kind
        .as_deref()
        .ok_or_else(|| bad("Missing 'type' parameter: use metrics, tagk or tagv"))?;
    let prefix = q.q.unwrap_or_default();
    let max = match q.max {
        Some(m) if m > 0 => (m as usize).min(100_000),
        _ => 25,
    };
    let mut set = BTreeSet::new();
    for (_, k) in st.store.list_series() {
        match kind {
            "metrics" => {
                set.insert(k.metric().to_string());
            }
            "tagk" => set.extend(k.tags().keys().cloned()),
            "tagv" => set.extend(k.tags().values().cloned()),
            other => {
                return Err(bad(format!(
                    "Invalid 'type' parameter: {other}; use metrics, tagk or tagv"
                )))
            }
        }
    }
    Ok(Json(
        set.into_iter()
            .filter(|s| s.starts_with(&prefix))
            .take(max)
            .collect(),
    ))
}

/// Query of `/api/search/lookup`.
#[derive(Debug, Deserialize)]
pub struct LookupQuery {
    m: Option<String>,
    limit: Option<i64>,
}

/// `GET /api/search/lookup?m=metric{k=v,k2=*}&limit=N`.
pub async fn lookup(
    State(st): State<Shared>,
    Query(q): Query<LookupQuery>,
) -> ApiResult<Json<Value>> {
    let started = std::time::Instant::now();
    let m =
        q.m.ok_or_else(|| bad("Missing 'm' parameter: write metric{tagk=value,tagk2=*}"))?;
    let (metric, tag_text) = match m.find('{') {
        Some(i) => (&m[..i], m[i + 1..].trim_end_matches('}')),
        None => (m.as_str(), ""),
    };
    let mut pairs = Vec::new();
    for kv in tag_text.split(',').filter(|s| !s.is_empty()) {
        let (k, v) = kv
            .split_once('=')
            .ok_or_else(|| bad(format!("invalid tag {kv:?}: write k=v or k=*")))?;
        pairs.push((k.to_string(), v.to_string()));
    }
    let limit = match q.limit {
        Some(l) if l > 0 => (l as usize).min(100_000),
        _ => 25,
    };
    let mut results = Vec::new();
    let mut total = 0;
    for (id, k) in st.store.list_series() {
        if !(metric.is_empty() || metric == "*" || k.metric() == metric) {
            continue;
        }
        if !pairs.iter().all(|(pk, pv)| match k.tag(pk) {
            None => false,
            Some(v) => pv == "*" || pv == v,
        }) {
            continue;
        }
        total += 1;
        if results.len() < limit {
            results.push(
                json!({"tsuid": format!("{:06X}", id.0), "metric": k.metric(), "tags": k.tags()}),
            );
        }
    }
    Ok(Json(json!({
        "type": "LOOKUP",
        "metric": metric,
        "tags": pairs.iter().map(|(k, v)| json!({"key": k, "value": v})).collect::<Vec<_>>(),
        "limit": limit,
        "time": started.elapsed().as_secs_f64() * 1000.0,
        "results": results,
        "startIndex": 0,
        "totalResults": total,
    })))
}

/// `GET /api/aggregators`.
pub async fn aggregators() -> Json<&'static [&'static str]> {
    Json(AGGREGATORS)
}

/// `GET /api/config/filters`.
pub async fn filters() -> Json<Value> {
    let f = |examples: &str, description: &str| json!({"examples": examples, "description": description});
    Json(json!({
        "literal_or": f("host=literal_or(web01|web02)", "Accepts one or more exact values, case sensitive."),
        "iliteral_or": f("host=iliteral_or(web01|WEB02)", "Accepts one or more exact values, case insensitive."),
        "not_literal_or": f("host=not_literal_or(web01)", "Accepts values not in the list, case sensitive."),
        "not_iliteral_or": f("host=not_iliteral_or(web01)", "Accepts values not in the list, case insensitive."),
        "wildcard": f("host=wildcard(web*)", "Performs pre, post and in-fix glob matching with '*', case sensitive."),
        "iwildcard": f("host=iwildcard(web*)", "Glob matching, case insensitive."),
        "regexp": f("host=regexp(.*web0[12])", "Regular expression match on the tag value."),
        "not_key": f("host=not_key()", "Skips series that have the tag key."),
    }))
}

/// `GET /api/version`.
pub async fn version() -> Json<Value> {
    Json(json!({
        "version": "2.4.0",
        "short_revision": env!("CARGO_PKG_VERSION"),
        "full_revision": concat!("teleinfo-", env!("CARGO_PKG_VERSION")),
        "timestamp": "0",
        "repo_status": "MINT",
        "user": "teleinfo",
        "host": "teleinfo",
        "repo": "teleinfo",
        "branch": "main",
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times() {
        let now = 1_800_000_000_000;
        assert_eq!(parse_time("1796311000", now).unwrap(), 1_796_311_000_000);
        assert_eq!(parse_time("1796311000123", now).unwrap(), 1_796_311_000_123);
        assert_eq!(parse_time("1796311000.5", now).unwrap(), 1_796_311_000_500);
        assert_eq!(parse_time("1h-ago", now).unwrap(), now - 3_600_000);
        assert_eq!(parse_time("now", now).unwrap(), now);
        assert_eq!(
            parse_time("2026/12/04-15:00:00", now).unwrap(),
            parse_time("2026-12-04T15:00:00Z", now).unwrap()
        );
        assert_eq!(
            parse_time("2026/12/04", now).unwrap(),
            parse_time("2026-12-04T00:00:00Z", now).unwrap()
        );
        assert!(parse_time("yesterday", now).is_err());
        assert_eq!(parse_duration_ms("5m").unwrap(), 300_000);
        assert_eq!(parse_duration_ms("500ms").unwrap(), 500);
        assert!(parse_duration_ms("0s").is_err());
        assert!(parse_duration_ms("5x").is_err());
    }

    #[test]
    fn downsample_specs() {
        let d = parse_downsample("5m-avg-zero").unwrap();
        assert_eq!(
            (d.width_ms, d.agg, d.fill),
            (Some(300_000), Aggregator::Avg, Fill::Zero)
        );
        assert_eq!(parse_downsample("0all-max").unwrap().width_ms, None);
        assert_eq!(
            parse_downsample("1dc-sum").unwrap().width_ms,
            Some(86_400_000)
        );
        assert!(parse_downsample("5m-none").is_err());
        assert!(parse_downsample("5m").is_err());
    }

    #[test]
    fn filters_match() {
        let k = SeriesKey::new("m", [("meter", "021861348497"), ("phase", "1")]).unwrap();
        assert!(Filter::new("literal_or", "meter", "x|021861348497", true)
            .unwrap()
            .matches(&k));
        assert!(Filter::new("wildcard", "meter", "0218*", true)
            .unwrap()
            .matches(&k));
        assert!(Filter::new("regexp", "meter", "^02.*7$", true)
            .unwrap()
            .matches(&k));
        assert!(
            !Filter::new("not_literal_or", "meter", "021861348497", true)
                .unwrap()
                .matches(&k)
        );
        assert!(Filter::new("not_key", "host", "", false)
            .unwrap()
            .matches(&k));
        assert!(!Filter::new("literal_or", "host", "a", false)
            .unwrap()
            .matches(&k));
        assert!(Filter::from_tag("meter", "*").unwrap().matches(&k));
        assert!(Filter::from_tag("meter", "regexp(0.*)")
            .unwrap()
            .matches(&k));
        assert!(wildcard_match("*-prod", "web-prod") && !wildcard_match("*-prod", "web-dev"));
    }

    #[test]
    fn m_parameter() {
        let q = parse_m(0, "sum:rate{counter,100}:5m-avg:linky.papp{meter=*}").unwrap();
        assert_eq!(q.metric, "linky.papp");
        assert!(q.rate.as_ref().unwrap().counter);
        assert_eq!(q.rate.unwrap().counter_max, Some(100.0));
        assert_eq!(q.downsample.unwrap().width_ms, Some(300_000));
        assert!(q.filters[0].group_by);
        assert!(parse_m(0, "linky").is_err());
    }

    #[test]
    fn cross_series() {
        let a = SeriesData {
            key: SeriesKey::new("m", [("h", "a")]).unwrap(),
            ts: vec![0, 20],
            val: vec![0.0, 20.0],
        };
        let b = SeriesData {
            key: SeriesKey::new("m", [("h", "b")]).unwrap(),
            ts: vec![10],
            val: vec![5.0],
        };
        let g = aggregate_group(&[a, b], Cross::Sum);
        assert_eq!(g.ts, vec![0, 10, 20]);
        assert_eq!(g.val, vec![0.0, 15.0, 20.0]);
        assert_eq!(g.aggregate_tags, vec!["h".to_string()]);
        assert!(g.tags.is_empty());
    }
}
