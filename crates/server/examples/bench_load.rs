//! Load generator for scripts/bench-server.sh (one process drives both teleinfo and
//! VictoriaMetrics with identical requests, so the comparison is like for like).
//!
//! Subcommands (all print one `key=value` line per figure on stdout):
//! - `put URL [URL…]`: the same pre-encoded OpenTSDB JSON batches POSTed to each URL's
//!   `/api/put` by 4 connections; prints points/s per URL.
//! - `uplink ADDR TOKEN DEVICE`: standard-mode three-phase frames through `/api/v1/uplink`
//!   (64-frame batches, acked = durable) by 4 devices; prints frames/s.
//! - `year URL…`: a year of SINSTS at one point per 2 s and EASF01/EASF02 every 30 s for meter
//!   `bench`, into each URL's `/api/put` (generated on the fly, identical for all).
//! - `week URL…`: a simulated week of a three-phase standard meter (one frame per 2 s),
//!   every numeric label as OpenTSDB points; prints the number of values.
//! - `devices ADDR TOKEN_FILE`: 1,000 devices (tokens one per line, `name token`) each
//!   posting batches; prints frames/s.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use server::client::Client;

fn addr_of(url: &str) -> (SocketAddr, String) {
    let rest = url.trim_start_matches("http://");
    let (hostport, path) = rest
        .split_once('/')
        .map_or((rest, String::new()), |(h, p)| (h, format!("/{p}")));
    (
        hostport.parse().expect("URL must be http://IP:PORT/path"),
        path,
    )
}

fn post_all(url: &str, bodies: &[Vec<u8>], threads: usize) -> f64 {
    let (addr, path) = addr_of(url);
    let next = Arc::new(AtomicU64::new(0));
    let t0 = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..threads {
            let next = next.clone();
            let path = path.clone();
            s.spawn(move || {
                let mut c = Client::new(addr);
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                    if i >= bodies.len() {
                        break;
                    }
                    let r = c
                        .request(
                            "POST",
                            &path,
                            &[("Content-Type", "application/json")],
                            &bodies[i],
                        )
                        .expect("post");
                    assert!(
                        r.status == 204 || r.status == 200,
                        "HTTP {}: {}",
                        r.status,
                        r.text()
                    );
                }
            });
        }
    });
    t0.elapsed().as_secs_f64()
}

fn json_batch(
    metric_points: &mut dyn Iterator<Item = (&'static str, i64, f64, &'static str)>,
) -> Vec<u8> {
    let mut s = String::with_capacity(1 << 20);
    s.push('[');
    let mut first = true;
    for (m, ts, v, meter) in metric_points {
        if !first {
            s.push(',');
        }
        first = false;
        s.push_str(&format!("{{\"metric\":\"{m}\",\"timestamp\":{ts},\"value\":{v},\"tags\":{{\"meter\":\"{meter}\"}}}}"));
    }
    s.push(']');
    s.into_bytes()
}

fn put(urls: &[String]) {
    // 100 batches of 10,000 points: 100 series of a household-like signal, ms timestamps.
    const METERS: [&str; 10] = ["m0", "m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8", "m9"];
    const METRICS: [&str; 10] = [
        "SINSTS", "IRMS1", "URMS1", "EAST", "EASF01", "EASF02", "SINSTS1", "SINSTS2", "SINSTS3",
        "NTARF",
    ];
    let base = 1_767_222_000_000_i64;
    let bodies: Vec<Vec<u8>> = (0..100_i64)
        .map(|b| {
            let mut it = (0..10_000_i64).map(move |i| {
                let k: i64 = b * 10_000 + i;
                let series = (k % 100) as usize;
                let step = k / 100;
                (
                    METRICS[series % 10],
                    base + step * 2000,
                    ((step * 37 + series as i64 * 11) % 9000) as f64,
                    METERS[series / 10],
                )
            });
            json_batch(&mut it)
        })
        .collect();
    let points = 1_000_000.0;
    for u in urls {
        let secs = post_all(u, &bodies, 4);
        println!("put_points_per_s {u} {:.0}", points / secs);
    }
}

