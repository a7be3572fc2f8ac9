//! Wall-clock time by SNTP, for the device time of each frame (historic
//! mode carries no timestamp; docs/DESIGN.md "the meter is the clock").

use core::net::{IpAddr, SocketAddr};

use embassy_net::dns::DnsQueryType;
use embassy_net::udp::{PacketMetadata, UdpSocket};
use embassy_net::Stack;
use embassy_time::{Duration, Timer};
use log::{info, warn};
use sntpc::{get_time, NtpContext, NtpTimestampGenerator};
use sntpc_net_embassy::UdpSocketWrapper;

use crate::config;
use crate::status;

/// Resynchronise hourly: the ESP32's crystal drifts a few seconds a day.
const RESYNC: Duration = Duration::from_secs(3600);
const RETRY: Duration = Duration::from_secs(30);

/// sntpc asks the local clock for the request's transmit time.
#[derive(Clone, Copy, Default)]
struct LocalClock {
    unix_us: u64,
}

impl NtpTimestampGenerator for LocalClock {
    fn init(&mut self) {
        self.unix_us = status::unix_ms().unwrap_or(0) * 1000;
    }

    fn timestamp_sec(&self) -> u64 {
        self.unix_us / 1_000_000
    }

    fn timestamp_subsec_micros(&self) -> u32 {
        (self.unix_us % 1_000_000) as u32
    }
}

/// Keeps `status::unix_ms` synchronised.
#[embassy_executor::task]
pub async fn sntp_task(stack: Stack<'static>) {
    let mut rx_meta = [PacketMetadata::EMPTY; 2];
    let mut tx_meta = [PacketMetadata::EMPTY; 2];
    let mut rx_buf = [0u8; 128];
    let mut tx_buf = [0u8; 128];
    loop {
        stack.wait_config_up().await;
        let server = match stack.dns_query(config::NTP_SERVER, DnsQueryType::A).await {
            Ok(addrs) if !addrs.is_empty() => addrs[0],
            _ => {
                warn!("SNTP: cannot resolve {}", config::NTP_SERVER);
                Timer::after(RETRY).await;
                continue;
            }
        };
        let mut socket =
            UdpSocket::new(stack, &mut rx_meta, &mut rx_buf, &mut tx_meta, &mut tx_buf);
        if socket.bind(0).is_err() {
            Timer::after(RETRY).await;
            continue;
        }
        let socket = UdpSocketWrapper::new(socket);
        let addr = SocketAddr::new(IpAddr::from(server), 123);
        let wait = match get_time(addr, &socket, NtpContext::new(LocalClock::default())).await {
            Ok(time) => {
                let unix_ms = time.sec() * 1000 + ((u64::from(time.sec_fraction()) * 1000) >> 32);
                let offset = unix_ms.saturating_sub(status::now_ms());
                status::update(|s| s.unix_offset_ms = Some(offset));
                info!("SNTP: unix time {unix_ms} ms");
                RESYNC
            }
            Err(e) => {
                warn!("SNTP: {e:?}");
                RETRY
            }
        };
        drop(socket);
        Timer::after(wait).await;
    }
}
