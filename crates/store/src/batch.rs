//! Write batches and the head-log record format.

use crate::error::{Result, StoreError};
use crate::key::SeriesId;
use crate::limits::{MAX_BATCH_FRAMES, MAX_BATCH_POINTS, MAX_FRAME_BYTES, MAX_TS_MS};

/// Who sent a batch of raw frames: the device id and the id of its current boot.
///
/// Sequence numbers restart at each boot, so `(device_id, boot_id, seq)` identifies a frame
/// uniquely; a retried frame is recognised and not stored twice.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Source {
    /// Stable device name (uplink device id, or e.g. `serial:/dev/ttyUSB0` for a local port).
    pub device_id: String,
    /// Identifies one boot of the device (random or a boot counter); for a local port the
    /// server's start time works.
    pub boot_id: u64,
}

#[derive(Debug, Clone)]
pub(crate) struct BatchFrame {
    pub seq: u64,
    pub ts_ms: i64,
    pub raw: std::ops::Range<usize>,
    pub points: std::ops::Range<usize>,
}

/// A set of points and raw frames written atomically: after [`Store::write`](crate::Store::write)
/// returns `Ok`, all of it is on disk (fsynced); on error none of it is acknowledged.
///
/// Points added before the first [`add_frame`](Self::add_frame) are free-standing (e.g. an
/// OpenTSDB `put`). Points added after a frame belong to that frame: if the frame turns out
/// to be a retry of an already stored frame, its points are skipped with it.
#[derive(Debug, Clone, Default)]
pub struct WriteBatch {
    pub(crate) source: Option<Source>,
    pub(crate) series: Vec<SeriesId>,
    pub(crate) ts: Vec<i64>,
    pub(crate) val: Vec<f64>,
    pub(crate) frames: Vec<BatchFrame>,
    pub(crate) raw: Vec<u8>,
}

fn check_ts(ts_ms: i64) -> Result<()> {
    if !(0..=MAX_TS_MS).contains(&ts_ms) {
        return Err(StoreError::TimestampOutOfRange { ts_ms });
    }
    Ok(())
}

impl WriteBatch {
    /// A batch of free-standing points (no raw frames, no de-duplication key).
    pub fn new() -> WriteBatch {
        WriteBatch::default()
    }

    /// A batch that may carry raw frames from `source`, de-duplicated by sequence number.
    pub fn from_source(source: Source) -> WriteBatch {
        WriteBatch {
            source: Some(source),
            ..WriteBatch::default()
        }
    }

    /// Number of points in the batch.
    pub fn len_points(&self) -> usize {
        self.ts.len()
    }

    /// Number of raw frames in the batch.
    pub fn len_frames(&self) -> usize {
        self.frames.len()
    }

    /// Reserves room for `points` more points (avoids reallocations on big batches).
    pub fn reserve_points(&mut self, points: usize) {
        self.series.reserve(points);
        self.ts.reserve(points);
        self.val.reserve(points);
    }

    /// Adds one point. Rejects non-finite values and timestamps outside 1970..9999.
    pub fn add_point(&mut self, series: SeriesId, ts_ms: i64, value: f64) -> Result<()> {
        check_ts(ts_ms)?;
        if !value.is_finite() {
            return Err(StoreError::NonFiniteValue { ts_ms, value });
        }
        if self.ts.len() >= MAX_BATCH_POINTS {
            return Err(StoreError::LimitExceeded {
                what: "points in one batch",
                got: self.ts.len() as u64 + 1,
                max: MAX_BATCH_POINTS as u64,
                hint: "split the batch",
            });
        }
        self.series.push(series);
        self.ts.push(ts_ms);
        self.val.push(value);
        if let Some(f) = self.frames.last_mut() {
            f.points.end = self.ts.len();
        }
        Ok(())
    }

    /// Starts a raw frame; the points added next belong to it.
    ///
    /// `seq` must be strictly greater than the previous frame's in this batch (devices send
    /// frames in sequence order). `ts_ms` is the frame's time (meter time converted to UTC,
    /// else receive time) and is what raw-frame range queries use.
    pub fn add_frame(&mut self, seq: u64, ts_ms: i64, raw: &[u8]) -> Result<()> {
        if self.source.is_none() {
            return Err(StoreError::InvalidBatch(
                "raw frames need a source: build the batch with WriteBatch::from_source".into(),
            ));
        }
        check_ts(ts_ms)?;
        if seq > i64::MAX as u64 {
            return Err(StoreError::InvalidBatch(format!(
                "sequence number {seq} above 2^63-1"
            )));
        }
        if let Some(prev) = self.frames.last() {
            if seq <= prev.seq {
                return Err(StoreError::InvalidBatch(format!(
                    "sequence numbers must increase within a batch ({seq} after {})",
                    prev.seq
                )));
            }
        }
        if raw.len() > MAX_FRAME_BYTES {
            return Err(StoreError::LimitExceeded {
                what: "raw frame bytes",
                got: raw.len() as u64,
                max: MAX_FRAME_BYTES as u64,
                hint: "this is not a single TIC frame; split it at STX/ETX",
            });
        }
        if self.frames.len() >= MAX_BATCH_FRAMES {
            return Err(StoreError::LimitExceeded {
                what: "frames in one batch",
                got: self.frames.len() as u64 + 1,
                max: MAX_BATCH_FRAMES as u64,
                hint: "split the batch",
            });
        }
        let start = self.raw.len();
        self.raw.extend_from_slice(raw);
        self.frames.push(BatchFrame {
            seq,
            ts_ms,
            raw: start..self.raw.len(),
            points: self.ts.len()..self.ts.len(),
        });
        Ok(())
    }

