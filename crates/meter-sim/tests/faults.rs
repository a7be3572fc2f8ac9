//! With faults, every injected fault is either rejected by the decoder or
//! harmless, exactly as the ground-truth log says; nothing damaged is published.

mod common;

use common::decode;
use meter_sim::{Config, Contract, Expect, FaultKind, FaultRecord, Interval, Mode, Simulator};
use std::collections::HashMap;

struct Outcome {
    faults: usize,
    rejected: usize,
    harmless: usize,
    undetectable: usize,
    decoder_rejections: usize,
}

fn check(config: Config, spec: &str, frames: usize) -> Outcome {
    let name = format!(
        "{:?} {}P {} [{spec}]",
        config.mode, config.phases, config.contract
    );
    let config = Config {
        faults: spec.parse().unwrap(),
        ..config
    };
    let mut sim = Simulator::new(config).unwrap();
    let mut stream = Vec::new();
    // Per frame: (offset, len, mode, clean groups as bytes).
    let mut layout: Vec<(u64, u64, Mode, Vec<Vec<u8>>)> = Vec::new();
    let mut records: Vec<FaultRecord> = Vec::new();
    for _ in 0..frames {
        let f = sim.next_frame();
        let (clean, spans) = sim.last_clean_frame();
        let groups = spans
            .iter()
            .map(|s| clean[s.start..s.end].to_vec())
            .collect();
        layout.push((f.offset, f.bytes.len() as u64, f.mode, groups));
        stream.extend_from_slice(&f.bytes);
        records.extend(f.faults);
    }
    let (decoded, rejections) = decode(&stream);
    let published: Vec<&common::Group> = decoded.iter().flat_map(|d| d.groups.iter()).collect();
    let frame_of = |offset: u64| layout.partition_point(|l| l.0 <= offset) - 1;
    let undetectable: Vec<u64> = records
        .iter()
        .filter(|r| r.expect == Expect::Undetectable)
        .map(|r| r.offset)
        .collect();
    // (a) Every published group is a clean group of its frame, or the log
    // names an undetectable fault inside it.
    for g in &published {
        let (_, _, mode, groups) = &layout[frame_of(g.start)];
        let mut buf = [0u8; tic::MAX_GROUP_LEN];
        let n = tic::encode::encode_group(*mode, &g.label, g.horodate.as_ref(), &g.value, &mut buf)
            .unwrap();
        let clean = groups.iter().any(|c| c[..] == buf[..n]);
        let excused = undetectable.iter().any(|&o| (g.start..=g.end).contains(&o));
        assert!(
            clean || excused,
            "{name}: published damaged group {} {:?} at {}",
            g.label,
            g.value,
            g.start
        );
        assert!(
            !excused || !clean,
            "{name}: group at {} logged undetectable but is clean",
            g.start
        );
    }
    // (b) A fault the log says is rejected is inside no published group;
    // (c) a harmless fault inside a group leaves it published.
    // Published groups are in stream order and do not overlap.
    let covering = |o: u64| {
        let i = published.partition_point(|g| g.start <= o);
        i > 0 && o <= published[i - 1].end
    };
    let mut count: HashMap<&str, usize> = HashMap::new();
    for r in &records {
        *count.entry(r.expect.name()).or_default() += 1;
        match r.expect {
            Expect::Rejected if r.label.is_some() => {
                assert!(
                    !covering(r.offset),
                    "{name}: {r:?} should be rejected but a group was published over it"
                )
            }
            Expect::Harmless if r.label.is_some() => {
                // A burst ending with LF right after a group's LF restarts the
                // group: the published group begins after the burst.
                let after = match &r.kind {
                    FaultKind::Noise { bytes } => r.offset + bytes.len() as u64,
                    _ => r.offset,
                };
                assert!(
                    covering(r.offset) || covering(after),
                    "{name}: {r:?} is harmless but its group was not published"
                )
            }
            Expect::Undetectable => assert!(covering(r.offset), "{name}: {r:?}"),
            _ => {}
        }
        // The log's offsets lie in the frame it names.
        // (a lost last byte or a cut is logged where the next frame starts).
        let (off, len, _, _) = layout[r.frame as usize];
        assert!(
            (off..=off + len).contains(&r.offset),
            "{name}: {r:?} outside its frame"
        );
    }
    Outcome {
        faults: records.len(),
        rejected: count.get("rejected").copied().unwrap_or(0),
        harmless: count.get("harmless").copied().unwrap_or(0),
        undetectable: count.get("undetectable").copied().unwrap_or(0),
        decoder_rejections: rejections.len(),
    }
}

fn configs() -> Vec<Config> {
    vec![
        Config {
            interval: Interval::FixedMs(30_000),
            ..Config::default()
        },
        Config {
            phases: 3,
            subscribed_kva: 12,
            producer: true,
            solar_kwp: 6.0,
            contract: Contract::Tempo,
            interval: Interval::FixedMs(30_000),
            ..Config::default()
        },
        Config {
            mode: Mode::Historic,
            contract: Contract::Tempo,
            ..Config::default()
        },
        Config {
            mode: Mode::Historic,
            phases: 3,
            subscribed_kva: 12,
            overloads_per_day: 1.0,
            ..Config::default()
        },
    ]
}

