//! Links the esp-hal linker script and re-runs the build when the
//! build-time configuration (WiFi, server, token) changes.
fn main() {
    println!("cargo:rustc-link-arg=-Tlinkall.x");
    for var in [
        "TELEINFO_WIFI_SSID",
        "TELEINFO_WIFI_PASSWORD",
        "TELEINFO_SERVER_URL",
        "TELEINFO_DEVICE_TOKEN",
        "TELEINFO_DEVICE_ID",
    ] {
        println!("cargo:rerun-if-env-changed={var}");
    }
}
