//! The device-side uplink: sequence numbers, queueing with counted
//! oldest-first eviction, batching by size and age, acks, retry with backoff.
//!
//! It is sans-I/O at its core ([`Uplink::prepare`] builds a batch,
//! [`Uplink::complete`] applies the post's result) so the firmware can post
//! without holding the queue's lock while UART frames keep arriving;
//! [`Uplink::send_due`] chains both for single-task callers and tests.

use crate::ack::{Ack, AckError};
use crate::backoff::{Backoff, BackoffConfig};
use crate::line::{FrameSink, ReceivedFrame};
use crate::store::{FrameStore, QueuedFrame, StoreError};
use crate::telemetry::Counters;
use crate::wire::{
    BatchHeader, BatchWriter, Counter, EncodeError, LineMode, Telemetry, RSSI_UNKNOWN,
};

/// Why a post failed, as the transport reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PostError {
    /// No network (WiFi down, no IP, DNS failure).
    NoNetwork,
    /// TCP connect, write or read failed or timed out.
    Connection,
    /// The server answered with a non-200 HTTP status.
    HttpStatus(u16),
    /// The 200 body was not a valid ack.
    BadAck(AckError),
}

/// Posts a batch body (with the device's bearer token) and returns the
/// server's ack.
#[allow(async_fn_in_trait)]
pub trait Transport {
    /// One HTTP POST.
    async fn post(&mut self, body: &[u8]) -> Result<Ack, PostError>;
}

/// Time sources.
pub trait Clock {
    /// Monotonic milliseconds since boot.
    fn now_ms(&self) -> u64;
    /// Wall-clock Unix milliseconds, once synchronised (SNTP).
    fn unix_ms(&self) -> Option<u64>;
}

/// Batching and retry policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UplinkConfig {
    /// Largest batch body; also the size of the buffer to pass to
    /// [`Uplink::prepare`]. 8 KiB holds about nine standard frames.
    pub max_batch_bytes: usize,
    /// Most frames per batch.
    pub max_batch_frames: usize,
    /// A queued frame is sent at the latest this long after it arrived
    /// (unless backing off): the live-view latency.
    pub max_batch_age_ms: u64,
    /// With nothing to send, a telemetry-only batch goes out this often, so
    /// the server sees a silent meter's device alive.
    pub heartbeat_ms: u64,
    /// Retry policy.
    pub backoff: BackoffConfig,
}

impl Default for UplinkConfig {
    fn default() -> Self {
        UplinkConfig {
            max_batch_bytes: 8 * 1024,
            max_batch_frames: 16,
            max_batch_age_ms: 5_000,
            heartbeat_ms: 60_000,
            backoff: BackoffConfig::default(),
        }
    }
}

/// Who the device is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Identity<'a> {
    /// Device id (wire rules: 1–32 bytes of `[0-9A-Za-z._-]`).
    pub device_id: &'a str,
    /// Firmware version.
    pub firmware_version: &'a str,
}

/// Platform facts for the telemetry block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlatformStatus {
    /// WiFi RSSI, or [`RSSI_UNKNOWN`].
    pub rssi_dbm: i8,
    /// Free heap bytes.
    pub free_heap_bytes: u32,
    /// Line state from the mode detector.
    pub line_mode: LineMode,
    /// Counters kept outside the uplink (line side, WiFi).
    pub counters: Counters,
}

impl Default for PlatformStatus {
    fn default() -> Self {
        PlatformStatus {
            rssi_dbm: RSSI_UNKNOWN,
            free_heap_bytes: 0,
            line_mode: LineMode::Unknown,
            counters: Counters::new(),
        }
    }
}

/// A batch built by [`Uplink::prepare`], awaiting its post's result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Prepared {
    /// Boot id of the batch's frames.
    pub boot_id: u64,
    /// First sequence number (the next to assign for a heartbeat).
    pub first_seq: u32,
    /// Frames in the batch.
    pub frames: usize,
    /// Body length in the caller's buffer.
    pub len: usize,
    /// When it was built.
    pub at_ms: u64,
}

