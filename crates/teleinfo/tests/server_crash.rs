//! Crash safety of the uplink: a device streams frames while `teleinfo serve` is killed with
//! SIGKILL several times and restarted; the device retries from its last ack, as the firmware
//! does. Every acknowledged frame must be stored, exactly once.

mod server_support;

use server_support::*;
use std::time::{Duration, Instant};

const FRAMES: usize = 4000;
const KILLS: usize = 6;

#[test]
fn kill_9_loses_no_acknowledged_frame_and_stores_none_twice() {
    let dir = tempfile::tempdir().unwrap();
    let token = add_device(dir.path(), "crashdev");
    let (meter, frames) = sim_frames(FRAMES, 11);
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let mut srv = Some(Serve::start(dir.path(), &listen, &[]));
    let addr = srv.as_ref().unwrap().http;

    // Frames acknowledged so far: the kills are placed by progress, not by time, so that
    // every one of them lands while the device is streaming, however fast the machine.
    let progress = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let progress2 = progress.clone();
    let token2 = token.clone();
    let device = std::thread::spawn(move || {
        let mut c = server::client::Client::new(addr).with_timeout(Duration::from_secs(5));
        let mut acked: Option<u32> = None;
        let mut posts = 0u32;
        let deadline = Instant::now() + Duration::from_secs(240);
        while acked.map_or(0, |a| a as usize + 1) < FRAMES {
            assert!(
                Instant::now() < deadline,
                "device did not get everything acknowledged in 240 s (acked {acked:?})"
            );
            let next = acked.map_or(0, |a| a as usize + 1);
            let end = (next + 16).min(FRAMES);
            match post(
                &mut c,
                &token2,
                &batch("crashdev", 42, next as u32, &frames[next..end]),
            ) {
                Ok(a) => {
                    posts += 1;
                    // An ack never goes back: what was acknowledged stays durable.
                    assert!(a >= acked, "ack went back from {acked:?} to {a:?}");
                    acked = a;
                    progress2.store(
                        acked.map_or(0, |a| a as usize + 1),
                        std::sync::atomic::Ordering::SeqCst,
                    );
                }
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
        posts
    });

    // Kill the server at evenly spaced points of the stream, then restart it.
    let mut kills = 0;
    for k in 1..=KILLS {
        let at = k * FRAMES / (KILLS + 1);
        let deadline = Instant::now() + Duration::from_secs(120);
        while progress.load(std::sync::atomic::Ordering::SeqCst) < at {
            assert!(
                Instant::now() < deadline,
                "the device stalled before frame {at}"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        srv.take().unwrap().kill9();
        kills += 1;
        std::thread::sleep(Duration::from_millis(50));
        srv = Some(Serve::start(dir.path(), &listen, &[]));
    }
    let posts = device.join().unwrap();
    assert!(posts > 10);
    assert_eq!(kills, KILLS);

    let mut c = server::client::Client::new(addr);
    // Every frame archived once, in sequence.
    let r = c
        .get("/api/v1/devices/crashdev/frames?from=1700000000000&to=1900000000000&raw=none")
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    let seqs: Vec<u64> = v["frames"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(
        seqs,
        (0..FRAMES as u64).collect::<Vec<_>>(),
        "frames lost or duplicated"
    );
    // Every frame's values stored once: one SINSTS point per frame (one per meter second).
    let r = c
        .get(&format!("/api/v1/query?metric=SINSTS&meter={meter}&from=1700000000000&to=1900000000000&agg=count&width=3000d"))
        .unwrap();
    let count: f64 = r.json()["values"]["count"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p[1].as_f64().unwrap())
        .sum();
    assert_eq!(count as usize, FRAMES);
    assert!(
        srv.take().unwrap().terminate(),
        "graceful shutdown after the crashes"
    );
}
