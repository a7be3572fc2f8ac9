//! OpenTSDB writes: HTTP `POST /api/put` and the telnet `put` line protocol, with OpenTSDB's
//! exact semantics (opentsdb-api.md §2): points are independent, one bad point does not block
//! the others, and replies follow `?summary` / `?details` / 204 / 400.
//!
//! Unlike OpenTSDB, metrics are created on first write (no `mkmetric` step): a home server has
//! no administrator to pre-register names, and VictoriaMetrics behaves the same way.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::extract::{ConnectInfo, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{json, Value};
use store::{SeriesId, SeriesKey, WriteBatch};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

use crate::app::{allowed, blocking, credential, decode_body, AppState, Shared};
use crate::error::{ApiError, ApiResult};

/// A parsed, valid point.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    /// Metric.
    pub metric: String,
    /// Unix ms.
    pub ts_ms: i64,
    /// Value.
    pub value: f64,
    /// Tags, sorted by key.
    pub tags: Vec<(String, String)>,
}

/// OpenTSDB's timestamp rule: ≥ 2^32 means milliseconds (at most 13 digits), else seconds;
/// ≤ 0 is invalid.
pub fn parse_ts(ts: i64) -> Result<i64, &'static str> {
    if ts <= 0 {
        return Err("Invalid timestamp");
    }
    if ts as u64 & 0xFFFF_FFFF_0000_0000 != 0 {
        if ts > 9_999_999_999_999 {
            return Err("Invalid timestamp");
        }
        Ok(ts)
    } else {
        Ok(ts * 1000)
    }
}

/// Telnet timestamps: digits, or `sec.mmm` with the dot deleted (OpenTSDB's rule).
fn parse_ts_text(s: &str) -> Result<i64, String> {
    let digits: String = if let Some((a, b)) = s.split_once('.') {
        if b.len() != 3 || a.is_empty() {
            return Err(format!("invalid timestamp: {s}"));
        }
        format!("{a}{b}")
    } else {
        s.to_string()
    };
    if digits.is_empty() || digits.len() > 13 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("invalid timestamp: {s}"));
    }
    let n: i64 = digits
        .parse()
        .map_err(|_| format!("invalid timestamp: {s}"))?;
    parse_ts(n).map_err(|e| format!("{e}: {s}"))
}

/// A value: integer or float text; NaN and infinities refused.
pub fn parse_value(s: &str) -> Result<f64, &'static str> {
    let s = s.trim();
    if s.is_empty() {
        return Err("Empty value");
    }
    let v = if s.bytes().any(|b| matches!(b, b'.' | b'e' | b'E')) {
        s.parse::<f64>()
            .map_err(|_| "Unable to parse value to a number")?
    } else {
        s.parse::<i64>()
            .map_err(|_| "Unable to parse value to a number")? as f64
    };
    if !v.is_finite() {
        return Err("Unable to parse value to a number");
    }
    Ok(v)
}

fn check_name(kind: &str, s: &str) -> Result<(), String> {
    if s.is_empty() {
        return Err(format!("illegal argument: empty {kind}"));
    }
    if s.len() > store::limits::MAX_NAME_BYTES {
        return Err(format!(
            "illegal argument: {kind} too long ({} bytes, max {})",
            s.len(),
            store::limits::MAX_NAME_BYTES
        ));
    }
    if let Some(c) = s
        .chars()
        .find(|c| !(c.is_alphanumeric() || matches!(c, '-' | '_' | '.' | '/')))
    {
        return Err(format!(
            "illegal argument: Invalid {kind} (\"{s}\"): illegal character: {c}"
        ));
    }
    Ok(())
}

fn check_tags(tags: &mut [(String, String)]) -> Result<(), String> {
    if tags.is_empty() {
        return Err("Missing tags".into());
    }
    if tags.len() > store::limits::MAX_TAGS {
        return Err(format!(
            "illegal argument: Too many tags: {} maximum allowed: {}",
            tags.len(),
            store::limits::MAX_TAGS
        ));
    }
    for (k, v) in tags.iter() {
        check_name("tag name", k)?;
        check_name("tag value", v)?;
    }
    tags.sort();
    if let Some(w) = tags.windows(2).find(|w| w[0].0 == w[1].0) {
        return Err(format!("duplicate tag: {}={}", w[1].0, w[1].1));
    }
    Ok(())
}

