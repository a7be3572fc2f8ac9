//! `teleinfo forward` end to end, with real processes: `teleinfo simulate
//! --realtime --pty` (a virtual Linky on a pseudo-terminal) → `teleinfo
//! forward /dev/pts/N` → `teleinfo serve` on a free loopback port with a fresh
//! data directory and a token from `teleinfo device add`.
//!
//! Ground truth: the simulator is deterministic for its options and seed, so
//! `teleinfo simulate … --out FILE` with the same options writes exactly the
//! bytes the pseudo-terminal carried. What the server stored (read back raw
//! through `GET /api/v1/devices/{id}/frames`) is compared frame by frame with
//! it. Every wait is bounded; children are killed when a test fails.

mod server_support;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use server_support::{add_device, free_port, Serve, BIN};
use std::collections::HashSet;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The simulator's options, shared by the live run and the ground truth.
const START: &str = "2026-03-01T12:00";
/// Stored frames are fetched in this window (ms): from START's day (the
/// meter's DATE times standard frames) to 2100 (historic frames, which have
/// no DATE, are timed by the device's clock).
const FROM_MS: i64 = 1_772_300_000_000;
const TO_MS: i64 = 4_102_444_800_000;

fn sim_args(mode: &str, seed: u64, frames: u64) -> Vec<String> {
    [
        "simulate",
        "--mode",
        mode,
        "--start",
        START,
        "--seed",
        &seed.to_string(),
        "--frames",
        &frames.to_string(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// A child whose stderr is collected (and echoed, for failing runs).
struct Proc {
    name: &'static str,
    child: Child,
    log: Arc<Mutex<String>>,
}

impl Proc {
    fn spawn(name: &'static str, cmd: &mut Command) -> Proc {
        let mut child = cmd
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {name}: {e}"));
        let err = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let sink = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                eprintln!("[{name}] {line}");
                let mut l = sink.lock().unwrap();
                l.push_str(&line);
                l.push('\n');
            }
        });
        Proc { name, child, log }
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Waits (bounded) for the process to exit by itself.
    fn wait(&mut self, limit: Duration) -> ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                // Let the stderr thread take the last lines.
                std::thread::sleep(Duration::from_millis(100));
                return st;
            }
            assert!(
                Instant::now() < deadline,
                "{} did not exit within {limit:?}",
                self.name
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGTERM, then a bounded wait.
    fn terminate(&mut self) -> ExitStatus {
        let pid = Pid::from_raw(self.child.id() as i32);
        kill(pid, Signal::SIGTERM).unwrap();
        self.wait(Duration::from_secs(20))
    }

    /// SIGKILL: no chance to flush or sync anything.
    fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `teleinfo simulate --realtime --pty …`; returns it and the terminal path.
fn simulate_pty(mode: &str, seed: u64) -> (Proc, PathBuf) {
    let mut p = Proc::spawn(
        "simulate",
        Command::new(BIN)
            .args(sim_args(mode, seed, 100_000))
            .args(["--realtime", "--pty"])
            .stdout(Stdio::piped()),
    );
    let mut out = p.child.stdout.take().unwrap();
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    // The first line is the path; the simulator writes nothing else there.
    while out.read(&mut byte).unwrap() == 1 && byte[0] != b'\n' {
        line.push(byte[0]);
    }
    let path = PathBuf::from(String::from_utf8(line).unwrap());
    assert!(path.starts_with("/dev"), "no pty path: {path:?}");
    (p, path)
}

/// The frames the simulator writes, from the same options without pacing.
fn truth(mode: &str, seed: u64, frames: u64, dir: &Path) -> Vec<Vec<u8>> {
    let file = dir.join(format!("truth-{seed}.tic"));
    let st = Command::new(BIN)
        .args(sim_args(mode, seed, frames))
        .arg("--out")
        .arg(&file)
        .status()
        .unwrap();
    assert!(st.success());
    let bytes = std::fs::read(&file).unwrap();
    let mut out = Vec::new();
    let mut start = None;
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            0x02 => start = Some(i),
            0x03 => {
                if let Some(s) = start.take() {
                    out.push(bytes[s..=i].to_vec());
                }
            }
            _ => {}
        }
    }
    assert_eq!(out.len() as u64, frames);
    out
}