    /// End of the free-standing points (those before the first frame).
    pub(crate) fn free_points_end(&self) -> usize {
        self.frames
            .first()
            .map_or(self.ts.len(), |f| f.points.start)
    }
}

/// What a successful write did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteReceipt {
    /// Points now durable.
    pub points_written: usize,
    /// Points skipped because their frame was a retry of a stored frame.
    pub points_skipped: usize,
    /// Raw frames now durable.
    pub frames_written: usize,
    /// Raw frames skipped as retries (sequence number not above the durable high-water mark).
    pub frames_duplicate: usize,
    /// The highest sequence number durable for the batch's (device, boot), if any: what the
    /// server replies to the device, which may then free everything up to it.
    pub highest_durable_seq: Option<u64>,
}

/// One accepted frame in a head-log record.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct LogFrame {
    pub source: u32,
    pub boot: u64,
    pub seq: u64,
    pub ts_ms: i64,
    pub bytes: Vec<u8>,
}

/// Everything one group commit appended: the unit of the head log (write-ahead head).
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct LogRecord {
    pub series: Vec<u32>,
    pub ts: Vec<i64>,
    pub val: Vec<f64>,
    pub frames: Vec<LogFrame>,
}

const LOG_VERSION: u8 = 1;

impl LogRecord {
    pub fn is_empty(&self) -> bool {
        self.ts.is_empty() && self.frames.is_empty()
    }

    /// Columnar little-endian encoding, compressed with zstd level 1 (fast; halves the bytes
    /// that must be fsynced).
    pub fn encode(&self) -> Result<Vec<u8>> {
        let n = self.ts.len();
        let mut out = Vec::with_capacity(8 + n * 20);
        out.extend_from_slice(&(n as u32).to_le_bytes());
        for s in &self.series {
            out.extend_from_slice(&s.to_le_bytes());
        }
        for t in &self.ts {
            out.extend_from_slice(&t.to_le_bytes());
        }
        for v in &self.val {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend_from_slice(&(self.frames.len() as u32).to_le_bytes());
        for f in &self.frames {
            out.extend_from_slice(&f.source.to_le_bytes());
            out.extend_from_slice(&f.boot.to_le_bytes());
            out.extend_from_slice(&f.seq.to_le_bytes());
            out.extend_from_slice(&f.ts_ms.to_le_bytes());
            out.extend_from_slice(&(f.bytes.len() as u32).to_le_bytes());
            out.extend_from_slice(&f.bytes);
        }
        let mut z = vec![LOG_VERSION];
        z.extend_from_slice(
            &zstd::bulk::compress(&out, 1).map_err(|e| StoreError::Compression(e.to_string()))?,
        );
        Ok(z)
    }

    pub fn decode(blob: &[u8]) -> Result<LogRecord> {
        let corrupt = |what: &str| StoreError::Corrupt(format!("head log record: {what}"));
        let (&v, rest) = blob.split_first().ok_or_else(|| corrupt("empty"))?;
        if v != LOG_VERSION {
            return Err(corrupt("unknown version"));
        }
        let buf = zstd::stream::decode_all(rest).map_err(|e| corrupt(&e.to_string()))?;
        let mut r = Cursor { buf: &buf };
        let n = r.u32()? as usize;
        if n > buf.len() / 20 {
            return Err(corrupt("point count"));
        }
        let series = (0..n).map(|_| r.u32()).collect::<Result<_>>()?;
        let ts = (0..n)
            .map(|_| r.u64().map(|x| x as i64))
            .collect::<Result<_>>()?;
        let val = (0..n)
            .map(|_| r.u64().map(f64::from_bits))
            .collect::<Result<_>>()?;
        let mut rec = LogRecord {
            series,
            ts,
            val,
            frames: Vec::new(),
        };
        let nf = r.u32()? as usize;
        for _ in 0..nf {
            let source = r.u32()?;
            let boot = r.u64()?;
            let seq = r.u64()?;
            let ts_ms = r.u64()? as i64;
            let len = r.u32()? as usize;
            let bytes = r.take(len)?.to_vec();
            rec.frames.push(LogFrame {
                source,
                boot,
                seq,
                ts_ms,
                bytes,
            });
        }
        Ok(rec)
    }
}

pub(crate) struct Cursor<'a> {
    pub buf: &'a [u8],
}

impl<'a> Cursor<'a> {
    pub fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if self.buf.len() < n {
            return Err(StoreError::Corrupt("truncated record".into()));
        }
        let (a, b) = self.buf.split_at(n);
        self.buf = b;
        Ok(a)
    }
    pub fn u32(&mut self) -> Result<u32> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    pub fn u64(&mut self) -> Result<u64> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_roundtrip() {
        let rec = LogRecord {
            series: vec![1, 2],
            ts: vec![10, 20],
            val: vec![1.5, -2.0],
            frames: vec![LogFrame {
                source: 3,
                boot: 9,
                seq: 7,
                ts_ms: 10,
                bytes: b"abc".to_vec(),
            }],
        };
        assert_eq!(LogRecord::decode(&rec.encode().unwrap()).unwrap(), rec);
    }

    #[test]
    fn batch_validation() {
        let mut b = WriteBatch::new();
        assert!(b.add_point(SeriesId(1), -1, 1.0).is_err());
        assert!(b.add_point(SeriesId(1), 1, f64::NAN).is_err());
        assert!(b.add_frame(1, 1, b"x").is_err());
        let mut b = WriteBatch::from_source(Source {
            device_id: "d".into(),
            boot_id: 1,
        });
        b.add_frame(5, 1, b"x").unwrap();
        assert!(b.add_frame(5, 1, b"x").is_err());
        assert!(b.add_frame(6, 1, &vec![0u8; MAX_FRAME_BYTES + 1]).is_err());
    }
}