/// Parses one telnet `put` line (without the leading `put`): `metric ts value k=v …`.
pub fn parse_put_words(words: &[&str]) -> Result<Point, String> {
    if words.len() < 4 {
        return Err(format!(
            "illegal argument: not enough arguments (need least 4, got {})",
            words.len()
        ));
    }
    let metric = words[0];
    check_name("metric", metric)?;
    let ts_ms = parse_ts_text(words[1])?;
    let value = parse_value(words[2]).map_err(|e| format!("invalid value: {e}: {}", words[2]))?;
    let mut tags = Vec::with_capacity(words.len() - 3);
    for w in &words[3..] {
        let Some((k, v)) = w.split_once('=') else {
            return Err(format!("invalid tag: {w}"));
        };
        if k.is_empty() || v.is_empty() || v.contains('=') {
            return Err(format!("invalid tag: {w}"));
        }
        tags.push((k.to_string(), v.to_string()));
    }
    check_tags(&mut tags)?;
    Ok(Point {
        metric: metric.to_string(),
        ts_ms,
        value,
        tags,
    })
}

/// One `/api/put` point as sent; every field optional so that each error is per point.
#[derive(Debug, Deserialize)]
struct RawPoint {
    metric: Option<Value>,
    timestamp: Option<Value>,
    value: Option<Value>,
    tags: Option<Value>,
}

fn raw_to_json(r: &RawPoint) -> Value {
    json!({"metric": r.metric, "timestamp": r.timestamp, "value": r.value, "tags": r.tags})
}

fn validate(r: &RawPoint) -> Result<Point, String> {
    let metric = match &r.metric {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        _ => return Err("Metric name was empty".into()),
    };
    check_name("metric", &metric)?;
    let ts = match &r.timestamp {
        Some(Value::Number(n)) => n.as_i64().ok_or("Invalid timestamp")?,
        Some(Value::String(s)) => s.trim().parse::<i64>().map_err(|_| "Invalid timestamp")?,
        _ => return Err("Invalid timestamp".into()),
    };
    let ts_ms = parse_ts(ts)?;
    let value = match &r.value {
        Some(Value::Number(n)) => {
            let v = n.as_f64().ok_or("Unable to parse value to a number")?;
            if !v.is_finite() {
                return Err("Unable to parse value to a number".into());
            }
            v
        }
        Some(Value::String(s)) => parse_value(s)?,
        None | Some(Value::Null) => return Err("Empty value".into()),
        Some(_) => return Err("Unable to parse value to a number".into()),
    };
    let mut tags = Vec::new();
    match &r.tags {
        Some(Value::Object(m)) => {
            for (k, v) in m {
                match v {
                    Value::String(s) => tags.push((k.clone(), s.clone())),
                    _ => {
                        return Err(format!(
                            "illegal argument: tag value of {k} is not a string"
                        ))
                    }
                }
            }
        }
        None | Some(Value::Null) => {}
        Some(_) => return Err("illegal argument: tags must be an object".into()),
    }
    check_tags(&mut tags)?;
    Ok(Point {
        metric,
        ts_ms,
        value,
        tags,
    })
}

fn canonical(p: &Point) -> String {
    let mut s = String::with_capacity(64);
    s.push_str(&p.metric);
    s.push('{');
    for (i, (k, v)) in p.tags.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push_str(k);
        s.push('=');
        s.push_str(v);
    }
    s.push('}');
    s
}

