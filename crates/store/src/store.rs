//! The store: open/recover, group-committed writes, checkpoints, queries, retention.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

use rusqlite::{
    params, Connection, OpenFlags, OptionalExtension, Transaction, TransactionBehavior,
};

use crate::agg::{fold, Agg, Aggregator};
use crate::batch::{Cursor, LogFrame, LogRecord, WriteBatch, WriteReceipt};
use crate::buckets::{bucket_boundaries, check_range, Bucketing, Period};
use crate::codec::{self, RollRow};
use crate::error::{Result, StoreError};
use crate::key::{SeriesId, SeriesKey};
use crate::limits::{CHUNK_MAX_ROWS, MAX_BUCKETS, MAX_SERIES};

/// Rollup resolutions by level: level 0 is raw points, 1 is per minute, 2 is per hour.
pub(crate) const LEVEL_RES_MS: [i64; 3] = [0, 60_000, 3_600_000];
const TOP_LEVEL: usize = 2;
/// Time span of one rollup chunk per level: a day of minutes (1,440 rows), 30 days of hours
/// (720 rows).
const ROLLUP_CHUNK_SPAN_MS: [i64; 3] = [0, 86_400_000, 30 * 86_400_000];
const RAW_BLOCK_FRAMES: usize = 4096;
/// Most points committed in one group commit.
const MAX_GROUP_POINTS: usize = 4_000_000;
/// 2: minute rollups only where raw points were retired (version 1 kept them for all data).
/// A version 1 file is read as is (its minute rollups are exact) and marked 2 at open, so an
/// older build refuses it instead of missing the minutes it no longer gets.
const SCHEMA_VERSION: i64 = 2;
/// zstd level of raw-frame blocks: 6 gives ~42x on standard-mode frames (level 3: 33x,
/// level 9: 49x but it doubled the checkpoint's share of ingest CPU).
const RAW_ZSTD_LEVEL: i32 = 6;

/// How long each resolution is kept; `None` keeps it forever.
///
/// Retention drops whole chunks whose newest point is older than `now - keep`, so data lives
/// up to one chunk longer than asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retention {
    /// Raw decoded points.
    pub raw_points_ms: Option<i64>,
    /// Per-minute rollups.
    pub minute_rollups_ms: Option<i64>,
    /// Per-hour rollups (what year views and energy per day/month use).
    pub hour_rollups_ms: Option<i64>,
    /// Archived raw frames.
    pub raw_frames_ms: Option<i64>,
}

const DAY_MS: i64 = 86_400_000;

impl Default for Retention {
    /// Raw points and frames 400 days, minutes 5 years, hours forever.
    fn default() -> Self {
        Retention {
            raw_points_ms: Some(400 * DAY_MS),
            minute_rollups_ms: Some(5 * 366 * DAY_MS),
            hour_rollups_ms: None,
            raw_frames_ms: Some(400 * DAY_MS),
        }
    }
}

/// Tuning and limits of a store.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// Checkpoint (compress the head into chunks) when the head holds this many points.
    pub head_max_points: usize,
    /// Checkpoint when the head holds this many bytes of raw frames.
    pub head_max_frame_bytes: usize,
    /// Checkpoint when the oldest head data is older than this (bounds replay time and keeps
    /// the head log small). Checked on each write and by [`Store::maintenance`].
    pub head_max_age: Duration,
    /// Largest answer of [`Store::read_range`].
    pub max_query_points: usize,
    /// Retention per resolution, applied by [`Store::apply_retention`].
    pub retention: Retention,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            head_max_points: 2_000_000,
            head_max_frame_bytes: 64 << 20,
            head_max_age: Duration::from_secs(600),
            max_query_points: 20_000_000,
            retention: Retention::default(),
        }
    }
}

/// Raw points of one series.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Points {
    /// Timestamps, strictly increasing.
    pub ts_ms: Vec<i64>,
    /// Values, one per timestamp.
    pub values: Vec<f64>,
}

/// One aggregated bucket.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bucket {
    /// Inclusive start.
    pub start_ms: i64,
    /// Exclusive end.
    pub end_ms: i64,
    /// Summary of the bucket's points, `None` if it has none.
    pub agg: Option<Agg>,
}

/// Energy of one period computed from cumulative index readings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EnergyBucket {
    /// Inclusive start of the period.
    pub start_ms: i64,
    /// Exclusive end of the period.
    pub end_ms: i64,
    /// Index increase attributed to the period (in the index's unit, Wh for TIC): last reading
    /// of the period minus the last reading before it (or the period's first reading when
    /// there is no earlier one). `None` when the period has no reading (its energy then shows
    /// up in the next period with a reading) or the index went backwards (meter change).
    pub delta: Option<f64>,
    /// Last index reading in the period.
    pub index_end: Option<f64>,
}

/// A raw frame as archived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawFrame {
    /// Boot id of the device when it sent the frame.
    pub boot_id: u64,
    /// Device sequence number.
    pub seq: u64,
    /// Frame time.
    pub ts_ms: i64,
    /// The frame bytes as received.
    pub bytes: Vec<u8>,
}

impl RawFrame {
    /// The archive's order: frame time, then boot id and sequence number.
    fn order_key(&self) -> (i64, u64, u64) {
        (self.ts_ms, self.boot_id, self.seq)
    }
}

impl From<&LogFrame> for RawFrame {
    fn from(f: &LogFrame) -> RawFrame {
        RawFrame {
            boot_id: f.boot,
            seq: f.seq,
            ts_ms: f.ts_ms,
            bytes: f.bytes.clone(),
        }
    }
}

/// What [`Store::apply_retention`] removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RetentionReport {
    /// Chunks deleted per level (raw, minute, hour).
    pub chunks_deleted: [usize; 3],
    /// Raw-frame blocks deleted.
    pub raw_blocks_deleted: usize,
}

/// Size figures of the store.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoreStats {
    /// Number of series.
    pub series: usize,
    /// Raw points in chunks (not counting the head).
    pub chunk_points: u64,
    /// Bytes of compressed raw-point chunks.
    pub chunk_bytes: u64,
    /// Bytes of rollup chunks (minute + hour).
    pub rollup_bytes: u64,
    /// Archived raw frames.
    pub raw_frames: u64,
    /// Bytes of compressed raw-frame blocks.
    pub raw_frame_bytes: u64,
    /// Points waiting in the head (durable in the head log, not yet in chunks).
    pub head_points: usize,
    /// Database file size including its WAL.
    pub file_bytes: u64,
    /// Checkpoints that failed (they are retried; data stays safe in the head log).
    pub checkpoint_failures: u64,
}

#[derive(Default)]
struct SeriesHead {
    ts: Vec<i64>,
    val: Vec<f64>,
    min_ts: i64,
}

impl SeriesHead {
    /// Sorted by time, one point per timestamp (the last written wins).
    fn sorted(&self) -> (Vec<i64>, Vec<f64>) {
        if self.ts.windows(2).all(|w| w[0] < w[1]) {
            return (self.ts.clone(), self.val.clone());
        }
        let mut idx: Vec<usize> = (0..self.ts.len()).collect();
        idx.sort_by_key(|&i| (self.ts[i], i));
        let mut ts = Vec::with_capacity(idx.len());
        let mut val = Vec::with_capacity(idx.len());
        for (k, &i) in idx.iter().enumerate() {
            if k + 1 < idx.len() && self.ts[idx[k + 1]] == self.ts[i] {
                continue;
            }
            ts.push(self.ts[i]);
            val.push(self.val[i]);
        }
        (ts, val)
    }
}

/// Points and frames acknowledged but not yet compressed into chunks; mirrored on disk by the
/// `head_log` table.
#[derive(Default)]
struct Head {
    series: HashMap<u32, SeriesHead>,
    frames: Vec<LogFrame>,
    points: usize,
    frame_bytes: usize,
    since: Option<Instant>,
    /// Newest chunked timestamp per series: head points at or before it make the series
    /// "dirty" (rollups would miss or double count them until the next checkpoint).
    flushed_max: HashMap<u32, i64>,
}

