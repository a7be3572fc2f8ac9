//! Forwarders: every checked point, in order, to an OpenTSDB-compatible or InfluxDB backend,
//! through a durable on-disk queue ([`crate::queue`]).
//!
//! - **OpenTSDB** `POST /api/put` (JSON array; works with OpenTSDB and with VictoriaMetrics'
//!   `-opentsdbHTTPListenAddr`): one point per series, `metric = prefix + series name`, tag
//!   `meter`, timestamp in milliseconds (13 digits, accepted by both).
//! - **InfluxDB** line protocol, `POST /write?db=…` (1.x) or `/api/v2/write?org=…&bucket=…`
//!   (2.x, `Authorization: Token …`): one line per reading, measurement `teleinfo`, tag
//!   `meter`, one float field per series, `precision=ms`.
//!
//! One thread per forwarder sends one batch at a time, oldest first, and removes it from the
//! queue only after a 2xx: a backend that is down for an hour receives everything afterwards,
//! in order. What each status means is in `docs/forwarding.md`.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::queue::{now_ms, Queue, QueueError, Record};
use crate::reading::{Reading, Series};

/// The kind of backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ForwardKind {
    /// OpenTSDB HTTP `/api/put` (also VictoriaMetrics).
    #[default]
    Opentsdb,
    /// InfluxDB line protocol (1.x `/write` or 2.x `/api/v2/write`).
    Influx,
}

/// One forwarder, as written in the server's TOML file (`[[forward]]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ForwardConfig {
    /// `opentsdb` or `influx`.
    pub kind: ForwardKind,
    /// Base URL (`http://host:4242`) or full write URL (`http://host:8086/write?db=linky`,
    /// `http://host:8086/api/v2/write?org=o&bucket=b`). Plain HTTP only.
    pub url: String,
    /// Name of the queue file and of the metrics label; default `<kind>-<host>-<port>`.
    pub name: Option<String>,
    /// InfluxDB 2.x token (`Authorization: Token …`); for 1.x put `u=…&p=…` in the URL.
    pub token: Option<String>,
    /// Prefix of OpenTSDB metric names (e.g. `linky.`); empty by default.
    pub metric_prefix: String,
    /// InfluxDB measurement.
    pub measurement: String,
    /// Most points per request.
    pub batch_points: u32,
    /// Bound of the on-disk queue, MiB of encoded points; beyond, new readings are dropped
    /// for this forwarder and counted.
    pub max_queue_mb: u64,
    /// Timeout of one request, seconds.
    pub timeout_s: u64,
}

impl Default for ForwardConfig {
    fn default() -> Self {
        ForwardConfig {
            kind: ForwardKind::Opentsdb,
            url: String::new(),
            name: None,
            token: None,
            metric_prefix: String::new(),
            measurement: "teleinfo".into(),
            batch_points: 5000,
            max_queue_mb: 1024,
            timeout_s: 30,
        }
    }
}

impl ForwardConfig {
    /// A forwarder of `kind` to `url` with every other setting at its default (the
    /// `--forward-opentsdb URL` / `--forward-influx URL` flags).
    pub fn new(kind: ForwardKind, url: &str) -> ForwardConfig {
        ForwardConfig {
            kind,
            url: url.to_string(),
            ..ForwardConfig::default()
        }
    }

    /// The write URL the forwarder posts to, or what is wrong with `url`.
    pub fn write_url(&self) -> Result<String, String> {
        let (base, path) = split_http_url(&self.url)?;
        let path = match (self.kind, path.as_str()) {
            (ForwardKind::Opentsdb, "" | "/") => "/api/put".to_string(),
            (ForwardKind::Opentsdb, p) => p.to_string(),
            (ForwardKind::Influx, "" | "/") => "/write?db=teleinfo&precision=ms".to_string(),
            (ForwardKind::Influx, p) => {
                let route = p.split('?').next().unwrap_or("");
                if route != "/write" && route != "/api/v2/write" {
                    return Err(format!(
                        "--forward-influx {}: the path must be /write?db=NAME (InfluxDB 1.x) or \
                         /api/v2/write?org=ORG&bucket=BUCKET (2.x)",
                        self.url
                    ));
                }
                if !p.contains("precision=") {
                    let sep = if p.contains('?') { '&' } else { '?' };
                    format!("{p}{sep}precision=ms")
                } else {
                    p.to_string()
                }
            }
        };
        Ok(format!("{base}{path}"))
    }

