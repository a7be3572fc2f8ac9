//! Shared state, the router, authentication and the uplink endpoint.

use std::io::Read;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use axum::extract::{ConnectInfo, DefaultBodyLimit, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use bytes::Bytes;
use store::{Source, Store};

use crate::config::{Cidr, Config};
use crate::devices::Devices;
use crate::error::{ApiError, ApiResult};
use crate::ingest::{InFrame, Ingest};
use crate::live::{Live, Telemetry};

/// Largest uplink body accepted on the wire: the wire format's own maximum.
pub const MAX_UPLINK_BODY: usize = uplink::MAX_BATCH_BYTES;
/// Largest body of a query request (JSON query descriptions are small).
pub const MAX_QUERY_BODY: usize = 1 << 20;

/// Counters for `/metrics`.
#[derive(Default)]
pub struct Counters {
    /// Uplink batches accepted.
    pub uplink_batches: AtomicU64,
    /// Uplink requests refused (auth, format).
    pub uplink_rejected: AtomicU64,
    /// OpenTSDB points stored (HTTP + telnet).
    pub put_points: AtomicU64,
    /// OpenTSDB points refused.
    pub put_failed: AtomicU64,
    /// HTTP requests answered with an error status.
    pub http_errors: AtomicU64,
    /// Queries answered.
    pub queries: AtomicU64,
    /// Store write failures.
    pub store_errors: AtomicU64,
}

/// Everything handlers share.
pub struct AppState {
    /// Configuration.
    pub cfg: Config,
    /// The store.
    pub store: Arc<Store>,
    /// Live state.
    pub live: Arc<Live>,
    /// The ingest pipeline.
    pub ingest: Arc<Ingest>,
    /// Device tokens.
    pub devices: Devices,
    /// Write allow-list.
    pub allow: Vec<Cidr>,
    /// Counters.
    pub counters: Counters,
    /// Start time, Unix ms.
    pub started_ms: i64,
    /// OpenTSDB series-id cache: canonical `metric{k=v,…}` → id.
    pub tsdb_ids: std::sync::RwLock<std::collections::HashMap<String, store::SeriesId>>,
    /// Permits for concurrent live streams.
    pub live_streams: Arc<tokio::sync::Semaphore>,
    /// Set to `true` when the server shuts down (ends live streams and telnet sessions).
    pub shutdown: tokio::sync::watch::Sender<bool>,
}

/// Shared state handle.
pub type Shared = Arc<AppState>;

/// Current time, Unix ms.
pub fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

/// Runs blocking store work off the async threads.
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> ApiResult<T> + Send + 'static,
) -> ApiResult<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::internal(format!("worker failed: {e}; retry")))?
}

/// The bearer token of a request (or the password of Basic auth, which is what Grafana's
/// datasource "Basic auth" sends).
pub fn credential(headers: &HeaderMap) -> Option<String> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    if let Some(t) = v
        .strip_prefix("Bearer ")
        .or_else(|| v.strip_prefix("bearer "))
    {
        return Some(t.trim().to_string());
    }
    let b = v
        .strip_prefix("Basic ")
        .or_else(|| v.strip_prefix("basic "))?;
    let decoded = base64_decode(b.trim())?;
    let s = String::from_utf8(decoded).ok()?;
    Some(s.split_once(':').map_or(s.clone(), |(_, p)| p.to_string()))
}

fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let val = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        } as u32)
    };
    let bytes: Vec<u8> = s.bytes().filter(|&c| c != b'=').collect();
    if bytes.len() > 4096 {
        return None;
    }
    let mut out = Vec::with_capacity(bytes.len() * 3 / 4);
    for chunk in bytes.chunks(4) {
        let mut acc = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            acc |= val(c)? << (18 - 6 * i);
        }
        let n = match chunk.len() {
            4 => 3,
            3 => 2,
            2 => 1,
            _ => return None,
        };
        out.extend_from_slice(&acc.to_be_bytes()[1..1 + n]);
    }
    Some(out)
}

