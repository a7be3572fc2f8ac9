//! `teleinfo demo`: the whole product with no hardware and nothing to configure.
//!
//! Runs the server (crates/server) on an embedded store in a temporary directory (or `--data`),
//! backfills a year of history from two virtual Linky meters (crates/meter-sim) straight into
//! the store, then feeds both meters' frames live, in real time, through the same ingest path
//! as a real device, and prints the dashboard's URL.
//!
//! - a single-phase consumer in historic mode on HC/HP, read by a USB dongle;
//! - a three-phase Tempo producer (6 kWp of solar) in standard mode, read by an ESP32 on a
//!   slightly noisy line, so the health view has something to diagnose.
//!
//! History is simulated at one frame every 10 minutes for the past year and every 20 seconds for
//! the last two days, decoded by the server's own frame decoder and written in large batches
//! (values only, no raw frames): a few seconds on a laptop. The simulator starts every run
//! from its seeded index values, so each later segment — the live one included — is shifted
//! to continue the previous one's indexes: energy per day stays exact across the seams.

use anyhow::{Context, Result};
use meter_sim::{Config as SimConfig, Contract, Interval, Mode, Simulator};
use server::app::Shared;
use server::ingest::InFrame;
use server::live::Telemetry;
use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use store::{SeriesId, SeriesKey, Source, WriteBatch};
use tic::{Decoder, Event, Quantity};

#[derive(clap::Args)]
pub struct Args {
    /// HTTP listen address (port 0: the system picks a free one).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    pub listen: String,
    /// Keep the store in DIR instead of a temporary directory removed on exit.
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// Days of history to simulate before going live (a year, plus a month so that the last
    /// days can be compared with the same days a year earlier).
    #[arg(long, value_name = "DAYS", default_value_t = 400)]
    pub history_days: u32,
    /// Stop after this many seconds (default: run until Ctrl-C).
    #[arg(long)]
    pub seconds: Option<u64>,
    /// Also publish the live meters to this MQTT broker with Home Assistant discovery, e.g.
    /// mqtt://127.0.0.1:1883 (docs/mqtt.md).
    #[arg(long, value_name = "URL")]
    pub mqtt: Option<String>,
}

/// One virtual meter of the demo.
struct DemoMeter {
    device: &'static str,
    config: SimConfig,
    /// Share of frames with one corrupted byte on the live line.
    noise: f64,
}

fn meters(now_s: i64) -> Vec<DemoMeter> {
    vec![
        DemoMeter {
            device: "usb-dongle",
            config: SimConfig {
                mode: Mode::Historic,
                contract: Contract::default_hchp(),
                subscribed_kva: 9,
                start_unix_s: now_s,
                seed: 11,
                ..SimConfig::default()
            },
            noise: 0.0,
        },
        DemoMeter {
            device: "esp32-garage",
            config: SimConfig {
                mode: Mode::Standard,
                phases: 3,
                producer: true,
                contract: Contract::Tempo,
                subscribed_kva: 12,
                solar_kwp: 6.0,
                start_unix_s: now_s,
                seed: 2,
                ..SimConfig::default()
            },
            noise: 0.3,
        },
    ]
}

/// Regulated prices (EDF, 2025, € TTC per kWh) for the demo's cost figures: HC/HP for the
/// historic consumer (HCHC/HCHP), Tempo's six indexes for the standard producer (EASF01–06).
fn pricing() -> server::config::Pricing {
    let per_kwh = [
        ("HCHC", 0.2068),
        ("HCHP", 0.2700),
        ("EASF01", 0.1288),
        ("EASF02", 0.1552),
        ("EASF03", 0.1447),
        ("EASF04", 0.1792),
        ("EASF05", 0.1518),
        ("EASF06", 0.6586),
    ];
    server::config::Pricing {
        currency: "EUR".into(),
        subscription_per_day: 0.52,
        per_kwh: per_kwh.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
    }
}

