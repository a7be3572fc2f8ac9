//! Crash safety: a child process writes acknowledged batches and is killed with SIGKILL at
//! random moments; after each kill the store is reopened and must hold every acknowledged
//! frame and point exactly once.
//!
//! The child is this same test binary re-executed with `STORE_CRASH_CHILD` set, running the
//! `crash_child` test (which does nothing in a normal run).

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{Rng, TempDir};
use store::{SeriesKey, Source, Store, StoreConfig, WriteBatch};

const SERIES: usize = 50;
const DEVICE: &str = "crash-dev";
const BOOT: u64 = 7;
const T0: i64 = 1_767_225_600_000;

fn keys() -> Vec<SeriesKey> {
    (0..SERIES)
        .map(|i| SeriesKey::new(&format!("LABEL{i}"), [("meter", "041776199277")]).unwrap())
        .collect()
}

fn value(seq: u64, k: usize) -> f64 {
    (seq * 31 + k as u64 * 7) as f64 * 0.5
}

fn config() -> StoreConfig {
    // Small head so that kills also land in the middle of checkpoints.
    StoreConfig {
        head_max_points: 20_000,
        ..StoreConfig::default()
    }
}

#[test]
fn crash_child() {
    let Ok(path) = std::env::var("STORE_CRASH_CHILD") else {
        return;
    };
    let store = Store::open(&path, config()).unwrap();
    let ids = store.series_ids(&keys()).unwrap();
    let mut rng = Rng(std::process::id() as u64 * 0x9E37_79B9 + 1);
    let mut next = store.uplink_high_water(DEVICE, BOOT).unwrap_or(0) + 1;
    loop {
        // Sometimes resend a few already acknowledged frames, as a device retrying would.
        let start = next.saturating_sub(rng.below(3)).max(1);
        let n = 1 + rng.below(20);
        let mut b = WriteBatch::from_source(Source {
            device_id: DEVICE.into(),
            boot_id: BOOT,
        });
        for seq in start..start + n {
            let ts = T0 + seq as i64 * 1000;
            b.add_frame(seq, ts, format!("frame-{seq}").as_bytes())
                .unwrap();
            for (k, id) in ids.iter().enumerate() {
                b.add_point(*id, ts, value(seq, k)).unwrap();
            }
        }
        let r = store.write(b).unwrap();
        let hw = r.highest_durable_seq.unwrap();
        println!("ACK {hw}");
        next = hw + 1;
    }
}

fn verify(path: &std::path::Path, acked: u64) -> u64 {
    let store = Store::open(path, config()).unwrap();
    let hw = store.uplink_high_water(DEVICE, BOOT).unwrap_or(0);
    assert!(hw >= acked, "high-water {hw} below acknowledged {acked}");
    let ids = store.series_ids(&keys()).unwrap();
    let want_ts: Vec<i64> = (1..=hw).map(|s| T0 + s as i64 * 1000).collect();
    for (k, id) in ids.iter().enumerate() {
        let p = store.read_range(*id, 0, T0 + 100_000_000_000).unwrap();
        assert_eq!(p.ts_ms, want_ts, "series {k}: missing or duplicated points");
        for (i, v) in p.values.iter().enumerate() {
            assert_eq!(*v, value(i as u64 + 1, k));
        }
    }
    let frames = store
        .raw_frames(DEVICE, 0, T0 + 100_000_000_000, 10_000_000)
        .unwrap();
    let seqs: Vec<u64> = frames.iter().map(|f| f.seq).collect();
    assert_eq!(
        seqs,
        (1..=hw).collect::<Vec<_>>(),
        "raw frames missing or duplicated"
    );
    for f in &frames {
        assert_eq!(f.bytes, format!("frame-{}", f.seq).as_bytes());
    }
    hw
}

#[test]
fn survives_sigkill() {
    let dir = TempDir::new("crash");
    let db = dir.db();
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    println!("crash test seed {seed}");
    let mut rng = Rng(seed);
    let exe = std::env::current_exe().unwrap();
    let mut acked_total = 0;
    let rounds = 8;
    for round in 0..rounds {
        let mut child = Command::new(&exe)
            .args(["crash_child", "--exact", "--nocapture", "--test-threads=1"])
            .env("STORE_CRASH_CHILD", &db)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel::<u64>();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(n) = line.strip_prefix("ACK ") {
                    if tx.send(n.trim().parse().unwrap()).is_err() {
                        break;
                    }
                }
            }
        });
        // Let it get going (first ack), then kill at a random moment.
        let mut acked = 0;
        let deadline = Instant::now() + Duration::from_secs(60);
        while acked == 0 && Instant::now() < deadline {
            if let Ok(a) = rx.recv_timeout(Duration::from_millis(100)) {
                acked = a;
            }
        }
        assert!(acked > 0, "child never acknowledged anything");
        std::thread::sleep(Duration::from_millis(rng.below(700)));
        child.kill().unwrap(); // SIGKILL on Unix
        child.wait().unwrap();
        reader.join().unwrap();
        while let Ok(a) = rx.try_recv() {
            acked = acked.max(a);
        }
        let hw = verify(&db, acked);
        println!("round {round}: acknowledged {acked}, durable {hw}");
        assert!(hw >= acked_total);
        acked_total = acked;
    }
}
