//! The uplink task: waits until the device core says a batch is due, builds
//! it under the lock, posts it without the lock (frames keep arriving), and
//! hands the result back to the core.

use embassy_futures::select::select;
use embassy_net::Stack;
use embassy_sync::blocking_mutex::raw::CriticalSectionRawMutex;
use embassy_sync::signal::Signal;
use embassy_time::{Duration, Instant, Timer};
use log::{info, warn};
use static_cell::ConstStaticCell;
use uplink::http::ServerUrl;
use uplink::{Counter, Identity, PlatformStatus, SendOutcome, Transport};

use crate::config;
use crate::http::{Buffers, HttpTransport};
use crate::queue::SharedCore;
use crate::status;

/// Raised by the line task after each queued frame.
pub static FRAME_QUEUED: Signal<CriticalSectionRawMutex, ()> = Signal::new();

static BATCH: ConstStaticCell<[u8; config::BATCH_BYTES]> =
    ConstStaticCell::new([0; config::BATCH_BYTES]);
static HTTP_BUFFERS: ConstStaticCell<Buffers> = ConstStaticCell::new(Buffers::new());

/// Longest sleep between rounds, so the watchdog sees this task alive.
const MAX_IDLE: Duration = Duration::from_secs(5);

/// Sends batches forever.
#[embassy_executor::task]
pub async fn sender_task(
    stack: Stack<'static>,
    core: &'static SharedCore,
    device_id: &'static str,
) {
    let batch = BATCH.take();
    let url = match ServerUrl::parse(config::SERVER_URL) {
        Ok(url) => url,
        Err(e) => {
            // Nothing can be sent; frames still queue (and evict) so the
            // device keeps its counters, and the LED shows "server down".
            warn!(
                "TELEINFO_SERVER_URL {:?} unusable: {e:?}",
                config::SERVER_URL
            );
            status::update(|s| s.server_ok = false);
            loop {
                status::update(|s| s.uplink_alive_ms = status::now_ms());
                Timer::after(MAX_IDLE).await;
            }
        }
    };
    let mut transport = HttpTransport {
        stack,
        url,
        token: config::DEVICE_TOKEN,
        buffers: HTTP_BUFFERS.take(),
    };
    let identity = Identity {
        device_id,
        firmware_version: config::FIRMWARE_VERSION,
    };
    loop {
        status::update(|s| s.uplink_alive_ms = status::now_ms());
        let due_ms = core.lock().await.uplink.next_send_ms();
        let now = status::now_ms();
        if now < due_ms {
            let wake = Instant::from_millis(due_ms.min(now + MAX_IDLE.as_millis()));
            // A new frame may make a batch full, hence due, early.
            select(Timer::at(wake), FRAME_QUEUED.wait()).await;
            continue;
        }
        if !status::get().network_up {
            // Not a server failure: wait for WiFi without using up retries.
            Timer::after(Duration::from_secs(1)).await;
            continue;
        }
        let prepared = {
            let mut core = core.lock().await;
            let st = status::get();
            let mut counters = core.line_counters;
            counters.add(Counter::WifiConnects, st.wifi_connects);
            let platform = PlatformStatus {
                rssi_dbm: st.rssi_dbm,
                free_heap_bytes: esp_alloc::HEAP.free() as u32,
                line_mode: core.line_mode,
                counters,
            };
            core.uplink.prepare(batch, &identity, &platform, now).await
        };
        let prepared = match prepared {
            Ok(p) => p,
            Err(e) => {
                warn!("batch not built: {e:?}");
                Timer::after(MAX_IDLE).await;
                continue;
            }
        };
        status::update(|s| s.sending = true);
        let result = transport.post(&batch[..prepared.len]).await;
        status::update(|s| {
            s.sending = false;
            s.server_ok = result.is_ok();
        });
        let outcome = core
            .lock()
            .await
            .uplink
            .complete(&prepared, result, status::now_ms())
            .await;
        match outcome {
            SendOutcome::Delivered { freed } => {
                if freed > 0 {
                    info!("delivered {freed} frames");
                }
            }
            SendOutcome::Partial { freed, retry_in_ms } => {
                warn!("server kept {freed} frames only; retry in {retry_in_ms} ms");
            }
            SendOutcome::Failed { error, retry_in_ms } => {
                warn!("post failed: {error:?}; retry in {retry_in_ms} ms");
            }
        }
    }
}
