//! Accelerated generation speed: a year of one-frame-per-minute history of a
//! standard-mode three-phase meter (525 600 frames), on one core.
//!
//! `cargo run --release -p meter-sim --example sim_bench [FRAMES]`

use meter_sim::output::{run, Limit};
use meter_sim::{Config, Contract, Frame, Interval, Mode, Simulator};
use std::io::BufWriter;
use std::time::Instant;

fn main() {
    let frames: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(525_600);
    for (name, producer, contract) in [
        (
            "standard three-phase consumer, Tempo",
            false,
            Contract::Tempo,
        ),
        (
            "standard three-phase producer, HC/HP",
            true,
            Contract::default_hchp(),
        ),
    ] {
        let config = Config {
            mode: Mode::Standard,
            phases: 3,
            subscribed_kva: 12,
            producer,
            solar_kwp: if producer { 6.0 } else { 0.0 },
            contract,
            interval: Interval::FixedMs(60_000),
            ..Config::default()
        };
        let mut sim = Simulator::new(config).expect("valid configuration");
        let mut frame: Frame = sim.next_frame();
        let mut bytes = frame.bytes.len() as u64;
        let started = Instant::now();
        for _ in 1..frames {
            sim.next_into(&mut frame);
            bytes += frame.bytes.len() as u64;
        }
        let s = started.elapsed().as_secs_f64();
        println!(
            "{name}: {frames} frames, {:.1} MB in {s:.2} s: {:.0} frames/s, {:.1} MB/s",
            bytes as f64 / 1e6,
            frames as f64 / s,
            bytes as f64 / 1e6 / s
        );
    }
    // What `teleinfo simulate --phases 3 --interval 60 --duration 1y --out FILE` does.
    let config = Config {
        phases: 3,
        subscribed_kva: 12,
        contract: Contract::Tempo,
        interval: Interval::FixedMs(60_000),
        ..Config::default()
    };
    let path = std::env::temp_dir().join("meter-sim-bench.tic");
    let file = std::fs::File::create(&path).expect("temporary file");
    let mut out = BufWriter::with_capacity(1 << 20, file);
    let mut sim = Simulator::new(config).expect("valid configuration");
    let started = Instant::now();
    let stats = run(
        &mut sim,
        Limit::DurationMs(365 * 86_400_000),
        false,
        &mut out,
        None,
    )
    .expect("write the year");
    let s = started.elapsed().as_secs_f64();
    drop(out);
    let _ = std::fs::remove_file(&path);
    println!(
        "a year to a file (output::run, as the CLI): {} frames, {:.1} MB in {s:.2} s",
        stats.frames,
        stats.bytes as f64 / 1e6
    );
}
