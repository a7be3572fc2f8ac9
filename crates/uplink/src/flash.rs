//! The persistent tier: sequential-storage's NOR-flash FIFO, holding one
//! encoded record (see [`crate::store`]) per item.
//!
//! sequential-storage writes items sequentially across the partition's
//! pages and erases a page only when its items are all popped, so wear is
//! spread over the whole partition and a power cut loses at most the item
//! being written.

use core::ops::Range;

use embedded_storage_async::nor_flash::MultiwriteNorFlash;
use sequential_storage::cache::{Cache, Uncached};
use sequential_storage::queue::{QueueConfig, QueueStorage};

use crate::store::{
    decode_record, encode_record, FrameStore, QueuedFrame, StoreError, MAX_RECORD_BYTES,
};
use crate::wire::MAX_FRAME_BYTES;

/// sequential-storage's error for flash `F`.
pub type FlashError<F> =
    sequential_storage::Error<<F as embedded_storage_async::nor_flash::ErrorType>::Error>;

type Queue<F> = QueueStorage<F, Cache<Uncached, Uncached, Uncached>>;

/// Work buffers of a [`FlashStore`]: 4 KiB, kept apart so the firmware can
/// place them in a static instead of on a task's stack.
#[derive(Debug)]
pub struct FlashBuffers {
    record: [u8; MAX_RECORD_BYTES],
    unpacked: [u8; MAX_FRAME_BYTES],
}

impl Default for FlashBuffers {
    fn default() -> Self {
        Self::new()
    }
}

impl FlashBuffers {
    /// Zeroed buffers (const, for statics).
    pub const fn new() -> Self {
        FlashBuffers {
            record: [0; MAX_RECORD_BYTES],
            unpacked: [0; MAX_FRAME_BYTES],
        }
    }
}

/// Frames in a NOR-flash range.
pub struct FlashStore<'b, F: MultiwriteNorFlash> {
    queue: Queue<F>,
    frames: usize,
    used: usize,
    capacity: usize,
    buffers: &'b mut FlashBuffers,
}

impl<F: MultiwriteNorFlash> core::fmt::Debug for FlashStore<'_, F> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("FlashStore")
            .field("frames", &self.frames)
            .field("used", &self.used)
            .field("capacity", &self.capacity)
            .finish()
    }
}

fn backend<E>(e: sequential_storage::Error<E>) -> StoreError<sequential_storage::Error<E>> {
    match e {
        sequential_storage::Error::FullStorage => StoreError::Full,
        sequential_storage::Error::ItemTooBig => StoreError::TooBig,
        other => StoreError::Backend(other),
    }
}

impl<'b, F: MultiwriteNorFlash> FlashStore<'b, F> {
    /// Opens the queue in `range` (page-aligned) and counts what survived
    /// the last reset. A range that is not page-aligned or smaller than a
    /// page gives [`StoreError::TooBig`] (nothing could ever fit).
    pub async fn mount(
        flash: F,
        range: Range<u32>,
        buffers: &'b mut FlashBuffers,
    ) -> Result<Self, StoreError<FlashError<F>>> {
        let mut store = Self::open(flash, range, buffers)?;
        store.count().await?;
        Ok(store)
    }

    /// Like [`mount`](Self::mount), but a queue that cannot be read is
    /// erased instead of failing: a device must keep queueing new frames.
    /// The flag tells whether an erase happened (to be reported).
    pub async fn mount_or_erase(
        flash: F,
        range: Range<u32>,
        buffers: &'b mut FlashBuffers,
    ) -> Result<(Self, bool), StoreError<FlashError<F>>> {
        let mut store = Self::open(flash, range, buffers)?;
        match store.count().await {
            Ok(()) => Ok((store, false)),
            Err(_) => {
                store.erase_all().await?;
                Ok((store, true))
            }
        }
    }

    fn open(
        flash: F,
        range: Range<u32>,
        buffers: &'b mut FlashBuffers,
    ) -> Result<Self, StoreError<FlashError<F>>> {
        let capacity = range.end.saturating_sub(range.start) as usize;
        let config = QueueConfig::try_new(range).map_err(|_| StoreError::TooBig)?;
        Ok(FlashStore {
            queue: QueueStorage::new(flash, config, Cache::new_uncached()),
            frames: 0,
            used: 0,
            capacity,
            buffers,
        })
    }

    async fn count(&mut self) -> Result<(), StoreError<FlashError<F>>> {
        let overhead = Queue::<F>::item_overhead_size() as usize;
        let (mut frames, mut used) = (0, 0);
        let mut iter = self.queue.iter().await.map_err(backend)?;
        while let Some(entry) = iter.next(&mut self.buffers.record).await.map_err(backend)? {
            frames += 1;
            used += entry.len() + overhead;
        }
        self.frames = frames;
        self.used = used;
        Ok(())
    }

    /// Gives the flash and the buffers back (to remount, or to simulate a
    /// reset in tests).
    pub fn into_parts(self) -> (F, &'b mut FlashBuffers) {
        (self.queue.destroy().0, self.buffers)
    }

    /// Gives the flash back.
    pub fn into_flash(self) -> F {
        self.queue.destroy().0
    }

    /// Erases the whole range (factory reset, or unrecoverable corruption).
    pub async fn erase_all(&mut self) -> Result<(), StoreError<FlashError<F>>> {
        self.queue.erase_all().await.map_err(backend)?;
        self.frames = 0;
        self.used = 0;
        Ok(())
    }
}

impl<F: MultiwriteNorFlash> FrameStore for FlashStore<'_, F> {
    type Error = FlashError<F>;

    async fn push(&mut self, frame: &QueuedFrame<'_>) -> Result<(), StoreError<Self::Error>> {
        let len = encode_record(frame, &mut self.buffers.record).ok_or(StoreError::TooBig)?;
        self.queue
            .push(&self.buffers.record[..len], false)
            .await
            .map_err(backend)?;
        self.frames += 1;
        self.used += len + Queue::<F>::item_overhead_size() as usize;
        Ok(())
    }

    async fn visit_oldest(
        &mut self,
        visit: &mut dyn FnMut(&QueuedFrame<'_>) -> bool,
    ) -> Result<(), StoreError<Self::Error>> {
        let mut iter = self.queue.iter().await.map_err(backend)?;
        let FlashBuffers { record, unpacked } = &mut *self.buffers;
        while let Some(entry) = iter.next(record).await.map_err(backend)? {
            let frame = decode_record(&entry, unpacked).ok_or(StoreError::Corrupt)?;
            if !visit(&frame) {
                break;
            }
        }
        Ok(())
    }

    async fn pop_oldest(&mut self) -> Result<bool, StoreError<Self::Error>> {
        match self
            .queue
            .pop(&mut self.buffers.record)
            .await
            .map_err(backend)?
        {
            Some(record) => {
                let len = record.len();
                self.frames = self.frames.saturating_sub(1);
                self.used = self
                    .used
                    .saturating_sub(len + Queue::<F>::item_overhead_size() as usize);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    fn frames(&self) -> usize {
        self.frames
    }

    fn used_bytes(&self) -> usize {
        self.used
    }

    fn capacity_bytes(&self) -> usize {
        self.capacity
    }
}