fn token_eq(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// Read guard: when a read token is configured, every read endpoint and the dashboard need it.
async fn read_auth(State(st): State<Shared>, req: Request, next: Next) -> Response {
    if let Some(tok) = st.cfg.read_token.as_deref().filter(|t| !t.is_empty()) {
        let refused = match credential(req.headers()) {
            Some(c) if token_eq(&c, tok) => None,
            Some(_) => Some("wrong read token; send the configured read_token as `Authorization: Bearer TOKEN` (or Basic auth with the token as password)"),
            None => Some("this server requires a read token: send `Authorization: Bearer TOKEN` (or Basic auth with the token as password)"),
        };
        if let Some(message) = refused {
            let mut resp = ApiError::unauthorized(message).into_response();
            // The Basic challenge makes a browser ask for the password (any user name, the
            // token as password) and send it with every later request of the dashboard,
            // its live stream included (RFC 7617).
            resp.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Basic realm=\"teleinfo\", charset=\"UTF-8\""),
            );
            return resp;
        }
    }
    next.run(req).await
}

/// Counts error responses for `/metrics`.
async fn count_errors(State(st): State<Shared>, req: Request, next: Next) -> Response {
    let resp = next.run(req).await;
    if resp.status().is_client_error() || resp.status().is_server_error() {
        st.counters.http_errors.fetch_add(1, Ordering::Relaxed);
    }
    resp
}

/// Whether a write without a token is allowed from `peer` (OpenTSDB put allow-list).
pub fn allowed(st: &AppState, peer: SocketAddr) -> bool {
    st.allow.iter().any(|c| c.contains(peer.ip()))
}

/// Decodes a `Content-Encoding: gzip|deflate` body, refusing to inflate past `limit` bytes
/// (a compression bomb is cut off, never fully inflated in memory).
pub fn decode_body(headers: &HeaderMap, body: Bytes, limit: usize) -> ApiResult<Bytes> {
    let enc = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.trim().to_ascii_lowercase())
        .unwrap_or_default();
    let mut out = Vec::new();
    let res = match enc.as_str() {
        "" | "identity" => {
            if body.len() > limit {
                return Err(ApiError::too_large(format!(
                    "body of {} bytes exceeds {limit}",
                    body.len()
                )));
            }
            return Ok(body);
        }
        "gzip" | "x-gzip" => flate2::read::MultiGzDecoder::new(&body[..])
            .take(limit as u64 + 1)
            .read_to_end(&mut out),
        "deflate" => {
            // HTTP "deflate" is zlib-wrapped; some clients send raw deflate: try both.
            let r = flate2::read::ZlibDecoder::new(&body[..])
                .take(limit as u64 + 1)
                .read_to_end(&mut out);
            if r.is_err() {
                out.clear();
                flate2::read::DeflateDecoder::new(&body[..])
                    .take(limit as u64 + 1)
                    .read_to_end(&mut out)
            } else {
                r
            }
        }
        other => {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!(
                    "Content-Encoding {other:?} is not supported; send identity, gzip or deflate"
                ),
            ))
        }
    };
    res.map_err(|e| ApiError::bad_request(format!("body is not valid {enc}: {e}")))?;
    if out.len() > limit {
        return Err(ApiError::too_large(format!(
            "body inflates to more than {limit} bytes (limits.max_decoded_body_bytes); send smaller batches"
        )));
    }
    Ok(Bytes::from(out))
}