pub fn run(args: Args) -> Result<ExitCode> {
    let started = Instant::now();
    // The temporary directory lives until the end of `run`: removed on exit.
    let (_tmp, data_dir) = match &args.data {
        Some(d) => (None, d.clone()),
        None => {
            let t = tempfile::Builder::new()
                .prefix("teleinfo-demo-")
                .tempdir()
                .context("cannot create a temporary directory")?;
            let p = t.path().to_path_buf();
            (Some(t), p)
        }
    };
    let cfg = server::Config {
        data_dir: data_dir.clone(),
        listen: args.listen.clone(),
        pricing: pricing(),
        mqtt: args.mqtt.as_deref().map(server::config::MqttConfig::new),
        ..Default::default()
    };
    let rt = server::runtime().context("cannot start the async runtime")?;
    rt.block_on(async move {
        let srv = server::Server::bind(cfg).await?;
        let addr = srv.http_addr().context("no HTTP address")?;
        let st = srv.state();
        let stop = Arc::new(AtomicBool::new(false));
        let seconds = args.seconds;
        let shutdown = {
            let stop = stop.clone();
            async move {
                match seconds {
                    Some(s) => {
                        tokio::select! {
                            _ = server::shutdown_signal() => {}
                            _ = tokio::time::sleep(Duration::from_secs(s)) => {}
                        }
                    }
                    None => server::shutdown_signal().await,
                }
                stop.store(true, Ordering::Relaxed);
            }
        };
        let server_task = tokio::spawn(srv.run(shutdown));
        println!(
            "teleinfo demo: simulating {} days of history for 2 virtual Linky meters in {}",
            args.history_days,
            data_dir.display()
        );
        let now_ms = server::app::now_ms();
        let days = args.history_days;
        let st2 = st.clone();
        let prepared = tokio::task::spawn_blocking(move || prepare(&st2, now_ms, days)).await??;
        let points: usize = prepared.iter().map(|p| p.points).sum();
        let mut out = std::io::stdout().lock();
        writeln!(
            out,
            "teleinfo demo: {points} values of history stored in {:.1} s; live frames flowing",
            started.elapsed().as_secs_f64()
        )?;
        writeln!(out, "teleinfo demo: open http://{addr}/ (Ctrl-C to stop)")?;
        out.flush()?;
        drop(out);
        let live_stop = stop.clone();
        let live = std::thread::Builder::new()
            .name("demo-live".into())
            .spawn(move || live_loop(&st, prepared, &live_stop))
            .context("cannot start the live feed")?;
        let served = server_task.await.context("server task")?;
        stop.store(true, Ordering::Relaxed);
        let _ = live.join();
        served.context("server")?;
        Ok::<_, anyhow::Error>(())
    })?;
    Ok(ExitCode::SUCCESS)
}

/// What the live feed needs from the backfill: the meter and where its indexes stand.
struct Prepared {
    meter: DemoMeter,
    /// Added to each index label's value so live frames continue the stored history.
    offsets: HashMap<String, u64>,
    points: usize,
}

/// Whether a metric is a cumulative index (its segments must join up).
fn is_index(metric: &str) -> bool {
    if metric.starts_with("energy.") {
        return true;
    }
    [Mode::Standard, Mode::Historic].iter().any(|&m| {
        tic::labels::lookup(m, metric.as_bytes()).is_some_and(|i| {
            matches!(
                i.quantity,
                Quantity::EnergyIndex | Quantity::ReactiveEnergyIndex
            )
        })
    })
}

/// Backfills every meter (one thread each) and returns the offsets for the live feed.
fn prepare(st: &Shared, now_ms: i64, days: u32) -> Result<Vec<Prepared>> {
    let now_s = now_ms / 1000;
    let handles: Vec<_> = meters(now_s)
        .into_iter()
        .map(|m| {
            let st = st.clone();
            std::thread::spawn(move || backfill(&st, m, now_ms, days))
        })
        .collect();
    handles
        .into_iter()
        .map(|h| {
            h.join()
                .map_err(|_| anyhow::anyhow!("backfill thread panicked"))?
        })
        .collect()
}

