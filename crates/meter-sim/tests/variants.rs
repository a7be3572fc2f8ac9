//! Without faults, every frame of every variant decodes with zero rejected
//! groups, in the real meter's label order, with exactly the variant's labels.

mod common;

use common::{decode, variants};
use meter_sim::{Config, Contract, FrameKind, Interval, Mode, Simulator};
use tic::{labels, EndReason};

fn expected_labels(config: &Config) -> Vec<&'static str> {
    let three = config.phases == 3;
    let prod = config.producer;
    let mut v: Vec<&'static str> = Vec::new();
    match config.mode {
        Mode::Standard => {
            v.extend(["ADSC", "VTIC", "DATE", "NGTF", "LTARF", "EAST"]);
            v.extend([
                "EASF01", "EASF02", "EASF03", "EASF04", "EASF05", "EASF06", "EASF07", "EASF08",
                "EASF09", "EASF10", "EASD01", "EASD02", "EASD03", "EASD04",
            ]);
            if prod {
                v.extend(["EAIT", "ERQ1", "ERQ2", "ERQ3", "ERQ4"]);
            }
            v.push("IRMS1");
            if three {
                v.extend(["IRMS2", "IRMS3"]);
            }
            v.push("URMS1");
            if three {
                v.extend(["URMS2", "URMS3"]);
            }
            v.extend(["PREF", "PCOUP", "SINSTS"]);
            if three {
                v.extend(["SINSTS1", "SINSTS2", "SINSTS3"]);
            }
            v.push("SMAXSN");
            if three {
                v.extend(["SMAXSN1", "SMAXSN2", "SMAXSN3"]);
            }
            v.push("SMAXSN-1");
            if three {
                v.extend(["SMAXSN1-1", "SMAXSN2-1", "SMAXSN3-1"]);
            }
            if prod {
                v.extend(["SINSTI", "SMAXIN", "SMAXIN-1"]);
            }
            v.extend(["CCASN", "CCASN-1"]);
            if prod {
                v.extend(["CCAIN", "CCAIN-1"]);
            }
            v.push("UMOY1");
            if three {
                v.extend(["UMOY2", "UMOY3"]);
            }
            v.extend([
                "STGE", "MSG1", "PRM", "RELAIS", "NTARF", "NJOURF", "NJOURF+1", "PJOURF+1",
            ]);
        }
        Mode::Historic => {
            v.extend(["ADCO", "OPTARIF", "ISOUSC"]);
            v.extend(config.contract.historic_index_labels());
            v.push("PTEC");
            if config.contract == Contract::Tempo {
                v.push("DEMAIN");
            }
            if three {
                v.extend([
                    "IINST1", "IINST2", "IINST3", "IMAX1", "IMAX2", "IMAX3", "PMAX",
                ]);
            } else {
                v.extend(["IINST", "IMAX"]);
            }
            v.extend(["PAPP", "HHPHC", "MOTDETAT"]);
            if three {
                v.push("PPOT");
            }
        }
    }
    v
}

/// Labels that come and go with the state (§5.1, §4.2).
const CONDITIONAL: [&str; 6] = ["DPM1", "FPM1", "PPOINTE", "PEJP", "ADPS", "ADIR1"];

#[test]
fn every_standard_variant_decodes_cleanly_over_a_year() {
    check_variants(Mode::Standard);
}

#[test]
fn every_historic_variant_decodes_cleanly_over_a_year() {
    check_variants(Mode::Historic);
}

fn check_variants(mode: Mode) {
    for mut config in variants().into_iter().filter(|c| c.mode == mode) {
        // Hourly frames over a year, from a time that is not on the hour.
        config.interval = Interval::FixedMs(3_600_000 + 7_000);
        config.overloads_per_day = 1.0;
        let name = format!(
            "{:?} {}P producer={} {}",
            config.mode, config.phases, config.producer, config.contract
        );
        let expected = expected_labels(&config);
        let order: Vec<&str> = labels::all(config.mode).iter().map(|l| l.label).collect();
        let mut sim = Simulator::new(config.clone()).unwrap();
        let mut seen_conditional = std::collections::BTreeSet::new();
        for _ in 0..8_700 {
            let frame = sim.next_frame();
            let (decoded, _) = decode(&frame.bytes);
            assert_eq!(decoded.len(), 1, "{name}: one frame per frame");
            let d = &decoded[0];
            assert_eq!(
                d.rejected, 0,
                "{name}: frame {} has rejected groups",
                frame.number
            );
            match frame.kind {
                FrameKind::Interrupted => assert_eq!(d.reason, Some(EndReason::Eot), "{name}"),
                _ => assert!(d.complete, "{name}: frame {} incomplete", frame.number),
            }
            // Label order follows the spec table; the frame is exactly the variant's set.
            let got: Vec<&str> = d.groups.iter().map(|g| g.label.as_str()).collect();
            if frame.kind == FrameKind::Short {
                // §4.6: ADIR1-3 (only phases over ISOUSC: none during the
                // minute after the overload), ADCO, IINST1-3.
                let tail = &got[got.len() - 4..];
                assert_eq!(tail, ["ADCO", "IINST1", "IINST2", "IINST3"], "{name}");
                assert!(
                    got[..got.len() - 4].iter().all(|l| l.starts_with("ADIR")),
                    "{name}: {got:?}"
                );
                seen_conditional.insert("short".to_string());
                continue;
            }
            let mut pos = 0;
            for l in &got {
                let p = order
                    .iter()
                    .position(|o| o == l)
                    .unwrap_or_else(|| panic!("{name}: unknown label {l}"));
                assert!(p >= pos, "{name}: {l} out of order in {got:?}");
                pos = p;
            }
            if frame.kind == FrameKind::Interrupted {
                seen_conditional.insert("short".to_string());
            }
            if frame.kind == FrameKind::Long {
                let fixed: Vec<&str> = got
                    .iter()
                    .copied()
                    .filter(|l| !CONDITIONAL.contains(l))
                    .collect();
                assert_eq!(fixed, expected, "{name}: label set");
            }
            for l in got
                .iter()
                .filter(|l| CONDITIONAL.contains(l) || l.starts_with("ADIR"))
            {
                seen_conditional.insert(l.to_string());
            }
        }
        if config.mode == Mode::Historic && config.phases == 3 {
            assert!(
                seen_conditional.contains("short"),
                "{name}: no short frames in a year"
            );
        }
        if config.contract == Contract::Ejp {
            if config.mode == Mode::Standard {
                assert!(
                    seen_conditional.contains("DPM1") && seen_conditional.contains("PPOINTE"),
                    "{name}"
                );
            } else {
                assert!(seen_conditional.contains("PEJP"), "{name}");
            }
        }
    }
}

