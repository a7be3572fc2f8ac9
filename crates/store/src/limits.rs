//! Every hard limit of the store, in one place.
//!
//! Limits protect the server from a single request exhausting memory. They are deliberately
//! generous for meter data (a standard-mode frame is ~1 KB and ~50 values).

/// Longest metric name, tag key or tag value, in bytes.
pub const MAX_NAME_BYTES: usize = 255;
/// Most tags on one series (OpenTSDB's `tsd.storage.max_tags` default).
pub const MAX_TAGS: usize = 8;
/// Largest accepted timestamp: 9999-12-31T23:59:59.999Z in Unix milliseconds.
pub const MAX_TS_MS: i64 = 253_402_300_799_999;
/// Most points in one [`WriteBatch`](crate::WriteBatch).
pub const MAX_BATCH_POINTS: usize = 2_000_000;
/// Most raw frames in one [`WriteBatch`](crate::WriteBatch).
pub const MAX_BATCH_FRAMES: usize = 50_000;
/// Largest raw frame, in bytes (a standard-mode TIC frame is about 1 KB).
pub const MAX_FRAME_BYTES: usize = 16 * 1024;
/// Most buckets one aggregation query may return.
pub const MAX_BUCKETS: usize = 1_000_000;
/// Most distinct series in one store.
pub const MAX_SERIES: usize = 10_000_000;
/// Most points in one stored raw chunk (pco's per-chunk metadata is amortised over more
/// points; a day of one value per 2 s is 43,200). Rollup chunks cover fixed time spans.
pub const CHUNK_MAX_ROWS: usize = 65_536;
