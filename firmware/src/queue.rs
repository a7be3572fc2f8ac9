//! The frame queue: a RAM ring in front of sequential-storage's flash FIFO
//! on the `ticqueue` partition, and the shared device core around it.

use embassy_embedded_hal::adapter::BlockingAsync;
use embassy_sync::blocking_mutex::raw::CriticalSectionRawMutex;
use embassy_sync::mutex::Mutex;
use esp_bootloader_esp_idf::partitions;
use esp_storage::FlashStorage;
use log::{info, warn};
use static_cell::{ConstStaticCell, StaticCell};
use uplink::{
    Counters, FlashBuffers, FlashStore, FrameStore, LineMode, QueuedFrame, RamStore, StoreError,
    Tiered, Uplink, UplinkConfig,
};

use crate::config;

/// The flash driver as sequential-storage wants it (async NOR flash).
pub type Flash = BlockingAsync<FlashStorage<'static>>;

/// The persistent tier: the flash queue, or nothing when the partition
/// table has no `ticqueue` (the device then runs on RAM alone).
pub enum Persistent {
    /// Frames on flash.
    Flash(FlashStore<'static, Flash>),
    /// No partition: every push reports Full, so frames stay in RAM.
    Absent,
}

impl FrameStore for Persistent {
    type Error = uplink::flash::FlashError<Flash>;

    async fn push(&mut self, frame: &QueuedFrame<'_>) -> Result<(), StoreError<Self::Error>> {
        match self {
            Persistent::Flash(store) => store.push(frame).await,
            Persistent::Absent => Err(StoreError::Full),
        }
    }

    async fn visit_oldest(
        &mut self,
        visit: &mut dyn FnMut(&QueuedFrame<'_>) -> bool,
    ) -> Result<(), StoreError<Self::Error>> {
        match self {
            Persistent::Flash(store) => store.visit_oldest(visit).await,
            Persistent::Absent => Ok(()),
        }
    }

    async fn pop_oldest(&mut self) -> Result<bool, StoreError<Self::Error>> {
        match self {
            Persistent::Flash(store) => store.pop_oldest().await,
            Persistent::Absent => Ok(false),
        }
    }

    fn frames(&self) -> usize {
        match self {
            Persistent::Flash(store) => store.frames(),
            Persistent::Absent => 0,
        }
    }

    fn used_bytes(&self) -> usize {
        match self {
            Persistent::Flash(store) => store.used_bytes(),
            Persistent::Absent => 0,
        }
    }

    fn capacity_bytes(&self) -> usize {
        match self {
            Persistent::Flash(store) => store.capacity_bytes(),
            Persistent::Absent => 0,
        }
    }
}

/// The whole queue.
pub type Store = Tiered<&'static mut RamStore<{ config::RAM_TIER_BYTES }>, Persistent>;

/// What the UART and uplink tasks share.
pub struct Core {
    /// Queue, sequence numbers, batching, acks.
    pub uplink: Uplink<Store>,
    /// Line-side counters, copied in by the UART task.
    pub line_counters: Counters,
    /// Detected line mode, copied in by the UART task.
    pub line_mode: LineMode,
}

/// The shared core. An async mutex: holders await flash operations.
pub type SharedCore = Mutex<CriticalSectionRawMutex, Core>;

// Const-initialised statics land in .bss; building them on a task's stack
// first would need a 32 KiB stack.
static RAM_TIER: ConstStaticCell<RamStore<{ config::RAM_TIER_BYTES }>> =
    ConstStaticCell::new(RamStore::new());
static FLASH_BUFFERS: ConstStaticCell<FlashBuffers> = ConstStaticCell::new(FlashBuffers::new());
static CORE: StaticCell<SharedCore> = StaticCell::new();

/// Finds the queue partition, mounts it (erasing it if it is corrupt) and
/// builds the shared core.
pub async fn init(mut flash: FlashStorage<'static>, boot_id: u64) -> &'static SharedCore {
    let range = find_partition(&mut flash);
    let buffers = FLASH_BUFFERS.take();
    let persistent = match range {
        None => {
            warn!(
                "no '{}' partition: queue in RAM only",
                config::QUEUE_PARTITION
            );
            Persistent::Absent
        }
        Some(range) => mount(BlockingAsync::new(flash), range, buffers).await,
    };
    let store = Tiered::new(RAM_TIER.take(), persistent, config::RAM_KEEP_BYTES);
    info!(
        "queue: {} frames kept from before the reset, capacity {} bytes",
        store.frames(),
        store.capacity_bytes()
    );
    let uplink = Uplink::new(
        store,
        UplinkConfig {
            max_batch_bytes: config::BATCH_BYTES,
            ..UplinkConfig::default()
        },
        boot_id,
        crate::status::now_ms(),
    );
    CORE.init(Mutex::new(Core {
        uplink,
        line_counters: Counters::new(),
        line_mode: LineMode::Unknown,
    }))
}

fn find_partition(flash: &mut FlashStorage<'static>) -> Option<core::ops::Range<u32>> {
    let mut table = [0u8; partitions::PARTITION_TABLE_MAX_LEN];
    let table = partitions::read_partition_table(flash, &mut table).ok()?;
    let entry = table
        .iter()
        .find(|p| p.label_as_str() == config::QUEUE_PARTITION)?;
    Some(entry.offset()..entry.offset() + entry.len())
}

async fn mount(
    flash: Flash,
    range: core::ops::Range<u32>,
    buffers: &'static mut FlashBuffers,
) -> Persistent {
    // sequential-storage repairs an interrupted write by itself; a queue it
    // still cannot read is erased rather than leaving the device without one.
    match FlashStore::mount_or_erase(flash, range, buffers).await {
        Ok((store, erased)) => {
            if erased {
                warn!("flash queue was unreadable and has been erased");
            }
            Persistent::Flash(store)
        }
        Err(e) => {
            warn!("flash queue unusable ({e:?}): queue in RAM only");
            Persistent::Absent
        }
    }
}
