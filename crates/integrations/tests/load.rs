//! Load: a fleet of simulated meters (1,000 by default) through decoding, the plausibility
//! check and the durable forward queue into VictoriaMetrics, paced like real meters (one
//! frame per meter per second) and then as fast as possible. Every point must arrive.
//!
//! Ignored by default (it needs victoria-metrics and two idle cores for ~1 minute):
//! `cargo test --release -p integrations --test load -- --ignored --nocapture`.
//! `TELEINFO_LOAD_DEVICES` and `TELEINFO_LOAD_SECONDS` change the size.

mod common;

use std::sync::atomic::Ordering;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::*;
use integrations::{ForwardConfig, ForwardKind, Outputs, OutputsConfig};
use meter_sim::{Contract, Mode, Simulator};

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

const WORKERS: usize = 8;

/// Meter `i`'s mode: one in four is historic.
fn mode_of(i: usize) -> Mode {
    if i % 4 == 3 {
        Mode::Historic
    } else {
        Mode::Standard
    }
}

/// One round: every meter sends one frame, each as its own submit (like one uplink request
/// per device), from `WORKERS` threads. Returns the number of points submitted.
fn round(out: &Outputs, sims: &[Mutex<(Simulator, i64)>]) -> u64 {
    let points = std::sync::atomic::AtomicU64::new(0);
    std::thread::scope(|s| {
        for w in 0..WORKERS {
            let points = &points;
            s.spawn(move || {
                for cell in sims.iter().skip(w).step_by(WORKERS) {
                    let mut g = cell.lock().unwrap();
                    g.1 += 1000;
                    let fallback = g.1;
                    let r = next_reading(&mut g.0, fallback);
                    drop(g);
                    points.fetch_add(r.series().len() as u64, Ordering::Relaxed);
                    out.submit(vec![r]).expect("queue accepts");
                }
            });
        }
    });
    points.into_inner()
}

#[test]
#[ignore]
fn thousand_meters_to_victoriametrics() {
    let devices = env_or("TELEINFO_LOAD_DEVICES", 1000);
    let paced_s = env_or("TELEINFO_LOAD_SECONDS", 20);
    let burst_rounds = 10;
    let Some(bin) = server_binary("victoria-metrics", "victoria-metrics") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (http, tsdb) = (free_port(), free_port());
    let _vm = Proc::spawn(
        &bin,
        &[
            format!("-storageDataPath={}", dir.path().join("vm").display()),
            format!("-httpListenAddr=127.0.0.1:{http}"),
            format!("-opentsdbHTTPListenAddr=127.0.0.1:{tsdb}"),
            "-retentionPeriod=100y".into(),
            "-dedup.minScrapeInterval=1ms".into(),
            "-search.latencyOffset=0s".into(),
            "-search.maxExportSeries=100000".into(),
        ],
        dir.path().join("vm.log"),
    );
    wait_port(tsdb, Duration::from_secs(20));
    wait_port(http, Duration::from_secs(20));

    let cfg = OutputsConfig {
        mqtt: None,
        forward: vec![ForwardConfig::new(
            ForwardKind::Opentsdb,
            &format!("http://127.0.0.1:{tsdb}"),
        )],
    };
    let out = Outputs::start(&cfg, &dir.path().join("queues")).unwrap();
    let start_s = now_s() - 3600;
    let contracts = [Contract::Base, Contract::default_hchp(), Contract::Tempo];
    let sims: Vec<Mutex<(Simulator, i64)>> = distinct_simulators(devices, 1000, |i, seed| {
        simulator(seed, mode_of(i), contracts[i % 3].clone(), start_s, 1000)
    })
    .into_iter()
    .map(|sim| Mutex::new((sim, start_s * 1000)))
    .collect();
    let f = &out.forwarders()[0];
    let hwm_before = vm_hwm_kib();

    // Paced: one frame per meter per second of wall time.
    let t0 = Instant::now();
    let mut points = 0u64;
    let mut max_lag = 0i64;
    let mut busy = Duration::ZERO;
    for s in 0..paced_s {
        let tick = Instant::now();
        points += round(&out, &sims);
        busy += tick.elapsed();
        max_lag = max_lag.max(f.stats().last_lag_ms.load(Ordering::Relaxed));
        let next = t0 + Duration::from_secs(s as u64 + 1);
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
    }
    let paced_frames = devices * paced_s;
    let backlog_after_paced = f.queue().points();

    // Burst: as fast as possible.
    let tb = Instant::now();
    for _ in 0..burst_rounds {
        points += round(&out, &sims);
    }
    let burst = tb.elapsed();
    let burst_frames = devices * burst_rounds;
    let td = Instant::now();
    eventually(Duration::from_secs(300), "the queue to drain", || {
        f.queue().is_empty().then_some(())
    });
    let drain = td.elapsed();
    let total = tb.elapsed();
    let hwm = vm_hwm_kib();

    // Everything arrived: one SINSTS/PAPP series per meter with every frame's sample.
    let frames_per_meter = paced_s + burst_rounds;
    let historic = (0..devices)
        .filter(|&i| mode_of(i) == Mode::Historic)
        .count();
    let mut series = 0;
    let mut samples = 0;
    for (metric, meters) in [("SINSTS", devices - historic), ("PAPP", historic)] {
        let got = vm_export_settled(
            http,
            metric,
            meters * frames_per_meter,
            Duration::from_secs(30),
        );
        assert_eq!(got.len(), meters, "{metric}: one series per meter");
        for (meter, pts) in &got {
            assert_eq!(pts.len(), frames_per_meter, "{metric} of {meter}: samples");
            series += 1;
            samples += pts.len();
        }
    }
    assert_eq!(series, devices, "one apparent-power series per meter");
    assert_eq!(
        f.stats().sent_points.load(Ordering::Relaxed),
        points,
        "every point accepted once"
    );
    assert_eq!(
        f.stats().rejected_points.load(Ordering::Relaxed)
            + f.stats().dropped_points.load(Ordering::Relaxed),
        0
    );

    let report = format!(
        "LOAD devices={devices} paced: {paced_frames} frames in {paced_s} s, busy {:.1}% of the time, \
         max forward lag {max_lag} ms, backlog after {backlog_after_paced} points | burst: {burst_frames} frames \
         submitted in {:.2} s = {:.0} frames/s ({:.0} points/s), drained {:.2} s later; end-to-end {:.0} frames/s, \
         {:.0} points/s forwarded | points total {points}, verified samples {samples} | memory: VmHWM {} MiB \
         (before load {} MiB)",
        busy.as_secs_f64() * 100.0 / paced_s as f64,
        burst.as_secs_f64(),
        burst_frames as f64 / burst.as_secs_f64(),
        (points as f64 * burst_rounds as f64 / frames_per_meter as f64) / burst.as_secs_f64(),
        drain.as_secs_f64(),
        burst_frames as f64 / total.as_secs_f64(),
        (points as f64 * burst_rounds as f64 / frames_per_meter as f64) / total.as_secs_f64(),
        hwm / 1024,
        hwm_before / 1024,
    );
    eprintln!("{report}");
    if let Ok(p) = std::env::var("TELEINFO_LOAD_REPORT") {
        std::fs::write(p, format!("{report}\n")).unwrap();
    }
    // Real time kept up: a second of frames took less than a second to queue, and the
    // forwarder stayed within a few seconds.
    assert!(
        busy < Duration::from_secs(paced_s as u64),
        "cannot keep up with {devices} meters in real time"
    );
    assert!(max_lag < 5000, "forward lag {max_lag} ms");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(out.shutdown());
}