#[test]
fn wire_cadence_matches_the_line_speed() {
    // Frames back to back: the next frame starts after this one's bytes at
    // 10 bits per character plus a 16.7-33.4 ms gap (§1.6).
    for mode in [Mode::Standard, Mode::Historic] {
        let config = Config {
            mode,
            ..Config::default()
        };
        let frames: Vec<_> = Simulator::new(config).unwrap().take(50).collect();
        for w in frames.windows(2) {
            let dt_ms = w[1].true_time_unix_ms - w[0].true_time_unix_ms;
            let wire_ms = w[0].wire_duration_us() as f64 / 1000.0;
            let gap_ms = dt_ms as f64 - wire_ms;
            assert!((16.0..=34.0).contains(&gap_ms), "{mode:?}: gap {gap_ms} ms");
            assert!((16_700..=33_400).contains(&w[0].gap_after_us));
        }
        let period = (frames[49].true_time_unix_ms - frames[0].true_time_unix_ms) as f64 / 49.0;
        match mode {
            Mode::Standard => assert!((850.0..1000.0).contains(&period), "{period}"),
            Mode::Historic => assert!((1100.0..1500.0).contains(&period), "{period}"),
        }
    }
}

#[test]
fn real_sample_widths_and_padding() {
    let config = Config {
        phases: 3,
        subscribed_kva: 12,
        contract: Contract::Tempo,
        producer: true,
        solar_kwp: 3.0,
        ..Config::default()
    };
    let bytes = common::stream(config, 1);
    let (frames, _) = decode(&bytes);
    let f = &frames[0];
    assert_eq!(f.value("NGTF"), "     TEMPO      ");
    assert_eq!(f.value("MSG1"), "PAS DE          MESSAGE         ");
    assert_eq!(f.value("LTARF").len(), 16);
    assert_eq!(f.value("PJOURF+1").len(), 98);
    assert!(f.value("PJOURF+1").ends_with("NONUTILE NONUTILE"));
    for (label, width) in [
        ("EAST", 9),
        ("EAIT", 9),
        ("IRMS2", 3),
        ("URMS3", 3),
        ("PREF", 2),
        ("SINSTS1", 5),
        ("SMAXSN3-1", 5),
        ("STGE", 8),
        ("PRM", 14),
        ("ADSC", 12),
        ("RELAIS", 3),
        ("NTARF", 2),
    ] {
        assert_eq!(f.value(label).len(), width, "{label}");
    }
    // A full three-phase producer frame is about 1442 bytes (§1.6).
    assert!((1400..1500).contains(&bytes.len()), "{}", bytes.len());
    let stge = tic::stge::Stge::parse(f.value("STGE")).unwrap();
    assert!(stge.producer() && stge.standard_mode());
    assert_eq!(stge.supplier_index() as u64, f.number("NTARF"));
}

#[test]
fn historic_three_phase_overcurrent_cycles_20_short_frames_and_a_long_one() {
    let config = Config {
        mode: Mode::Historic,
        phases: 3,
        subscribed_kva: 12,
        overloads_per_day: 1.0,
        interval: Interval::FixedMs(2_000),
        ..Config::default()
    };
    let mut sim = Simulator::new(config).unwrap();
    let mut kinds = Vec::new();
    for _ in 0..200_000 {
        let f = sim.next_frame();
        if f.kind == FrameKind::Interrupted {
            // §2.2: cut after a group, EOT, no ETX.
            assert_eq!(*f.bytes.last().unwrap(), tic::EOT);
            assert!(!f.bytes.contains(&tic::ETX));
        }
        if f.kind == FrameKind::Short || !kinds.is_empty() {
            let (d, rejected) = decode(&f.bytes);
            assert!(rejected.is_empty());
            if kinds.is_empty() {
                // The overload that started the cycle is still on.
                assert!(
                    d[0].groups[0].label.starts_with("ADIR"),
                    "{:?}",
                    d[0].groups
                );
            }
            kinds.push(f.kind);
        }
        if kinds.len() > 45 {
            break;
        }
    }
    assert!(kinds.len() > 45, "no overcurrent cycle found");
    // Interrupted long frame, then 20 short, 1 long, 20 short...
    let cycle: Vec<FrameKind> = kinds
        .iter()
        .copied()
        .take_while(|k| *k != FrameKind::Long)
        .collect();
    assert_eq!(cycle.len(), 20, "{kinds:?}");
    assert!(cycle.iter().all(|k| *k == FrameKind::Short));
}