impl Head {
    fn apply(&mut self, rec: LogRecord) {
        for i in 0..rec.ts.len() {
            let h = self
                .series
                .entry(rec.series[i])
                .or_insert_with(|| SeriesHead {
                    min_ts: i64::MAX,
                    ..SeriesHead::default()
                });
            h.ts.push(rec.ts[i]);
            h.val.push(rec.val[i]);
            h.min_ts = h.min_ts.min(rec.ts[i]);
        }
        self.points += rec.ts.len();
        for f in &rec.frames {
            self.frame_bytes += f.bytes.len();
        }
        self.frames.extend(rec.frames);
        if self.since.is_none() && (self.points > 0 || !self.frames.is_empty()) {
            self.since = Some(Instant::now());
        }
    }

    fn is_dirty(&self, sid: u32) -> bool {
        match (self.series.get(&sid), self.flushed_max.get(&sid)) {
            (Some(h), Some(&m)) => h.min_ts <= m,
            _ => false,
        }
    }
}

struct Writer {
    conn: Connection,
    checkpoint_failures: u64,
}

/// Device ids and their uplink high-water marks; changed only under the writer lock, read
/// without it (a device asking where to resume must not wait for a checkpoint).
#[derive(Default)]
struct Sources {
    ids: HashMap<String, u32>,
    /// `(source id, boot id)` → highest durable sequence number.
    uplink: HashMap<(u32, u64), u64>,
}

#[derive(Default)]
struct CommitQueue {
    next_ticket: u64,
    pending: Vec<(u64, WriteBatch)>,
    leader: bool,
    done: HashMap<u64, Result<WriteReceipt>>,
}

#[derive(Default)]
struct Registry {
    by_key: HashMap<SeriesKey, u32>,
    by_id: HashMap<u32, SeriesKey>,
}

