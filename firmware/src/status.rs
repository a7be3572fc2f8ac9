//! Device state shared between tasks (for the LED, the telemetry block and
//! the watchdog). A critical-section cell: the C3 core has no atomic
//! read-modify-write instructions, and every access here is a few words.

use core::cell::Cell;

use critical_section::Mutex;
use uplink::wire::RSSI_UNKNOWN;
use uplink::LineState;

/// The shared facts.
#[derive(Debug, Clone, Copy)]
pub struct Status {
    /// Line state.
    pub line: LineState,
    /// WiFi associated and an IPv4 address configured.
    pub network_up: bool,
    /// Last WiFi RSSI, dBm.
    pub rssi_dbm: i8,
    /// WiFi (re)connections since boot.
    pub wifi_connects: u32,
    /// The last post succeeded.
    pub server_ok: bool,
    /// A post is in flight.
    pub sending: bool,
    /// Unix ms minus monotonic ms, once SNTP answered.
    pub unix_offset_ms: Option<u64>,
    /// Last time the UART task went round its loop.
    pub uart_alive_ms: u64,
    /// Last time the uplink task went round its loop.
    pub uplink_alive_ms: u64,
}

static STATUS: Mutex<Cell<Status>> = Mutex::new(Cell::new(Status {
    line: LineState::NoSignal,
    network_up: false,
    rssi_dbm: RSSI_UNKNOWN,
    wifi_connects: 0,
    server_ok: true,
    sending: false,
    unix_offset_ms: None,
    uart_alive_ms: 0,
    uplink_alive_ms: 0,
}));

/// A copy of the current status.
pub fn get() -> Status {
    critical_section::with(|cs| STATUS.borrow(cs).get())
}

/// Changes the status.
pub fn update(change: impl FnOnce(&mut Status)) {
    critical_section::with(|cs| {
        let cell = STATUS.borrow(cs);
        let mut status = cell.get();
        change(&mut status);
        cell.set(status);
    });
}

/// Monotonic milliseconds since boot.
pub fn now_ms() -> u64 {
    embassy_time::Instant::now().as_millis()
}

/// Wall-clock Unix milliseconds, once SNTP has answered.
pub fn unix_ms() -> Option<u64> {
    get().unix_offset_ms.map(|offset| offset + now_ms())
}