fn forward(pty: &Path, port: u16, token: &str, device: &str, queue: &Path) -> Proc {
    forward_mode(pty, port, token, device, queue, "standard")
}

fn forward_mode(
    pty: &Path,
    port: u16,
    token: &str,
    device: &str,
    queue: &Path,
    mode: &str,
) -> Proc {
    Proc::spawn(
        "forward",
        Command::new(BIN)
            .arg("forward")
            .arg(pty)
            .args(["--server", &format!("http://127.0.0.1:{port}")])
            .args(["--token", token, "--device-id", device, "--mode", mode])
            .arg("--queue")
            .arg(queue)
            // Batches go out within a second, so the test needs less time.
            .args(["--max-delay", "1"])
            .stdout(Stdio::null()),
    )
}

/// One stored frame: (boot id, sequence number, raw bytes).
type Stored = (u64, u64, Vec<u8>);
/// One boot's stored frames: (boot id, [(sequence number, raw bytes)]).
type Boot = (u64, Vec<(u64, Vec<u8>)>);

fn stored(port: u16, device: &str) -> Vec<Stored> {
    let mut c = server::client::Client::new(format!("127.0.0.1:{port}").parse().unwrap());
    let r = c
        .get(&format!(
            "/api/v1/devices/{device}/frames?from={FROM_MS}&to={TO_MS}"
        ))
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    v["frames"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["boot_id"].as_u64().unwrap(),
                f["seq"].as_u64().unwrap(),
                // Latin-1 text: one char per byte.
                f["raw"]
                    .as_str()
                    .unwrap()
                    .chars()
                    .map(|c| c as u8)
                    .collect(),
            )
        })
        .collect()
}

/// The stored frames per boot, each boot's in sequence order, boots in the
/// order they started; asserts that no (boot, seq) key is there twice.
fn by_boot(frames: &[Stored]) -> Vec<Boot> {
    let keys: HashSet<(u64, u64)> = frames.iter().map(|f| (f.0, f.1)).collect();
    assert_eq!(keys.len(), frames.len(), "a (boot, seq) stored twice");
    let mut boots: Vec<Boot> = Vec::new();
    for (boot, seq, raw) in frames {
        match boots.iter_mut().find(|b| b.0 == *boot) {
            Some(b) => b.1.push((*seq, raw.clone())),
            None => boots.push((*boot, vec![(*seq, raw.clone())])),
        }
    }
    for b in &mut boots {
        b.1.sort_by_key(|f| f.0);
    }
    boots
}

/// Where `frame` is in `truth`, at or after `from`.
fn position(truth: &[Vec<u8>], from: usize, frame: &[u8]) -> Option<usize> {
    truth[from..]
        .iter()
        .position(|t| t == frame)
        .map(|i| i + from)
}

fn metric(port: u16, name: &str, device: &str) -> u64 {
    let mut c = server::client::Client::new(format!("127.0.0.1:{port}").parse().unwrap());
    let text = c.get("/metrics").unwrap().text();
    text.lines()
        .find(|l| l.starts_with(name) && (device.is_empty() || l.contains(device)))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse::<f64>().ok())
        .map_or(0, |v| v as u64)
}

