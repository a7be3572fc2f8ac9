//! Store benchmark: prints a table of ingest rate, bytes per point and query times.
//!
//! ```text
//! cargo run --release -p store --example store_bench [-- --quick] [--dir /path]
//! ```
//! Everything goes through the public API on a real SQLite file with fsync (synchronous=FULL).
//! `--quick` shrinks every workload (for a smoke run); `--only ingest|small|week|year` runs one
//! part.
#![allow(clippy::needless_range_loop)] // per-phase arrays read clearer indexed

use std::path::PathBuf;
use std::time::Instant;

use store::{
    Aggregator, Bucketing, Period, SeriesId, SeriesKey, Source, Store, StoreConfig, WriteBatch,
};

/// 2026-01-05T00:00:00Z.
const T0: i64 = 1_767_571_200_000;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform in [0, 1).
    fn f(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn normal(&mut self) -> f64 {
        (0..6).map(|_| self.f()).sum::<f64>() - 3.0
    }
}

/// Labels of a three-phase standard-mode meter that carry numbers (50 of them).
const LABELS: [&str; 50] = [
    "EAST",
    "EASF01",
    "EASF02",
    "EASF03",
    "EASF04",
    "EASF05",
    "EASF06",
    "EASF07",
    "EASF08",
    "EASF09",
    "EASF10",
    "EASD01",
    "EASD02",
    "EASD03",
    "EASD04",
    "ERQ1",
    "ERQ2",
    "ERQ3",
    "ERQ4",
    "IRMS1",
    "IRMS2",
    "IRMS3",
    "URMS1",
    "URMS2",
    "URMS3",
    "PREF",
    "PCOUP",
    "SINSTS",
    "SINSTS1",
    "SINSTS2",
    "SINSTS3",
    "SMAXSN",
    "SMAXSN1",
    "SMAXSN2",
    "SMAXSN3",
    "SMAXSN-1",
    "SMAXSN1-1",
    "SMAXSN2-1",
    "SMAXSN3-1",
    "CCASN",
    "CCASN-1",
    "UMOY1",
    "UMOY2",
    "UMOY3",
    "NTARF",
    "NJOURF",
    "NJOURF+1",
    "STGE",
    "DPM1",
    "FPM1",
];

/// A plausible three-phase household: base load, daily pattern, appliances switching on and
/// off, noisy voltages, indexes integrating the power (HC 22:00-06:00 / HP).
struct Meter {
    rng: Rng,
    t_s: f64,
    east_wh: f64,
    erq: [f64; 4],
    hc_wh: f64,
    hp_wh: f64,
    appliance_va: f64,
    appliance_left_s: f64,
    u_drift: [f64; 3],
    smax: [f64; 4],
    smax_prev: [f64; 4],
    day: i64,
    ccasn: (f64, f64, f64, i64),
    umoy: ([f64; 3], [f64; 3], f64, i64),
}

impl Meter {
    fn new(seed: u64) -> Meter {
        Meter {
            rng: Rng(seed | 1),
            t_s: 0.0,
            east_wh: 12_345_678.0,
            erq: [123_456.0, 2_345.0, 34_567.0, 456.0],
            hc_wh: 5_000_000.0,
            hp_wh: 7_345_678.0,
            appliance_va: 0.0,
            appliance_left_s: 0.0,
            u_drift: [0.0; 3],
            smax: [0.0; 4],
            smax_prev: [4200.0, 1500.0, 1400.0, 1600.0],
            day: 0,
            ccasn: (0.0, 0.0, 0.0, 0),
            umoy: ([0.0; 3], [230.0; 3], 0.0, 0),
        }
    }

