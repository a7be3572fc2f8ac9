//! `teleinfo demo`: the whole pipeline with no hardware.
//!
//! Two virtual Linky meters (a single-phase standard consumer on HC/HP and a
//! three-phase Tempo producer) write their TIC byte streams in real time; each
//! stream goes through the protocol core exactly as bytes from a UART do, and
//! the decoded values are shown live, one line per frame.

use crate::frames::{DecodedFrame, FrameCollector};
use anyhow::{Context, Result};
use meter_sim::{Config, Contract, Interval, Mode, Simulator};
use std::io::Write;
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

#[derive(clap::Args)]
pub struct Args {
    /// Stop after this many seconds (default: run until Ctrl-C).
    #[arg(long)]
    pub seconds: Option<u64>,
}

struct Meter {
    name: &'static str,
    sim: Simulator,
    collector: FrameCollector,
    next_at: Instant,
}

pub fn run(args: Args) -> Result<ExitCode> {
    let now_s = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs() as i64;
    let consumer = Config {
        contract: Contract::default_hchp(),
        start_unix_s: now_s,
        interval: Interval::Wire,
        ..Config::default()
    };
    let producer = Config {
        mode: Mode::Standard,
        phases: 3,
        producer: true,
        contract: Contract::Tempo,
        subscribed_kva: 12,
        solar_kwp: 6.0,
        start_unix_s: now_s,
        interval: Interval::Wire,
        seed: 2,
        ..Config::default()
    };
    let start = Instant::now();
    let mut meters = Vec::new();
    for (name, config) in [
        ("consumer 1-phase HC/HP", consumer),
        ("producer 3-phase Tempo", producer),
    ] {
        let sim = Simulator::new(config).map_err(|e| anyhow::anyhow!("demo configuration: {e}"))?;
        meters.push(Meter {
            name,
            sim,
            collector: FrameCollector::default(),
            next_at: start,
        });
    }
    let stdout = std::io::stdout();
    println!("teleinfo demo: two virtual Linky meters, decoded live (Ctrl-C to stop)");
    loop {
        if args
            .seconds
            .is_some_and(|s| start.elapsed() >= Duration::from_secs(s))
        {
            return Ok(ExitCode::SUCCESS);
        }
        let meter = meters
            .iter_mut()
            .min_by_key(|m| m.next_at)
            .context("no meter")?;
        let wait = meter.next_at.saturating_duration_since(Instant::now());
        std::thread::sleep(wait);
        let frame = meter.sim.next_frame();
        meter.next_at +=
            Duration::from_micros(frame.wire_duration_us() + frame.gap_after_us as u64);
        let name = meter.name;
        let mut line = String::new();
        meter
            .collector
            .push(&frame.bytes, &mut |f: DecodedFrame, _| {
                line = summary(name, &f)
            });
        let mut out = stdout.lock();
        if writeln!(out, "{line}").is_err() {
            return Ok(ExitCode::SUCCESS);
        }
    }
}

/// One line: meter time, power, current index and tariff, health.
fn summary(name: &str, f: &DecodedFrame) -> String {
    let get = |label: &str| f.groups.iter().find(|g| g.label == label);
    let time = get("DATE")
        .and_then(|g| g.horodate)
        .map(|h| {
            format!(
                "{:02}:{:02}:{:02}{}",
                h.hour,
                h.minute,
                h.second,
                h.season_char()
            )
        })
        .unwrap_or_default();
    let value = |label: &str| {
        get(label)
            .map(|g| g.value.trim().to_string())
            .unwrap_or("-".into())
    };
    format!(
        "{time} {name}: {:>5} VA drawn, {:>5} VA injected, EAST {:>9} Wh, tariff {:<16} {} groups ok, {} rejected",
        value("SINSTS"),
        value("SINSTI"),
        value("EAST"),
        value("LTARF"),
        f.groups.len(),
        f.invalid_groups
    )
}