impl Prepared {
    /// Last sequence number, if the batch has frames.
    pub fn last_seq(&self) -> Option<u32> {
        (self.frames > 0).then(|| self.first_seq + (self.frames as u32 - 1))
    }
}

/// What a completed post did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendOutcome {
    /// Every frame of the batch is durable and freed.
    Delivered {
        /// Frames freed from the queue.
        freed: usize,
    },
    /// The server made only part of the batch durable; the rest is retried
    /// after a backoff.
    Partial {
        /// Frames freed.
        freed: usize,
        /// Delay before the retry.
        retry_in_ms: u64,
    },
    /// The post failed; retried after a backoff.
    Failed {
        /// Why.
        error: PostError,
        /// Delay before the retry.
        retry_in_ms: u64,
    },
}

/// Why a frame could not be queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnqueueError<E> {
    /// Empty or over [`crate::MAX_FRAME_BYTES`] (counted as oversize).
    Oversize,
    /// The store failed (counted).
    Store(StoreError<E>),
    /// 2³² frames in one boot: never at one frame a second.
    SequenceExhausted,
}

/// Why a batch could not be prepared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrepareError<E> {
    /// The batch encoder refused (bad identity, buffer too small).
    Encode(EncodeError),
    /// Reading the store failed.
    Store(StoreError<E>),
}

/// Health of the link, for the status LED.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkHealth {
    /// The last post succeeded (or none was needed yet).
    Ok,
    /// Posts are failing; backing off.
    Failing,
}

/// The uplink state machine over a frame store `S`.
#[derive(Debug)]
pub struct Uplink<S> {
    store: S,
    config: UplinkConfig,
    boot_id: u64,
    next_seq: u32,
    counters: Counters,
    backoff: Backoff,
    retry_at_ms: Option<u64>,
    pending_since_ms: Option<u64>,
    last_post_ms: Option<u64>,
    started_ms: u64,
}

/// Frames from the line go straight into the queue. Failures (eviction,
/// oversize, store errors) are counted by [`Uplink::enqueue`] itself.
impl<S: FrameStore> FrameSink for Uplink<S> {
    async fn frame(
        &mut self,
        frame: &ReceivedFrame<'_>,
        device_time_unix_ms: Option<u64>,
        now_ms: u64,
    ) {
        let _ = self.enqueue(frame.bytes, device_time_unix_ms, now_ms).await;
    }
}

impl<S: FrameStore> Uplink<S> {
    /// A new boot: `boot_id` must be random per boot (hardware RNG) so the
    /// server never confuses two boots' sequence numbers. `store` may hold
    /// frames of earlier boots; they keep their own boot ids and go first.
    pub fn new(store: S, config: UplinkConfig, boot_id: u64, now_ms: u64) -> Self {
        let pending_since_ms = (store.frames() > 0).then_some(now_ms);
        Uplink {
            store,
            config,
            boot_id,
            next_seq: 0,
            counters: Counters::new(),
            backoff: Backoff::new(config.backoff, boot_id),
            retry_at_ms: None,
            pending_since_ms,
            last_post_ms: None,
            started_ms: now_ms,
        }
    }

    /// This boot's id.
    pub fn boot_id(&self) -> u64 {
        self.boot_id
    }

    /// The queue.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// The queue, mutably (e.g. to flush a tiered store before a reset).
    pub fn store_mut(&mut self) -> &mut S {
        &mut self.store
    }

    /// Gives the store back (planned reset; tests simulating one).
    pub fn into_store(self) -> S {
        self.store
    }

    /// The uplink's own counters (evictions, post failures, store errors).
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Link health for the LED.
    pub fn health(&self) -> LinkHealth {
        if self.backoff.failures() == 0 {
            LinkHealth::Ok
        } else {
            LinkHealth::Failing
        }
    }