fn sim_frames(n: usize, seed: u64, start_unix_s: i64) -> Vec<Vec<u8>> {
    let cfg = meter_sim::Config {
        phases: 3,
        subscribed_kva: 36,
        seed,
        start_unix_s,
        interval: meter_sim::Interval::FixedMs(2000),
        ..meter_sim::Config::default()
    };
    let mut sim = meter_sim::Simulator::new(cfg).expect("sim");
    (0..n).map(|_| sim.next_frame().bytes).collect()
}

/// Greedy batches of one device: as many frames as fit (wire limits: 32 KiB, 64 frames).
fn device_batches(device: &str, boot: u64, frames: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < frames.len() {
        let mut buf = vec![0u8; uplink::MAX_BATCH_BYTES];
        let header = uplink::BatchHeader {
            device_id: device,
            boot_id: boot,
            firmware_version: "bench",
            telemetry: uplink::Telemetry::default(),
            first_seq: at as u32,
        };
        let mut w = uplink::BatchWriter::new(&mut buf, &header).expect("header");
        while at < frames.len() && w.fits(frames[at].len()) {
            w.push_frame(None, &frames[at]).expect("frame");
            at += 1;
        }
        out.push(w.finish().to_vec());
    }
    out
}

/// Posts every device's batches in order; device `d` is served by thread `d % threads`, so a
/// device never has two batches in flight (as a real device).
fn uplink_bench(
    addr: SocketAddr,
    tokens: &[(String, String)],
    frames_per_device: usize,
    threads: usize,
) -> (u64, f64, u64) {
    // Pre-encode every batch so that only the server's work is measured.
    let frames = sim_frames(frames_per_device, 5, 1_767_222_000);
    // The TIC bytes the meters sent (STX..ETX), to compare the raw-frame archive with.
    let raw_bytes = frames.iter().map(|f| f.len() as u64).sum::<u64>() * tokens.len() as u64;
    let work: Vec<Vec<Vec<u8>>> = tokens
        .iter()
        .map(|(name, _)| device_batches(name, 1, &frames))
        .collect();
    let threads = threads.min(tokens.len()).max(1);
    let t0 = Instant::now();
    std::thread::scope(|s| {
        for t in 0..threads {
            let work = &work;
            s.spawn(move || {
                let mut c = Client::new(addr);
                let mine: Vec<usize> = (0..tokens.len()).filter(|d| d % threads == t).collect();
                let rounds = work.iter().map(Vec::len).max().unwrap_or(0);
                for b in 0..rounds {
                    for &d in &mine {
                        let Some(body) = work[d].get(b) else { continue };
                        let auth = format!("Bearer {}", tokens[d].1);
                        let r = c
                            .request("POST", "/api/v1/uplink", &[("Authorization", &auth)], body)
                            .expect("post");
                        assert_eq!(r.status, 200, "{}", r.text());
                    }
                }
            });
        }
    });
    let secs = t0.elapsed().as_secs_f64();
    ((frames_per_device * tokens.len()) as u64, secs, raw_bytes)
}

fn year(urls: &[String]) {
    // SINSTS every 2 s for 365 days, EASF01/EASF02 every 30 s (HC 22:00-06:00 on 02).
    let start = 1_735_686_000_i64; // 2025-01-01T00:00:00+01:00
    let n: usize = 365 * 86_400 / 2;
    let per_batch: usize = 20_000;
    let batches = n.div_ceil(per_batch);
    for u in urls {
        let (addr, path) = addr_of(u);
        let next = AtomicU64::new(0);
        let t0 = Instant::now();
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    let mut c = Client::new(addr);
                    loop {
                        let b = next.fetch_add(1, Ordering::Relaxed) as usize;
                        if b >= batches {
                            break;
                        }
                        let lo = b * per_batch;
                        let hi = (lo + per_batch).min(n);
                        let mut pts: Vec<(&'static str, i64, f64, &'static str)> =
                            Vec::with_capacity(per_batch + 2000);
                        for i in lo..hi {
                            let t = start + 2 * i as i64;
                            let tod = t.rem_euclid(86_400);
                            let load = 400.0
                                + 300.0
                                    * ((tod as f64 / 86_400.0 * std::f64::consts::TAU).sin() + 1.0)
                                + ((i * 7919) % 1000) as f64;
                            pts.push(("SINSTS", t, load.round(), "bench"));
                            if i % 15 == 0 {
                                // Index readings: ~0.55 kWh per hour on average.
                                let wh = (i as f64 * 2.0 * 0.153).floor();
                                let hc = !(5 * 3600..21 * 3600).contains(&tod);
                                pts.push((
                                    "EASF01",
                                    t,
                                    (wh * 0.6).floor() + if hc { 0.0 } else { 1.0 },
                                    "bench",
                                ));
                                pts.push(("EASF02", t, (wh * 0.4).floor(), "bench"));
                            }
                        }
                        let body = json_batch(&mut pts.into_iter());
                        let r = c
                            .request(
                                "POST",
                                &path,
                                &[("Content-Type", "application/json")],
                                &body,
                            )
                            .expect("post");
                        assert!(
                            r.status == 204 || r.status == 200,
                            "HTTP {}: {}",
                            r.status,
                            r.text()
                        );
                    }
                });
            }
        });
        println!("year_load_s {u} {:.1}", t0.elapsed().as_secs_f64());
    }
}