    /// The name of this forwarder (queue file, metrics): `name`, else `<kind>_<host>_<port>`,
    /// with anything outside `[A-Za-z0-9_-]` replaced by `_`.
    pub fn name(&self) -> String {
        let safe = |s: &str| -> String {
            s.chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                        c
                    } else {
                        '_'
                    }
                })
                .collect()
        };
        if let Some(n) = &self.name {
            return safe(n);
        }
        let kind = match self.kind {
            ForwardKind::Opentsdb => "opentsdb",
            ForwardKind::Influx => "influx",
        };
        let host = split_http_url(&self.url)
            .map(|(b, _)| b)
            .unwrap_or_default();
        safe(&format!("{kind}_{}", host.trim_start_matches("http://")))
    }

    /// Checks the settings; the message says what to change.
    pub fn validate(&self) -> Result<(), String> {
        self.write_url()?;
        if self.batch_points == 0 {
            return Err(format!(
                "forward {}: batch_points must be at least 1",
                self.url
            ));
        }
        if self.max_queue_mb == 0 {
            return Err(format!(
                "forward {}: max_queue_mb must be at least 1",
                self.url
            ));
        }
        if self.kind == ForwardKind::Influx
            && (self.measurement.is_empty() || self.measurement.starts_with('_'))
        {
            return Err(format!(
                "forward {}: measurement must be non-empty and not start with '_'",
                self.url
            ));
        }
        Ok(())
    }
}

