//! # store — teleinfo's embedded time-series store
//!
//! One SQLite file (WAL mode, `synchronous=FULL`) holds:
//! - a **head log**: every acknowledged batch as one compressed record, fsynced before the
//!   write returns (acknowledged = durable), mirrored in memory as a columnar head;
//! - **chunks**: per-series columns of one UTC day (at most 65,536 points) compressed with pco
//!   (~0.1 byte per meter point), written by checkpoints that fold the head in;
//! - **rollups** per hour (count, sum, min, max, first, last with their timestamps), also pco
//!   chunks, so a year of one series aggregates from ~9,000 rows; per minute only where
//!   retention retires raw points (elsewhere whole minutes are read from the raw points);
//! - an archive of **raw frames** per device, zstd-compressed blocks, so history can be
//!   re-decoded;
//! - the **uplink high-water marks** `(device, boot) → highest durable sequence number`,
//!   updated in the same transaction as the data they cover (idempotent retries).
//!
//! See `docs/store.md` for the layout and the durability argument.
//!
//! ```no_run
//! use store::{Store, StoreConfig, SeriesKey, WriteBatch, Bucketing, Aggregator};
//! # fn main() -> Result<(), store::StoreError> {
//! let store = Store::open("/var/lib/teleinfo/store.db", StoreConfig::default())?;
//! let sinsts = store.series_id(&SeriesKey::new("SINSTS", [("meter", "041776199277")])?)?;
//! let mut batch = WriteBatch::new();
//! batch.add_point(sinsts, 1_796_311_200_000, 1250.0)?;
//! store.write(batch)?; // durable when this returns
//! let day = store.downsample(sinsts, 1_796_256_000_000, 1_796_342_400_000,
//!     &Bucketing::TargetCount { points: 1000 }, Aggregator::Avg)?;
//! # let _ = day; Ok(()) }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod agg;
mod batch;
mod buckets;
mod codec;
mod error;
mod key;
pub mod limits;
mod store;

pub use agg::{Agg, Aggregator};
pub use batch::{Source, WriteBatch, WriteReceipt};
pub use buckets::{
    bucket_boundaries, local_period_boundaries, nice_width_ms, time_zone, Bucketing, Period,
};
pub use error::{Result, StoreError};
pub use key::{SeriesId, SeriesKey};
pub use store::{
    Bucket, EnergyBucket, Points, RawFrame, Retention, RetentionReport, Store, StoreConfig,
    StoreStats,
};
