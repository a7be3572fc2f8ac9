//! A RAM tier in front of a persistent tier.
//!
//! New frames enter the RAM store. Whenever RAM holds more than
//! `ram_keep_bytes`, its oldest frames move to the persistent store, so the
//! persistent store always holds an older, contiguous prefix of the queue and
//! RAM the newer suffix: reading flash first then RAM is FIFO order.
//!
//! With acks arriving every few seconds, frames are freed while still in RAM
//! and flash is not written at all; during an outage the backlog flows to
//! flash. `ram_keep_bytes = 0` writes every frame through (nothing lost on a
//! crash, one flash write per frame); a larger value trades the last
//! `ram_keep_bytes` of unacknowledged frames on a crash for flash wear.
//! [`Tiered::flush`] moves everything to flash before a planned reset.

use crate::store::{FrameStore, QueuedFrame, StoreError};
use crate::wire::MAX_FRAME_BYTES;

/// Error of either tier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TierError<R, P> {
    /// The RAM tier.
    Ram(R),
    /// The persistent tier.
    Persistent(P),
}

/// RAM tier `R` in front of persistent tier `P`.
#[derive(Debug)]
pub struct Tiered<R, P> {
    ram: R,
    persistent: P,
    ram_keep_bytes: usize,
    moving: [u8; MAX_FRAME_BYTES],
}

type Result<T, R, P> = core::result::Result<
    T,
    StoreError<TierError<<R as FrameStore>::Error, <P as FrameStore>::Error>>,
>;

fn ram_err<R, P>(e: StoreError<R>) -> StoreError<TierError<R, P>> {
    match e {
        StoreError::Full => StoreError::Full,
        StoreError::TooBig => StoreError::TooBig,
        StoreError::Corrupt => StoreError::Corrupt,
        StoreError::Backend(e) => StoreError::Backend(TierError::Ram(e)),
    }
}

fn persistent_err<R, P>(e: StoreError<P>) -> StoreError<TierError<R, P>> {
    match e {
        StoreError::Full => StoreError::Full,
        StoreError::TooBig => StoreError::TooBig,
        StoreError::Corrupt => StoreError::Corrupt,
        StoreError::Backend(e) => StoreError::Backend(TierError::Persistent(e)),
    }
}

impl<R: FrameStore, P: FrameStore> Tiered<R, P> {
    /// Combines the tiers. `persistent` may already hold frames (a reboot):
    /// they are older than anything `ram` will receive.
    pub fn new(ram: R, persistent: P, ram_keep_bytes: usize) -> Self {
        Tiered {
            ram,
            persistent,
            ram_keep_bytes,
            moving: [0; MAX_FRAME_BYTES],
        }
    }

    /// The RAM tier.
    pub fn ram(&self) -> &R {
        &self.ram
    }

    /// The persistent tier.
    pub fn persistent(&self) -> &P {
        &self.persistent
    }

    /// Splits into (RAM, persistent).
    pub fn into_parts(self) -> (R, P) {
        (self.ram, self.persistent)
    }

    /// Moves the oldest RAM frame to the persistent tier.
    async fn spill_one(&mut self) -> Result<bool, R, P> {
        let mut head = None;
        let moving = &mut self.moving;
        self.ram
            .visit_oldest(&mut |f| {
                moving[..f.bytes.len()].copy_from_slice(f.bytes);
                head = Some((f.boot_id, f.seq, f.device_time_unix_ms, f.bytes.len()));
                false
            })
            .await
            .map_err(ram_err)?;
        let Some((boot_id, seq, device_time_unix_ms, len)) = head else {
            return Ok(false);
        };
        let frame = QueuedFrame {
            boot_id,
            seq,
            device_time_unix_ms,
            bytes: &self.moving[..len],
        };
        self.persistent.push(&frame).await.map_err(persistent_err)?;
        self.ram.pop_oldest().await.map_err(ram_err)?;
        Ok(true)
    }

    /// Moves every RAM frame to the persistent tier (before a planned reset).
    pub async fn flush(&mut self) -> Result<(), R, P> {
        while self.spill_one().await? {}
        Ok(())
    }
}

impl<R: FrameStore, P: FrameStore> FrameStore for Tiered<R, P> {
    type Error = TierError<R::Error, P::Error>;

    async fn push(&mut self, frame: &QueuedFrame<'_>) -> Result<(), R, P> {
        loop {
            match self.ram.push(frame).await {
                Ok(()) => break,
                Err(StoreError::Full) if self.ram.frames() > 0 => {
                    // RAM full: make room by moving its oldest to flash. If
                    // flash is full too, report Full: the frame is not stored
                    // and the caller evicts the oldest frame overall.
                    self.spill_one().await?;
                }
                Err(e) => return Err(ram_err(e)),
            }
        }
        while self.ram.used_bytes() > self.ram_keep_bytes && self.ram.frames() > 0 {
            match self.spill_one().await {
                Ok(_) => {}
                // The frame is stored (in RAM); a full flash only stops the
                // spilling until space is freed.
                Err(StoreError::Full) => break,
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    async fn visit_oldest(
        &mut self,
        visit: &mut dyn FnMut(&QueuedFrame<'_>) -> bool,
    ) -> Result<(), R, P> {
        let mut stopped = false;
        self.persistent
            .visit_oldest(&mut |f| {
                stopped = !visit(f);
                !stopped
            })
            .await
            .map_err(persistent_err)?;
        if stopped {
            return Ok(());
        }
        self.ram.visit_oldest(visit).await.map_err(ram_err)
    }

    async fn pop_oldest(&mut self) -> Result<bool, R, P> {
        if self.persistent.frames() > 0 {
            self.persistent.pop_oldest().await.map_err(persistent_err)
        } else {
            self.ram.pop_oldest().await.map_err(ram_err)
        }
    }

    fn frames(&self) -> usize {
        self.ram.frames() + self.persistent.frames()
    }

    fn used_bytes(&self) -> usize {
        self.ram.used_bytes() + self.persistent.used_bytes()
    }

    fn capacity_bytes(&self) -> usize {
        self.ram.capacity_bytes() + self.persistent.capacity_bytes()
    }
}
