//! teleinfo firmware: Linky TIC from the I1/I2 terminals to a teleinfo
//! server over WiFi, for ESP32-C3 and ESP32-C6 (classic ESP32 from the same
//! source with Espressif's toolchain).
//!
//! Everything that can be wrong about frames, queues, retries and modes
//! lives in the host-tested `uplink` crate; this crate only wires it to the
//! hardware, one concern per module.
#![no_std]
#![no_main]

mod config;
mod http;
mod led;
mod line;
mod pins;
mod queue;
mod sender;
mod sntp;
mod status;
mod watchdog;
mod wifi;

use core::fmt::Write as _;

use embassy_executor::Spawner;
use embassy_net::{DhcpConfig, StackResources};
use embassy_time::{Duration, Timer};
use esp_backtrace as _;
use esp_hal::clock::CpuClock;
use esp_hal::gpio::{Level, Output, OutputConfig};
use esp_hal::rng::Rng;
use esp_hal::timer::timg::TimerGroup;
use esp_hal::uart::UartRx;
use esp_radio::wifi::{Interface, WifiController};
use esp_storage::FlashStorage;
use log::info;
use static_cell::StaticCell;
use uplink::{LineSpeed, MAX_BATCH_BYTES};

esp_bootloader_esp_idf::esp_app_desc!();

/// Heap beyond the 64 KiB reclaimed from the bootloader: 20 KiB, 84 KiB in
/// all. Only the WiFi driver allocates (every other buffer is a static);
/// docs/firmware.md explains why that is enough with the lean WiFi config.
/// 20 rather than 24 keeps the C3's static RAM under 130 000 bytes.
const HEAP_EXTRA_BYTES: usize = 20 * 1024;

// The batch a device builds must be one the server accepts.
const _: () = assert!(config::BATCH_BYTES <= MAX_BATCH_BYTES);

static DEVICE_ID: StaticCell<heapless::String<32>> = StaticCell::new();
static NET_RESOURCES: StaticCell<StackResources<5>> = StaticCell::new();

#[esp_rtos::main]
async fn main(spawner: Spawner) -> ! {
    esp_println::logger::init_logger_from_env();
    let peripherals = esp_hal::init(esp_hal::Config::default().with_cpu_clock(CpuClock::max()));

    // WiFi needs a heap (its blobs allocate); the region the second-stage
    // bootloader used is free once the app runs.
    esp_alloc::heap_allocator!(#[esp_hal::ram(reclaimed)] size: 64 * 1024);
    esp_alloc::heap_allocator!(size: HEAP_EXTRA_BYTES);

    let timg0 = TimerGroup::new(peripherals.TIMG0);
    esp_rtos::start(timg0.timer0, peripherals.FROM_CPU_INTR0);
    let timg1 = TimerGroup::new(peripherals.TIMG1);
    spawner.spawn(watchdog::watchdog_task(timg1.wdt).unwrap());

    info!(
        "teleinfo firmware {} starting, server {}",
        config::FIRMWARE_VERSION,
        config::SERVER_URL
    );

    let led = Output::new(pins::led!(peripherals), Level::Low, OutputConfig::default());
    spawner.spawn(led::led_task(led).unwrap());

    // WiFi first: the hardware RNG is a true RNG once the radio runs, and
    // the boot id must never repeat.
    let controller =
        WifiController::new(peripherals.WIFI, wifi::controller_config()).expect("WiFi controller");
    let station = Interface::station();
    let mac = station.mac_address();
    let rng = Rng::new();
    let random_u64 = || (u64::from(rng.random()) << 32) | u64::from(rng.random());
    let boot_id = random_u64();

    let device_id = DEVICE_ID.init(heapless::String::new());
    if config::DEVICE_ID.is_empty() {
        let _ = write!(
            device_id,
            "linky-{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}",
            mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]
        );
    } else {
        let _ = device_id.push_str(config::DEVICE_ID);
    }
    info!("device id {device_id}, boot id {boot_id:016x}");

    let core = queue::init(FlashStorage::new(peripherals.FLASH), boot_id).await;

    let uart = UartRx::new(peripherals.UART1, line::uart_config(LineSpeed::Baud9600))
        .expect("UART1")
        .with_rx(pins::tic_rx!(peripherals))
        .into_async();
    spawner.spawn(line::line_task(uart, core).unwrap());

    let mut dhcp = DhcpConfig::default();
    let mut hostname = heapless::String::new();
    let _ = hostname.push_str(device_id.as_str());
    dhcp.hostname = Some(hostname);
    let (stack, runner) = embassy_net::new(
        station,
        embassy_net::Config::dhcpv4(dhcp),
        NET_RESOURCES.init(StackResources::new()),
        random_u64(),
    );
    spawner.spawn(wifi::net_task(runner).unwrap());
    spawner.spawn(wifi::wifi_task(controller, stack, random_u64()).unwrap());
    spawner.spawn(wifi::dhcp_watch_task(stack).unwrap());
    spawner.spawn(sntp::sntp_task(stack).unwrap());
    spawner.spawn(sender::sender_task(stack, core, device_id.as_str()).unwrap());

    loop {
        Timer::after(Duration::from_secs(3600)).await;
    }
}
