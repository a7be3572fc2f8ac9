//! # uplink — device→server wire format and the ESP32 device core
//!
//! `no_std`, no allocator, no `unsafe`. Shared by the firmware (device side),
//! `teleinfo forward` and the server (decoder side).
//!
//! * [`wire`]: the batch body a device POSTs (versioned, bounded, binary),
//!   with [`BatchWriter`] and [`decode_batch`]; [`ack`]: the server's reply.
//!   Both are specified byte by byte in `docs/uplink.md`; [`plan_batch`] is
//!   the server's side of the ack semantics (skip, gap, ack to send).
//! * [`Uplink`]: the device's queue logic — sequence numbers, batching by
//!   size and age, acks, retry with backoff and jitter, bounded capacity with
//!   counted oldest-first eviction — over a [`FrameStore`] ([`RamStore`],
//!   [`FlashStore`] behind the `flash` feature, or both as [`Tiered`]).
//! * [`LineReceiver`]: UART bytes → checked raw frames, via the `tic`
//!   protocol core, with the baud/mode [`ModeDetector`].
//!
//! Hardware stays behind traits — [`TicUart`] (the UART), [`Transport`]
//! (posts a batch, returns the ack), [`Clock`], [`FrameStore`] (the
//! persistent queue) — so all of this is tested on the host.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod ack;
pub mod backoff;
pub mod compact;
pub mod detect;
pub mod device;
#[cfg(feature = "flash")]
pub mod flash;
pub mod http;
pub mod line;
pub mod server;
pub mod store;
pub mod telemetry;
pub mod tiered;
pub mod wire;

pub use ack::{Ack, AckError, ACK_BYTES};
pub use backoff::{Backoff, BackoffConfig};
pub use detect::{DetectorConfig, DetectorState, LineSpeed, ModeDetector};
pub use device::{
    Clock, EnqueueError, Identity, LinkHealth, PlatformStatus, PostError, PrepareError, Prepared,
    SendOutcome, Transport, Uplink, UplinkConfig,
};
#[cfg(feature = "flash")]
pub use flash::{FlashBuffers, FlashStore};
pub use line::{
    FrameSink, LineReceiver, LineState, ReceivedFrame, TicUart, UartError, NO_SIGNAL_AFTER_MS,
};
pub use server::{plan_batch, BatchPlan};
pub use store::{FrameStore, QueuedFrame, RamStore, StoreError};
pub use telemetry::Counters;
pub use tiered::{TierError, Tiered};
pub use wire::{
    decode_batch, Batch, BatchHeader, BatchWriter, Counter, DecodeError, EncodeError, Field,
    FrameView, LineMode, Telemetry, MAX_BATCH_BYTES, MAX_BATCH_FRAMES, MAX_FRAME_BYTES,
};