#[test]
fn every_fault_kind_is_rejected_or_harmless_as_logged() {
    for spec in [
        "bit=3e-4",
        "drop=3e-4",
        "eot=0.05,truncate=0.05",
        "noise=0.2",
        "bit=2e-4,8n1",
        "bit=1e-3,drop=5e-4,eot=0.02,truncate=0.02,noise=0.05",
    ] {
        for config in configs() {
            let o = check(config, spec, 2_000);
            assert!(o.faults > 20, "[{spec}] too few faults: {}", o.faults);
            if !spec.starts_with("eot") {
                assert!(o.rejected > 0 && o.decoder_rejections > 0, "[{spec}]");
            }
            // The 6-bit checksum misses few damaged groups.
            assert!(
                o.undetectable * 20 <= o.faults,
                "[{spec}] {} undetectable of {}",
                o.undetectable,
                o.faults
            );
            let _ = o.harmless;
        }
    }
}

#[test]
fn parity_bit_flips_are_harmless_in_a_7_bit_capture() {
    let config = Config {
        interval: Interval::FixedMs(30_000),
        ..Config::default()
    };
    let mut sim = Simulator::new(Config {
        faults: "bit=1e-3".parse().unwrap(),
        ..config
    })
    .unwrap();
    let mut parity_only = 0;
    for _ in 0..300 {
        let faults = sim.next_frame().faults;
        for r in &faults {
            if let FaultKind::BitError {
                bit: 7,
                before,
                after,
            } = r.kind
            {
                assert_eq!(before, after);
                // Harmless, unless another fault damaged the frame.
                let other = faults
                    .iter()
                    .any(|o| !matches!(o.kind, FaultKind::BitError { bit: 7, .. }));
                if r.label.is_some() && !other {
                    assert_eq!(r.expect, Expect::Harmless);
                }
                parity_only += 1;
            }
        }
    }
    assert!(parity_only > 10);
}

#[test]
fn capture_8n1_has_even_parity_in_bit_7_and_decodes() {
    let config = Config {
        faults: "8n1".parse().unwrap(),
        ..Config::default()
    };
    let bytes = common::stream(config, 20);
    assert!(bytes.iter().all(|b| b.count_ones() % 2 == 0));
    assert!(bytes.iter().any(|b| b & 0x80 != 0));
    let (frames, rejections) = decode(&bytes);
    assert_eq!((frames.len(), rejections.len()), (20, 0));
}

#[test]
fn degraded_clock_drift_and_mode_switch() {
    let config = Config {
        interval: Interval::FixedMs(3_600_000),
        faults: "degraded=5,drift=120,switch=10".parse().unwrap(),
        ..Config::default()
    };
    let frames: Vec<_> = Simulator::new(config).unwrap().take(20).collect();
    let kinds: Vec<&str> = frames
        .iter()
        .flat_map(|f| f.faults.iter().map(|r| r.kind.name()))
        .collect();
    assert_eq!(kinds, ["drift", "degraded", "switch"]);
    for f in &frames {
        let (d, rej) = decode(&f.bytes);
        assert!(rej.is_empty());
        if f.number < 10 {
            let h = d[0].get("DATE").unwrap().horodate.unwrap();
            assert_eq!(h.degraded, f.number >= 5);
            let stge = tic::stge::Stge::parse(d[0].value("STGE")).unwrap();
            assert_eq!(stge.clock_degraded(), f.number >= 5);
            assert_eq!(h.to_string().starts_with('h'), f.number >= 5);
            // 120 s a day: 5 s an hour ahead of true time.
            let ahead_s = h.unix_s().unwrap() - f.true_time_unix_ms / 1000;
            assert_eq!(ahead_s, (f.number as i64 * 5), "frame {}", f.number);
        } else {
            assert_eq!(f.mode, Mode::Historic);
            assert!(d[0].get("ADCO").is_some());
        }
    }
}

#[test]
fn fault_log_lines_are_json() {
    let config = Config {
        faults: "bit=1e-3,noise=0.5".parse().unwrap(),
        ..Config::default()
    };
    let mut n = 0;
    for f in Simulator::new(config).unwrap().take(50) {
        for r in f.faults {
            let line = r.to_json();
            assert!(
                line.starts_with("{\"offset\":") && line.ends_with('}'),
                "{line}"
            );
            assert!(line.contains("\"expect\":\""));
            n += 1;
        }
    }
    assert!(n > 0);
}

#[test]
fn bad_specs_name_the_item() {
    for (spec, needle) in [
        ("bit=2", "bit=2"),
        ("bit", "needs a value"),
        ("foo=1", "unknown item `foo`"),
        ("bit=1e-3,bit=1e-3", "twice"),
        ("switch=x", "frame number"),
        ("drift=abc", "seconds per day"),
        ("8n1=1", "no value"),
    ] {
        let e = spec
            .parse::<meter_sim::FaultSpec>()
            .unwrap_err()
            .to_string();
        assert!(e.contains(needle), "{spec}: {e}");
    }
}
