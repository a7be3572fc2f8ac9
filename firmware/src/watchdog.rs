//! Hardware watchdog (TIMG1's MWDT): resets the chip when the line or the
//! uplink task stops going round its loop, e.g. a driver deadlock. Fed
//! only while both tasks are alive, so a stuck task is not hidden by a
//! healthy feeder.

use embassy_time::{Duration, Timer};
use esp_hal::peripherals::TIMG1;
use esp_hal::time::Duration as HalDuration;
use esp_hal::timer::timg::{MwdtStage, MwdtStageAction, Wdt};
use log::error;

use crate::status;

/// The MWDT fires after this long without a feed.
const TIMEOUT_S: u64 = 60;
/// The line task loops at least every 250 ms (read timeout).
const LINE_STALE_MS: u64 = 10_000;
/// The uplink task loops at least every 5 s, or once per post (≤ 3 × 10 s
/// of socket timeouts).
const UPLINK_STALE_MS: u64 = 45_000;

/// Feeds the watchdog while the other tasks are alive.
#[embassy_executor::task]
pub async fn watchdog_task(mut wdt: Wdt<TIMG1<'static>>) {
    wdt.set_timeout(MwdtStage::Stage0, HalDuration::from_secs(TIMEOUT_S));
    wdt.set_stage_action(MwdtStage::Stage0, MwdtStageAction::ResetSystem);
    wdt.enable();
    let mut warned = false;
    loop {
        Timer::after(Duration::from_secs(2)).await;
        let now = status::now_ms();
        let st = status::get();
        let line_alive = now.saturating_sub(st.uart_alive_ms) < LINE_STALE_MS;
        let uplink_alive = now.saturating_sub(st.uplink_alive_ms) < UPLINK_STALE_MS;
        if line_alive && uplink_alive {
            wdt.feed();
            warned = false;
        } else if !warned {
            error!("task stalled (line {line_alive}, uplink {uplink_alive}): watchdog will reset");
            warned = true;
        }
    }
}