fn backfill(st: &Shared, meter: DemoMeter, now_ms: i64, days: u32) -> Result<Prepared> {
    let now_s = now_ms / 1000;
    let recent_s = now_s - 2 * 86_400;
    let start_s = now_s - i64::from(days) * 86_400;
    // (start, end, spacing): coarse for the year, fine for the last two days.
    let mut segments = Vec::new();
    if start_s < recent_s {
        segments.push((start_s, recent_s, 600_000));
    }
    segments.push((start_s.max(recent_s), now_s, 20_000));
    let mut ids: HashMap<&'static str, SeriesId> = HashMap::new();
    // Last value written of each index label, and the shift of the current segment.
    let mut last: HashMap<&'static str, f64> = HashMap::new();
    let mut batch = WriteBatch::new();
    let mut points = 0;
    for (from_s, to_s, step_ms) in segments {
        let mut sim = Simulator::new(SimConfig {
            start_unix_s: from_s,
            interval: Interval::FixedMs(step_ms),
            ..meter.config.clone()
        })
        .map_err(|e| anyhow::anyhow!("demo meter: {e}"))?;
        // Same seed, same meter address in every segment.
        let address = sim.address().to_string();
        let mut shift: Option<HashMap<&'static str, f64>> = None;
        let mut frame = sim.next_frame();
        while frame.true_time_unix_ms < to_s * 1000 {
            let f = server::frame::decode(&frame.bytes, false);
            let mut pts: Vec<(&'static str, f64)> = Vec::with_capacity(96);
            server::frame::for_each_point(&f, &mut |m, v| pts.push((m, v)));
            let shift = shift.get_or_insert_with(|| {
                pts.iter()
                    .filter(|(m, _)| is_index(m))
                    .map(|&(m, v)| (m, last.get(m).map_or(0.0, |l| l - v)))
                    .collect()
            });
            let missing: Vec<SeriesKey> = pts
                .iter()
                .filter(|(m, _)| !ids.contains_key(m))
                .filter_map(|(m, _)| SeriesKey::new(m, [("meter", address.as_str())]).ok())
                .collect();
            if !missing.is_empty() {
                let got = st.store.series_ids(&missing)?;
                for (k, id) in missing.iter().zip(got) {
                    if let Some(&(m, _)) = pts.iter().find(|(m, _)| *m == k.metric()) {
                        ids.insert(m, id);
                    }
                }
            }
            for &(m, v) in &pts {
                let v = v + shift.get(m).copied().unwrap_or(0.0);
                if let Some(&id) = ids.get(m) {
                    batch.add_point(id, frame.true_time_unix_ms, v)?;
                }
                if shift.contains_key(m) {
                    last.insert(m, v);
                }
            }
            if batch.len_points() >= 1_000_000 {
                points += batch.len_points();
                st.store.write(std::mem::take(&mut batch))?;
            }
            sim.next_into(&mut frame);
        }
    }
    points += batch.len_points();
    if batch.len_points() > 0 {
        st.store.write(batch)?;
    }
    // The live simulator starts from the seeded indexes again: shift it to the last values.
    let mut live =
        Simulator::new(meter.config.clone()).map_err(|e| anyhow::anyhow!("demo meter: {e}"))?;
    let first = live.next_frame();
    let mut offsets = HashMap::new();
    for_each_group(&first.bytes, &mut |label, value, _| {
        if let (Some(&l), Ok(v)) = (last.get(label), value.trim().parse::<u64>()) {
            if is_index(label) {
                offsets.insert(label.to_string(), (l as u64).saturating_sub(v));
            }
        }
    });
    Ok(Prepared {
        meter,
        offsets,
        points,
    })
}

/// Calls `f(label, value, horodate)` for every valid group of a frame.
fn for_each_group(bytes: &[u8], f: &mut impl FnMut(&str, &str, Option<tic::Horodate>)) {
    let mut dec = Decoder::new();
    let mut input = bytes;
    while !input.is_empty() {
        let (used, ev) = dec.feed(input);
        input = &input[used..];
        if let Some(Event::Group(g)) = ev {
            f(g.label, g.value(), g.horodate);
        }
        if used == 0 && ev.is_none() {
            break;
        }
    }
}

/// Re-encodes a frame with its index groups shifted (checksums recomputed), optionally with one
/// corrupted byte as a noisy line makes.
fn shifted(bytes: &[u8], mode: Mode, offsets: &HashMap<String, u64>) -> Vec<u8> {
    let mut out = vec![tic::STX];
    for_each_group(bytes, &mut |label, value, hd| {
        let v = match (offsets.get(label), value.parse::<u64>()) {
            (Some(o), Ok(n)) => format!("{:0w$}", n + o, w = value.len()),
            _ => value.to_string(),
        };
        let _ = tic::encode::write_group(mode, label, hd.as_ref(), &v, &mut |b| {
            out.extend_from_slice(b)
        });
    });
    out.push(tic::ETX);
    out
}

/// Small deterministic generator for the demo's noise and telemetry jitter.
struct Jitter(u64);
impl Jitter {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

struct LiveMeter {
    p: Prepared,
    sim: Simulator,
    next_at: Instant,
    seq: u64,
    boot_id: u64,
}

/// Real-time frames of every meter through the ingest pipeline, until `stop`.
fn live_loop(st: &Shared, prepared: Vec<Prepared>, stop: &AtomicBool) {
    let start = Instant::now();
    let boot_id = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(1, |d| d.as_millis() as u64);
    let mut meters: Vec<LiveMeter> = prepared
        .into_iter()
        .filter_map(|p| {
            let now_s = server::app::now_ms() / 1000;
            let sim = Simulator::new(SimConfig {
                start_unix_s: now_s,
                interval: Interval::Wire,
                ..p.meter.config.clone()
            })
            .ok()?;
            Some(LiveMeter {
                p,
                sim,
                next_at: start,
                seq: 0,
                boot_id,
            })
        })
        .collect();
    let mut rng = Jitter(0x9E37_79B9_7F4A_7C15);
    let mut last_telemetry = start - Duration::from_secs(60);
    while !stop.load(Ordering::Relaxed) {
        let Some(m) = meters.iter_mut().min_by_key(|m| m.next_at) else {
            return;
        };
        let wait = m.next_at.saturating_duration_since(Instant::now());
        // Sleep in short steps so that Ctrl-C is honoured quickly.
        std::thread::sleep(wait.min(Duration::from_millis(200)));
        if Instant::now() < m.next_at {
            continue;
        }
        let frame = m.sim.next_frame();
        m.next_at +=
            Duration::from_micros(frame.wire_duration_us() + u64::from(frame.gap_after_us));
        let mut bytes = shifted(&frame.bytes, frame.mode, &m.p.offsets);
        if m.p.meter.noise > 0.0 && rng.next() < m.p.meter.noise && bytes.len() > 20 {
            // One flipped bit in a data byte: the group's checksum fails, as on a noisy line.
            let i = 10 + (rng.next() * (bytes.len() - 20) as f64) as usize;
            if bytes[i].is_ascii_alphanumeric() {
                bytes[i] ^= 0x01;
            }
        }
        m.seq += 1;
        let now = server::app::now_ms();
        let device = m.p.meter.device;
        let inf = [InFrame {
            seq: m.seq,
            bytes: &bytes,
            device_time_ms: Some(now),
            receive_ms: now,
        }];
        if let Err(e) = st.ingest.ingest(
            Source {
                device_id: device.into(),
                boot_id: m.boot_id,
            },
            &inf,
            now,
        ) {
            eprintln!("teleinfo demo: store write failed: {e}");
        }
        // The ESP32 reports its telemetry with each uplink batch: every 10 s here.
        if last_telemetry.elapsed() >= Duration::from_secs(10) {
            last_telemetry = Instant::now();
            for m in meters
                .iter()
                .filter(|m| m.p.meter.device.starts_with("esp32"))
            {
                let counters: BTreeMap<&'static str, u32> = [
                    ("uart_errors", 0),
                    ("rejected_groups", 0),
                    ("post_failures", 2),
                    ("wifi_connects", 1),
                ]
                .into_iter()
                .collect();
                st.live.telemetry(
                    m.p.meter.device,
                    server::app::now_ms(),
                    Telemetry {
                        firmware_version: "0.1.0-demo".into(),
                        boot_id: m.boot_id,
                        line_mode: "standard",
                        rssi_dbm: Some(-64 - (rng.next() * 6.0) as i8),
                        // As if the device had booted a day before the demo.
                        uptime_s: 86_400 + start.elapsed().as_secs() as u32,
                        free_heap_bytes: 183_000 + (rng.next() * 4000.0) as u32,
                        queued_frames: (rng.next() * 3.0) as u32,
                        buffer_fill: rng.next() * 0.002,
                        counters,
                    },
                );
            }
        }
    }
}