    /// Queues a raw frame; returns its sequence number. When the store is
    /// full the oldest frames are evicted (and counted) until it fits.
    pub async fn enqueue(
        &mut self,
        bytes: &[u8],
        device_time_unix_ms: Option<u64>,
        now_ms: u64,
    ) -> Result<u32, EnqueueError<S::Error>> {
        if bytes.is_empty() || bytes.len() > crate::MAX_FRAME_BYTES {
            self.counters.bump(Counter::OversizeFrames);
            return Err(EnqueueError::Oversize);
        }
        let seq = self.next_seq;
        // Checked before storing, so a frame is never stored under a number
        // that would be handed out again.
        let next_seq = seq.checked_add(1).ok_or(EnqueueError::SequenceExhausted)?;
        let frame = QueuedFrame {
            boot_id: self.boot_id,
            seq,
            device_time_unix_ms,
            bytes,
        };
        loop {
            match self.store.push(&frame).await {
                Ok(()) => break,
                Err(StoreError::Full) => match self.store.pop_oldest().await {
                    Ok(true) => self.counters.bump(Counter::EvictedFrames),
                    // Empty yet full: this frame can never fit.
                    Ok(false) => {
                        self.counters.bump(Counter::OversizeFrames);
                        return Err(EnqueueError::Oversize);
                    }
                    Err(e) => {
                        self.counters.bump(Counter::StoreErrors);
                        return Err(EnqueueError::Store(e));
                    }
                },
                Err(StoreError::TooBig) => {
                    self.counters.bump(Counter::OversizeFrames);
                    return Err(EnqueueError::Oversize);
                }
                Err(e) => {
                    self.counters.bump(Counter::StoreErrors);
                    return Err(EnqueueError::Store(e));
                }
            }
        }
        self.next_seq = next_seq;
        self.counters.bump(Counter::QueuedFrames);
        self.pending_since_ms.get_or_insert(now_ms);
        Ok(seq)
    }

    /// When the next send is due (monotonic ms; a heartbeat when the queue
    /// is empty), so a task can sleep until then or until a frame arrives.
    pub fn next_send_ms(&self) -> u64 {
        let heartbeat_at = self
            .last_post_ms
            .unwrap_or(self.started_ms)
            .saturating_add(self.config.heartbeat_ms);
        let wanted = match self.pending_since_ms {
            Some(_) if self.backlog() => 0,
            Some(since) => since.saturating_add(self.config.max_batch_age_ms),
            None => heartbeat_at,
        };
        match self.retry_at_ms {
            Some(retry) => wanted.max(retry),
            None => wanted,
        }
    }

    /// A full batch is waiting: send without waiting for the age limit.
    fn backlog(&self) -> bool {
        self.store.frames() >= self.config.max_batch_frames
            || self.store.used_bytes() >= self.config.max_batch_bytes
    }

    /// Whether a send is due now.
    pub fn is_due(&self, now_ms: u64) -> bool {
        now_ms >= self.next_send_ms()
    }

    /// Builds the next batch into `buf`: the oldest queued frames of one
    /// boot, consecutive, within the size and count limits — or a
    /// telemetry-only heartbeat when the queue is empty.
    pub async fn prepare(
        &mut self,
        buf: &mut [u8],
        identity: &Identity<'_>,
        platform: &PlatformStatus,
        now_ms: u64,
    ) -> Result<Prepared, PrepareError<S::Error>> {
        // Which boot and sequence does the queue start with?
        let mut head = None;
        self.store
            .visit_oldest(&mut |f| {
                head = Some((f.boot_id, f.seq));
                false
            })
            .await
            .map_err(PrepareError::Store)?;
        let (boot_id, first_seq) = head.unwrap_or((self.boot_id, self.next_seq));

        let counters = self.counters.merged(&platform.counters);
        let header = BatchHeader {
            device_id: identity.device_id,
            boot_id,
            firmware_version: identity.firmware_version,
            telemetry: Telemetry {
                line_mode: platform.line_mode,
                rssi_dbm: platform.rssi_dbm,
                uptime_s: (now_ms / 1000) as u32,
                free_heap_bytes: platform.free_heap_bytes,
                queued_frames: self.store.frames() as u32,
                queued_bytes: self.store.used_bytes() as u32,
                queue_capacity_bytes: self.store.capacity_bytes() as u32,
                counters: counters.to_array(),
            },
            first_seq,
        };
        let limit = buf.len().min(self.config.max_batch_bytes);
        let mut writer = BatchWriter::new(&mut buf[..limit], &header)
            .map_err(PrepareError::Encode)?
            .with_frame_limit(self.config.max_batch_frames);
        let mut expected_seq = first_seq;
        let mut encode_error = None;
        self.store
            .visit_oldest(&mut |f| {
                if f.boot_id != boot_id || f.seq != expected_seq || !writer.fits(f.bytes.len()) {
                    return false;
                }
                match writer.push_frame(f.device_time_unix_ms, f.bytes) {
                    Ok(_) => {
                        expected_seq = expected_seq.wrapping_add(1);
                        true
                    }
                    Err(e) => {
                        encode_error = Some(e);
                        false
                    }
                }
            })
            .await
            .map_err(PrepareError::Store)?;
        let frames = writer.frame_count();
        if frames == 0 && head.is_some() {
            // The oldest frame does not fit this buffer: sending an empty
            // batch instead would loop forever without progress.
            return Err(PrepareError::Encode(
                encode_error.unwrap_or(EncodeError::BatchFull),
            ));
        }
        let len = writer.finish().len();
        Ok(Prepared {
            boot_id,
            first_seq,
            frames,
            len,
            at_ms: now_ms,
        })
    }