fn wait_for(what: &str, limit: Duration, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Frames committed in a queue directory: the records of its segment files
/// (length-prefixed, docs/forward.md), from the `head` on. With nothing
/// acknowledged yet, all of them.
fn committed_records(queue: &Path) -> usize {
    let mut n = 0;
    let Ok(dir) = std::fs::read_dir(queue) else {
        return 0; // not created yet
    };
    let mut segs: Vec<PathBuf> = dir
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .collect();
    segs.sort();
    for s in segs {
        let b = std::fs::read(s).unwrap_or_default();
        let mut at = 8;
        while at + 8 <= b.len() {
            let len = u32::from_le_bytes(b[at..at + 4].try_into().unwrap()) as usize;
            if at + 8 + len > b.len() {
                break;
            }
            n += 1;
            at += 8 + len;
        }
    }
    n
}

/// The first figure of forward's "queue DIR: N frames of B earlier runs".
fn recovered(log: &str) -> (usize, usize) {
    let line = log
        .lines()
        .find(|l| l.contains("earlier runs to send first"))
        .expect("no queue line");
    let after = line.split(": ").nth(2).unwrap();
    let mut words = after.split(' ');
    let frames = words.next().unwrap().parse().unwrap();
    let boots = words.nth(2).unwrap().parse().unwrap();
    (frames, boots)
}

/// Server stopped for a while and restarted, forward restarted once during
/// the outage: every frame the meter sent is stored exactly once, in order,
/// the first run's queued frames delivered by the second under their own
/// boot id.
#[test]
fn end_to_end_through_a_server_outage_and_a_forward_restart() {
    let t0 = Instant::now();
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let queue = tmp.path().join("queue");
    let device = "pi-e2e";
    let token = add_device(&data, device);
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let serve = Serve::start(&data, &listen, &[]);
    let (mut sim, pty) = simulate_pty("standard", 11);
    let mut fwd_a = forward(&pty, port, &token, device, &queue);

    wait_for("5 frames stored", Duration::from_secs(60), || {
        stored(port, device).len() >= 5
    });
    let before_outage = stored(port, device).len();
    assert!(serve.terminate(), "serve did not stop cleanly");
    let outage_started = Instant::now();
    // Nothing is acknowledged during the outage, so no segment is freed and the
    // count of records on disk only grows.
    let on_disk_at_outage = committed_records(&queue);

    // forward restarted during the outage: its queue holds what it could
    // not deliver. Waiting on what it did (not a fixed time) keeps this
    // true on a loaded machine.
    wait_for(
        "3 frames queued during the outage",
        Duration::from_secs(60),
        || committed_records(&queue) >= on_disk_at_outage + 3,
    );
    wait_for("a failed post logged", Duration::from_secs(60), || {
        fwd_a.log().contains("post to http://")
    });
    let st = fwd_a.terminate();
    assert!(st.success(), "forward exited with {st}");
    let mut fwd_b = forward(&pty, port, &token, device, &queue);
    wait_for(
        "the second run's queue line",
        Duration::from_secs(20),
        || fwd_b.log().contains("earlier runs"),
    );
    std::thread::sleep(Duration::from_secs(2));
    let (resumed, boots) = recovered(&fwd_b.log());
    assert_eq!(boots, 1, "{}", fwd_b.log());
    assert!(
        resumed >= 3,
        "only {resumed} frames left from the first run"
    );

    let serve = Serve::start(&data, &listen, &[]);
    let outage = outage_started.elapsed();
    wait_for("40 frames stored", Duration::from_secs(90), || {
        stored(port, device).len() >= 40
    });
    // Stop forward first: it finishes the frame being received and syncs;
    // then the meter.
    let st = fwd_b.terminate();
    assert!(st.success(), "forward exited with {st}");
    sim.kill9();
    assert!(
        fwd_b.log().contains("answers again after"),
        "{}",
        fwd_b.log()
    );

    let frames = stored(port, device);
    let boots = by_boot(&frames);
    assert_eq!(boots.len(), 2, "two forward runs, two boot ids");
    let expected = truth("standard", 11, frames.len() as u64 + 5, tmp.path());
    // Each boot's sequence numbers are 0.. without a hole (nothing queued
    // was lost) and its frames are consecutive frames of the meter's stream.
    let mut next = 0;
    let mut ordered = boots.clone();
    ordered.sort_by_key(|b| position(&expected, 0, &b.1[0].1));
    for (boot, list) in &ordered {
        for (i, (seq, raw)) in list.iter().enumerate() {
            assert_eq!(*seq, i as u64, "boot {boot:x}: a sequence hole");
            assert!(
                expected[next] == *raw,
                "boot {boot:x} seq {seq}: not the meter's frame #{next} (a frame lost, doubled or \
                 changed)"
            );
            next += 1;
        }
    }
    // So the stored frames are exactly the meter's first `next` frames:
    // none lost across the outage and the restart, none stored twice.
    assert_eq!(next, frames.len());
    let first_run = ordered[0].1.len();
    assert!(
        first_run > before_outage,
        "the first run's queued frames were delivered by the second"
    );
    let duplicates = metric(port, "teleinfo_device_duplicate_frames_total", device);
    eprintln!(
        "end to end: {} frames stored exactly once ({} of the first run, {} before the outage, \
         {resumed} resumed from disk by the second run), server down {:.1} s, {duplicates} \
         retransmissions skipped by the server, {:.0} s in all",
        frames.len(),
        first_run,
        before_outage,
        outage.as_secs_f64(),
        t0.elapsed().as_secs_f64()
    );
    drop(serve);
}

/// kill -9 of forward with no server: everything it had committed is on
/// disk and delivered by the next run under the old boot id; once delivered,
/// nothing is sent again.
#[test]
fn the_queue_survives_kill_9_and_frees_only_what_was_acknowledged() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let queue = tmp.path().join("queue");
    let device = "pi-kill";
    let token = add_device(&data, device);
    let port = free_port();
    let (mut sim, pty) = simulate_pty("standard", 23);
    // No server yet: connection refused, frames pile up on disk.
    let mut fwd_a = forward(&pty, port, &token, device, &queue);
    wait_for("8 frames on disk", Duration::from_secs(60), || {
        committed_records(&queue) >= 8
    });
    fwd_a.kill9();
    let on_disk = committed_records(&queue);

    let mut fwd_b = forward(&pty, port, &token, device, &queue);
    wait_for(
        "the second run's queue line",
        Duration::from_secs(20),
        || fwd_b.log().contains("earlier runs"),
    );
    let (resumed, boots) = recovered(&fwd_b.log());
    assert_eq!((resumed, boots), (on_disk, 1), "{}", fwd_b.log());

    let serve = Serve::start(&data, &format!("127.0.0.1:{port}"), &[]);
    wait_for("more frames stored", Duration::from_secs(90), || {
        stored(port, device).len() >= on_disk + 8
    });
    // The meter stops; the second run drains its queue, then dies hard.
    sim.kill9();
    std::thread::sleep(Duration::from_secs(4));
    fwd_b.kill9();
    let frames = stored(port, device);
    let boots = by_boot(&frames);
    assert_eq!(boots.len(), 2);
    let expected = truth("standard", 23, frames.len() as u64 + 10, tmp.path());
    let mut ordered = boots.clone();
    ordered.sort_by_key(|b| position(&expected, 0, &b.1[0].1));
    // First run: exactly what it had committed, from the meter's first
    // frame on.
    assert_eq!(ordered[0].1.len(), on_disk);
    for (i, (seq, raw)) in ordered[0].1.iter().enumerate() {
        assert_eq!((*seq, raw), (i as u64, &expected[i]));
    }
    // Second run: consecutive meter frames after at most the frame the
    // kill cut in the middle and one received but not yet committed.
    let start = position(&expected, on_disk, &ordered[1].1[0].1).unwrap();
    assert!(
        start - on_disk <= 2,
        "{} frames lost at the kill",
        start - on_disk
    );
    for (i, (seq, raw)) in ordered[1].1.iter().enumerate() {
        assert_eq!((*seq, raw), (i as u64, &expected[start + i]));
    }

    // A third run (on another meter's terminal: this one is gone) finds
    // nothing to send: what was acknowledged was freed on disk, not just in
    // memory.
    let (_sim2, pty2) = simulate_pty("standard", 24);
    let mut fwd_c = forward(&pty2, port, &token, device, &queue);
    wait_for(
        "the third run's queue line",
        Duration::from_secs(20),
        || fwd_c.log().contains("earlier runs"),
    );
    assert_eq!(recovered(&fwd_c.log()), (0, 0), "{}", fwd_c.log());
    assert!(fwd_c.terminate().success());
    let duplicates = metric(port, "teleinfo_device_duplicate_frames_total", device);
    assert_eq!(duplicates, 0, "frames were sent again");
    eprintln!(
        "kill -9: {on_disk} frames on disk at the kill, all delivered by the next run; {} frames \
         stored once, {} lost on the line at the kill, 0 sent twice",
        frames.len(),
        start - on_disk
    );
    drop(serve);
}

