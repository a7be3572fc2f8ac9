//! Build-time configuration, from environment variables read by `rustc`
//! (`option_env!`), each with a default so that a plain `cargo build`
//! succeeds. docs/firmware.md lists them.

/// WiFi network name.
pub const WIFI_SSID: &str = env_or(option_env!("TELEINFO_WIFI_SSID"), "teleinfo");
/// WiFi password; empty means an open network.
pub const WIFI_PASSWORD: &str = env_or(option_env!("TELEINFO_WIFI_PASSWORD"), "");
/// Where batches are posted (`http://host[:port]/path`).
pub const SERVER_URL: &str = env_or(
    option_env!("TELEINFO_SERVER_URL"),
    "http://teleinfo:8080/api/v1/uplink",
);
/// This device's bearer token, as configured on the server.
pub const DEVICE_TOKEN: &str = env_or(option_env!("TELEINFO_DEVICE_TOKEN"), "change-me");
/// Device id; empty means "linky-" followed by the WiFi MAC address.
pub const DEVICE_ID: &str = env_or(option_env!("TELEINFO_DEVICE_ID"), "");
/// SNTP server.
pub const NTP_SERVER: &str = env_or(option_env!("TELEINFO_NTP_SERVER"), "pool.ntp.org");
/// Bytes of unacknowledged frames kept in RAM only; older ones go to flash.
/// 0 writes every frame through to flash (nothing lost on a crash).
pub const RAM_KEEP_BYTES: usize =
    parse_usize(env_or(option_env!("TELEINFO_RAM_KEEP_BYTES"), "6144"));
/// Firmware version sent in every batch.
pub const FIRMWARE_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Size of the RAM tier of the frame queue: 12 KiB, ~20 standard frames
/// (compacted): what waits for the next ack, and the whole queue when
/// the flash partition is missing.
pub const RAM_TIER_BYTES: usize = 12 * 1024;
/// Largest batch body: ~9 standard frames per POST.
pub const BATCH_BYTES: usize = 8 * 1024;
/// Label of the flash partition holding the frame queue.
pub const QUEUE_PARTITION: &str = "ticqueue";

const fn env_or(value: Option<&'static str>, default: &'static str) -> &'static str {
    match value {
        Some(v) => v,
        None => default,
    }
}

const fn parse_usize(text: &str) -> usize {
    let bytes = text.as_bytes();
    let mut n = 0usize;
    let mut i = 0;
    while i < bytes.len() {
        let d = bytes[i];
        assert!(
            d.is_ascii_digit(),
            "TELEINFO_RAM_KEEP_BYTES must be a number"
        );
        n = n * 10 + (d - b'0') as usize;
        i += 1;
    }
    n
}