/// Builds the router.
pub fn router(st: Shared) -> Router {
    let lim = &st.cfg.limits;
    let reads = Router::new()
        .route("/api/v1/meters", get(crate::read::meters))
        .route("/api/v1/meters/{meter}/latest", get(crate::read::latest))
        .route("/api/v1/meters/{meter}/energy", get(crate::read::energy))
        .route("/api/v1/meters/{meter}/live", get(crate::read::live_stream))
        .route("/api/v1/series", get(crate::read::series))
        .route("/api/v1/query", get(crate::read::query))
        .route("/api/v1/devices", get(crate::read::devices))
        .route("/api/v1/stats", get(crate::read::stats))
        .route("/api/v1/admin/checkpoint", post(crate::read::checkpoint))
        .route("/api/v1/devices/{device}/frames", get(crate::read::frames))
        .route("/metrics", get(crate::metrics::metrics))
        .merge(crate::dashboard_api::routes())
        .route(
            "/api/query",
            get(crate::tsdb::query_get).post(crate::tsdb::query_post),
        )
        .route(
            "/api/query/",
            get(crate::tsdb::query_get).post(crate::tsdb::query_post),
        )
        .route("/api/v1/tsdb/query", post(crate::tsdb::query_post))
        .route("/api/suggest", get(crate::tsdb::suggest))
        .route("/api/search/lookup", get(crate::tsdb::lookup))
        // The dashboard too: with a read token, opening it asks for the password once.
        .merge(crate::dashboard::routes())
        .layer(DefaultBodyLimit::max(MAX_QUERY_BODY))
        .route_layer(middleware::from_fn_with_state(st.clone(), read_auth));
    let puts = Router::new()
        .route("/api/put", post(crate::put::http_put))
        .route("/api/put/", post(crate::put::http_put))
        .route("/api/v1/put", post(crate::put::http_put))
        .layer(DefaultBodyLimit::max(lim.max_body_bytes));
    Router::new()
        .route(
            "/api/v1/uplink",
            post(uplink_post).layer(DefaultBodyLimit::max(MAX_UPLINK_BODY)),
        )
        .route("/api/v1/health", get(health))
        .route("/api/v1/openapi.json", get(crate::openapi::openapi))
        .route("/api/version", get(crate::tsdb::version))
        .route("/api/aggregators", get(crate::tsdb::aggregators))
        .route("/api/config/filters", get(crate::tsdb::filters))
        .merge(reads)
        .merge(puts)
        .fallback(|| async { ApiError::not_found("no such endpoint; see /api/v1/openapi.json") })
        .layer(middleware::from_fn_with_state(st.clone(), count_errors))
        .with_state(st)
}

async fn health(State(st): State<Shared>) -> impl IntoResponse {
    axum::Json(serde_json::json!({
        "status": "ok",
        "version": env!("CARGO_PKG_VERSION"),
        "uptime_s": (now_ms() - st.started_ms) / 1000,
    }))
}

/// `POST /api/v1/uplink`: a device batch in the `uplink` wire format. Replies with an ack of
/// the highest durable sequence number, sent only after the store write returned.
pub async fn uplink_post(
    State(st): State<Shared>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let res = uplink_inner(&st, &headers, body).await;
    if let Err(e) = &res {
        st.counters.uplink_rejected.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(%peer, "uplink refused: {e}");
    }
    res
}

