//! The durable queue of one forwarder: a SQLite file used as an append-only log.
//!
//! Why SQLite and not a hand-written segment log: the workspace already builds rusqlite
//! (bundled) for the store, and SQLite gives atomic, fsynced appends and removals in a few
//! lines, with crash recovery that is tested far beyond anything we could write here.
//!
//! - `append` inserts records (one per reading, already encoded for the backend) in one
//!   transaction; with `synchronous=FULL` the commit returns only once the WAL is on disk.
//!   Appends from concurrent callers are **group-committed** by one writer thread: one fsync
//!   (~5 ms here) covers every caller waiting at that moment, so a thousand devices posting
//!   at once cost a handful of fsyncs, not a thousand.
//! - `peek` reads the oldest records in insertion order (`id` is `AUTOINCREMENT`: never
//!   reused, so order survives restarts and deletes).
//! - `ack` deletes what the backend accepted, in one transaction: the "read cursor" is the
//!   smallest id left. A crash between a send and its `ack` resends that batch: delivery is
//!   **at least once** (the backends overwrite a point with the same series and timestamp).
//! - The queue is bounded in bytes: `append` refuses what does not fit ([`QueueError::Full`]).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;

use rusqlite::{params, Connection};

/// Why a queue operation failed.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// SQLite failed (disk full, permissions, corruption).
    #[error("forward queue {path}: {message}")]
    Sqlite {
        /// The queue file.
        path: PathBuf,
        /// Why.
        message: String,
    },
    /// The queue holds `max_bytes` already.
    #[error(
        "forward queue {path} is full ({bytes} bytes of {max_bytes}): the backend has been unreachable \
         too long; new readings are dropped for this forwarder until it catches up (raise max_queue_mb \
         or fix the backend)"
    )]
    Full {
        /// The queue file.
        path: PathBuf,
        /// Bytes queued.
        bytes: u64,
        /// Bound.
        max_bytes: u64,
    },
}

/// One queued record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Position in the log.
    pub id: i64,
    /// Points it holds.
    pub points: u32,
    /// When it was appended, Unix ms (for the forward lag).
    pub enq_ms: i64,
    /// Encoded body.
    pub body: Vec<u8>,
}

/// One caller's records and where to send the outcome.
type Req = (
    Vec<(u32, Vec<u8>)>,
    mpsc::SyncSender<Result<usize, QueueError>>,
);

/// A durable FIFO of encoded records.
#[derive(Debug)]
pub struct Queue {
    inner: Arc<Inner>,
    tx: Mutex<Option<mpsc::Sender<Req>>>,
    writer: Mutex<Option<JoinHandle<()>>>,
}

/// The file and its counters (shared with the writer thread).
#[derive(Debug)]
pub struct Inner {
    path: PathBuf,
    conn: Mutex<Connection>,
    max_bytes: u64,
    bytes: AtomicU64,
    records: AtomicU64,
    points: AtomicU64,
}

impl std::ops::Deref for Queue {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.inner
    }
}

impl Queue {
    /// Opens (creating) the queue file at `path`, bounded to `max_bytes` of record bodies.
    pub fn open(path: &Path, max_bytes: u64) -> Result<Queue, QueueError> {
        let err = |e: &dyn std::fmt::Display| QueueError::Sqlite {
            path: path.to_path_buf(),
            message: e.to_string(),
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| err(&e))?;
        }
        let conn = Connection::open(path).map_err(|e| err(&e))?;
        conn.execute_batch(
            "PRAGMA journal_mode=WAL;
             PRAGMA synchronous=FULL;
             CREATE TABLE IF NOT EXISTS q (
                 id INTEGER PRIMARY KEY AUTOINCREMENT,
                 points INTEGER NOT NULL,
                 enq_ms INTEGER NOT NULL,
                 body BLOB NOT NULL);",
        )
        .map_err(|e| err(&e))?;
        let (records, bytes, points): (i64, i64, i64) = conn
            .query_row(
                "SELECT count(*), coalesce(sum(length(body)),0), coalesce(sum(points),0) FROM q",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .map_err(|e| err(&e))?;
        let inner = Arc::new(Inner {
            path: path.to_path_buf(),
            conn: Mutex::new(conn),
            max_bytes,
            bytes: AtomicU64::new(bytes as u64),
            records: AtomicU64::new(records as u64),
            points: AtomicU64::new(points as u64),
        });
        let (tx, rx) = mpsc::channel::<Req>();
        let w = inner.clone();
        let writer = std::thread::Builder::new()
            .name("fwd-queue".into())
            .spawn(move || {
                // Ends when the Queue (the only sender) is dropped.
                while let Ok(first) = rx.recv() {
                    let mut reqs = vec![first];
                    while let Ok(r) = rx.try_recv() {
                        reqs.push(r);
                    }
                    let (items, replies): (Vec<_>, Vec<_>) = reqs.into_iter().unzip();
                    for (res, reply) in w.commit(items).into_iter().zip(replies) {
                        let _ = reply.send(res);
                    }
                }
            })
            .map_err(|e| err(&e))?;
        Ok(Queue {
            inner,
            tx: Mutex::new(Some(tx)),
            writer: Mutex::new(Some(writer)),
        })
    }