fn week(urls: &[String]) {
    let frames = sim_frames(7 * 86_400 / 2, 21, 1_767_222_000);
    // Every numeric label as it would be stored (labels only, no aliases, for a like-for-like
    // comparison of bytes per stored value).
    let mut bodies = Vec::new();
    let mut values = 0u64;
    let mut cur: Vec<(String, i64, f64)> = Vec::new();
    for f in &frames {
        let d = server::frame::decode(f, false);
        let Some(t) = d.meter_time_ms() else { continue };
        for (info, v) in &d.values {
            cur.push((
                server::frame::metric_name(info.label).to_string(),
                t / 1000,
                *v,
            ));
            values += 1;
        }
        if cur.len() >= 20_000 {
            bodies.push(encode_owned(&cur));
            cur.clear();
        }
    }
    if !cur.is_empty() {
        bodies.push(encode_owned(&cur));
    }
    for u in urls {
        post_all(u, &bodies, 4);
    }
    println!("week_values {values}");
    println!("week_frames {}", frames.len());
    println!(
        "week_raw_bytes {}",
        frames.iter().map(|f| f.len() as u64).sum::<u64>()
    );
}

fn encode_owned(p: &[(String, i64, f64)]) -> Vec<u8> {
    let mut s = String::with_capacity(p.len() * 80);
    s.push('[');
    for (i, (m, t, v)) in p.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push_str(&format!("{{\"metric\":\"{m}\",\"timestamp\":{t},\"value\":{v},\"tags\":{{\"meter\":\"week\"}}}}"));
    }
    s.push(']');
    s.into_bytes()
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("put") => put(&args[1..]),
        Some("year") => year(&args[1..]),
        Some("week") => week(&args[1..]),
        Some("uplink") => {
            let addr: SocketAddr = args[1].parse().expect("ADDR");
            let tokens = vec![(args[3].clone(), args[2].clone())];
            // One device: 20,000 frames in batches of 64 (the wire maximum), 4 connections
            // would reorder one device's batches, so several devices share the load.
            let (n, secs, _) = uplink_bench(addr, &tokens, 20_000, 1);
            println!("uplink_frames_per_s_1dev {:.0}", n as f64 / secs);
        }
        Some("uplink-multi") => {
            let addr: SocketAddr = args[1].parse().expect("ADDR");
            let tokens: Vec<(String, String)> = std::fs::read_to_string(&args[2])
                .expect("token file")
                .lines()
                .filter_map(|l| {
                    l.split_once(' ')
                        .map(|(a, b)| (a.to_string(), b.to_string()))
                })
                .collect();
            let per_dev: usize = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(5000);
            let (n, secs, raw_bytes) = uplink_bench(addr, &tokens, per_dev, 4);
            println!(
                "uplink_frames_per_s {:.0} devices={} frames={n} raw_bytes={raw_bytes}",
                n as f64 / secs,
                tokens.len()
            );
        }
        _ => {
            eprintln!("usage: bench_load put|year|week URL… | uplink ADDR TOKEN DEVICE | uplink-multi ADDR TOKEN_FILE [FRAMES_PER_DEVICE]");
            std::process::exit(2);
        }
    }
}