/// Stores points durably; returns per-point errors for points the store refused by name.
/// Blocking.
pub fn store_points(st: &AppState, points: &[Point]) -> Result<Vec<Option<String>>, ApiError> {
    let mut errs: Vec<Option<String>> = vec![None; points.len()];
    let mut ids: Vec<Option<SeriesId>> = vec![None; points.len()];
    let mut missing: HashMap<String, Vec<usize>> = HashMap::new();
    {
        let cache = st.tsdb_ids.read().unwrap_or_else(|e| e.into_inner());
        for (i, p) in points.iter().enumerate() {
            let c = canonical(p);
            match cache.get(&c) {
                Some(&id) => ids[i] = Some(id),
                None => missing.entry(c).or_default().push(i),
            }
        }
    }
    if !missing.is_empty() {
        let mut keys = Vec::new();
        let mut owners = Vec::new();
        for (c, idx) in missing {
            let p = &points[idx[0]];
            match SeriesKey::new(
                &p.metric,
                p.tags.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            ) {
                Ok(k) => {
                    keys.push(k);
                    owners.push((c, idx));
                }
                Err(e) => {
                    for i in idx {
                        errs[i] = Some(format!("illegal argument: {e}"));
                    }
                }
            }
        }
        let got = st.store.series_ids(&keys).map_err(ApiError::from)?;
        let mut cache = st.tsdb_ids.write().unwrap_or_else(|e| e.into_inner());
        for ((c, idx), id) in owners.into_iter().zip(got) {
            for i in &idx {
                ids[*i] = Some(id);
            }
            if cache.len() < 5_000_000 {
                cache.insert(c, id);
            }
        }
    }
    let mut batch = WriteBatch::new();
    batch.reserve_points(points.len());
    for (i, p) in points.iter().enumerate() {
        if let Some(id) = ids[i] {
            if let Err(e) = batch.add_point(id, p.ts_ms, p.value) {
                errs[i] = Some(format!("illegal argument: {e}"));
            }
        }
    }
    if batch.len_points() > 0 {
        st.store.write(batch).map_err(|e| {
            st.counters.store_errors.fetch_add(1, Ordering::Relaxed);
            ApiError::from(e)
        })?;
    }
    Ok(errs)
}

fn flag(query: &Option<String>, name: &str) -> bool {
    query
        .as_deref()
        .is_some_and(|q| q.split('&').any(|kv| kv.split('=').next() == Some(name)))
}