/// A long outage with a small queue: the oldest frames are evicted, the
/// disk stays within the bound, the loss is counted and reported to the
/// server in the telemetry, and the newest frames get through.
#[test]
fn a_full_queue_evicts_the_oldest_counted_in_telemetry() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let queue = tmp.path().join("queue");
    let device = "pi-full";
    let token = add_device(&data, device);
    let port = free_port();
    // Accelerated: the simulator writes as fast as forward reads (it
    // blocks on a full terminal), 300 frames in a few seconds.
    let mut sim = Proc::spawn(
        "simulate",
        Command::new(BIN)
            .args(sim_args("standard", 31, 300))
            .arg("--pty")
            .stdout(Stdio::piped()),
    );
    let mut out = sim.child.stdout.take().unwrap();
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while out.read(&mut byte).unwrap() == 1 && byte[0] != b'\n' {
        line.push(byte[0]);
    }
    let pty = PathBuf::from(String::from_utf8(line).unwrap());
    let mut fwd = Proc::spawn(
        "forward",
        Command::new(BIN)
            .arg("forward")
            .arg(&pty)
            .args(["--server", &format!("http://127.0.0.1:{port}")])
            .args([
                "--token",
                &token,
                "--device-id",
                device,
                "--mode",
                "standard",
            ])
            .arg("--queue")
            .arg(&queue)
            .args(["--queue-max", "32k", "--max-delay", "1"])
            .stdout(Stdio::null()),
    );
    // The simulator ends after its 300 frames (forward then sees a hang-up).
    assert!(sim.wait(Duration::from_secs(60)).success());
    wait_for("eviction to be reported", Duration::from_secs(20), || {
        fwd.log().contains("the queue is full")
    });
    // The hang-up comes after the last bytes: once it is reported, all
    // frames before it are committed.
    wait_for("the hang-up", Duration::from_secs(20), || {
        fwd.log().contains("lost /dev/")
    });
    std::thread::sleep(Duration::from_millis(500));
    let on_disk: u64 = std::fs::read_dir(&queue)
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum();
    assert!(on_disk <= 32 * 1024 + 16 * 1024, "{on_disk} bytes on disk");

    let serve = Serve::start(&data, &format!("127.0.0.1:{port}"), &[]);
    let counters = || {
        let mut c = server::client::Client::new(format!("127.0.0.1:{port}").parse().unwrap());
        let v = c.get("/api/v1/devices").unwrap().json();
        let d = v["devices"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["device"] == device)
            .cloned()
            .unwrap_or_default();
        let c = &d["telemetry"]["counters"];
        (
            c["queued_frames"].as_u64().unwrap_or(0),
            c["evicted_frames"].as_u64().unwrap_or(0),
        )
    };
    // Everything accepted is either stored or counted as evicted.
    wait_for("the queue to drain", Duration::from_secs(60), || {
        let (queued, evicted) = counters();
        queued > 0 && stored(port, device).len() as u64 + evicted == queued
    });
    let (queued, evicted) = counters();
    let frames = stored(port, device);
    let st = fwd.terminate();
    assert!(st.success());
    assert!(
        evicted > 0 && queued > 100,
        "queued {queued}, evicted {evicted}"
    );
    let expected = truth("standard", 31, 300, tmp.path());
    // The newest frames survived: sequence numbers evicted..queued, each
    // the meter's frame of that rank.
    let boots = by_boot(&frames);
    assert_eq!(boots.len(), 1);
    for (i, (seq, raw)) in boots[0].1.iter().enumerate() {
        assert_eq!(*seq, evicted + i as u64);
        assert!(expected[*seq as usize] == *raw, "seq {seq}");
    }
    eprintln!(
        "full queue: {queued} frames queued, {evicted} evicted (oldest first, reported in the \
         telemetry), {} newest delivered, {on_disk} bytes on disk for a 32 KiB bound",
        frames.len()
    );
    drop(serve);
}

