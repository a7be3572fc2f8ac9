//! The one error type of the store.
//!
//! Every variant says what was wrong and, where the caller can do something about it, what to
//! do. Validation errors are raised *before* anything is written, so a rejected batch leaves
//! the store untouched.

use thiserror::Error;

/// Result alias used throughout the crate.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Everything that can go wrong in the store.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A metric name, tag key or tag value is empty, too long or has a forbidden character.
    #[error("invalid name {name:?}: {reason} (allowed: letters, digits and - _ . / +, at most {max} bytes)", max = crate::limits::MAX_NAME_BYTES)]
    InvalidName {
        /// The offending name.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A series key has too many tags or the same tag key twice.
    #[error("invalid tags: {0}")]
    InvalidTags(String),
    /// A value is NaN or infinite: the store keeps finite numbers only.
    #[error("value {value} at ts_ms={ts_ms} is not finite; NaN and infinities cannot be stored")]
    NonFiniteValue {
        /// The timestamp of the rejected point.
        ts_ms: i64,
        /// The rejected value.
        value: f64,
    },
    /// A timestamp outside the supported range (0 ..= year 9999).
    #[error("timestamp {ts_ms} ms is outside 0..={max} (1970 to year 9999); send Unix milliseconds", max = crate::limits::MAX_TS_MS)]
    TimestampOutOfRange {
        /// The rejected timestamp.
        ts_ms: i64,
    },
    /// A bounded quantity was exceeded (batch size, frame size, query points, buckets, ...).
    #[error("limit exceeded: {what} is {got}, the maximum is {max}; {hint}")]
    LimitExceeded {
        /// Which limit.
        what: &'static str,
        /// The requested amount.
        got: u64,
        /// The limit.
        max: u64,
        /// What to do instead.
        hint: &'static str,
    },
    /// A query range is empty or reversed.
    #[error("invalid range: from_ms={from_ms} must be < to_ms={to_ms}")]
    InvalidRange {
        /// Inclusive start.
        from_ms: i64,
        /// Exclusive end.
        to_ms: i64,
    },
    /// Bucket boundaries are not strictly increasing, or a bucket width is not positive.
    #[error("invalid buckets: {0}")]
    InvalidBuckets(String),
    /// The series id is not known to this store.
    #[error("unknown series id {0}; obtain ids from Store::series_id or Store::list_series")]
    UnknownSeries(u32),
    /// Frames were added to a batch in a way that breaks the uplink contract.
    #[error("invalid batch: {0}")]
    InvalidBatch(String),
    /// The time zone name is not in the bundled tz database.
    #[error("unknown time zone {name:?}: {reason}; use an IANA name such as \"Europe/Paris\"")]
    UnknownTimeZone {
        /// The name asked for.
        name: String,
        /// jiff's explanation.
        reason: String,
    },
    /// Local-time arithmetic failed (out of the supported calendar range).
    #[error("local time computation failed: {0}")]
    Time(String),
    /// Stored data could not be decoded: the database file is damaged or from an incompatible
    /// version. Restore from backup or re-import the raw frames.
    #[error("corrupt store data: {0}")]
    Corrupt(String),
    /// SQLite reported an error (disk full, permissions, locked by another process, ...).
    #[error("sqlite: {0} (check free disk space, file permissions and that the file is a teleinfo store)")]
    Sqlite(#[from] rusqlite::Error),
    /// Compression or decompression failed.
    #[error("compression: {0}")]
    Compression(String),
    /// File system error (creating the directory, ...).
    #[error("i/o: {0} (check the store path, permissions and free disk space)")]
    Io(#[from] std::io::Error),
    /// The group commit this batch was part of failed; nothing of the batch was acknowledged
    /// and it may be retried.
    #[error("commit failed, batch not stored (safe to retry): {0}")]
    CommitFailed(String),
}

impl From<pco::errors::PcoError> for StoreError {
    fn from(e: pco::errors::PcoError) -> Self {
        StoreError::Compression(e.to_string())
    }
}

impl From<rusqlite::types::FromSqlError> for StoreError {
    fn from(e: rusqlite::types::FromSqlError) -> Self {
        StoreError::Corrupt(format!("unexpected column type: {e}"))
    }
}
