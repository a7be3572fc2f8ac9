//! Indexes integrate power exactly; tariff indexes advance only in their
//! period; DST gives one 23 h and one 25 h day; Tempo/EJP signals are
//! consistent; same seed, same bytes.

mod common;

use common::decode;
use meter_sim::{clock, Config, Contract, Interval, Mode, Simulator, WMS_PER_WH};
use std::collections::BTreeMap;

fn run_energy_check(config: Config, frames: usize) {
    let name = format!(
        "{}P {} producer={}",
        config.phases, config.contract, config.producer
    );
    let mut sim = Simulator::new(config.clone()).unwrap();
    let mut integral_import_wms: i128 = sim.state().import_wms as i128;
    let mut integral_export_wms: i128 = sim.state().export_wms as i128;
    let mut prev_state = sim.state();
    let mut prev: Option<common::Decoded> = None;
    let labels: Vec<String> = (1..=10).map(|i| format!("EASF{i:02}")).collect();
    for _ in 0..frames {
        let frame = sim.next_frame();
        let state = sim.state();
        // The power of the previous frame held until this one.
        let dt = (state.true_time_unix_ms - prev_state.true_time_unix_ms) as i128;
        let p = prev_state.active_power_w as i128;
        if p >= 0 {
            integral_import_wms += p * dt;
        } else {
            integral_export_wms += -p * dt;
        }
        assert_eq!(
            state.import_wms as i128, integral_import_wms,
            "{name}: exact integral"
        );
        assert_eq!(state.export_wms as i128, integral_export_wms, "{name}");
        let (d, _) = decode(&frame.bytes);
        let d = d.into_iter().next().unwrap();
        let east = d.number("EAST") as i128;
        assert!(
            (east - integral_import_wms / WMS_PER_WH as i128).abs() <= 1,
            "{name}: EAST within 1 Wh"
        );
        if config.producer {
            let eait = d.number("EAIT") as i128;
            assert!(
                (eait - integral_export_wms / WMS_PER_WH as i128).abs() <= 1,
                "{name}: EAIT"
            );
        }
        let sum: u64 = labels.iter().map(|l| d.number(l)).sum();
        assert!(
            d.number("EAST") - sum <= 10,
            "{name}: EAST = sum of EASF (Wh rounding)"
        );
        // Stated tariff period and STGE agree; NTARF names the index counting now.
        let ntarf = d.number("NTARF") as usize;
        let stge = tic::stge::Stge::parse(d.value("STGE")).unwrap();
        assert_eq!(stge.supplier_index() as usize, ntarf, "{name}");
        if let Some(p) = &prev {
            let pn = p.number("NTARF") as usize;
            for (i, l) in labels.iter().enumerate() {
                let (a, b) = (p.number(l), d.number(l));
                assert!(b >= a, "{name}: {l} went backwards");
                if b > a {
                    assert!(
                        i + 1 == ntarf || i + 1 == pn,
                        "{name}: {l} advanced outside its period (NTARF {pn} -> {ntarf})"
                    );
                }
            }
            assert!(d.number("EAST") >= p.number("EAST"));
        }
        prev = Some(d);
        prev_state = state;
    }
}

#[test]
fn indexes_are_the_exact_integral_of_power() {
    let odd = Interval::FixedMs(97_531); // crosses minute and tariff boundaries mid-interval
    for contract in [
        Contract::Base,
        Contract::HcHp(meter_sim::tariff::parse_offpeak("01:30-07:30,12:30-14:30").unwrap()),
        Contract::Tempo,
        Contract::Ejp,
    ] {
        for (phases, producer) in [(1, false), (3, true)] {
            let config = Config {
                phases,
                producer,
                solar_kwp: if producer { 9.0 } else { 0.0 },
                subscribed_kva: if phases == 3 { 12 } else { 9 },
                contract: contract.clone(),
                interval: odd,
                start_unix_s: clock::parse_datetime("2026-01-12T05:00").unwrap(),
                ..Config::default()
            };
            run_energy_check(config, 3_000);
        }
    }
    // Summer producer: injection happens.
    let config = Config {
        producer: true,
        solar_kwp: 6.0,
        electric_heating: false,
        interval: Interval::FixedMs(60_000),
        start_unix_s: clock::parse_datetime("2026-06-20T06:00").unwrap(),
        ..Config::default()
    };
    run_energy_check(config.clone(), 900);
    let mut sim = Simulator::new(config).unwrap();
    let before = sim.state().export_wms;
    for _ in 0..600 {
        sim.next_frame();
    }
    assert!(
        sim.state().export_wms > before + 1000 * WMS_PER_WH,
        "a June day injects"
    );
}