async fn uplink_inner(st: &Shared, headers: &HeaderMap, body: Bytes) -> ApiResult<Response> {
    let Some(token) = credential(headers) else {
        return Err(ApiError::unauthorized(
            "missing device token: send `Authorization: Bearer TOKEN` with the token printed by `teleinfo device add NAME`",
        ));
    };
    let Some(device) = st.devices.authenticate(&token) else {
        return Err(ApiError::unauthorized(
            "unknown or revoked device token; create one with `teleinfo device add NAME`",
        ));
    };
    // docs/uplink.md: a wrong content type is a 415; a missing one is tolerated (curl, tests).
    if let Some(ct) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    {
        let ct = ct.split(';').next().unwrap_or("").trim();
        if !ct.eq_ignore_ascii_case("application/vnd.teleinfo.batch")
            && !ct.eq_ignore_ascii_case("application/octet-stream")
        {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!(
                    "Content-Type {ct:?}: send application/vnd.teleinfo.batch (docs/uplink.md)"
                ),
            ));
        }
    }
    let batch = uplink::decode_batch(&body).map_err(|e| {
        ApiError::bad_request(format!("invalid uplink batch: {e}; see docs/uplink.md"))
    })?;
    if batch.header.device_id != device {
        return Err(ApiError::forbidden(format!(
            "batch says device {:?} but the token belongs to {device:?}; configure the device with its own token",
            batch.header.device_id
        )));
    }
    let now = now_ms();
    let t = &batch.header.telemetry;
    let counters = uplink::Counter::ALL
        .iter()
        .map(|c| (c.name(), t.counter(*c)))
        .collect();
    st.live.telemetry(
        &device,
        now,
        Telemetry {
            firmware_version: batch.header.firmware_version.to_string(),
            boot_id: batch.header.boot_id,
            line_mode: match t.line_mode {
                uplink::LineMode::Unknown => "unknown",
                uplink::LineMode::Historic => "historic",
                uplink::LineMode::Standard => "standard",
            },
            rssi_dbm: (t.rssi_dbm != uplink::wire::RSSI_UNKNOWN).then_some(t.rssi_dbm),
            uptime_s: t.uptime_s,
            free_heap_bytes: t.free_heap_bytes,
            queued_frames: t.queued_frames,
            buffer_fill: if t.queue_capacity_bytes > 0 {
                f64::from(t.queued_bytes) / f64::from(t.queue_capacity_bytes)
            } else {
                0.0
            },
            counters,
        },
    );
    let boot_id = batch.header.boot_id;
    let ingest = st.ingest.clone();
    // Copy the frames out of the borrowed body for the blocking thread.
    let frames: Vec<(u64, Option<i64>, Vec<u8>)> = batch
        .frames()
        .map(|f| {
            (
                u64::from(f.seq),
                f.device_time_unix_ms.and_then(|t| i64::try_from(t).ok()),
                f.bytes.to_vec(),
            )
        })
        .collect();
    let dev = device.clone();
    let receipt = blocking(move || {
        let inf: Vec<InFrame<'_>> = frames
            .iter()
            .map(|(seq, dt, b)| InFrame {
                seq: *seq,
                bytes: b,
                device_time_ms: *dt,
                receive_ms: now,
            })
            .collect();
        if inf.is_empty() {
            let high = ingest.store().uplink_high_water(&dev, boot_id);
            return Ok(store::WriteReceipt {
                highest_durable_seq: high,
                ..Default::default()
            });
        }
        ingest
            .ingest(
                Source {
                    device_id: dev,
                    boot_id,
                },
                &inf,
                now,
            )
            .map_err(ApiError::from)
    })
    .await;
    let receipt = match receipt {
        Ok(r) => r,
        Err(e) => {
            st.counters.store_errors.fetch_add(1, Ordering::Relaxed);
            return Err(e);
        }
    };
    st.counters.uplink_batches.fetch_add(1, Ordering::Relaxed);
    let ack = uplink::Ack {
        boot_id,
        durable_through_seq: receipt
            .highest_durable_seq
            .map(|s| u32::try_from(s).unwrap_or(u32::MAX)),
        server_time_unix_ms: u64::try_from(now_ms()).ok(),
    };
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/vnd.teleinfo.ack")],
        ack.encode().to_vec(),
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_auth_password() {
        let mut h = HeaderMap::new();
        h.insert(
            header::AUTHORIZATION,
            "Basic dXNlcjpzZWNyZXQ=".parse().unwrap(),
        );
        assert_eq!(credential(&h).as_deref(), Some("secret"));
        h.insert(header::AUTHORIZATION, "Bearer abc".parse().unwrap());
        assert_eq!(credential(&h).as_deref(), Some("abc"));
    }

    #[test]
    fn gzip_bomb_is_cut() {
        use std::io::Write;
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        e.write_all(&vec![b' '; 10 << 20]).unwrap();
        let z = e.finish().unwrap();
        let mut h = HeaderMap::new();
        h.insert(header::CONTENT_ENCODING, "gzip".parse().unwrap());
        let err = decode_body(&h, Bytes::from(z.clone()), 1 << 20).unwrap_err();
        assert_eq!(err.status, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(
            decode_body(&h, Bytes::from(z), 11 << 20).unwrap().len(),
            10 << 20
        );
        assert!(decode_body(&h, Bytes::from_static(b"not gzip"), 100).is_err());
    }
}