/// `--mode auto` on a historic meter (1200 Bd, the factory setting): the
/// mode is detected without losing the first frames, and the server sees the
/// line mode in the telemetry.
#[test]
fn auto_mode_on_a_historic_meter() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let device = "pi-auto";
    let token = add_device(&data, device);
    let port = free_port();
    let serve = Serve::start(&data, &format!("127.0.0.1:{port}"), &[]);
    let (mut sim, pty) = simulate_pty("historic", 41);
    let mut fwd = forward_mode(&pty, port, &token, device, &tmp.path().join("q"), "auto");
    wait_for("4 frames stored", Duration::from_secs(60), || {
        stored(port, device).len() >= 4
    });
    assert!(fwd.terminate().success());
    sim.kill9();
    assert!(fwd.log().contains("mode: historic"), "{}", fwd.log());
    let frames = stored(port, device);
    let expected = truth("historic", 41, frames.len() as u64, tmp.path());
    let boots = by_boot(&frames);
    for (i, (seq, raw)) in boots[0].1.iter().enumerate() {
        assert_eq!((*seq, raw), (i as u64, &expected[i]));
    }
    let mut c = server::client::Client::new(format!("127.0.0.1:{port}").parse().unwrap());
    let v = c.get("/api/v1/devices").unwrap().json();
    let d = v["devices"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["device"] == device)
        .cloned()
        .unwrap_or_default();
    assert_eq!(d["telemetry"]["line_mode"], "historic", "{d}");
    drop(serve);
}