    /// Appends records durably, oldest first, and returns once they are on disk. Records
    /// that do not fit are not appended: the result says how many were (a prefix), or
    /// `Full` when none fit.
    pub fn append(&self, items: Vec<(u32, Vec<u8>)>) -> Result<usize, QueueError> {
        if items.is_empty() {
            return Ok(0);
        }
        let (reply, rx) = mpsc::sync_channel(1);
        let gone = || QueueError::Sqlite {
            path: self.path.clone(),
            message: "the queue is closed".into(),
        };
        {
            let tx = self.tx.lock().unwrap_or_else(|p| p.into_inner());
            tx.as_ref()
                .ok_or_else(gone)?
                .send((items, reply))
                .map_err(|_| gone())?;
        }
        rx.recv().map_err(|_| gone())?
    }
}

impl Drop for Queue {
    fn drop(&mut self) {
        self.tx.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(w) = self.writer.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = w.join();
        }
    }
}

impl Inner {
    fn lock(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn sql(&self, source: rusqlite::Error) -> QueueError {
        QueueError::Sqlite {
            path: self.path.clone(),
            message: source.to_string(),
        }
    }

    /// One transaction (one fsync) for several callers' records, in call order.
    fn commit(&self, reqs: Vec<Vec<(u32, Vec<u8>)>>) -> Vec<Result<usize, QueueError>> {
        let mut conn = self.lock();
        let mut bytes = self.bytes.load(Ordering::Relaxed);
        let mut out = Vec::with_capacity(reqs.len());
        let (mut recs, mut pts) = (0u64, 0u64);
        let res = (|| -> Result<(), QueueError> {
            let tx = conn.transaction().map_err(|e| self.sql(e))?;
            {
                let mut st = tx
                    .prepare_cached("INSERT INTO q (points, enq_ms, body) VALUES (?1, ?2, ?3)")
                    .map_err(|e| self.sql(e))?;
                let now = now_ms();
                for items in &reqs {
                    let mut n = 0;
                    for (p, body) in items {
                        if bytes + body.len() as u64 > self.max_bytes {
                            break;
                        }
                        st.execute(params![p, now, body]).map_err(|e| self.sql(e))?;
                        bytes += body.len() as u64;
                        pts += u64::from(*p);
                        n += 1;
                    }
                    recs += n as u64;
                    out.push(if n == 0 {
                        Err(QueueError::Full {
                            path: self.path.clone(),
                            bytes,
                            max_bytes: self.max_bytes,
                        })
                    } else {
                        Ok(n)
                    });
                }
            }
            tx.commit().map_err(|e| self.sql(e))
        })();
        match res {
            Ok(()) => {
                self.bytes.store(bytes, Ordering::Relaxed);
                self.records.fetch_add(recs, Ordering::Relaxed);
                self.points.fetch_add(pts, Ordering::Relaxed);
                out
            }
            Err(e) => reqs
                .iter()
                .map(|_| {
                    Err(QueueError::Sqlite {
                        path: self.path.clone(),
                        message: e.to_string(),
                    })
                })
                .collect(),
        }
    }

    /// The oldest records, at most `max_points` points and `max_bytes` bytes (at least one
    /// record when the queue is not empty, whatever its size).
    pub fn peek(&self, max_points: u32, max_bytes: usize) -> Result<Vec<Record>, QueueError> {
        let conn = self.lock();
        let mut st = conn
            .prepare_cached("SELECT id, points, enq_ms, body FROM q ORDER BY id LIMIT ?1")
            .map_err(|e| self.sql(e))?;
        let mut rows = st
            .query(params![i64::from(max_points.max(1))])
            .map_err(|e| self.sql(e))?;
        let mut out: Vec<Record> = Vec::new();
        let (mut pts, mut bytes) = (0u32, 0usize);
        while let Some(row) = rows.next().map_err(|e| self.sql(e))? {
            let rec = Record {
                id: row.get(0).map_err(|e| self.sql(e))?,
                points: row.get(1).map_err(|e| self.sql(e))?,
                enq_ms: row.get(2).map_err(|e| self.sql(e))?,
                body: row.get(3).map_err(|e| self.sql(e))?,
            };
            if !out.is_empty()
                && (pts + rec.points > max_points || bytes + rec.body.len() > max_bytes)
            {
                break;
            }
            pts += rec.points;
            bytes += rec.body.len();
            out.push(rec);
        }
        Ok(out)
    }

    /// Removes every record up to `last_id` included (the backend accepted them), durably.
    pub fn ack(&self, last_id: i64) -> Result<(), QueueError> {
        let mut conn = self.lock();
        let tx = conn.transaction().map_err(|e| self.sql(e))?;
        let (n, b, p): (i64, i64, i64) = tx
            .query_row(
                "SELECT count(*), coalesce(sum(length(body)),0), coalesce(sum(points),0) FROM q WHERE id <= ?1",
                params![last_id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .map_err(|e| self.sql(e))?;
        tx.execute("DELETE FROM q WHERE id <= ?1", params![last_id])
            .map_err(|e| self.sql(e))?;
        tx.commit().map_err(|e| self.sql(e))?;
        self.records.fetch_sub(n as u64, Ordering::Relaxed);
        self.bytes.fetch_sub(b as u64, Ordering::Relaxed);
        self.points.fetch_sub(p as u64, Ordering::Relaxed);
        Ok(())
    }

    /// Records queued.
    pub fn len(&self) -> u64 {
        self.records.load(Ordering::Relaxed)
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes of record bodies queued.
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    /// Points queued.
    pub fn points(&self) -> u64 {
        self.points.load(Ordering::Relaxed)
    }

    /// The bound, bytes.
    pub fn max_bytes(&self) -> u64 {
        self.max_bytes
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// The wall clock, Unix ms.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fifo_survives_reopen_and_bounds() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("q.db");
        {
            let q = Queue::open(&p, 100).unwrap();
            assert_eq!(
                q.append(vec![(2, b"aaaa".to_vec()), (3, b"bbbb".to_vec())])
                    .unwrap(),
                2
            );
            let got = q.peek(10, 1 << 20).unwrap();
            assert_eq!(
                got.iter().map(|r| r.body.clone()).collect::<Vec<_>>(),
                vec![b"aaaa".to_vec(), b"bbbb".to_vec()]
            );
            // Bounded by points: one record only.
            assert_eq!(q.peek(4, 1 << 20).unwrap().len(), 1);
            q.ack(got[0].id).unwrap();
            assert_eq!((q.len(), q.bytes(), q.points()), (1, 4, 3));
        }
        let q = Queue::open(&p, 10).unwrap();
        assert_eq!((q.len(), q.bytes(), q.points()), (1, 4, 3));
        assert_eq!(q.peek(10, 1 << 20).unwrap()[0].body, b"bbbb");
        // 4 + 4 fits in 10, the next does not: a prefix is appended.
        assert_eq!(
            q.append(vec![(1, b"cccc".to_vec()), (1, b"dddd".to_vec())])
                .unwrap(),
            1
        );
        let e = q.append(vec![(1, b"eeee".to_vec())]).unwrap_err();
        assert!(e.to_string().contains("is full"), "{e}");
        // Ids keep increasing after deletes: order holds.
        let all = q.peek(10, 1 << 20).unwrap();
        q.ack(all.last().unwrap().id).unwrap();
        q.append(vec![(1, b"ffff".to_vec())]).unwrap();
        let f = q.peek(10, 1 << 20).unwrap();
        assert!(f[0].id > all.last().unwrap().id);
    }
}

#[cfg(test)]
mod bench {
    #[test]
    #[ignore]
    fn append_rate() {
        let dir = tempfile::tempdir().unwrap();
        let q = super::Queue::open(&dir.path().join("q.db"), 1 << 30).unwrap();
        let t = std::time::Instant::now();
        for _ in 0..200 {
            q.append(vec![(40, vec![b'x'; 2000])]).unwrap();
        }
        eprintln!(
            "append one record, one caller: {:?} each",
            t.elapsed() / 200
        );
        let t = std::time::Instant::now();
        std::thread::scope(|s| {
            for _ in 0..16 {
                s.spawn(|| {
                    for _ in 0..100 {
                        q.append(vec![(40, vec![b'x'; 2000])]).unwrap();
                    }
                });
            }
        });
        eprintln!(
            "append one record, 16 callers: {:?} per record",
            t.elapsed() / 1600
        );
    }
}