#[test]
fn hchp_periods_follow_the_windows() {
    let config = Config {
        contract: Contract::default_hchp(),
        interval: Interval::FixedMs(60_000),
        ..Config::default()
    };
    for frame in Simulator::new(config).unwrap().take(3 * 1440) {
        let (d, _) = decode(&frame.bytes);
        let d = &d[0];
        let h = d.get("DATE").unwrap().horodate.unwrap();
        let hc = h.hour >= 22 || h.hour < 6;
        assert_eq!(d.value("NTARF"), if hc { "01" } else { "02" }, "{h}");
        assert_eq!(d.value("RELAIS"), if hc { "001" } else { "000" });
        assert_eq!(
            d.value("LTARF").trim(),
            if hc { "HEURE  CREUSE" } else { "HEURE  PLEINE" }
        );
    }
}

#[test]
fn a_year_has_one_23_hour_day_and_one_25_hour_day() {
    // One frame every 15 minutes for a year: count frames per local date.
    let config = Config {
        interval: Interval::FixedMs(15 * 60_000),
        start_unix_s: clock::parse_datetime("2026-01-01T00:00").unwrap(),
        ..Config::default()
    };
    let mut per_day: BTreeMap<(u16, u8, u8), u32> = BTreeMap::new();
    let mut last_utc = i64::MIN;
    for frame in Simulator::new(config).unwrap().take(365 * 96) {
        let (d, _) = decode(&frame.bytes);
        let h = d[0].get("DATE").unwrap().horodate.unwrap();
        // The horodate converts back to the frame's instant (season letter right).
        let utc = h.unix_s().unwrap();
        assert_eq!(utc, frame.meter_time_unix_s);
        assert!(utc > last_utc);
        last_utc = utc;
        assert_eq!(h.season == tic::Season::Summer, clock::is_summer(utc));
        *per_day.entry((h.year, h.month, h.day)).or_default() += 1;
    }
    let short: Vec<_> = per_day.iter().filter(|(_, &n)| n == 92).collect();
    let long: Vec<_> = per_day.iter().filter(|(_, &n)| n == 100).collect();
    assert_eq!(short.len(), 1, "{short:?}");
    assert_eq!(long.len(), 1, "{long:?}");
    assert_eq!(*short[0].0, (2026, 3, 29));
    assert_eq!(*long[0].0, (2026, 10, 25));
    assert_eq!(per_day.values().filter(|&&n| n == 96).count(), 363);
}

#[test]
fn dst_changes_in_horodates_around_the_switch() {
    let config = Config {
        interval: Interval::FixedMs(60_000),
        start_unix_s: clock::parse_datetime("2026-10-25T01:30").unwrap(),
        ..Config::default()
    };
    let dates: Vec<String> = Simulator::new(config)
        .unwrap()
        .take(180)
        .map(|f| {
            decode(&f.bytes).0[0]
                .get("DATE")
                .unwrap()
                .horodate
                .unwrap()
                .to_string()
        })
        .collect();
    // 02:59 summer, then 02:00 winter: the repeated hour, told apart by the letter.
    let i = dates.iter().position(|d| d == "E261025025900").unwrap();
    assert_eq!(dates[i + 1], "H261025020000");
    assert!(dates.contains(&"H261025025900".to_string()));
}

