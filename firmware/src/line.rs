//! The TIC line: UART RX at 7E1 behind the device core's `TicUart` trait;
//! the core's `LineReceiver` decodes, detects the speed and queues frames.

use embassy_time::{with_timeout, Duration};
use esp_hal::uart::{Config, DataBits, Parity, RxConfig, StopBits, UartRx};
use esp_hal::Async;
use log::{info, warn};
use uplink::{
    Clock, DetectorConfig, FrameSink, LineReceiver, LineSpeed, ReceivedFrame, TicUart, UartError,
};

use crate::queue::SharedCore;
use crate::status;

/// Read timeout, so the detector's clock advances on a silent line.
const READ_TIMEOUT: Duration = Duration::from_millis(250);

/// The UART settings for a TIC speed: 7 data bits, even parity, 1 stop bit.
pub fn uart_config(speed: LineSpeed) -> Config {
    Config::default()
        .with_baudrate(speed.baud())
        .with_data_bits(DataBits::_7)
        .with_parity(Parity::Even)
        .with_stop_bits(StopBits::_1)
        // Hand bytes over after 64 of them or 3 idle character times, so a
        // read returns promptly at 1200 Bd too.
        .with_rx(
            RxConfig::default()
                .with_fifo_full_threshold(64)
                .with_timeout(3),
        )
}

/// esp-hal's async UART receiver as the core's `TicUart`.
struct Uart {
    rx: UartRx<'static, Async>,
}

impl TicUart for Uart {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, UartError> {
        match with_timeout(READ_TIMEOUT, self.rx.read_async(buf)).await {
            Ok(Ok(n)) => Ok(n),
            // Parity, framing, glitch or overrun: the byte is lost.
            Ok(Err(_)) => Err(UartError),
            Err(_timeout) => Ok(0),
        }
    }

    fn set_speed(&mut self, speed: LineSpeed) {
        info!("TIC line: trying {} Bd", speed.baud());
        if let Err(e) = self.rx.apply_config(&uart_config(speed)) {
            warn!("UART config: {e:?}");
        }
    }
}

/// The monotonic clock and the SNTP wall clock.
pub struct DeviceClock;

impl Clock for DeviceClock {
    fn now_ms(&self) -> u64 {
        status::now_ms()
    }

    fn unix_ms(&self) -> Option<u64> {
        status::unix_ms()
    }
}

/// Frames go into the shared core's queue; the sender is woken.
struct CoreSink {
    core: &'static SharedCore,
}

impl FrameSink for CoreSink {
    async fn frame(&mut self, frame: &ReceivedFrame<'_>, time: Option<u64>, now_ms: u64) {
        self.core
            .lock()
            .await
            .uplink
            .frame(frame, time, now_ms)
            .await;
        crate::sender::FRAME_QUEUED.signal(());
    }
}

/// Reads the line forever.
#[embassy_executor::task]
pub async fn line_task(rx: UartRx<'static, Async>, core: &'static SharedCore) {
    let mut receiver = LineReceiver::new(DetectorConfig::default(), status::now_ms());
    let mut uart = Uart { rx };
    uart.set_speed(receiver.speed());
    let mut sink = CoreSink { core };
    let mut buf = [0u8; 64];
    loop {
        receiver
            .poll(&mut uart, &mut buf, &DeviceClock, &mut sink)
            .await;
        {
            let mut core = core.lock().await;
            core.line_counters = *receiver.counters();
            core.line_mode = receiver.line_mode();
        }
        let now = status::now_ms();
        status::update(|s| {
            s.line = receiver.line_state(now);
            s.uart_alive_ms = now;
        });
    }
}
