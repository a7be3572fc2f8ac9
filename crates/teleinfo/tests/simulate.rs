//! `teleinfo simulate` end to end: the real binary, piped into `teleinfo
//! decode`, written to files, served on a pseudo-terminal (read back by
//! `teleinfo read`) and on TCP. Every wait is bounded and children are killed
//! on failure, so a bug cannot hang the run.

use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc::channel;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_teleinfo");
/// Generous: two cores are shared with other builds and tests.
const WAIT: Duration = Duration::from_secs(60);

/// Kills the child when dropped (a failing test must not leave it running).
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn simulate(args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("simulate")
        .args(args)
        .output()
        .expect("run teleinfo")
}

/// `teleinfo simulate ARGS | teleinfo decode --format jsonl`, parsed.
fn pipeline(args: &[&str]) -> Vec<Value> {
    let mut sim = Guard(
        Command::new(BIN)
            .arg("simulate")
            .args(args)
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn simulate"),
    );
    let sim_out = sim.0.stdout.take().unwrap();
    let decode = Command::new(BIN)
        .args(["decode", "--format", "jsonl"])
        .stdin(Stdio::from(sim_out))
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn decode");
    let out = decode.wait_with_output().unwrap();
    assert!(sim.0.wait().unwrap().success());
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect()
}

#[test]
fn every_variant_pipes_into_decode_without_a_rejected_group() {
    for (args, mode, groups) in [
        (vec![], "standard", 38),
        (
            vec!["--phases", "3", "--producer", "--contract", "tempo"],
            "standard",
            63,
        ),
        (
            vec![
                "--producer",
                "--contract",
                "hchp",
                "--offpeak",
                "01:30-07:30,12:30-14:30",
            ],
            "standard",
            46,
        ),
        (
            vec!["--contract", "ejp", "--phases", "3", "--kva", "18"],
            "standard",
            53,
        ),
        (
            vec!["--mode", "historic", "--contract", "tempo"],
            "historic",
            16,
        ),
        (
            vec!["--mode", "historic", "--phases", "3", "--contract", "hchp"],
            "historic",
            17,
        ),
    ] {
        let mut full = vec!["--frames", "40", "--interval", "600", "--seed", "7"];
        full.extend(&args);
        let frames = pipeline(&full);
        assert_eq!(frames.len(), 40, "{args:?}");
        for f in &frames {
            assert_eq!(f["mode"], mode, "{args:?}");
            assert_eq!(f["invalid_groups"], 0, "{args:?}");
            assert_eq!(f["complete"], true, "{args:?}");
        }
        let n = frames[0]["groups"].as_array().unwrap().len();
        // Conditional groups (ADPS, DPM1/FPM1/PPOINTE) may add a few.
        assert!((groups..=groups + 3).contains(&n), "{args:?}: {n} groups");
    }
}