    /// Applies a post's result: frees what the ack made durable, schedules
    /// the retry on failure.
    pub async fn complete(
        &mut self,
        prepared: &Prepared,
        result: Result<Ack, PostError>,
        now_ms: u64,
    ) -> SendOutcome {
        self.last_post_ms = Some(now_ms);
        let ack = match result {
            Ok(ack) if ack.boot_id == prepared.boot_id => ack,
            Ok(_) => return self.fail(PostError::BadAck(AckError::BadMagic), now_ms),
            Err(error) => return self.fail(error, now_ms),
        };
        let mut freed = 0;
        if let Some(durable) = ack.durable_through_seq {
            loop {
                let mut head = None;
                if let Err(_e) = self
                    .store
                    .visit_oldest(&mut |f| {
                        head = Some((f.boot_id, f.seq));
                        false
                    })
                    .await
                {
                    self.counters.bump(Counter::StoreErrors);
                    break;
                }
                match head {
                    Some((boot, seq)) if boot == prepared.boot_id && seq <= durable => {
                        match self.store.pop_oldest().await {
                            Ok(true) => freed += 1,
                            Ok(false) => break,
                            Err(_) => {
                                self.counters.bump(Counter::StoreErrors);
                                break;
                            }
                        }
                    }
                    _ => break,
                }
            }
        }
        self.pending_since_ms = (self.store.frames() > 0).then_some(prepared.at_ms);
        let covered = match (prepared.last_seq(), ack.durable_through_seq) {
            (None, _) => true,
            (Some(last), Some(durable)) => durable >= last,
            (Some(_), None) => false,
        };
        if covered {
            self.backoff.reset();
            self.retry_at_ms = None;
            SendOutcome::Delivered { freed }
        } else {
            let retry_in_ms = self.backoff.fail();
            self.retry_at_ms = Some(now_ms + retry_in_ms);
            SendOutcome::Partial { freed, retry_in_ms }
        }
    }

    fn fail(&mut self, error: PostError, now_ms: u64) -> SendOutcome {
        self.counters.bump(Counter::PostFailures);
        let retry_in_ms = self.backoff.fail();
        self.retry_at_ms = Some(now_ms + retry_in_ms);
        SendOutcome::Failed { error, retry_in_ms }
    }

    /// If a send is due: prepare, post, complete. `None` when not due.
    pub async fn send_due<T: Transport, C: Clock>(
        &mut self,
        transport: &mut T,
        clock: &C,
        buf: &mut [u8],
        identity: &Identity<'_>,
        platform: &PlatformStatus,
    ) -> Option<Result<SendOutcome, PrepareError<S::Error>>> {
        let now_ms = clock.now_ms();
        if !self.is_due(now_ms) {
            return None;
        }
        let prepared = match self.prepare(buf, identity, platform, now_ms).await {
            Ok(p) => p,
            Err(e) => return Some(Err(e)),
        };
        let result = transport.post(&buf[..prepared.len]).await;
        Some(Ok(self.complete(&prepared, result, clock.now_ms()).await))
    }
}