/// `http://host:port/path?q` → (`http://host:port`, `/path?q`).
fn split_http_url(url: &str) -> Result<(String, String), String> {
    let rest = if let Some(r) = url.strip_prefix("http://") {
        r
    } else if url.starts_with("https://") {
        return Err(format!(
            "{url}: https is not built into this server; forward over http on a trusted network or \
             through a local TLS-terminating proxy"
        ));
    } else {
        return Err(format!(
            "{url}: a forward URL starts with http://, e.g. http://127.0.0.1:4242"
        ));
    };
    let (host, path) = match rest.find(['/', '?']) {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    if host.is_empty() || host.contains(['@', ' ']) {
        return Err(format!("{url}: expected http://HOST[:PORT][/PATH]"));
    }
    Ok((format!("http://{host}"), path.to_string()))
}

/// Counters of one forwarder (exported on `/metrics`).
#[derive(Debug, Default)]
pub struct ForwardStats {
    /// Points the backend accepted.
    pub sent_points: AtomicU64,
    /// Requests the backend accepted.
    pub sent_batches: AtomicU64,
    /// Requests that failed and will be retried.
    pub failed_attempts: AtomicU64,
    /// Points the backend refused as invalid (400): skipped, logged.
    pub rejected_points: AtomicU64,
    /// Points not queued because the queue was full.
    pub dropped_points: AtomicU64,
    /// Points queued since start.
    pub queued_points: AtomicU64,
    /// Age of the last accepted record when the backend accepted it, ms.
    pub last_lag_ms: AtomicI64,
    /// Largest such age seen, ms.
    pub max_lag_ms: AtomicI64,
    /// 1 when the last request succeeded.
    pub up: AtomicU64,
    /// The last error, for logs and status.
    pub last_error: Mutex<Option<String>>,
}

/// A running forwarder.
pub struct Forwarder {
    name: String,
    cfg: ForwardConfig,
    queue: Arc<Queue>,
    stats: Arc<ForwardStats>,
    stop: Arc<AtomicBool>,
    thread: Mutex<Option<JoinHandle<()>>>,
    last_full_log: Mutex<Option<Instant>>,
}

/// Escapes an InfluxDB tag value or field key (`,`, `=` and space).
fn influx_escape(s: &str, out: &mut String) {
    for c in s.chars() {
        if matches!(c, ',' | '=' | ' ' | '\\') {
            out.push('\\');
        }
        if c != '\n' && c != '\r' {
            out.push(c);
        }
    }
}

/// An OpenTSDB-safe name part: `a-z A-Z 0-9 - _ . /`, anything else → `_`.
fn tsdb_safe(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

impl Forwarder {
    /// Opens the queue in `queue_dir` and starts the sender thread.
    pub fn start(cfg: ForwardConfig, queue_dir: &Path) -> Result<Forwarder, String> {
        cfg.validate()?;
        let name = cfg.name();
        let path = queue_dir.join(format!("forward-{name}.db"));
        let queue = Arc::new(
            Queue::open(&path, cfg.max_queue_mb.saturating_mul(1 << 20))
                .map_err(|e| e.to_string())?,
        );
        let stats = Arc::new(ForwardStats::default());
        let stop = Arc::new(AtomicBool::new(false));
        let sender = Sender {
            name: name.clone(),
            url: cfg.write_url()?,
            cfg: cfg.clone(),
            queue: queue.clone(),
            stats: stats.clone(),
            stop: stop.clone(),
        };
        if !queue.is_empty() {
            tracing::info!(
                "forward {name}: {} points queued from before the restart will be sent first",
                queue.points()
            );
        }
        let thread = std::thread::Builder::new()
            .name(format!("fwd-{name}"))
            .spawn(move || sender.run())
            .map_err(|e| format!("forward {name}: cannot start its thread: {e}"))?;
        Ok(Forwarder {
            name,
            cfg,
            queue,
            stats,
            stop,
            thread: Mutex::new(Some(thread)),
            last_full_log: Mutex::new(None),
        })
    }

    /// The forwarder's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its counters.
    pub fn stats(&self) -> &Arc<ForwardStats> {
        &self.stats
    }

    /// Its queue.
    pub fn queue(&self) -> &Arc<Queue> {
        &self.queue
    }

    /// Encodes one reading for this backend: (points, body).
    pub fn encode(
        &self,
        r: &Reading,
        series: &[(std::borrow::Cow<'static, str>, f64)],
    ) -> (u32, Vec<u8>) {
        let meter = tsdb_safe(&r.meter);
        let mut n = 0u32;
        match self.cfg.kind {
            ForwardKind::Opentsdb => {
                let mut out = String::with_capacity(series.len() * 96);
                for (name, v) in series {
                    if !v.is_finite() {
                        continue;
                    }
                    if n > 0 {
                        out.push(',');
                    }
                    let value = if v.fract() == 0.0 && v.abs() < 9.0e15 {
                        serde_json::Value::from(*v as i64)
                    } else {
                        serde_json::Value::from(*v)
                    };
                    let p = serde_json::json!({
                        "metric": format!("{}{}", self.cfg.metric_prefix, tsdb_safe(name)),
                        "timestamp": r.ts_ms,
                        "value": value,
                        "tags": {"meter": meter},
                    });
                    out.push_str(&p.to_string());
                    n += 1;
                }
                (n, out.into_bytes())
            }
            ForwardKind::Influx => {
                let mut out = String::with_capacity(series.len() * 24 + 64);
                influx_escape(&self.cfg.measurement, &mut out);
                out.push_str(",meter=");
                influx_escape(&meter, &mut out);
                for (name, v) in series {
                    if !v.is_finite() {
                        continue;
                    }
                    out.push(if n == 0 { ' ' } else { ',' });
                    influx_escape(name, &mut out);
                    // Always a float: a field must keep one type for the life of a shard.
                    out.push_str(&format!("={v:?}"));
                    n += 1;
                }
                out.push_str(&format!(" {}", r.ts_ms));
                if n == 0 {
                    return (0, Vec::new());
                }
                (n, out.into_bytes())
            }
        }
    }

    /// Queues readings durably (blocking: one fsync). Readings beyond the queue's bound are
    /// dropped for this forwarder and counted; the error is logged at most once a minute.
    pub fn submit(&self, readings: &[(&Reading, &Series)]) -> Result<(), QueueError> {
        let items: Vec<(u32, Vec<u8>)> = readings
            .iter()
            .map(|(r, s)| self.encode(r, s))
            .filter(|(n, _)| *n > 0)
            .collect();
        let counts: Vec<u64> = items.iter().map(|(n, _)| u64::from(*n)).collect();
        let total: u64 = counts.iter().sum();
        let res = self.queue.append(items);
        let (ok, err) = match res {
            Ok(k) if k == counts.len() => (total, None),
            Ok(k) => (
                counts[..k].iter().sum(),
                Some(QueueError::Full {
                    path: self.queue.path().to_path_buf(),
                    bytes: self.queue.bytes(),
                    max_bytes: self.queue.max_bytes(),
                }),
            ),
            Err(e) => (0, Some(e)),
        };
        self.stats.queued_points.fetch_add(ok, Ordering::Relaxed);
        match err {
            None => Ok(()),
            Some(e) => {
                self.stats
                    .dropped_points
                    .fetch_add(total - ok, Ordering::Relaxed);
                let mut last = self.last_full_log.lock().unwrap_or_else(|p| p.into_inner());
                if last.is_none_or(|t| t.elapsed() > Duration::from_secs(60)) {
                    tracing::error!("forward {}: {e}", self.name);
                    *last = Some(Instant::now());
                }
                Err(e)
            }
        }
    }

    /// Asks the sender thread to stop after the request in flight, without waiting (what is
    /// queued stays on disk for the next start; a request cut by the process exit is sent
    /// again then).
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    /// Stops the sender thread and waits for it (at most one request timeout).
    pub fn shutdown(&self) {
        self.stop.store(true, Ordering::Relaxed);
        let t = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(t) = t {
            let _ = t.join();
        }
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        self.shutdown();
    }
}

struct Sender {
    name: String,
    url: String,
    cfg: ForwardConfig,
    queue: Arc<Queue>,
    stats: Arc<ForwardStats>,
    stop: Arc<AtomicBool>,
}

/// What one attempt gave.
enum Outcome {
    Accepted,
    /// The backend refused the data itself: retrying cannot help.
    Rejected(String),
    TooLarge,
    Retry(String),
}

const MIN_BACKOFF: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// Largest request body, bytes (VictoriaMetrics and InfluxDB accept far more; OpenTSDB needs
/// `tsd.http.request.enable_chunked` and a raised `max_chunk` above 4 KiB, see the docs).
const MAX_BODY: usize = 8 << 20;

impl Sender {
    fn sleep(&self, d: Duration) {
        let end = Instant::now() + d;
        while !self.stop.load(Ordering::Relaxed) && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(20).min(end - Instant::now()));
        }
    }

    fn run(self) {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(self.cfg.timeout_s.max(1))))
            .http_status_as_error(false)
            .build()
            .into();
        let mut backoff = MIN_BACKOFF;
        let mut batch_points = self.cfg.batch_points;
        let mut failing: Option<String> = None;
        while !self.stop.load(Ordering::Relaxed) {
            let batch = match self.queue.peek(batch_points, MAX_BODY) {
                Ok(b) => b,
                Err(e) => {
                    tracing::error!("forward {}: {e}", self.name);
                    self.sleep(MAX_BACKOFF);
                    continue;
                }
            };
            if batch.is_empty() {
                // Batching: whatever arrives in the next 50 ms goes in one request.
                self.sleep(Duration::from_millis(50));
                continue;
            }
            let points: u64 = batch.iter().map(|r| u64::from(r.points)).sum();
            let outcome = self.send(&agent, &batch);
            let last = batch.last().map_or(0, |r| r.id);
            match outcome {
                Outcome::Accepted | Outcome::Rejected(_) => {
                    if let Outcome::Rejected(why) = &outcome {
                        self.stats
                            .rejected_points
                            .fetch_add(points, Ordering::Relaxed);
                        tracing::error!(
                            "forward {}: the backend refused {points} points as invalid, skipping them: {why}",
                            self.name
                        );
                    } else {
                        self.stats.sent_points.fetch_add(points, Ordering::Relaxed);
                        self.stats.sent_batches.fetch_add(1, Ordering::Relaxed);
                    }
                    if let Err(e) = self.queue.ack(last) {
                        // Not removed: the batch will be sent again (at least once).
                        tracing::error!("forward {}: {e}", self.name);
                        self.sleep(backoff);
                        continue;
                    }
                    let lag = now_ms() - batch.last().map_or(0, |r| r.enq_ms);
                    self.stats.last_lag_ms.store(lag, Ordering::Relaxed);
                    self.stats.max_lag_ms.fetch_max(lag, Ordering::Relaxed);
                    self.stats.up.store(1, Ordering::Relaxed);
                    if failing.take().is_some() {
                        tracing::info!(
                            "forward {}: backend reachable again; {} points still queued",
                            self.name,
                            self.queue.points()
                        );
                    }
                    backoff = MIN_BACKOFF;
                    batch_points = self.cfg.batch_points;
                }
                Outcome::TooLarge if batch.len() > 1 => {
                    batch_points = (points as u32 / 2).max(1);
                    tracing::warn!(
                        "forward {}: request too large (413), retrying with {batch_points} points",
                        self.name
                    );
                }
                Outcome::TooLarge => {
                    self.stats
                        .rejected_points
                        .fetch_add(points, Ordering::Relaxed);
                    tracing::error!("forward {}: one reading is larger than the backend accepts (413), skipping it", self.name);
                    let _ = self.queue.ack(last);
                }
                Outcome::Retry(why) => {
                    self.stats.failed_attempts.fetch_add(1, Ordering::Relaxed);
                    self.stats.up.store(0, Ordering::Relaxed);
                    if failing.as_deref() != Some(why.as_str()) {
                        tracing::warn!(
                            "forward {}: {why}; keeping {} points queued on disk and retrying (backoff up to {}s)",
                            self.name,
                            self.queue.points(),
                            MAX_BACKOFF.as_secs()
                        );
                    }
                    *self
                        .stats
                        .last_error
                        .lock()
                        .unwrap_or_else(|p| p.into_inner()) = Some(why.clone());
                    failing = Some(why);
                    self.sleep(backoff);
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    }

    fn send(&self, agent: &ureq::Agent, batch: &[Record]) -> Outcome {
        let mut body =
            Vec::with_capacity(batch.iter().map(|r| r.body.len() + 1).sum::<usize>() + 2);
        let content_type = match self.cfg.kind {
            ForwardKind::Opentsdb => {
                body.push(b'[');
                for (i, r) in batch.iter().enumerate() {
                    if i > 0 {
                        body.push(b',');
                    }
                    body.extend_from_slice(&r.body);
                }
                body.push(b']');
                "application/json"
            }
            ForwardKind::Influx => {
                for r in batch {
                    body.extend_from_slice(&r.body);
                    body.push(b'\n');
                }
                "text/plain; charset=utf-8"
            }
        };
        let mut req = agent.post(&self.url).header("Content-Type", content_type);
        if let Some(t) = &self.cfg.token {
            req = req.header("Authorization", format!("Token {t}"));
        }
        match req.send(&body[..]) {
            Ok(mut resp) => {
                let status = resp.status().as_u16();
                if (200..300).contains(&status) {
                    return Outcome::Accepted;
                }
                let text = resp.body_mut().read_to_string().unwrap_or_default();
                let text: String = text.chars().take(300).collect();
                match status {
                    400 | 422 => Outcome::Rejected(format!("HTTP {status}: {text}")),
                    413 => Outcome::TooLarge,
                    401 | 403 => Outcome::Retry(format!(
                        "{} answered HTTP {status} (not authorised): check the token or credentials in the URL: {text}",
                        self.url
                    )),
                    404 => Outcome::Retry(format!(
                        "{} answered HTTP 404: wrong path, or the InfluxDB database/bucket does not exist \
                         (CREATE DATABASE …): {text}",
                        self.url
                    )),
                    _ => Outcome::Retry(format!("{} answered HTTP {status}: {text}", self.url)),
                }
            }
            Err(e) => Outcome::Retry(format!("cannot reach {}: {e}", self.url)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let o = ForwardConfig::new(ForwardKind::Opentsdb, "http://127.0.0.1:4242");
        assert_eq!(o.write_url().unwrap(), "http://127.0.0.1:4242/api/put");
        assert_eq!(o.name(), "opentsdb_127_0_0_1_4242");
        assert_eq!(
            ForwardConfig::new(ForwardKind::Opentsdb, "http://h:1").name(),
            "opentsdb_h_1"
        );
        let named = ForwardConfig {
            name: Some("vm/main".into()),
            ..o.clone()
        };
        assert_eq!(named.name(), "vm_main");
        let i = ForwardConfig::new(ForwardKind::Influx, "http://h:8086/write?db=x");
        assert_eq!(
            i.write_url().unwrap(),
            "http://h:8086/write?db=x&precision=ms"
        );
        let i2 = ForwardConfig::new(ForwardKind::Influx, "http://h:8086");
        assert_eq!(
            i2.write_url().unwrap(),
            "http://h:8086/write?db=teleinfo&precision=ms"
        );
        let v2 = ForwardConfig::new(
            ForwardKind::Influx,
            "http://h:8086/api/v2/write?org=o&bucket=b",
        );
        assert_eq!(
            v2.write_url().unwrap(),
            "http://h:8086/api/v2/write?org=o&bucket=b&precision=ms"
        );
        assert!(ForwardConfig::new(ForwardKind::Influx, "http://h/query")
            .validate()
            .unwrap_err()
            .contains("/write"));
        assert!(ForwardConfig::new(ForwardKind::Opentsdb, "https://h")
            .validate()
            .unwrap_err()
            .contains("https"));
        assert!(ForwardConfig::new(ForwardKind::Opentsdb, "h:4242")
            .validate()
            .unwrap_err()
            .contains("http://"));
    }

    #[test]
    fn encodings() {
        let dir = tempfile::tempdir().unwrap();
        let r = Reading {
            meter: "0218 x".into(),
            ts_ms: 1_700_000_000_123,
            ..Reading::default()
        };
        let s = vec![
            ("EAST".into(), 12345.0),
            ("NJOURF.next".into(), 2.0),
            ("x y".into(), 1.5),
            ("bad".into(), f64::NAN),
        ];
        let o = Forwarder::start(
            ForwardConfig::new(ForwardKind::Opentsdb, "http://127.0.0.1:9"),
            dir.path(),
        )
        .unwrap();
        let (n, body) = o.encode(&r, &s);
        assert_eq!(n, 3);
        let v: serde_json::Value =
            serde_json::from_slice(&[b"[", &body[..], b"]"].concat()).unwrap();
        assert_eq!(
            v[0],
            serde_json::json!({"metric":"EAST","timestamp":1_700_000_000_123i64,"value":12345,"tags":{"meter":"0218_x"}})
        );
        assert_eq!(v[2]["metric"], "x_y");
        assert_eq!(v[2]["value"], 1.5);
        o.shutdown();
        let i = Forwarder::start(
            ForwardConfig::new(ForwardKind::Influx, "http://127.0.0.1:9"),
            dir.path(),
        )
        .unwrap();
        let (n, body) = i.encode(&r, &s);
        assert_eq!(n, 3);
        assert_eq!(
            String::from_utf8(body).unwrap(),
            "teleinfo,meter=0218_x EAST=12345.0,NJOURF.next=2.0,x\\ y=1.5 1700000000123"
        );
    }
}