/// A refused token is said plainly and retried with backoff, never in a
/// tight loop; frames stay queued.
#[test]
fn a_wrong_token_is_reported_and_retried_with_backoff() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let device = "pi-401";
    let _token = add_device(&data, device);
    let port = free_port();
    let serve = Serve::start(&data, &format!("127.0.0.1:{port}"), &[]);
    let (_sim, pty) = simulate_pty("standard", 5);
    let mut fwd = forward(&pty, port, "not-the-token", device, &tmp.path().join("q"));
    std::thread::sleep(Duration::from_secs(9));
    let rejected = metric(port, "teleinfo_uplink_rejected_total", "");
    let st = fwd.terminate();
    assert!(st.success());
    let log = fwd.log();
    assert!(log.contains("HTTP 401"), "{log}");
    assert!(log.contains("check --token"), "{log}");
    // First post after ~1 s, then 1, 2, 4 s of backoff (with jitter): a
    // handful of attempts, not hundreds.
    assert!(
        (1..=6).contains(&rejected),
        "{rejected} posts in 9 s: not backing off"
    );
    assert!(stored(port, device).is_empty());
    let kept: usize = log
        .lines()
        .find_map(|l| {
            l.split(" kept in ")
                .next()?
                .rsplit(' ')
                .next()?
                .parse()
                .ok()
        })
        .unwrap_or(0);
    assert!(kept >= 3, "{log}");
    drop(serve);
}

/// Bad input stops at once with one line on stderr.
#[test]
fn bad_input_is_one_line_and_exit_1() {
    let tmp = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let out = Command::new(BIN)
            .arg("forward")
            .args(args)
            .arg("--queue")
            .arg(tmp.path().join("q"))
            .output()
            .unwrap();
        let err = String::from_utf8(out.stderr).unwrap();
        (out.status.code(), err)
    };
    let (code, err) = run(&[
        "/dev/no-such-tic",
        "--server",
        "http://127.0.0.1:9",
        "--token",
        "t",
    ]);
    assert_eq!(code, Some(1));
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("cannot open /dev/no-such-tic: no such device"),
        "{err}"
    );
    for (url, want) in [
        ("ftp://x", "expected http://"),
        ("https://x", "https is not supported"),
        ("http://x:0", "port"),
    ] {
        let (code, err) = run(&["/dev/null", "--server", url, "--token", "t"]);
        assert_eq!(code, Some(1), "{url}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains(want), "{url}: {err}");
    }
    let (code, err) = run(&["/dev/null", "--server", "http://x"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("--token"), "{err}");
    let (code, err) = run(&[
        "/dev/null",
        "--server",
        "http://x",
        "--token",
        "t",
        "--device-id",
        "bad id!",
    ]);
    assert_eq!(code, Some(1));
    assert!(err.contains("--device-id"), "{err}");
}