    /// Advances ~1.3 s and returns (timestamp in ms at the meter's 1 s resolution, values).
    fn frame(&mut self, out: &mut [f64; 50]) -> i64 {
        let dt = 1.3;
        self.t_s += dt;
        let ts_ms = T0 + (self.t_s.floor() as i64) * 1000;
        let hour = (self.t_s / 3600.0) % 24.0;
        let r = &mut self.rng;
        if self.appliance_left_s <= 0.0 && r.f() < 0.002 {
            self.appliance_va = [1200.0, 2000.0, 2400.0, 800.0][(r.next() % 4) as usize];
            self.appliance_left_s = 60.0 + r.f() * 1800.0;
        }
        self.appliance_left_s -= dt;
        if self.appliance_left_s <= 0.0 {
            self.appliance_va = 0.0;
        }
        let daily = 250.0 * (1.0 + ((hour - 7.0) / 24.0 * std::f64::consts::TAU).sin());
        let p_total = (350.0 + daily + self.appliance_va + 15.0 * r.normal())
            .max(0.0)
            .round();
        let split = [0.5 + 0.05 * r.normal(), 0.3, 0.2];
        let s: f64 = split.iter().sum();
        let sp: Vec<f64> = split.iter().map(|x| (p_total * x / s).round()).collect();
        for u in &mut self.u_drift {
            *u = (*u + 0.02 * r.normal()).clamp(-6.0, 6.0);
        }
        let urms: Vec<f64> = (0..3)
            .map(|i| (231.0 + self.u_drift[i] + 0.6 * r.normal()).round())
            .collect();
        let irms: Vec<f64> = (0..3).map(|i| (sp[i] / urms[i]).round()).collect();
        let wh = p_total * dt / 3600.0;
        self.east_wh += wh;
        let hc = !(6.0..22.0).contains(&hour);
        if hc {
            self.hc_wh += wh;
        } else {
            self.hp_wh += wh;
        }
        self.erq[0] += wh * 0.1;
        self.erq[2] += wh * 0.02;
        let day = (self.t_s / 86_400.0) as i64;
        if day != self.day {
            self.smax_prev = self.smax;
            self.smax = [0.0; 4];
            self.day = day;
        }
        self.smax[0] = self.smax[0].max(p_total);
        for i in 0..3 {
            self.smax[i + 1] = self.smax[i + 1].max(sp[i]);
        }
        let half_hour = (self.t_s / 1800.0) as i64;
        if half_hour != self.ccasn.3 {
            self.ccasn = (self.ccasn.2 / self.ccasn.1.max(1.0), 0.0, 0.0, half_hour);
            self.ccasn.0 = self.ccasn.0.round();
        }
        self.ccasn.1 += 1.0;
        self.ccasn.2 += p_total;
        let ten = (self.t_s / 600.0) as i64;
        if ten != self.umoy.3 {
            for i in 0..3 {
                self.umoy.1[i] = (self.umoy.0[i] / self.umoy.2.max(1.0)).round();
                self.umoy.0[i] = 0.0;
            }
            self.umoy.2 = 0.0;
            self.umoy.3 = ten;
        }
        for i in 0..3 {
            self.umoy.0[i] += urms[i];
        }
        self.umoy.2 += 1.0;
        let mut v = vec![self.east_wh.floor(), self.hc_wh.floor(), self.hp_wh.floor()];
        v.extend([0.0; 8]); // EASF03..10
        v.extend([self.hc_wh.floor(), self.hp_wh.floor(), 0.0, 0.0]); // EASD01..04
        v.extend(self.erq.iter().map(|x| x.floor()));
        v.extend(&irms);
        v.extend(&urms);
        v.extend([12.0, 12.0, p_total]);
        v.extend(&sp);
        v.extend(self.smax);
        v.extend(self.smax_prev);
        v.extend([
            self.ccasn.0,
            self.ccasn.0,
            self.umoy.1[0],
            self.umoy.1[1],
            self.umoy.1[2],
        ]);
        v.extend([
            if hc { 1.0 } else { 2.0 },
            0.0,
            0.0,
            0x003A_4001 as f64,
            0.0,
            0.0,
        ]);
        out.copy_from_slice(&v[..50]);
        ts_ms
    }
}

/// A standard-mode-looking frame text for the raw archive (labels, values, horodate).
fn raw_frame(ts_ms: i64, values: &[f64; 50]) -> Vec<u8> {
    let mut s = String::with_capacity(1200);
    s.push('\u{2}');
    s.push_str(&format!(
        "\nADSC\t041776199277\tE\r\nVTIC\t02\tJ\r\nDATE\tE{}\t\t/\r\n",
        ts_ms / 1000
    ));
    s.push_str("NGTF\t      H PLEINE/CREUSE\t<\r\nLTARF\t    HEURE  PLEINE   \tF\r\n");
    for (l, v) in LABELS.iter().zip(values) {
        s.push_str(&format!(
            "\n{l}\t{:09}\t{}\r",
            *v as i64,
            (v.to_bits() % 64 + 0x20) as u8 as char
        ));
    }
    s.push_str("\nMSG1\tPAS DE          MESSAGE         \t<\r\nRELAIS\t000\tB\r\n\u{3}");
    s.into_bytes()
}

