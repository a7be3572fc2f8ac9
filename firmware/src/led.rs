//! Status LED. Count the flashes in each 2-second cycle (docs/firmware.md):
//! 1 = no TIC signal, 2 = TIC garbled / wrong mode, 3 = WiFi down,
//! 4 = server down; healthy = off, with one short flash per batch sent.

use embassy_time::{Duration, Timer};
use esp_hal::gpio::Output;

use uplink::LineState;

use crate::status;

const FLASH: Duration = Duration::from_millis(120);
const GAP: Duration = Duration::from_millis(200);
const CYCLE_MS: u64 = 2_000;

fn flashes_wanted() -> u32 {
    let st = status::get();
    match st.line {
        LineState::NoSignal => 1,
        LineState::Garbled => 2,
        LineState::Locked if !st.network_up => 3,
        LineState::Locked if !st.server_ok => 4,
        LineState::Locked => 0,
    }
}

/// Drives the LED forever.
#[embassy_executor::task]
pub async fn led_task(mut led: Output<'static>) {
    loop {
        let flashes = flashes_wanted();
        if flashes == 0 {
            // Healthy: mirror the "sending" state, polled every 50 ms.
            for _ in 0..(CYCLE_MS / 50) {
                if status::get().sending {
                    led.set_high();
                } else {
                    led.set_low();
                }
                Timer::after(Duration::from_millis(50)).await;
            }
            continue;
        }
        let mut spent_ms = 0;
        for _ in 0..flashes {
            led.set_high();
            Timer::after(FLASH).await;
            led.set_low();
            Timer::after(GAP).await;
            spent_ms += (FLASH + GAP).as_millis();
        }
        Timer::after(Duration::from_millis(CYCLE_MS.saturating_sub(spent_ms))).await;
    }
}