/// An embedded, crash-safe time-series store in one SQLite file.
///
/// `Store` is `Send + Sync`: share it behind an `Arc`. Concurrent [`write`](Self::write)s are
/// group-committed (one transaction and one fsync for everything queued meanwhile); queries
/// run on a pool of read connections and never wait for an fsync.
pub struct Store {
    path: PathBuf,
    cfg: StoreConfig,
    _lock: File,
    writer: Mutex<Writer>,
    queue: Mutex<CommitQueue>,
    queue_cv: Condvar,
    head: RwLock<Head>,
    registry: RwLock<Registry>,
    sources: RwLock<Sources>,
    readers: Mutex<Vec<Connection>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
fn read<T>(m: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    m.read().unwrap_or_else(|e| e.into_inner())
}
fn write<T>(m: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    m.write().unwrap_or_else(|e| e.into_inner())
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS series(
  id INTEGER PRIMARY KEY, metric TEXT NOT NULL, tags TEXT NOT NULL, UNIQUE(metric, tags));
CREATE TABLE IF NOT EXISTS sources(id INTEGER PRIMARY KEY, device_id TEXT NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS uplink(
  source_id INTEGER NOT NULL, boot_id INTEGER NOT NULL, high_seq INTEGER NOT NULL,
  PRIMARY KEY(source_id, boot_id));
CREATE TABLE IF NOT EXISTS head_log(id INTEGER PRIMARY KEY, data BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS chunks(
  series_id INTEGER NOT NULL, level INTEGER NOT NULL, start_ts INTEGER NOT NULL,
  end_ts INTEGER NOT NULL, n INTEGER NOT NULL, data BLOB NOT NULL,
  PRIMARY KEY(series_id, level, start_ts));
CREATE INDEX IF NOT EXISTS chunks_by_end ON chunks(series_id, level, end_ts);
CREATE TABLE IF NOT EXISTS raw_blocks(
  source_id INTEGER NOT NULL, start_ts INTEGER NOT NULL, end_ts INTEGER NOT NULL,
  n INTEGER NOT NULL, data BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS raw_blocks_by_end ON raw_blocks(source_id, end_ts);
";

fn align_down(t: i64, r: i64) -> i64 {
    t.div_euclid(r) * r
}
fn align_up(t: i64, r: i64) -> i64 {
    align_down(t + r - 1, r)
}

impl Store {
    /// Opens (creating if needed) the store at `path`, replaying the head log.
    ///
    /// Takes an exclusive lock on `<path>.lock`: a second process opening the same store gets
    /// an `Io` error instead of silently corrupting it.
    pub fn open(path: impl AsRef<Path>, cfg: StoreConfig) -> Result<Store> {
        let path = path.as_ref().to_path_buf();
        if let Some(dir) = path.parent() {
            if !dir.as_os_str().is_empty() {
                std::fs::create_dir_all(dir)?;
            }
        }
        let mut lock_path = path.clone().into_os_string();
        lock_path.push(".lock");
        let lock_file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)?;
        lock_file.try_lock().map_err(|e| {
            std::io::Error::new(
                std::io::ErrorKind::WouldBlock,
                format!("store {} is open in another process: {e}", path.display()),
            )
        })?;

        let conn = Connection::open(&path)?;
        // WAL + synchronous=FULL: a commit returns only after the WAL is fsynced, so a
        // committed transaction survives power loss; readers never block the writer.
        // 1 KiB pages (new files only; must come before anything that initialises the
        // file): chunk blobs are a few hundred bytes to tens of KiB, and SQLite wastes part of
        // a page per blob and per partly filled leaf; 4 KiB pages made the simulated week's
        // file 8 % larger at the same ingest and query speed. (Largest file: 1 TiB.)
        conn.pragma_update(None, "page_size", 1024)?;
        // Incremental auto-vacuum (it only takes effect on a new file): the head log's pages
        // are freed at every checkpoint, and `compact` hands them back to the file system
        // instead of leaving a file several times larger than its data.
        conn.pragma_update(None, "auto_vacuum", "INCREMENTAL")?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "cache_size", -65536)?;
        // A checkpoint transaction can be large; truncate the WAL file back afterwards.
        conn.pragma_update(None, "journal_size_limit", 64 << 20)?;
        conn.busy_timeout(Duration::from_secs(30))?;
        conn.execute_batch(SCHEMA)?;
        let version: Option<i64> = conn
            .query_row("SELECT value FROM meta WHERE key='schema'", [], |r| {
                r.get(0)
            })
            .optional()?;
        match version {
            None => {
                conn.execute(
                    "INSERT INTO meta(key, value) VALUES('schema', ?1)",
                    [SCHEMA_VERSION],
                )?;
            }
            Some(SCHEMA_VERSION) => {}
            Some(1) => {
                conn.execute(
                    "UPDATE meta SET value = ?1 WHERE key = 'schema'",
                    [SCHEMA_VERSION],
                )?;
            }
            Some(v) => {
                return Err(StoreError::Corrupt(format!(
                    "schema version {v}, this build reads {SCHEMA_VERSION}"
                )))
            }
        }

        // The first write created `<db>-wal`: make its directory entry durable too (SQLite
        // fsyncs file contents, not the directory on every platform).
        if let Some(dir) = path.parent() {
            let dir = if dir.as_os_str().is_empty() {
                Path::new(".")
            } else {
                dir
            };
            if let Ok(d) = File::open(dir) {
                let _ = d.sync_all();
            }
        }

        let mut registry = Registry::default();
        {
            let mut st = conn.prepare("SELECT id, metric, tags FROM series")?;
            let mut rows = st.query([])?;
            while let Some(r) = rows.next()? {
                let id: u32 = r.get(0)?;
                let key = SeriesKey::from_stored(&r.get::<_, String>(1)?, &r.get::<_, String>(2)?)?;
                registry.by_key.insert(key.clone(), id);
                registry.by_id.insert(id, key);
            }
        }
        let mut sources = HashMap::new();
        {
            let mut st = conn.prepare("SELECT id, device_id FROM sources")?;
            let mut rows = st.query([])?;
            while let Some(r) = rows.next()? {
                sources.insert(r.get::<_, String>(1)?, r.get::<_, u32>(0)?);
            }
        }
        let mut uplink = HashMap::new();
        {
            let mut st = conn.prepare("SELECT source_id, boot_id, high_seq FROM uplink")?;
            let mut rows = st.query([])?;
            while let Some(r) = rows.next()? {
                uplink.insert(
                    (r.get::<_, u32>(0)?, r.get::<_, i64>(1)? as u64),
                    r.get::<_, i64>(2)? as u64,
                );
            }
        }
        let mut head = Head::default();
        {
            let mut st = conn.prepare(
                "SELECT series_id, MAX(end_ts) FROM chunks WHERE level = 0 GROUP BY series_id",
            )?;
            let mut rows = st.query([])?;
            while let Some(r) = rows.next()? {
                head.flushed_max.insert(r.get(0)?, r.get(1)?);
            }
            let mut st = conn.prepare("SELECT data FROM head_log ORDER BY id")?;
            let mut rows = st.query([])?;
            while let Some(r) = rows.next()? {
                let rec = LogRecord::decode(r.get_ref(0)?.as_blob()?)?;
                head.apply(rec);
            }
        }
        Ok(Store {
            path,
            cfg,
            _lock: lock_file,
            writer: Mutex::new(Writer {
                conn,
                checkpoint_failures: 0,
            }),
            sources: RwLock::new(Sources {
                ids: sources,
                uplink,
            }),
            queue: Mutex::new(CommitQueue::default()),
            queue_cv: Condvar::new(),
            head: RwLock::new(head),
            registry: RwLock::new(registry),
            readers: Mutex::new(Vec::new()),
        })
    }

    /// The configuration the store was opened with.
    pub fn config(&self) -> &StoreConfig {
        &self.cfg
    }

    // ------------------------------------------------------------------ catalogue

    /// The id of a series, creating (durably) the series if it is new.
    pub fn series_id(&self, key: &SeriesKey) -> Result<SeriesId> {
        Ok(self.series_ids(std::slice::from_ref(key))?[0])
    }

    /// Ids of many series at once; the new ones are created in a single transaction.
    pub fn series_ids(&self, keys: &[SeriesKey]) -> Result<Vec<SeriesId>> {
        {
            let reg = read(&self.registry);
            let found: Option<Vec<SeriesId>> = keys
                .iter()
                .map(|k| reg.by_key.get(k).map(|&id| SeriesId(id)))
                .collect();
            if let Some(ids) = found {
                return Ok(ids);
            }
        }
        let mut w = lock(&self.writer);
        let mut reg = write(&self.registry);
        let missing = keys.iter().filter(|k| !reg.by_key.contains_key(*k)).count();
        if reg.by_id.len() + missing > MAX_SERIES {
            return Err(StoreError::LimitExceeded {
                what: "series",
                got: (reg.by_id.len() + missing) as u64,
                max: MAX_SERIES as u64,
                hint: "a tag with unbounded values (a timestamp?) creates a series per point",
            });
        }
        let tx = w
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut new = Vec::new();
        {
            let mut ins = tx.prepare_cached(
                "INSERT INTO series(metric, tags) VALUES(?1, ?2)
                 ON CONFLICT(metric, tags) DO UPDATE SET metric = excluded.metric RETURNING id",
            )?;
            for k in keys {
                if !reg.by_key.contains_key(k) {
                    let id: u32 =
                        ins.query_row(params![k.metric(), k.tags_text()], |r| r.get(0))?;
                    new.push((k.clone(), id));
                }
            }
        }
        tx.commit()?;
        for (k, id) in new {
            reg.by_key.insert(k.clone(), id);
            reg.by_id.insert(id, k);
        }
        Ok(keys.iter().map(|k| SeriesId(reg.by_key[k])).collect())
    }

    /// The id of an existing series, without creating it.
    pub fn find_series(&self, key: &SeriesKey) -> Option<SeriesId> {
        read(&self.registry).by_key.get(key).map(|&id| SeriesId(id))
    }

    /// The key of a series id.
    pub fn series_key(&self, id: SeriesId) -> Option<SeriesKey> {
        read(&self.registry).by_id.get(&id.0).cloned()
    }

    /// Every series, sorted by key (metric, then tags). Filter by metric or tag (e.g.
    /// `meter=…` to list one meter's series) on the result.
    pub fn list_series(&self) -> Vec<(SeriesId, SeriesKey)> {
        let reg = read(&self.registry);
        let mut v: Vec<_> = reg
            .by_id
            .iter()
            .map(|(&id, k)| (SeriesId(id), k.clone()))
            .collect();
        v.sort_by(|a, b| a.1.cmp(&b.1));
        v
    }

    /// Distinct values of a tag over all series (e.g. `meter` lists the meters).
    pub fn tag_values(&self, tag_key: &str) -> Vec<String> {
        let reg = read(&self.registry);
        let mut v: Vec<String> = reg
            .by_key
            .keys()
            .filter_map(|k| k.tag(tag_key).map(str::to_string))
            .collect();
        v.sort();
        v.dedup();
        v
    }

    /// Devices that have sent raw frames.
    pub fn sources(&self) -> Vec<String> {
        let mut v: Vec<String> = read(&self.sources).ids.keys().cloned().collect();
        v.sort();
        v
    }

    /// Highest durable sequence number of a device's boot (what to answer a device that asks
    /// where to resume).
    pub fn uplink_high_water(&self, device_id: &str, boot_id: u64) -> Option<u64> {
        let s = read(&self.sources);
        let sid = *s.ids.get(device_id)?;
        s.uplink.get(&(sid, boot_id)).copied()
    }

    fn source_id(&self, device_id: &str) -> Result<u32> {
        let w = lock(&self.writer);
        if let Some(&id) = read(&self.sources).ids.get(device_id) {
            return Ok(id);
        }
        if device_id.is_empty()
            || device_id.len() > crate::limits::MAX_NAME_BYTES
            || device_id.chars().any(char::is_control)
        {
            return Err(StoreError::InvalidName {
                name: device_id.chars().take(64).collect(),
                reason: "device id must be 1..=255 bytes without control characters",
            });
        }
        let id: u32 = w.conn.query_row(
            "INSERT INTO sources(device_id) VALUES(?1) RETURNING id",
            [device_id],
            |r| r.get(0),
        )?;
        write(&self.sources).ids.insert(device_id.to_string(), id);
        Ok(id)
    }

    // ------------------------------------------------------------------ writes

    /// Writes a batch durably. Returns once the batch is fsynced (acknowledged = durable).
    ///
    /// Concurrent callers are group-committed: the first becomes the leader and commits
    /// everything queued in one transaction with one fsync; the others wait for it. Frames
    /// whose `(device, boot, seq)` is not above the durable high-water mark are skipped with
    /// their points (idempotent retries).
    pub fn write(&self, batch: WriteBatch) -> Result<WriteReceipt> {
        {
            let reg = read(&self.registry);
            if let Some(bad) = batch.series.iter().find(|s| !reg.by_id.contains_key(&s.0)) {
                return Err(StoreError::UnknownSeries(bad.0));
            }
        }
        {
            // Checkpoints normally keep the head under `head_max_points`; if they keep failing
            // (disk full?), refuse writes rather than grow memory without bound.
            let head_points = read(&self.head).points;
            let max = self.cfg.head_max_points.saturating_mul(2).max(1);
            if head_points >= max {
                return Err(StoreError::LimitExceeded {
                    what: "points waiting in the head (checkpoints are failing)",
                    got: head_points as u64,
                    max: max as u64,
                    hint: "check free disk space and the log; retry later",
                });
            }
        }
        if let Some(s) = &batch.source {
            if !batch.frames.is_empty() {
                // Registered (durably) before the batch so the head log can refer to its id.
                self.source_id(&s.device_id)?;
            }
        }
        let mut q = lock(&self.queue);
        let ticket = q.next_ticket;
        q.next_ticket += 1;
        q.pending.push((ticket, batch));
        loop {
            if let Some(r) = q.done.remove(&ticket) {
                return r;
            }
            if !q.leader {
                q.leader = true;
                // Bound one group's size (memory, transaction size); the rest waits for the
                // next leader.
                let mut n = 0;
                let mut points = 0;
                while n < q.pending.len()
                    && (n == 0 || points + q.pending[n].1.ts.len() <= MAX_GROUP_POINTS)
                {
                    points += q.pending[n].1.ts.len();
                    n += 1;
                }
                let group: Vec<(u64, WriteBatch)> = q.pending.drain(..n).collect();
                drop(q);
                let tickets: Vec<u64> = group.iter().map(|g| g.0).collect();
                // A panic must not leave `leader` set (every writer would wait forever).
                let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    self.commit_group(group)
                }))
                .unwrap_or_else(|_| Err(StoreError::CommitFailed("internal panic".into())));
                let mut due = false;
                let results = match outcome {
                    Ok((r, d)) => {
                        due = d;
                        r.into_iter().map(Ok).collect::<Vec<_>>()
                    }
                    Err(e) => {
                        let msg = e.to_string();
                        tickets
                            .iter()
                            .map(|_| Err(StoreError::CommitFailed(msg.clone())))
                            .collect()
                    }
                };
                q = lock(&self.queue);
                q.leader = false;
                for (t, r) in tickets.into_iter().zip(results) {
                    q.done.insert(t, r);
                }
                self.queue_cv.notify_all();
                if due {
                    // After the acks went out: the group does not wait for the checkpoint
                    // (the next group does, on the writer lock).
                    drop(q);
                    let mut w = lock(&self.writer);
                    if self.checkpoint_locked(&mut w).is_err() {
                        // The data is durable in the head log; retried at the next trigger.
                        w.checkpoint_failures += 1;
                    }
                    drop(w);
                    q = lock(&self.queue);
                }
                continue;
            }
            q = self.queue_cv.wait(q).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Commits a group; returns the receipts and whether a checkpoint is due.
    fn commit_group(&self, group: Vec<(u64, WriteBatch)>) -> Result<(Vec<WriteReceipt>, bool)> {
        let mut w = lock(&self.writer);
        let mut rec = LogRecord::default();
        let mut receipts = Vec::with_capacity(group.len());
        let mut hw_new: HashMap<(u32, u64), u64> = HashMap::new();
        let total: usize = group.iter().map(|g| g.1.ts.len()).sum();
        rec.series.reserve(total);
        rec.ts.reserve(total);
        rec.val.reserve(total);
        for (_, b) in &group {
            let mut r = WriteReceipt::default();
            let push = |rec: &mut LogRecord, range: std::ops::Range<usize>| {
                rec.series
                    .extend(b.series[range.clone()].iter().map(|s| s.0));
                rec.ts.extend_from_slice(&b.ts[range.clone()]);
                rec.val.extend_from_slice(&b.val[range]);
            };
            let free = b.free_points_end();
            push(&mut rec, 0..free);
            r.points_written += free;
            if let Some(src) = &b.source {
                let sources = read(&self.sources);
                let sid = sources.ids.get(&src.device_id).copied();
                let key = sid.map(|s| (s, src.boot_id));
                let mut hw = key.and_then(|k| hw_new.get(&k).or(sources.uplink.get(&k)).copied());
                drop(sources);
                let before = hw;
                for f in &b.frames {
                    let Some(sid) = sid else { break };
                    if hw.is_some_and(|h| f.seq <= h) {
                        r.frames_duplicate += 1;
                        r.points_skipped += f.points.len();
                        continue;
                    }
                    push(&mut rec, f.points.clone());
                    r.points_written += f.points.len();
                    r.frames_written += 1;
                    rec.frames.push(LogFrame {
                        source: sid,
                        boot: src.boot_id,
                        seq: f.seq,
                        ts_ms: f.ts_ms,
                        bytes: b.raw[f.raw.clone()].to_vec(),
                    });
                    hw = Some(f.seq);
                }
                if let (Some(k), Some(h)) = (key, hw) {
                    if hw != before {
                        hw_new.insert(k, h);
                    }
                }
                r.highest_durable_seq = hw;
            }
            receipts.push(r);
        }
        if rec.is_empty() && hw_new.is_empty() {
            return Ok((receipts, false));
        }
        let blob = rec.encode()?;
        let tx = w
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.prepare_cached("INSERT INTO head_log(data) VALUES(?1)")?
            .execute([&blob])?;
        {
            let mut up = tx.prepare_cached(
                "INSERT INTO uplink(source_id, boot_id, high_seq) VALUES(?1, ?2, ?3)
                 ON CONFLICT(source_id, boot_id) DO UPDATE SET high_seq = excluded.high_seq",
            )?;
            for (&(s, boot), &h) in &hw_new {
                up.execute(params![s, boot as i64, h as i64])?;
            }
        }
        tx.commit()?;
        write(&self.sources).uplink.extend(hw_new);
        let due = {
            let mut head = write(&self.head);
            head.apply(rec);
            head.points >= self.cfg.head_max_points
                || head.frame_bytes >= self.cfg.head_max_frame_bytes
                || head
                    .since
                    .is_some_and(|s| s.elapsed() >= self.cfg.head_max_age)
        };
        Ok((receipts, due))
    }

    /// Checkpoints and closes the store. Optional: dropping the store loses nothing (the head
    /// log is replayed at the next open); closing just makes that open faster.
    pub fn close(self) -> Result<()> {
        self.compact()
    }

    /// Checkpoints, returns the free pages to the file system and truncates the WAL file:
    /// what a clean shutdown calls so the data directory holds only the data.
    pub fn compact(&self) -> Result<()> {
        let mut w = lock(&self.writer);
        self.checkpoint_locked(&mut w)?;
        // The pragma frees one page per result row: step it to the end (`execute_batch`
        // would free a single page).
        w.conn
            .prepare("PRAGMA incremental_vacuum")?
            .query_map([], |_| Ok(()))?
            .collect::<rusqlite::Result<Vec<()>>>()?;
        // (busy, WAL frames, frames checkpointed): TRUNCATE only fails to shrink while a
        // reader holds an old snapshot, which a shutdown does not have; not an error.
        w.conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        Ok(())
    }

    /// Compresses the head into chunks now (normally automatic).
    pub fn checkpoint(&self) -> Result<()> {
        let mut w = lock(&self.writer);
        self.checkpoint_locked(&mut w)
    }

    /// Checkpoints if the head is older than `head_max_age`; call it from a timer (e.g. every
    /// minute) so that a quiet store does not keep data in the head forever.
    pub fn maintenance(&self) -> Result<()> {
        let due = read(&self.head)
            .since
            .is_some_and(|s| s.elapsed() >= self.cfg.head_max_age);
        if due {
            self.checkpoint()?;
        }
        Ok(())
    }

    fn checkpoint_locked(&self, w: &mut Writer) -> Result<()> {
        let head = read(&self.head);
        if head.points == 0 && head.frames.is_empty() {
            return Ok(());
        }
        let tx = w
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut new_max = Vec::new();
        let mut sids: Vec<u32> = head.series.keys().copied().collect();
        sids.sort_unstable();
        for sid in sids {
            let (ts, val) = head.series[&sid].sorted();
            if ts.is_empty() {
                continue;
            }
            // Runs separated by more than an hour are merged separately: one late point from
            // last year must not make the checkpoint rewrite a year of chunks and rollups.
            let mut max = i64::MIN;
            let mut a = 0;
            while a < ts.len() {
                let mut z = a + 1;
                while z < ts.len() && ts[z] - ts[z - 1] <= LEVEL_RES_MS[2] {
                    z += 1;
                }
                max = max.max(merge_raw(&tx, sid, &ts[a..z], &val[a..z])?);
                update_rollups(&tx, sid, ts[a], ts[z - 1])?;
                a = z;
            }
            new_max.push((sid, max));
        }
        let mut by_source: HashMap<u32, Vec<&LogFrame>> = HashMap::new();
        for f in &head.frames {
            by_source.entry(f.source).or_default().push(f);
        }
        for (src, mut frames) in by_source {
            frames.sort_by_key(|f| (f.ts_ms, f.boot, f.seq));
            archive_frames(&tx, src, &frames)?;
        }
        tx.execute("DELETE FROM head_log", [])?;
        drop(head);
        // Commit under the head write lock: readers see either (old chunks + head) or (new
        // chunks + empty head), never a mix.
        let mut head = write(&self.head);
        tx.commit()?;
        let flushed = std::mem::take(&mut head.flushed_max);
        *head = Head {
            flushed_max: flushed,
            ..Head::default()
        };
        for (sid, m) in new_max {
            let e = head.flushed_max.entry(sid).or_insert(m);
            *e = (*e).max(m);
        }
        Ok(())
    }

    /// Deletes data older than the configured retention, relative to `now_ms`.
    pub fn apply_retention(&self, now_ms: i64) -> Result<RetentionReport> {
        let r = &self.cfg.retention;
        let mut w = lock(&self.writer);
        // Old points still in the head go to chunks first, so they are rolled up below.
        self.checkpoint_locked(&mut w)?;
        let tx = w
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut rep = RetentionReport::default();
        if let Some(keep) = r.raw_points_ms {
            // Minute rollups are only kept where raw points are gone: compute them now from
            // the raw chunks about to be deleted (and the rest of their last minute).
            let cutoff = now_ms.saturating_sub(keep);
            let mut doomed: Vec<(u32, i64)> = Vec::new();
            {
                let mut st = tx.prepare_cached(
                    "SELECT series_id, MAX(end_ts) FROM chunks WHERE level = 0 AND end_ts < ?1
                     GROUP BY series_id",
                )?;
                let mut rows = st.query([cutoff])?;
                while let Some(row) = rows.next()? {
                    doomed.push((row.get(0)?, row.get(1)?));
                }
            }
            let minute = LEVEL_RES_MS[1];
            let minute_cutoff = r.minute_rollups_ms.map(|k| now_ms.saturating_sub(k));
            for (sid, newest) in doomed {
                let from = minute_horizon(&tx, sid)?;
                let to = align_down(newest, minute) + minute;
                // Rows that minute retention would delete at once are not worth computing.
                // (Timestamps are >= 0.)
                let from = from
                    .max(0)
                    .max(minute_cutoff.map_or(0, |c| align_down(c, minute)));
                if from < to {
                    let rows = rollup_rows(&tx, sid, from, to, minute)?;
                    replace_rollups(&tx, sid, 1, from, to, &rows)?;
                }
            }
        }
        let keeps = [r.raw_points_ms, r.minute_rollups_ms, r.hour_rollups_ms];
        for (level, keep) in keeps.iter().enumerate() {
            if let Some(keep) = keep {
                rep.chunks_deleted[level] = tx.execute(
                    "DELETE FROM chunks WHERE level = ?1 AND end_ts < ?2",
                    params![level as i64, now_ms.saturating_sub(*keep)],
                )?;
            }
        }
        if let Some(keep) = r.raw_frames_ms {
            rep.raw_blocks_deleted = tx.execute(
                "DELETE FROM raw_blocks WHERE end_ts < ?1",
                [now_ms.saturating_sub(keep)],
            )?;
        }
        tx.commit()?;
        Ok(rep)
    }

    /// Size figures (runs a few aggregate SQL queries).
    pub fn stats(&self) -> Result<StoreStats> {
        let (series, head_points) = (read(&self.registry).by_id.len(), read(&self.head).points);
        let checkpoint_failures = lock(&self.writer).checkpoint_failures;
        self.with_reader(|c| {
            let mut s = StoreStats { series, head_points, checkpoint_failures, ..Default::default() };
            let mut st = c.prepare_cached(
                "SELECT level, COALESCE(SUM(n),0), COALESCE(SUM(length(data)),0) FROM chunks GROUP BY level",
            )?;
            let mut rows = st.query([])?;
            while let Some(r) = rows.next()? {
                let (level, n, bytes): (i64, i64, i64) = (r.get(0)?, r.get(1)?, r.get(2)?);
                if level == 0 {
                    s.chunk_points = n as u64;
                    s.chunk_bytes = bytes as u64;
                } else {
                    s.rollup_bytes += bytes as u64;
                }
            }
            let (n, b): (i64, i64) = c.query_row(
                "SELECT COALESCE(SUM(n),0), COALESCE(SUM(length(data)),0) FROM raw_blocks",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            s.raw_frames = n as u64;
            s.raw_frame_bytes = b as u64;
            let mut wal = self.path.clone().into_os_string();
            wal.push("-wal");
            s.file_bytes = std::fs::metadata(&self.path).map(|m| m.len()).unwrap_or(0)
                + std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
            Ok(s)
        })
    }

    // ------------------------------------------------------------------ reads

    fn with_reader<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let conn = lock(&self.readers).pop();
        let conn = match conn {
            Some(c) => c,
            None => {
                let c = Connection::open_with_flags(
                    &self.path,
                    OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )?;
                c.busy_timeout(Duration::from_secs(30))?;
                c
            }
        };
        let r = f(&conn);
        if conn.is_autocommit() {
            lock(&self.readers).push(conn);
        }
        r
    }

    /// Runs `f` on a read snapshot consistent with what `take` copies from the head: the head
    /// stays locked until the snapshot is fixed, so no checkpoint can move data from the head
    /// to the database in between (which would show it twice, or not at all).
    fn with_head_snapshot<H, T>(
        &self,
        take: impl FnOnce(&Head) -> H,
        f: impl FnOnce(&Connection, H) -> Result<T>,
    ) -> Result<T> {
        self.with_reader(|c| {
            let head = read(&self.head);
            c.execute_batch("BEGIN")?;
            let r = (|| {
                // The first read fixes the WAL snapshot while the head cannot change.
                c.query_row("SELECT COUNT(*) FROM meta", [], |r| r.get::<_, i64>(0))?;
                let taken = take(&head);
                drop(head);
                f(c, taken)
            })();
            c.execute_batch("COMMIT")?;
            r
        })
    }

    /// Runs `f` on a read snapshot consistent with a copy of the series' head points.
    fn with_snapshot<T>(
        &self,
        sid: SeriesId,
        f: impl FnOnce(&Connection, &[i64], &[f64]) -> Result<T>,
    ) -> Result<T> {
        if !read(&self.registry).by_id.contains_key(&sid.0) {
            return Err(StoreError::UnknownSeries(sid.0));
        }
        self.with_head_snapshot(
            |head| {
                head.series
                    .get(&sid.0)
                    .map(|h| h.sorted())
                    .unwrap_or_default()
            },
            |c, (ts, val)| f(c, &ts, &val),
        )
    }

    /// All raw points of a series in `[from_ms, to_ms)`, including not-yet-checkpointed ones.
    pub fn read_range(&self, series: SeriesId, from_ms: i64, to_ms: i64) -> Result<Points> {
        check_range(from_ms, to_ms)?;
        let max = self.cfg.max_query_points;
        self.with_snapshot(series, |c, hts, hval| {
            let mut out = Points::default();
            for_each_chunk(c, series.0, 0, from_ms, to_ms, |blob| {
                let (ts, val) = codec::decode_raw(blob)?;
                let a = ts.partition_point(|&t| t < from_ms);
                let b = ts.partition_point(|&t| t < to_ms);
                if out.ts_ms.len() + (b - a) > max {
                    return Err(StoreError::LimitExceeded {
                        what: "points in a raw range query",
                        got: (out.ts_ms.len() + (b - a)) as u64,
                        max: max as u64,
                        hint: "query a shorter range or use downsampling (Store::aggregate)",
                    });
                }
                out.ts_ms.extend_from_slice(&ts[a..b]);
                out.values.extend_from_slice(&val[a..b]);
                Ok(true)
            })?;
            let a = hts.partition_point(|&t| t < from_ms);
            let b = hts.partition_point(|&t| t < to_ms);
            if a < b {
                out = merge_points(&out.ts_ms, &out.values, &hts[a..b], &hval[a..b]);
                if out.ts_ms.len() > max {
                    return Err(StoreError::LimitExceeded {
                        what: "points in a raw range query",
                        got: out.ts_ms.len() as u64,
                        max: max as u64,
                        hint: "query a shorter range or use downsampling (Store::aggregate)",
                    });
                }
            }
            Ok(out)
        })
    }

    /// The newest point of a series (for live views), or `None` if it has none.
    pub fn last_point(&self, series: SeriesId) -> Result<Option<(i64, f64)>> {
        self.with_snapshot(series, |c, hts, hval| {
            let mut best: Option<(i64, f64)> = hts.last().copied().zip(hval.last().copied());
            let blob: Option<Vec<u8>> = c
                .prepare_cached(
                    "SELECT data FROM chunks WHERE series_id = ?1 AND level = 0
                     ORDER BY end_ts DESC LIMIT 1",
                )?
                .query_row([series.0], |r| r.get(0))
                .optional()?;
            if let Some(blob) = blob {
                let (ts, val) = codec::decode_raw(&blob)?;
                if let (Some(&t), Some(&v)) = (ts.last(), val.last()) {
                    if best.is_none_or(|b| t > b.0) {
                        best = Some((t, v));
                    }
                }
            }
            Ok(best)
        })
    }

    /// Summaries of the buckets `[b[i], b[i+1])` of a series.
    ///
    /// Each bucket is decomposed into whole hours (answered from hourly rollups), whole
    /// minutes at its edges (minute rollups) and raw points for the rest, so a year in 1,000
    /// buckets reads ~9,000 hourly rows instead of 15 M points. Results equal a computation
    /// over the raw points (up to floating-point rounding of sums).
    pub fn aggregate_boundaries(&self, series: SeriesId, b: &[i64]) -> Result<Vec<Bucket>> {
        if b.len() < 2 {
            return Err(StoreError::InvalidBuckets(
                "need at least two boundaries".into(),
            ));
        }
        if b.len() > MAX_BUCKETS + 1 {
            return Err(StoreError::LimitExceeded {
                what: "buckets",
                got: b.len() as u64 - 1,
                max: MAX_BUCKETS as u64,
                hint: "use wider buckets or a shorter range",
            });
        }
        if let Some(w) = b.windows(2).find(|w| w[0] >= w[1]) {
            return Err(StoreError::InvalidBuckets(format!(
                "boundaries must increase strictly ({} then {})",
                w[0], w[1]
            )));
        }
        check_range(b[0], b[b.len() - 1])?;
        if read(&self.head).is_dirty(series.0) {
            // Out-of-order or rewritten points: fold them into chunks and rollups first.
            self.checkpoint()?;
        }
        let mut segs: [Vec<Seg>; 3] = Default::default();
        for i in 0..b.len() - 1 {
            decompose(b[i], b[i + 1], i, TOP_LEVEL, &mut segs);
        }
        self.with_snapshot(series, |c, hts, hval| {
            let mut acc: Vec<Option<Agg>> = vec![None; b.len() - 1];
            // Whole minutes come from minute rollups before the horizon, from raw points after.
            let horizon = if segs[1].is_empty() {
                i64::MIN
            } else {
                minute_horizon(c, series.0)?
            };
            let mut minutes = Vec::new();
            let mut raw = segs[0].clone();
            for g in &segs[1] {
                if g.to <= horizon {
                    minutes.push(*g);
                } else if g.from >= horizon {
                    raw.push(*g);
                } else {
                    minutes.push(Seg { to: horizon, ..*g });
                    raw.push(Seg {
                        from: horizon,
                        ..*g
                    });
                }
            }
            // The scan wants time order. Two sorted, disjoint runs: the stable sort finds
            // the runs and merges them in one pass.
            raw.sort_by_key(|g| g.from);
            for (level, segs) in [(0, &raw), (1, &minutes), (2, &segs[2])] {
                if !segs.is_empty() {
                    scan_level(c, series.0, level, segs, &mut acc)?;
                }
            }
            let a = hts.partition_point(|&t| t < b[0]);
            let z = hts.partition_point(|&t| t < b[b.len() - 1]);
            for k in a..z {
                let i = b.partition_point(|&x| x <= hts[k]) - 1;
                fold(&mut acc[i], &Agg::of_point(hts[k], hval[k]));
            }
            Ok(b.windows(2)
                .zip(acc)
                .map(|(w, agg)| Bucket {
                    start_ms: w[0],
                    end_ms: w[1],
                    agg,
                })
                .collect())
        })
    }

    /// Summaries per bucket of `[from_ms, to_ms)` cut by `bucketing`.
    pub fn aggregate(
        &self,
        series: SeriesId,
        from_ms: i64,
        to_ms: i64,
        bucketing: &Bucketing,
    ) -> Result<Vec<Bucket>> {
        let b = bucket_boundaries(from_ms, to_ms, bucketing)?;
        self.aggregate_boundaries(series, &b)
    }

    /// Downsampled series: one `(bucket start, value)` per non-empty bucket (empty buckets are
    /// omitted, which is what Grafana wants).
    pub fn downsample(
        &self,
        series: SeriesId,
        from_ms: i64,
        to_ms: i64,
        bucketing: &Bucketing,
        aggregator: Aggregator,
    ) -> Result<Points> {
        let mut out = Points::default();
        for bk in self.aggregate(series, from_ms, to_ms, bucketing)? {
            if let Some(a) = bk.agg {
                out.ts_ms.push(bk.start_ms);
                out.values.push(a.get(aggregator));
            }
        }
        Ok(out)
    }

    /// Energy per local period from a cumulative index series (e.g. `EASF01` in Wh), in the
    /// periods covering `[from_ms, to_ms)` in time zone `tz` (e.g. `Europe/Paris`).
    pub fn energy_per_period(
        &self,
        index_series: SeriesId,
        from_ms: i64,
        to_ms: i64,
        period: Period,
        tz: &str,
    ) -> Result<Vec<EnergyBucket>> {
        let mut b = crate::buckets::local_period_boundaries(from_ms, to_ms, period, tz)?;
        // An extra first bucket from the epoch gives the last reading before the range.
        let lead = b[0] > 0;
        if lead {
            b.insert(0, 0);
        }
        let buckets = self.aggregate_boundaries(index_series, &b)?;
        let mut prev: Option<f64> = None;
        let mut out = Vec::with_capacity(buckets.len());
        for (i, bk) in buckets.iter().enumerate() {
            if lead && i == 0 {
                prev = bk.agg.map(|a| a.last);
                continue;
            }
            let (delta, index_end) = match bk.agg {
                None => (None, None),
                Some(a) => {
                    let base = prev.unwrap_or(a.first);
                    prev = Some(a.last);
                    let d = a.last - base;
                    ((d >= 0.0).then_some(d), Some(a.last))
                }
            };
            out.push(EnergyBucket {
                start_ms: bk.start_ms,
                end_ms: bk.end_ms,
                delta,
                index_end,
            });
        }
        Ok(out)
    }

    /// Archived raw frames of a device in `[from_ms, to_ms)`, oldest first, at most
    /// `max_frames` (a `LimitExceeded` error beyond: page with a shorter range).
    pub fn raw_frames(
        &self,
        device_id: &str,
        from_ms: i64,
        to_ms: i64,
        max_frames: usize,
    ) -> Result<Vec<RawFrame>> {
        check_range(from_ms, to_ms)?;
        let Some(src) = read(&self.sources).ids.get(device_id).copied() else {
            return Ok(Vec::new());
        };
        let too_many = |n: usize| StoreError::LimitExceeded {
            what: "raw frames in one query",
            got: n as u64,
            max: max_frames as u64,
            hint: "query a shorter range",
        };
        let in_head = |head: &Head| -> Vec<RawFrame> {
            head.frames
                .iter()
                .filter(|f| f.source == src && f.ts_ms >= from_ms && f.ts_ms < to_ms)
                .map(RawFrame::from)
                .collect()
        };
        self.with_head_snapshot(in_head, |c, mut out| {
            let mut st = c.prepare_cached(
                "SELECT data FROM raw_blocks WHERE source_id = ?1 AND end_ts >= ?2 AND start_ts < ?3",
            )?;
            let mut rows = st.query(params![src, from_ms, to_ms])?;
            while let Some(r) = rows.next()? {
                for f in decode_frames(r.get_ref(0)?.as_blob()?)? {
                    if f.ts_ms >= from_ms && f.ts_ms < to_ms {
                        out.push(f);
                        if out.len() > max_frames {
                            return Err(too_many(out.len()));
                        }
                    }
                }
            }
            if out.len() > max_frames {
                return Err(too_many(out.len()));
            }
            out.sort_by_key(RawFrame::order_key);
            Ok(out)
        })
    }

    /// The newest archived raw frame of a device (greatest frame time, then boot and sequence
    /// number), or `None` if it has none: what a restarted server shows as a meter's latest
    /// reading. Reads one raw block at most (the device's block with the newest end).
    pub fn last_raw_frame(&self, device_id: &str) -> Result<Option<RawFrame>> {
        let Some(src) = read(&self.sources).ids.get(device_id).copied() else {
            return Ok(None);
        };
        let in_head = |head: &Head| {
            head.frames
                .iter()
                .filter(|f| f.source == src)
                // `RawFrame::order_key`, without copying every frame first.
                .max_by_key(|f| (f.ts_ms, f.boot, f.seq))
                .map(RawFrame::from)
        };
        self.with_head_snapshot(in_head, |c, mut best| {
            let mut st = c.prepare_cached(
                "SELECT data FROM raw_blocks WHERE source_id = ?1 ORDER BY end_ts DESC LIMIT 1",
            )?;
            let mut rows = st.query(params![src])?;
            if let Some(r) = rows.next()? {
                for f in decode_frames(r.get_ref(0)?.as_blob()?)? {
                    if best.as_ref().is_none_or(|b| f.order_key() > b.order_key()) {
                        best = Some(f);
                    }
                }
            }
            Ok(best)
        })
    }
}

// ---------------------------------------------------------------------- chunk helpers

/// Calls `f` with each chunk blob of a series/level overlapping `[from, to)`, in time order;
/// `f` returns `false` to stop.
fn for_each_chunk(
    c: &Connection,
    sid: u32,
    level: usize,
    from: i64,
    to: i64,
    mut f: impl FnMut(&[u8]) -> Result<bool>,
) -> Result<()> {
    let mut st = c.prepare_cached(
        "SELECT start_ts, data FROM chunks
         WHERE series_id = ?1 AND level = ?2 AND end_ts >= ?3 AND start_ts < ?4 ORDER BY end_ts",
    )?;
    let mut rows = st.query(params![sid, level as i64, from, to])?;
    while let Some(r) = rows.next()? {
        if !f(r.get_ref(1)?.as_blob()?)? {
            break;
        }
    }
    Ok(())
}

/// Merges two sorted point lists; on equal timestamps `b` (newer writes) wins.
fn merge_points(ats: &[i64], aval: &[f64], bts: &[i64], bval: &[f64]) -> Points {
    let mut out = Points {
        ts_ms: Vec::with_capacity(ats.len() + bts.len()),
        values: Vec::with_capacity(ats.len() + bts.len()),
    };
    let (mut i, mut j) = (0, 0);
    while i < ats.len() || j < bts.len() {
        if j >= bts.len() || (i < ats.len() && ats[i] < bts[j]) {
            out.ts_ms.push(ats[i]);
            out.values.push(aval[i]);
            i += 1;
        } else {
            if i < ats.len() && ats[i] == bts[j] {
                i += 1;
            }
            out.ts_ms.push(bts[j]);
            out.values.push(bval[j]);
            j += 1;
        }
    }
    out
}

struct OldChunks {
    rowids: Vec<i64>,
    blobs: Vec<Vec<u8>>,
}

/// Removes and returns the chunks of a series/level overlapping `[lo, hi]`; with
/// `grow_tail`, also the chunk just before `lo` if it is not full (so that small checkpoints
/// grow the tail chunk instead of leaving many tiny ones; if it belongs to an earlier day,
/// it is rewritten once more, closed, at the final compression level).
fn take_chunks(
    tx: &Transaction<'_>,
    sid: u32,
    level: usize,
    lo: i64,
    hi: i64,
    grow_tail: bool,
) -> Result<OldChunks> {
    let mut out = OldChunks {
        rowids: Vec::new(),
        blobs: Vec::new(),
    };
    if grow_tail {
        let prev: Option<(i64, i64, Vec<u8>)> = tx
            .prepare_cached(
                "SELECT rowid, n, data FROM chunks WHERE series_id = ?1 AND level = ?2
                 AND end_ts < ?3 ORDER BY end_ts DESC LIMIT 1",
            )?
            .query_row(params![sid, level as i64, lo], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .optional()?;
        if let Some((rowid, n, blob)) = prev {
            if (n as usize) < CHUNK_MAX_ROWS {
                out.rowids.push(rowid);
                out.blobs.push(blob);
            }
        }
    }
    let mut st = tx.prepare_cached(
        "SELECT rowid, data FROM chunks WHERE series_id = ?1 AND level = ?2 AND end_ts >= ?3
         AND start_ts <= ?4 ORDER BY end_ts",
    )?;
    let mut rows = st.query(params![sid, level as i64, lo, hi])?;
    while let Some(r) = rows.next()? {
        out.rowids.push(r.get(0)?);
        out.blobs.push(r.get(1)?);
    }
    let mut del = tx.prepare_cached("DELETE FROM chunks WHERE rowid = ?1")?;
    for id in &out.rowids {
        del.execute([id])?;
    }
    Ok(out)
}

fn insert_chunk(
    tx: &Transaction<'_>,
    sid: u32,
    level: usize,
    start: i64,
    end: i64,
    n: usize,
    blob: &[u8],
) -> Result<()> {
    tx.prepare_cached(
        "INSERT INTO chunks(series_id, level, start_ts, end_ts, n, data) VALUES(?1,?2,?3,?4,?5,?6)",
    )?
    .execute(params![sid, level as i64, start, end, n as i64, blob])?;
    Ok(())
}

/// Merges sorted head points into the raw chunks of a series; returns the newest timestamp.
fn merge_raw(tx: &Transaction<'_>, sid: u32, ts: &[i64], val: &[f64]) -> Result<i64> {
    let (lo, hi) = (ts[0], ts[ts.len() - 1]);
    let old = take_chunks(tx, sid, 0, lo, hi, true)?;
    let (mut ots, mut oval) = (Vec::new(), Vec::new());
    for blob in &old.blobs {
        let (t, v) = codec::decode_raw(blob)?;
        ots.extend(t);
        oval.extend(v);
    }
    let m = merge_points(&ots, &oval, ts, val);
    // A chunk holds at most CHUNK_MAX_ROWS points of one UTC day, so retention can drop
    // whole days. Every piece but the last is closed (a later point exists): final level.
    let mut a = 0;
    while a < m.ts_ms.len() {
        let day_end = align_down(m.ts_ms[a], DAY_MS) + DAY_MS;
        let z = a + m.ts_ms[a..(a + CHUNK_MAX_ROWS).min(m.ts_ms.len())]
            .partition_point(|&t| t < day_end);
        let (cts, cval) = (&m.ts_ms[a..z], &m.values[a..z]);
        let level = if z < m.ts_ms.len() || cts.len() == CHUNK_MAX_ROWS {
            codec::LEVEL_FINAL
        } else {
            codec::LEVEL_TAIL
        };
        let blob = codec::encode_raw(cts, cval, level)?;
        insert_chunk(tx, sid, 0, cts[0], cts[cts.len() - 1], cts.len(), &blob)?;
        a = z;
    }
    Ok(*m.ts_ms.last().unwrap_or(&hi))
}

/// Recomputes the hour rollups of the hours touched by `[lo, hi]`, and the minute rollups of
/// those hours if they lie before the series' minute horizon (where raw points were retired).
fn update_rollups(tx: &Transaction<'_>, sid: u32, lo: i64, hi: i64) -> Result<()> {
    let hour = LEVEL_RES_MS[2];
    let r0 = align_down(lo, hour);
    let r1 = align_down(hi, hour) + hour;
    let hourly = rollup_rows(tx, sid, r0, r1, hour)?;
    replace_rollups(tx, sid, 2, r0, r1, &hourly)?;
    let horizon = minute_horizon(tx, sid)?;
    if r0 < horizon {
        let m1 = r1.min(horizon);
        let minute = rollup_rows(tx, sid, r0, m1, LEVEL_RES_MS[1])?;
        replace_rollups(tx, sid, 1, r0, m1, &minute)?;
    }
    Ok(())
}

/// Rollup rows of resolution `res` computed from the raw points in `[r0, r1)`.
fn rollup_rows(c: &Connection, sid: u32, r0: i64, r1: i64, res: i64) -> Result<Vec<RollRow>> {
    let mut rows: Vec<RollRow> = Vec::new();
    for_each_chunk(c, sid, 0, r0, r1, |blob| {
        let (ts, val) = codec::decode_raw(blob)?;
        let a = ts.partition_point(|&t| t < r0);
        let z = ts.partition_point(|&t| t < r1);
        for (&t, &v) in ts[a..z].iter().zip(&val[a..z]) {
            let p = Agg::of_point(t, v);
            let b = align_down(t, res);
            match rows.last_mut() {
                Some((bt, a)) if *bt == b => a.merge(&p),
                _ => rows.push((b, p)),
            }
        }
        Ok(true)
    })?;
    Ok(rows)
}

/// End of a series' minute rollups: minutes before it are answered from minute rollups
/// (computed when retention retired their raw points), minutes from it on from raw points.
/// `i64::MIN` if the series has none.
fn minute_horizon(c: &Connection, sid: u32) -> Result<i64> {
    let last: Option<i64> = c
        .prepare_cached("SELECT MAX(end_ts) FROM chunks WHERE series_id = ?1 AND level = 1")?
        .query_row([sid], |r| r.get(0))?;
    Ok(last.map_or(i64::MIN, |t| t + LEVEL_RES_MS[1]))
}

/// Replaces the rollup rows of `[r0, r1)` at `level` with `rows`.
///
/// Rollup chunks cover fixed, epoch-aligned spans (a UTC day of minutes, 30 days of hours),
/// so a checkpoint rewrites at most the current span's chunk, never a long history.
fn replace_rollups(
    tx: &Transaction<'_>,
    sid: u32,
    level: usize,
    r0: i64,
    r1: i64,
    rows: &[RollRow],
) -> Result<()> {
    let span = ROLLUP_CHUNK_SPAN_MS[level];
    let (c0, c1) = (align_down(r0, span), align_up(r1, span));
    let old = take_chunks(tx, sid, level, c0, c1 - 1, false)?;
    let mut all: Vec<RollRow> = Vec::new();
    for blob in &old.blobs {
        all.extend(
            codec::decode_rollup(blob)?
                .into_iter()
                .filter(|r| r.0 < r0 || r.0 >= r1),
        );
    }
    all.extend_from_slice(rows);
    all.sort_by_key(|r| r.0);
    let mut i = 0;
    while i < all.len() {
        let end = align_down(all[i].0, span) + span;
        let j = i + all[i..].partition_point(|r| r.0 < end);
        let c = &all[i..j];
        let blob = codec::encode_rollup(c, codec::LEVEL_FAST)?;
        insert_chunk(tx, sid, level, c[0].0, c[c.len() - 1].0, c.len(), &blob)?;
        i = j;
    }
    Ok(())
}

/// A piece of one bucket answered from one level.
#[derive(Debug, Clone, Copy)]
struct Seg {
    from: i64,
    to: i64,
    bucket: usize,
}

/// Splits `[from, to)` into the coarsest aligned pieces: whole hours, then whole minutes at
/// the edges, then raw points.
fn decompose(from: i64, to: i64, bucket: usize, top: usize, out: &mut [Vec<Seg>; 3]) {
    if from >= to {
        return;
    }
    for level in (1..=top).rev() {
        let r = LEVEL_RES_MS[level];
        let (m0, m1) = (align_up(from, r), align_down(to, r));
        if m0 < m1 {
            decompose(from, m0, bucket, level - 1, out);
            out[level].push(Seg {
                from: m0,
                to: m1,
                bucket,
            });
            decompose(m1, to, bucket, level - 1, out);
            return;
        }
    }
    out[0].push(Seg { from, to, bucket });
}

/// Folds the rows of `level` lying in `segs` (sorted, disjoint) into their buckets.
///
/// One pass over the chunk index of the whole span; a chunk is decompressed only if it
/// overlaps a segment (SQLite does not read a blob that is not asked for), so sparse edge
/// segments over a year of raw data cost a few chunk decodes, not a year's.
fn scan_level(
    c: &Connection,
    sid: u32,
    level: usize,
    segs: &[Seg],
    acc: &mut [Option<Agg>],
) -> Result<()> {
    let (from, to) = (segs[0].from, segs[segs.len() - 1].to);
    // Chunk metadata first (no blob: SQLite would read every blob's overflow pages), then
    // the blobs of the chunks that overlap a segment.
    let mut meta: Vec<(i64, i64, i64)> = Vec::new();
    {
        let mut st = c.prepare_cached(
            "SELECT rowid, start_ts, end_ts FROM chunks
             WHERE series_id = ?1 AND level = ?2 AND end_ts >= ?3 AND start_ts < ?4 ORDER BY end_ts",
        )?;
        let mut rows = st.query(params![sid, level as i64, from, to])?;
        while let Some(r) = rows.next()? {
            meta.push((r.get(0)?, r.get(1)?, r.get(2)?));
        }
    }
    let mut blob_st = c.prepare_cached("SELECT data FROM chunks WHERE rowid = ?1")?;
    // `k` only moves forward: chunks and the rows inside them come in time order.
    let mut k = 0;
    let mut probe = 0;
    for (rowid, start, end) in meta {
        while probe < segs.len() && segs[probe].to <= start {
            probe += 1;
        }
        if probe >= segs.len() {
            break;
        }
        if segs[probe].from > end {
            continue;
        }
        let blob: Vec<u8> = blob_st.query_row([rowid], |r| r.get(0))?;
        let blob = &blob[..];
        if level == 0 {
            // Only the points inside a segment: raw pieces are often short edges of long
            // buckets.
            let (ts, val) = codec::decode_raw(blob)?;
            let mut q = probe;
            while q < segs.len() && segs[q].from <= end {
                let a = ts.partition_point(|&t| t < segs[q].from);
                let z = ts.partition_point(|&t| t < segs[q].to);
                for i in a..z {
                    fold(&mut acc[segs[q].bucket], &Agg::of_point(ts[i], val[i]));
                }
                q += 1;
            }
        } else {
            for (t, a) in codec::decode_rollup(blob)? {
                if t >= to {
                    break;
                }
                while k < segs.len() && segs[k].to <= t {
                    k += 1;
                }
                if k < segs.len() && segs[k].from <= t {
                    fold(&mut acc[segs[k].bucket], &a);
                }
            }
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------- raw frame blocks

fn encode_frames(frames: &[RawFrame]) -> Result<Vec<u8>> {
    let mut buf = Vec::new();
    for f in frames {
        buf.extend_from_slice(&f.boot_id.to_le_bytes());
        buf.extend_from_slice(&f.seq.to_le_bytes());
        buf.extend_from_slice(&f.ts_ms.to_le_bytes());
        buf.extend_from_slice(&(f.bytes.len() as u32).to_le_bytes());
        buf.extend_from_slice(&f.bytes);
    }
    zstd::bulk::compress(&buf, RAW_ZSTD_LEVEL).map_err(|e| StoreError::Compression(e.to_string()))
}

fn decode_frames(blob: &[u8]) -> Result<Vec<RawFrame>> {
    let buf = zstd::stream::decode_all(blob)
        .map_err(|e| StoreError::Corrupt(format!("raw block: {e}")))?;
    let mut r = Cursor { buf: &buf };
    let mut out = Vec::new();
    while !r.buf.is_empty() {
        let boot_id = r.u64()?;
        let seq = r.u64()?;
        let ts_ms = r.u64()? as i64;
        let len = r.u32()? as usize;
        out.push(RawFrame {
            boot_id,
            seq,
            ts_ms,
            bytes: r.take(len)?.to_vec(),
        });
    }
    Ok(out)
}

/// Appends frames (sorted by time) to the source's raw blocks, growing a small tail block.
fn archive_frames(tx: &Transaction<'_>, src: u32, frames: &[&LogFrame]) -> Result<()> {
    let first_ts = frames[0].ts_ms;
    let mut all: Vec<RawFrame> = Vec::new();
    let tail: Option<(i64, i64, Vec<u8>)> = tx
        .prepare_cached(
            "SELECT rowid, n, data FROM raw_blocks WHERE source_id = ?1 ORDER BY end_ts DESC LIMIT 1",
        )?
        .query_row([src], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()?;
    if let Some((rowid, n, blob)) = tail {
        if (n as usize) < RAW_BLOCK_FRAMES {
            let old = decode_frames(&blob)?;
            if old.last().is_none_or(|f| f.ts_ms <= first_ts) {
                tx.execute("DELETE FROM raw_blocks WHERE rowid = ?1", [rowid])?;
                all = old;
            }
        }
    }
    all.extend(frames.iter().map(|&f| RawFrame::from(f)));
    for block in all.chunks(RAW_BLOCK_FRAMES) {
        let blob = encode_frames(block)?;
        tx.prepare_cached(
            "INSERT INTO raw_blocks(source_id, start_ts, end_ts, n, data) VALUES(?1,?2,?3,?4,?5)",
        )?
        .execute(params![
            src,
            block[0].ts_ms,
            block[block.len() - 1].ts_ms,
            block.len() as i64,
            blob
        ])?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decompose_year_is_hourly() {
        let mut segs: [Vec<Seg>; 3] = Default::default();
        decompose(3_600_000, 3_600_000 * 100, 0, TOP_LEVEL, &mut segs);
        assert!(segs[0].is_empty() && segs[1].is_empty());
        assert_eq!(segs[2].len(), 1);
        let mut segs: [Vec<Seg>; 3] = Default::default();
        decompose(1, 3_600_000 * 2 + 61_001, 0, TOP_LEVEL, &mut segs);
        let total: i64 = segs.iter().flatten().map(|s| s.to - s.from).sum();
        assert_eq!(total, 3_600_000 * 2 + 61_000);
        assert_eq!(segs[2].len(), 1);
        assert_eq!(segs[1].len(), 2);
        assert_eq!(segs[0].len(), 2);
    }

    #[test]
    fn merge_newer_wins() {
        let m = merge_points(&[1, 2, 3], &[1.0, 2.0, 3.0], &[2, 4], &[20.0, 40.0]);
        assert_eq!(m.ts_ms, vec![1, 2, 3, 4]);
        assert_eq!(m.values, vec![1.0, 20.0, 3.0, 40.0]);
    }
}
