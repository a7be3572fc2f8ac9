//! WiFi station: connect, watch the link, reconnect with backoff.

use embassy_futures::select::{select, Either};
use embassy_net::Stack;
use embassy_time::{Duration, Timer};
use esp_radio::wifi::sta::StationConfig;
use esp_radio::wifi::{AuthenticationMethodConfig, Config, ControllerConfig, WifiController};
use log::{info, warn};
use uplink::{Backoff, BackoffConfig};

use crate::config;
use crate::status;

/// How often the RSSI is sampled while connected.
const RSSI_PERIOD: Duration = Duration::from_secs(10);

/// Driver buffers for a device that sends ~1 KB/s and receives 26-byte
/// acks: fewer RX/TX buffers and no A-MPDU aggregation than the defaults
/// (10 static RX, 32 dynamic RX/TX, A-MPDU on), which cuts the driver's
/// heap peak by roughly 20 KiB.
pub fn controller_config() -> ControllerConfig {
    ControllerConfig::default()
        .with_static_rx_buf_num(6)
        .with_dynamic_rx_buf_num(16)
        .with_dynamic_tx_buf_num(16)
        .with_ampdu_rx_enable(false)
        .with_ampdu_tx_enable(false)
        .with_rx_ba_win(6)
}

fn station_config() -> Option<Config> {
    let ssid = config::WIFI_SSID.try_into().ok()?;
    let authentication = if config::WIFI_PASSWORD.is_empty() {
        AuthenticationMethodConfig::Open
    } else {
        AuthenticationMethodConfig::Wpa2Personal(config::WIFI_PASSWORD.try_into().ok()?)
    };
    Some(Config::Station(
        StationConfig::default()
            .with_ssid(ssid)
            .with_authentication(authentication),
    ))
}

/// Keeps the station connected.
#[embassy_executor::task]
pub async fn wifi_task(mut controller: WifiController<'static>, stack: Stack<'static>, seed: u64) {
    let Some(station) = station_config() else {
        warn!("TELEINFO_WIFI_SSID / _PASSWORD too long: WiFi disabled");
        return;
    };
    // 1 s doubling to 30 s: a rebooting access point is rejoined quickly,
    // an absent one costs a scan every half minute.
    let mut backoff = Backoff::new(
        BackoffConfig {
            initial_ms: 1_000,
            max_ms: 30_000,
        },
        seed,
    );
    loop {
        if let Err(e) = controller.set_config(&station) {
            warn!("WiFi config: {e:?}");
            Timer::after(Duration::from_millis(backoff.fail())).await;
            continue;
        }
        match controller.connect_async().await {
            Ok(_) => {
                info!("WiFi connected to {}", config::WIFI_SSID);
                backoff.reset();
                status::update(|s| s.wifi_connects = s.wifi_connects.wrapping_add(1));
                loop {
                    let rssi = controller.rssi().ok();
                    let up = stack.is_config_up();
                    status::update(|s| {
                        s.network_up = up;
                        if let Some(rssi) = rssi {
                            s.rssi_dbm = rssi.clamp(-127, 0) as i8;
                        }
                    });
                    match select(
                        controller.wait_for_disconnect_async(),
                        Timer::after(RSSI_PERIOD),
                    )
                    .await
                    {
                        Either::First(_) => break,
                        Either::Second(()) => {}
                    }
                }
                warn!("WiFi disconnected");
                status::update(|s| {
                    s.network_up = false;
                    s.rssi_dbm = uplink::wire::RSSI_UNKNOWN;
                });
            }
            Err(e) => {
                let delay = backoff.fail();
                warn!("WiFi connect failed: {e:?}; retry in {delay} ms");
                Timer::after(Duration::from_millis(delay)).await;
            }
        }
    }
}

/// Marks the network up as soon as DHCP has configured the interface
/// (the WiFi task only samples every 10 s).
#[embassy_executor::task]
pub async fn dhcp_watch_task(stack: Stack<'static>) {
    loop {
        stack.wait_config_up().await;
        if let Some(cfg) = stack.config_v4() {
            info!("DHCP: {}", cfg.address);
        }
        status::update(|s| s.network_up = true);
        stack.wait_config_down().await;
        status::update(|s| s.network_up = false);
    }
}

/// Runs the embassy-net stack.
#[embassy_executor::task]
pub async fn net_task(mut runner: embassy_net::Runner<'static, esp_radio::wifi::Interface>) {
    runner.run().await
}