#[test]
fn tempo_colours_are_announced_in_stge_and_demain() {
    for mode in [Mode::Standard, Mode::Historic] {
        let config = Config {
            mode,
            contract: Contract::Tempo,
            interval: Interval::FixedMs(20 * 60_000),
            start_unix_s: clock::parse_datetime("2026-01-01T00:00").unwrap(),
            ..Config::default()
        };
        let mut colours = BTreeMap::new();
        for frame in Simulator::new(config).unwrap().take(72 * 90) {
            let (d, _) = decode(&frame.bytes);
            let d = &d[0];
            let local = clock::local(frame.true_time_unix_ms / 1000);
            let minute = local.hour as u32 * 60 + local.minute as u32;
            let known = !(6 * 60..10 * 60 + 40).contains(&minute);
            match mode {
                Mode::Historic => {
                    let demain = d.value("DEMAIN");
                    assert_eq!(
                        demain != "----",
                        known,
                        "{demain} at {}:{}",
                        local.hour,
                        local.minute
                    );
                    let ptec = d.value("PTEC");
                    assert_eq!(ptec.starts_with("HP"), (6 * 60..22 * 60).contains(&minute));
                    colours.entry(ptec[3..].to_string()).or_insert(0);
                }
                Mode::Standard => {
                    let stge = tic::stge::Stge::parse(d.value("STGE")).unwrap();
                    assert_eq!(stge.tempo_tomorrow().is_some(), known);
                    let today = stge.tempo_today().unwrap();
                    let ntarf = d.number("NTARF");
                    let rank = match today {
                        tic::stge::TempoColour::Blue => 0,
                        tic::stge::TempoColour::White => 1,
                        tic::stge::TempoColour::Red => 2,
                    };
                    let peak = (6 * 60..22 * 60).contains(&minute);
                    assert_eq!(ntarf, rank * 2 + 1 + u64::from(peak));
                    *colours.entry(today.as_str().to_string()).or_insert(0) += 1;
                }
            }
        }
        assert_eq!(
            colours.len(),
            3,
            "{mode:?}: blue, white and red in a winter quarter: {colours:?}"
        );
    }
}

#[test]
fn same_seed_same_bytes() {
    for mut config in common::variants().into_iter().step_by(3) {
        config.faults = "bit=1e-4,drop=1e-4,eot=0.02,noise=0.02,truncate=0.02"
            .parse()
            .unwrap();
        let a = common::stream(config.clone(), 300);
        let b = common::stream(config.clone(), 300);
        assert_eq!(a, b);
        config.seed = 2;
        assert_ne!(a, common::stream(config, 300));
    }
}

#[test]
fn faults_do_not_change_the_meter_data() {
    // The faults draw from their own random stream: the clean frames are the same.
    let config = Config {
        interval: Interval::FixedMs(60_000),
        ..Config::default()
    };
    let mut clean = Simulator::new(config.clone()).unwrap();
    let mut faulty = Simulator::new(Config {
        faults: "bit=1e-3,drop=1e-3,eot=0.1".parse().unwrap(),
        ..config
    })
    .unwrap();
    for _ in 0..200 {
        let a = clean.next_frame();
        faulty.next_frame();
        assert_eq!(a.bytes, faulty.last_clean_frame().0);
        assert_eq!(clean.state(), faulty.state());
    }
}

#[test]
fn daily_maxima_carry_the_time_they_happened() {
    let config = Config {
        phases: 3,
        subscribed_kva: 12,
        producer: true,
        solar_kwp: 6.0,
        interval: Interval::FixedMs(120_000),
        start_unix_s: clock::parse_datetime("2026-04-10T00:00").unwrap(),
        ..Config::default()
    };
    let mut seen: Vec<(u64, tic::Horodate)> = Vec::new(); // (SINSTS, DATE) today
    let mut last_day_max: Option<(u64, String)> = None;
    let mut day = 0u8;
    for frame in Simulator::new(config).unwrap().take(3 * 720) {
        let (d, _) = decode(&frame.bytes);
        let d = &d[0];
        let date = d.get("DATE").unwrap().horodate.unwrap();
        if date.day != day {
            if day != 0 {
                // Yesterday's maximum moved to n-1 at midnight, with its time.
                let y = d.get("SMAXSN-1").unwrap();
                let (v, h) = last_day_max.clone().unwrap();
                assert_eq!(
                    (d.number("SMAXSN-1"), y.horodate.unwrap().to_string()),
                    (v, h)
                );
            }
            day = date.day;
            seen.clear();
        }
        seen.push((d.number("SINSTS"), date));
        let smax = d.get("SMAXSN").unwrap();
        let h = smax.horodate.unwrap();
        let best = seen.iter().map(|s| s.0).max().unwrap();
        assert_eq!(d.number("SMAXSN"), best, "SMAXSN is today's maximum so far");
        assert!(
            seen.iter().any(|(v, t)| *v == best && *t == h),
            "its horodate is when it happened"
        );
        assert_eq!((h.year, h.month, h.day), (date.year, date.month, date.day));
        for i in 1..=3 {
            assert!(d.number(&format!("SMAXSN{i}")) >= d.number(&format!("SINSTS{i}")));
        }
        assert!(d.number("SMAXIN") >= d.number("SINSTI"));
        last_day_max = Some((d.number("SMAXSN"), h.to_string()));
    }
}