/// `POST /api/put` (also `/api/put/` and `/api/v1/put`).
pub async fn http_put(
    State(st): State<Shared>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let authorised = allowed(&st, peer)
        || credential(&headers).is_some_and(|c| {
            st.cfg
                .write_token
                .as_deref()
                .is_some_and(|w| !w.is_empty() && w == c)
                || st.devices.authenticate(&c).is_some()
        });
    if !authorised {
        return Err(ApiError::forbidden(format!(
            "writes from {} are not allowed: add the address to put_allow, or send `Authorization: Bearer TOKEN` with the write_token or a device token",
            peer.ip()
        )));
    }
    let body = decode_body(&headers, body, st.cfg.limits.max_decoded_body_bytes)?;
    let (details, summary) = (flag(&query, "details"), flag(&query, "summary"));
    let max_points = st.cfg.limits.max_put_points;
    let st2 = st.clone();
    let (ok, failed, errors) = blocking(move || {
        let first = body.iter().find(|b| !b.is_ascii_whitespace()).copied();
        let raws: Vec<RawPoint> = match first {
            Some(b'[') => serde_json::from_slice(&body),
            Some(b'{') => serde_json::from_slice::<RawPoint>(&body).map(|p| vec![p]),
            _ => return Err(ApiError::bad_request("Unable to parse the given JSON: send a data point object or an array of them")),
        }
        .map_err(|e| ApiError::bad_request(format!("Unable to parse the given JSON: {e}")))?;
        if raws.is_empty() {
            return Err(ApiError::bad_request("No datapoints found in content"));
        }
        if raws.len() > max_points {
            return Err(ApiError::too_large(format!(
                "{} points in one request, the limit is {max_points} (limits.max_put_points); split the batch",
                raws.len()
            )));
        }
        let mut good = Vec::with_capacity(raws.len());
        let mut good_idx = Vec::with_capacity(raws.len());
        let mut errors: Vec<(usize, String)> = Vec::new();
        for (i, r) in raws.iter().enumerate() {
            match validate(r) {
                Ok(p) => {
                    good.push(p);
                    good_idx.push(i);
                }
                Err(e) => errors.push((i, e)),
            }
        }
        let store_errs = store_points(&st2, &good)?;
        for (j, e) in store_errs.into_iter().enumerate() {
            if let Some(e) = e {
                errors.push((good_idx[j], e));
            }
        }
        let failed = errors.len();
        let ok = raws.len() - failed;
        let errors: Vec<Value> = if details {
            errors.sort_by_key(|e| e.0);
            errors.into_iter().map(|(i, e)| json!({"datapoint": raw_to_json(&raws[i]), "error": e})).collect()
        } else {
            Vec::new()
        };
        Ok((ok, failed, errors))
    })
    .await?;
    st.counters
        .put_points
        .fetch_add(ok as u64, Ordering::Relaxed);
    st.counters
        .put_failed
        .fetch_add(failed as u64, Ordering::Relaxed);
    let status = if failed > 0 {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    if details {
        return Ok((
            status,
            axum::Json(json!({"success": ok, "failed": failed, "errors": errors})),
        )
            .into_response());
    }
    if summary {
        return Ok((status, axum::Json(json!({"success": ok, "failed": failed}))).into_response());
    }
    if failed > 0 {
        return Err(ApiError::bad_request("One or more data points had errors")
            .with_details("Please see the TSD logs or append \"details\" to the put request"));
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Points buffered per telnet connection before a store write (also written whenever the
/// client pauses, i.e. no more input is buffered).
const TELNET_FLUSH_POINTS: usize = 20_000;

/// Serves the telnet protocol until `shutdown` fires; pending points are written first.
pub async fn telnet_serve(
    st: Shared,
    listener: TcpListener,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let conns = Arc::new(tokio::sync::Semaphore::new(
        st.cfg.limits.max_telnet_connections,
    ));
    let mut tasks = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            _ = shutdown.changed() => break,
            acc = listener.accept() => {
                let Ok((sock, peer)) = acc else { continue };
                let Ok(permit) = conns.clone().try_acquire_owned() else {
                    tracing::warn!(%peer, "telnet: too many connections (limits.max_telnet_connections)");
                    continue;
                };
                let st = st.clone();
                let sd = shutdown.clone();
                tasks.spawn(async move {
                    let _permit = permit;
                    if let Err(e) = telnet_conn(st, sock, peer, sd).await {
                        tracing::debug!(%peer, "telnet connection ended: {e}");
                    }
                });
            }
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
        }
    }
    // Let connections flush what they hold.
    while tasks.join_next().await.is_some() {}
}

async fn telnet_conn(
    st: Shared,
    sock: tokio::net::TcpStream,
    peer: SocketAddr,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) -> std::io::Result<()> {
    let (r, mut w) = sock.into_split();
    if !allowed(&st, peer) {
        w.write_all(
            format!("put: not allowed from {}: add it to put_allow\n", peer.ip()).as_bytes(),
        )
        .await?;
        return Ok(());
    }
    let max_line = st.cfg.limits.max_telnet_line;
    let mut reader = BufReader::with_capacity(64 * 1024, r);
    let mut line = Vec::with_capacity(256);
    let mut pending: Vec<Point> = Vec::new();
    loop {
        line.clear();
        let n = tokio::select! {
            _ = shutdown.changed() => 0,
            n = read_line_bounded(&mut reader, &mut line, max_line) => n?,
        };
        if n == 0 {
            break;
        }
        let text = String::from_utf8_lossy(&line);
        let words: Vec<&str> = text.split_ascii_whitespace().collect();
        let reply = match words.first().copied() {
            None => None,
            Some("put") => match parse_put_words(&words[1..]) {
                Ok(p) => {
                    pending.push(p);
                    None
                }
                Err(e) => {
                    st.counters.put_failed.fetch_add(1, Ordering::Relaxed);
                    Some(format!("put: {e}\n"))
                }
            },
            Some("version") => Some(format!(
                "teleinfo {} (OpenTSDB-compatible put)\n",
                env!("CARGO_PKG_VERSION")
            )),
            Some("exit") => break,
            Some("help") => Some("available commands: put version help exit\n".into()),
            Some(_) if n > max_line => Some(format!(
                "put: illegal argument: line longer than {max_line} bytes\n"
            )),
            Some(c) => Some(format!("unknown command: {c}.  Try `help'.\n")),
        };
        if let Some(r) = reply {
            w.write_all(r.as_bytes()).await?;
        }
        if pending.len() >= TELNET_FLUSH_POINTS
            || (reader.buffer().is_empty() && !pending.is_empty())
        {
            flush_telnet(&st, &mut pending, &mut w).await?;
        }
    }
    if !pending.is_empty() {
        flush_telnet(&st, &mut pending, &mut w).await?;
    }
    Ok(())
}

/// Reads one line, keeping at most `max` bytes of it (the rest of an overlong line is
/// consumed and dropped). Returns the bytes consumed.
async fn read_line_bounded<R: tokio::io::AsyncBufRead + Unpin>(
    r: &mut R,
    out: &mut Vec<u8>,
    max: usize,
) -> std::io::Result<usize> {
    let mut total = 0;
    loop {
        let buf = r.fill_buf().await?;
        if buf.is_empty() {
            return Ok(total);
        }
        let (chunk, done) = match buf.iter().position(|&b| b == b'\n') {
            Some(i) => (&buf[..=i], true),
            None => (buf, false),
        };
        let take = chunk.len().min(max.saturating_sub(out.len()));
        out.extend_from_slice(&chunk[..take]);
        let used = chunk.len();
        total += used;
        r.consume(used);
        if done {
            return Ok(total);
        }
    }
}

async fn flush_telnet(
    st: &Shared,
    pending: &mut Vec<Point>,
    w: &mut tokio::net::tcp::OwnedWriteHalf,
) -> std::io::Result<()> {
    let points = std::mem::take(pending);
    let n = points.len();
    let st2 = st.clone();
    let res = blocking(move || store_points(&st2, &points).map(|e| (e, points))).await;
    match res {
        Ok((errs, points)) => {
            let mut failed = 0;
            for (e, p) in errs.iter().zip(&points) {
                if let Some(e) = e {
                    failed += 1;
                    w.write_all(format!("put: {e}: {}\n", p.metric).as_bytes())
                        .await?;
                }
            }
            st.counters
                .put_points
                .fetch_add((n - failed) as u64, Ordering::Relaxed);
            st.counters
                .put_failed
                .fetch_add(failed as u64, Ordering::Relaxed);
        }
        Err(e) => {
            st.counters
                .put_failed
                .fetch_add(n as u64, Ordering::Relaxed);
            w.write_all(format!("put: Storage exception: {}\n", e.message).as_bytes())
                .await?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn telnet_lines() {
        let p = parse_put_words(&["sys.cpu", "1356998400", "42.5", "host=a", "cpu=0"]).unwrap();
        assert_eq!(p.ts_ms, 1_356_998_400_000);
        assert_eq!(p.tags[0], ("cpu".into(), "0".into()));
        let p = parse_put_words(&["m", "1356998400123", "1", "a=b"]).unwrap();
        assert_eq!(p.ts_ms, 1_356_998_400_123);
        let p = parse_put_words(&["m", "1356998400.123", "1", "a=b"]).unwrap();
        assert_eq!(p.ts_ms, 1_356_998_400_123);
        assert!(parse_put_words(&["m", "1", "1"])
            .unwrap_err()
            .contains("not enough arguments"));
        assert!(parse_put_words(&["m", "1", "x", "a=b"])
            .unwrap_err()
            .contains("invalid value"));
        assert!(parse_put_words(&["m", "1", "NaN", "a=b"]).is_err());
        assert!(parse_put_words(&["m", "1", "1", "ab"])
            .unwrap_err()
            .contains("invalid tag"));
        assert!(parse_put_words(&["m", "1", "1", "a=b", "a=c"])
            .unwrap_err()
            .contains("duplicate tag"));
        assert!(parse_put_words(&["m!", "1", "1", "a=b"])
            .unwrap_err()
            .contains("illegal"));
        assert!(parse_put_words(&["m", "-5", "1", "a=b"]).is_err());
        assert!(parse_put_words(&["m", "99999999999999", "1", "a=b"]).is_err());
    }

    #[test]
    fn json_points() {
        let r: RawPoint = serde_json::from_str(
            r#"{"metric":"m","timestamp":1346846400,"value":"18","tags":{"h":"w"}}"#,
        )
        .unwrap();
        assert_eq!(validate(&r).unwrap().value, 18.0);
        let r: RawPoint =
            serde_json::from_str(r#"{"metric":"","timestamp":1,"value":1,"tags":{"h":"w"}}"#)
                .unwrap();
        assert_eq!(validate(&r).unwrap_err(), "Metric name was empty");
        let r: RawPoint =
            serde_json::from_str(r#"{"metric":"m","timestamp":1,"value":1}"#).unwrap();
        assert_eq!(validate(&r).unwrap_err(), "Missing tags");
        let r: RawPoint =
            serde_json::from_str(r#"{"metric":"m","timestamp":1,"value":"abc","tags":{"h":"w"}}"#)
                .unwrap();
        assert_eq!(
            validate(&r).unwrap_err(),
            "Unable to parse value to a number"
        );
        let r: RawPoint =
            serde_json::from_str(r#"{"metric":"m","timestamp":0,"value":1,"tags":{"h":"w"}}"#)
                .unwrap();
        assert_eq!(validate(&r).unwrap_err(), "Invalid timestamp");
    }
}
