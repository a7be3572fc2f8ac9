//! Counts what the ground truth expects for a fault SPEC over many frames.
//!
//! `cargo run --release -p meter-sim --example fault_stats -- 'bit=1e-4' [FRAMES]`

use meter_sim::{Config, Interval, Simulator};
use std::collections::BTreeMap;

fn main() {
    let spec = std::env::args().nth(1).unwrap_or_else(|| "bit=1e-4".into());
    let frames: usize = std::env::args()
        .nth(2)
        .and_then(|a| a.parse().ok())
        .unwrap_or(100_000);
    let config = Config {
        interval: Interval::FixedMs(60_000),
        faults: spec.parse().expect("valid fault SPEC"),
        ..Config::default()
    };
    let mut counts: BTreeMap<(String, String), u64> = BTreeMap::new();
    let mut undetectable: BTreeMap<String, u64> = BTreeMap::new();
    for frame in Simulator::new(config)
        .expect("valid configuration")
        .take(frames)
    {
        for r in frame.faults {
            *counts
                .entry((r.kind.name().into(), r.expect.name().into()))
                .or_default() += 1;
            if r.expect == meter_sim::Expect::Undetectable {
                let what = match &r.kind {
                    meter_sim::FaultKind::BitError { bit, .. } => format!("bit {bit}"),
                    k => k.name().to_string(),
                };
                *undetectable
                    .entry(format!("{} {what}", r.label.unwrap_or("-")))
                    .or_default() += 1;
            }
        }
    }
    println!("{spec}, {frames} frames:");
    for ((kind, expect), n) in counts {
        println!("  {kind:9} {expect:12} {n}");
    }
    println!("undetectable by group and bit:");
    for (what, n) in undetectable {
        println!("  {what:24} {n}");
    }
}