#[test]
fn same_seed_same_bytes_and_duration_in_simulated_time() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.tic");
    let b = dir.path().join("b.tic");
    for path in [&a, &b] {
        let out = simulate(&[
            "--duration",
            "1d",
            "--interval",
            "60",
            "--contract",
            "tempo",
            "--seed",
            "42",
            "--out",
            path.to_str().unwrap(),
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let (a, b) = (std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
    assert_eq!(a, b);
    assert_eq!(
        a.iter().filter(|&&c| c == 0x02).count(),
        1440,
        "a day of one frame a minute"
    );
    let other = simulate(&["--frames", "5", "--seed", "43"]);
    assert_ne!(&other.stdout[..], &a[..other.stdout.len()]);
}

#[test]
fn faults_are_logged_and_seen_by_the_decoder() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("faults.jsonl");
    let frames = pipeline(&[
        "--frames",
        "300",
        "--faults",
        "bit=5e-4,eot=0.05,noise=0.05",
        "--fault-log",
        log.to_str().unwrap(),
    ]);
    let records: Vec<Value> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(records.len() > 20);
    for r in &records {
        assert!(r["offset"].is_u64() && r["frame"].is_u64());
        assert!(["bit", "eot", "noise"].contains(&r["kind"].as_str().unwrap()));
        assert!(["harmless", "rejected", "incomplete", "undetectable"]
            .contains(&r["expect"].as_str().unwrap()));
    }
    let rejected_logged = records.iter().filter(|r| r["expect"] == "rejected").count();
    let invalid: u64 = frames
        .iter()
        .map(|f| f["invalid_groups"].as_u64().unwrap())
        .sum();
    assert!(
        rejected_logged > 0 && invalid > 0,
        "{rejected_logged} {invalid}"
    );
    assert!(frames.iter().any(|f| f["complete"] == false));
}

#[test]
fn bad_input_names_the_option_and_the_accepted_values() {
    for (args, needle) in [
        (vec!["--phases", "2"], "1 and 3"),
        (vec!["--mode", "legacy"], "historic, standard"),
        (vec!["--contract", "night"], "base, hchp, tempo, ejp"),
        (vec!["--kva", "18"], "--kva 18 needs --phases 3"),
        (vec!["--kva", "7"], "--kva 7: accepted values are"),
        (
            vec!["--producer", "--mode", "historic"],
            "--producer needs --mode standard",
        ),
        (
            vec!["--offpeak", "22:00-06:00"],
            "--offpeak needs --contract hchp",
        ),
        (
            vec!["--contract", "hchp", "--offpeak", "25:00-06:00"],
            "--offpeak",
        ),
        (vec!["--start", "2023-02-29"], "not a real date"),
        (vec!["--start", "2026-03-29T02:30"], "does not exist"),
        (vec!["--start", "soon"], "is not a date"),
        (vec!["--duration", "forever"], "--duration"),
        (vec!["--interval", "0"], "--interval"),
        (vec!["--faults", "bit=3"], "probability between 0 and 1"),
        (vec!["--faults", "zap=1"], "unknown item `zap`"),
        (vec!["--solar-kwp", "3"], "--solar-kwp needs --producer"),
    ] {
        let out = simulate(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} should fail");
        assert!(err.contains(needle), "{args:?}: {err}");
        assert!(out.stdout.is_empty(), "{args:?}: nothing written on error");
    }
}

#[test]
fn help_documents_the_fault_grammar() {
    let out = Command::new(BIN)
        .args(["simulate", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for item in [
        "bit=RATE",
        "drop=RATE",
        "eot=P",
        "truncate=P",
        "noise=P",
        "switch=N",
        "degraded=N",
        "drift=S",
        "8n1",
        "--fault-log",
    ] {
        assert!(help.contains(item), "{item}");
    }
}

#[test]
fn realtime_is_paced_at_the_line_speed() {
    let started = Instant::now();
    let out = simulate(&["--realtime", "--frames", "3"]);
    let elapsed = started.elapsed();
    assert!(out.status.success());
    // Three 865-byte frames at 9600 Bd back to back: about 2.7 s.
    assert!(elapsed >= Duration::from_millis(2_300), "{elapsed:?}");
    assert!(elapsed < WAIT, "{elapsed:?}");
    assert_eq!(out.stdout.iter().filter(|&&c| c == 0x03).count(), 3);

    // Historic mode: 1200 Bd, two frames of about 170 bytes: about 2.9 s.
    let started = Instant::now();
    let out = simulate(&[
        "--realtime",
        "--frames",
        "2",
        "--mode",
        "historic",
        "--contract",
        "hchp",
    ]);
    let elapsed = started.elapsed();
    assert!(out.status.success());
    assert!(elapsed >= Duration::from_millis(2_500), "{elapsed:?}");
    assert!(elapsed < WAIT, "{elapsed:?}");
}

#[test]
fn tcp_listener_serves_the_stream() {
    let mut sim = Guard(
        Command::new(BIN)
            .args(["simulate", "--frames", "10", "--tcp", "127.0.0.1:0"])
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut line = String::new();
    BufReader::new(sim.0.stderr.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line.trim().rsplit(' ').next().unwrap().to_string();
    let mut stream = std::net::TcpStream::connect(&addr).unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    let mut bytes = Vec::new();
    let mut buf = [0u8; 4096];
    while bytes.iter().filter(|&&c| c == 0x03).count() < 10 {
        let n = stream.read(&mut buf).unwrap();
        assert!(n > 0, "stream ended early");
        bytes.extend_from_slice(&buf[..n]);
    }
    assert_eq!(bytes[0], 0x02);
    assert!(sim.0.wait().unwrap().success());
}

#[test]
fn pty_is_read_by_teleinfo_read_like_a_dongle() {
    let mut sim = Guard(
        Command::new(BIN)
            .args(["simulate", "--realtime", "--pty", "--contract", "hchp"])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut path = String::new();
    BufReader::new(sim.0.stdout.take().unwrap())
        .read_line(&mut path)
        .unwrap();
    let path = path.trim().to_string();
    assert!(path.starts_with("/dev/pts/"), "{path}");
    let mut read = Guard(
        Command::new(BIN)
            .args(["read", &path, "--mode", "standard", "--format", "jsonl"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let stdout = read.0.stdout.take().unwrap();
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    // The first frame may be cut (the reader joins mid-stream); then whole ones.
    let deadline = Instant::now() + WAIT;
    let mut good = 0;
    while good < 3 {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = rx
            .recv_timeout(left)
            .expect("frames from teleinfo read")
            .unwrap();
        let v: Value = serde_json::from_str(&line).unwrap();
        if v["complete"] == true && v["invalid_groups"] == 0 {
            assert_eq!(v["mode"], "standard");
            let labels: Vec<&str> = v["groups"]
                .as_array()
                .unwrap()
                .iter()
                .map(|g| g["label"].as_str().unwrap())
                .collect();
            assert!(labels.contains(&"PJOURF+1"));
            good += 1;
        }
    }
    let _ = std::io::stdout().flush();
}
