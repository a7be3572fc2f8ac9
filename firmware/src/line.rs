//! The TIC line: UART RX at 7E1, speed chosen by the device core's mode
//! detector, complete frames queued.

use embassy_time::{with_timeout, Duration};
use esp_hal::uart::{Config, DataBits, Parity, RxConfig, StopBits, UartRx};
use esp_hal::Async;
use log::{info, warn};
use uplink::{DetectorConfig, LineMode, LineReceiver, LineSpeed};

use crate::queue::SharedCore;
use crate::status::{self, LineState};

/// A silence longer than this means no signal (frames are at most 33.4 ms
/// apart, §1.6, and a meter may pause ~10 s after an EOT).
const NO_SIGNAL_AFTER_MS: u64 = 15_000;
/// Read timeout, so the detector's clock advances on a silent line.
const READ_TIMEOUT: Duration = Duration::from_millis(250);

/// The UART settings for a TIC speed: 7 data bits, even parity, 1 stop bit.
pub fn uart_config(speed: LineSpeed) -> Config {
    Config::default()
        .with_baudrate(speed.baud())
        .with_data_bits(DataBits::_7)
        .with_parity(Parity::Even)
        .with_stop_bits(StopBits::_1)
        // An idle time of a few characters ends a read early, so bytes
        // reach the decoder with little delay at 1200 Bd.
        .with_rx(RxConfig::default().with_fifo_full_threshold(64).with_timeout(3))
}

/// Reads the line forever.
#[embassy_executor::task]
pub async fn line_task(mut rx: UartRx<'static, Async>, core: &'static SharedCore) {
    let mut receiver = LineReceiver::new(DetectorConfig::default(), status::now_ms());
    if let Err(e) = rx.apply_config(&uart_config(receiver.speed())) {
        warn!("UART config: {e:?}");
    }
    let mut buf = [0u8; 64];
    let mut last_byte_ms = 0u64;
    loop {
        let now = status::now_ms();
        match with_timeout(READ_TIMEOUT, rx.read_async(&mut buf)).await {
            Ok(Ok(n)) => {
                last_byte_ms = now;
                let mut rest = &buf[..n];
                while !rest.is_empty() {
                    let (used, frame) = receiver.feed_until_frame(rest, now);
                    rest = &rest[used..];
                    if let Some(frame) = frame {
                        let mut core = core.lock().await;
                        // Evictions and store errors are counted by the core.
                        let _ = core
                            .uplink
                            .enqueue(frame.bytes, status::unix_ms(), now)
                            .await;
                        crate::sender::FRAME_QUEUED.signal(());
                    }
                }
            }
            // Parity, framing, glitch or overrun: the byte is lost, the group
            // around it will fail its checksum; counted apart.
            Ok(Err(_)) => receiver.on_uart_error(),
            Err(_timeout) => {}
        }
        if let Some(speed) = receiver.tick(status::now_ms()) {
            info!("TIC line: trying {} Bd", speed.baud());
            if let Err(e) = rx.apply_config(&uart_config(speed)) {
                warn!("UART config: {e:?}");
            }
        }
        {
            let mut core = core.lock().await;
            core.line_counters = *receiver.counters();
            core.line_mode = receiver.line_mode();
        }
        let line = if status::now_ms().saturating_sub(last_byte_ms) > NO_SIGNAL_AFTER_MS {
            LineState::NoSignal
        } else if receiver.line_mode() == LineMode::Unknown {
            LineState::Garbled
        } else {
            LineState::Locked
        };
        status::update(|s| {
            s.line = line;
            s.uart_alive_ms = status::now_ms();
        });
    }
}