fn keys(meter: &str) -> Vec<SeriesKey> {
    LABELS
        .iter()
        .map(|l| SeriesKey::new(l, [("meter", meter)]).unwrap())
        .collect()
}

fn fresh(dir: &std::path::Path, name: &str) -> PathBuf {
    let p = dir.join(name);
    for suffix in ["", "-wal", "-shm", ".lock"] {
        let mut f = p.clone().into_os_string();
        f.push(suffix);
        let _ = std::fs::remove_file(f);
    }
    p
}

fn ms(d: std::time::Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Runs `f` `runs` times: the fastest run in ms, and the last run's result.
fn best_of<T, E>(runs: usize, mut f: impl FnMut() -> Result<T, E>) -> Result<(f64, T), E> {
    let mut best = f64::MAX;
    let mut last = None;
    for _ in 0..runs {
        let t = Instant::now();
        let out = f()?;
        best = best.min(ms(t.elapsed()));
        last = Some(out);
    }
    Ok((best, last.expect("at least one run")))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|a| a == "--quick");
    let dir = args
        .iter()
        .position(|a| a == "--dir")
        .and_then(|i| args.get(i + 1))
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("store-bench"));
    std::fs::create_dir_all(&dir)?;
    let scale = if quick { 20 } else { 1 };
    let only = args
        .iter()
        .position(|a| a == "--only")
        .and_then(|i| args.get(i + 1))
        .cloned();
    let run = |name: &str| only.as_deref().is_none_or(|o| o == name);
    let mut rows: Vec<(String, String)> = Vec::new();

    // 1. Ingest: 20 meters, batches of 500 frames x 50 values, with and without raw frames.
    for with_raw in [false, true].into_iter().filter(|_| run("ingest")) {
        let path = fresh(&dir, "ingest.db");
        let store = Store::open(&path, StoreConfig::default())?;
        let meters = 20;
        let mut sims: Vec<Meter> = (0..meters).map(|m| Meter::new(m as u64 + 11)).collect();
        let ids: Vec<Vec<SeriesId>> = (0..meters)
            .map(|m| store.series_ids(&keys(&format!("0417761992{m:02}"))))
            .collect::<Result<_, _>>()?;
        let frames_total = 600_000 / scale;
        let batch_frames = 500;
        let mut vals = [0.0; 50];
        let mut seq = vec![0u64; meters];
        let start = Instant::now();
        let mut in_store = std::time::Duration::ZERO;
        let mut done = 0;
        while done < frames_total {
            let m = (done / batch_frames) % meters;
            let mut b = if with_raw {
                WriteBatch::from_source(Source {
                    device_id: format!("dev{m}"),
                    boot_id: 1,
                })
            } else {
                WriteBatch::new()
            };
            b.reserve_points(batch_frames * 50);
            for _ in 0..batch_frames {
                let ts = sims[m].frame(&mut vals);
                if with_raw {
                    seq[m] += 1;
                    b.add_frame(seq[m], ts, &raw_frame(ts, &vals))?;
                }
                for (id, v) in ids[m].iter().zip(&vals) {
                    b.add_point(*id, ts, *v)?;
                }
            }
            let t = Instant::now();
            store.write(b)?;
            in_store += t.elapsed();
            done += batch_frames;
        }
        let t = Instant::now();
        store.checkpoint()?;
        in_store += t.elapsed();
        let total = start.elapsed().as_secs_f64();
        let el = in_store.as_secs_f64();
        let what = if with_raw {
            "with raw frames archived"
        } else {
            "values only"
        };
        rows.push((
            format!("ingest, {what} ({} frames x 50 values, 500-frame batches, fsync each)", frames_total),
            format!(
                "{:.0} frames/s = {:.2} M values/s in the store (incl. checkpoints; {:.0} frames/s with the simulator's time)",
                frames_total as f64 / el,
                frames_total as f64 * 50.0 / el / 1e6,
                frames_total as f64 / total
            ),
        ));
    }

    // 1b. Small batches: one frame per write (the latency-bound case, what group commit helps).
    if run("small") {
        let path = fresh(&dir, "small.db");
        let store = std::sync::Arc::new(Store::open(&path, StoreConfig::default())?);
        let n_threads = 8;
        let per_thread = 2_000 / scale;
        let start = Instant::now();
        let handles: Vec<_> = (0..n_threads)
            .map(|t| {
                let store = store.clone();
                std::thread::spawn(move || -> Result<(), store::StoreError> {
                    let ids = store.series_ids(&keys(&format!("0000000000{t:02}")))?;
                    let mut sim = Meter::new(t as u64 + 99);
                    let mut vals = [0.0; 50];
                    for i in 0..per_thread {
                        let ts = sim.frame(&mut vals);
                        let mut b = WriteBatch::from_source(Source {
                            device_id: format!("d{t}"),
                            boot_id: 1,
                        });
                        b.add_frame(i as u64 + 1, ts, &raw_frame(ts, &vals))?;
                        for (id, v) in ids.iter().zip(&vals) {
                            b.add_point(*id, ts, *v)?;
                        }
                        store.write(b)?;
                    }
                    Ok(())
                })
            })
            .collect();
        for h in handles {
            h.join().map_err(|_| "thread panicked")??;
        }
        let el = start.elapsed().as_secs_f64();
        let n = (n_threads * per_thread) as f64;
        rows.push((
            format!("ingest, 1 frame per write, {n_threads} concurrent writers (group commit)"),
            format!(
                "{:.0} frames/s, {:.2} ms per acknowledged write",
                n / el,
                el * 1000.0 / n * n_threads as f64
            ),
        ));
    }

    // 2. Storage: one simulated week of a three-phase standard meter, one frame per ~1.3 s.
    if run("week") {
        let path = fresh(&dir, "week.db");
        let store = Store::open(&path, StoreConfig::default())?;
        let ids = store.series_ids(&keys("041776199277"))?;
        let mut sim = Meter::new(7);
        let frames = (7 * 86_400 * 10 / 13) / scale;
        let mut vals = [0.0; 50];
        let mut raw_bytes = 0usize;
        let mut seq = 0;
        let mut b = WriteBatch::from_source(Source {
            device_id: "esp32-week".into(),
            boot_id: 1,
        });
        for _ in 0..frames {
            let ts = sim.frame(&mut vals);
            seq += 1;
            let raw = raw_frame(ts, &vals);
            raw_bytes += raw.len();
            b.add_frame(seq, ts, &raw)?;
            for (id, v) in ids.iter().zip(&vals) {
                b.add_point(*id, ts, *v)?;
            }
            if b.len_frames() == 1000 {
                store.write(std::mem::replace(
                    &mut b,
                    WriteBatch::from_source(Source {
                        device_id: "esp32-week".into(),
                        boot_id: 1,
                    }),
                ))?;
            }
        }
        store.write(b)?;
        // What a clean shutdown leaves: chunks, free pages returned, WAL truncated.
        store.compact()?;
        let st = store.stats()?;
        let pts = st.chunk_points as f64;
        rows.push((
            format!("week of 3-phase meter: {} frames, {} values", frames, st.chunk_points),
            format!(
                "{:.3} bytes/value in pco chunks; +{:.3} rollups; file after compact {:.3} bytes/value",
                st.chunk_bytes as f64 / pts,
                st.rollup_bytes as f64 / pts,
                st.file_bytes as f64 / pts
            ),
        ));
        rows.push((
            "week: raw frames archive (zstd blocks)".into(),
            format!(
                "{:.1} bytes/frame compressed from {:.0} ({:.0}x)",
                st.raw_frame_bytes as f64 / st.raw_frames as f64,
                raw_bytes as f64 / frames as f64,
                raw_bytes as f64 / st.raw_frame_bytes as f64
            ),
        ));
        let mut per: Vec<(String, f64)> = Vec::new();
        for (l, id) in LABELS.iter().zip(&ids) {
            let p = store.read_range(*id, T0, T0 + 8 * 86_400_000)?;
            per.push((l.to_string(), p.ts_ms.len() as f64));
        }
        let _ = per;
    }

    // 3. Query: a year of one series at one point per 2 s, plus a year of an index.
    if run("year") {
        let path = fresh(&dir, "year.db");
        let store = Store::open(&path, StoreConfig::default())?;
        let p_id = store.series_id(&SeriesKey::new("SINSTS", [("meter", "041776199277")])?)?;
        let e_id = store.series_id(&SeriesKey::new("EASF01", [("meter", "041776199277")])?)?;
        let n: i64 = 365 * 86_400 / 2 / scale as i64;
        let mut rng = Rng(5);
        let start = Instant::now();
        let mut idx = 10_000_000.0;
        let mut i = 0;
        while i < n {
            let mut b = WriteBatch::new();
            b.reserve_points(200_000);
            for _ in 0..100_000.min(n - i) {
                let ts = T0 + i * 2000;
                let p = (600.0 + 300.0 * rng.normal()).max(0.0).round();
                idx += p * 2.0 / 3600.0;
                b.add_point(p_id, ts, p)?;
                b.add_point(e_id, ts, idx.floor())?;
                i += 1;
            }
            store.write(b)?;
        }
        store.checkpoint()?;
        let load = start.elapsed().as_secs_f64();
        rows.push((
            format!("year load: 2 series x {n} points (1 per 2 s)"),
            format!(
                "{:.1} s ({:.2} M values/s)",
                load,
                2.0 * n as f64 / load / 1e6
            ),
        ));
        let to = T0 + n * 2000;
        let (best, buckets) = best_of(5, || {
            let a = store.aggregate(p_id, T0, to, &Bucketing::TargetCount { points: 1000 })?;
            let avg: Vec<f64> = a.iter().filter_map(|b| b.agg.map(|x| x.avg())).collect();
            let max: Vec<f64> = a.iter().filter_map(|b| b.agg.map(|x| x.max)).collect();
            Ok::<_, store::StoreError>(avg.len().min(max.len()))
        })?;
        rows.push((
            format!("year of 1 series -> {buckets} avg+max buckets (TargetCount 1000)"),
            format!("{best:.2} ms (best of 5)"),
        ));
        let (best, d) = best_of(5, || {
            store.downsample(
                p_id,
                T0 + 1234,
                to - 777,
                &Bucketing::TargetCount { points: 1000 },
                Aggregator::Max,
            )
        })?;
        assert!(!d.ts_ms.is_empty());
        rows.push((
            "same, range edges not aligned (raw + hour mix)".into(),
            format!("{best:.2} ms (best of 5)"),
        ));
        let (best, e) = best_of(5, || {
            store.energy_per_period(e_id, T0, to, Period::Day, "Europe/Paris")
        })?;
        rows.push((
            format!(
                "energy per local day over a year ({} days, Europe/Paris)",
                e.len()
            ),
            format!("{best:.2} ms (best of 5)"),
        ));
        let (best, d) = best_of(3, || {
            store.downsample(
                p_id,
                T0,
                to,
                &Bucketing::Width {
                    width_ms: 31_536_000,
                },
                Aggregator::Max,
            )
        })?;
        assert!(!d.ts_ms.is_empty());
        rows.push((
            "year, 1000 buckets of 8.76 h (not whole hours: raw edges)".into(),
            format!("{best:.2} ms (best of 3)"),
        ));
        let t = Instant::now();
        let day = store.read_range(p_id, T0 + 10 * 86_400_000, T0 + 11 * 86_400_000)?;
        rows.push((
            format!("raw read of one day ({} points)", day.ts_ms.len()),
            format!("{:.2} ms", ms(t.elapsed())),
        ));
    }

    if !args.iter().any(|a| a == "--dir") {
        let _ = std::fs::remove_dir_all(&dir);
    }
    let w = rows.iter().map(|r| r.0.len()).max().unwrap_or(10);
    println!("{:w$} | result", "measurement");
    println!("{}-|-{}", "-".repeat(w), "-".repeat(40));
    for (a, b) in rows {
        println!("{a:w$} | {b}");
    }
    Ok(())
}
