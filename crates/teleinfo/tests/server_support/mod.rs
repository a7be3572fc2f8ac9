//! Runs the real `teleinfo` binary as a server for the server_* tests.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_teleinfo");

/// A `teleinfo serve` child process.
pub struct Serve {
    pub child: Child,
    pub http: SocketAddr,
    pub telnet: Option<SocketAddr>,
}

impl Serve {
    /// Starts `teleinfo serve --data DIR --listen LISTEN ARGS…` and waits for its listening lines.
    pub fn start(dir: &Path, listen: &str, args: &[&str]) -> Serve {
        let mut child = Command::new(BIN)
            .arg("serve")
            .arg("--data")
            .arg(dir)
            .arg("--listen")
            .arg(listen)
            .args(args)
            .env("TELEINFO_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn teleinfo serve");
        let out = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now() + Duration::from_secs(30);
        let (mut http, mut telnet) = (None, None);
        let want_telnet = args.iter().any(|a| a.starts_with("--opentsdb-telnet"));
        while http.is_none() || (want_telnet && telnet.is_none()) {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = rx
                .recv_timeout(left)
                .expect("teleinfo serve did not print its listening address in 30 s");
            if let Some(a) = line.strip_prefix("teleinfo serve: http listening on ") {
                http = Some(a.trim().parse().unwrap());
            }
            if let Some(a) = line.strip_prefix("teleinfo serve: opentsdb telnet listening on ") {
                telnet = Some(a.trim().parse().unwrap());
            }
        }
        Serve {
            child,
            http: http.unwrap(),
            telnet,
        }
    }

    /// SIGKILL: no chance to flush anything.
    pub fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM and wait (bounded) for a clean exit; returns the exit status success.
    pub fn terminate(mut self) -> bool {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                return st.success();
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("teleinfo serve did not stop within 30 s of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `teleinfo device add NAME --data DIR` → token.
pub fn add_device(dir: &Path, name: &str) -> String {
    let out = Command::new(BIN)
        .args(["device", "add", name, "--data"])
        .arg(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// Standard-mode frames, one per second of meter time.
pub fn sim_frames(n: usize, seed: u64) -> (String, Vec<Vec<u8>>) {
    let cfg = meter_sim::Config {
        seed,
        interval: meter_sim::Interval::FixedMs(1000),
        ..meter_sim::Config::default()
    };
    let mut sim = meter_sim::Simulator::new(cfg).unwrap();
    let frames = (0..n).map(|_| sim.next_frame().bytes).collect();
    (sim.address().to_string(), frames)
}

/// An uplink batch body.
pub fn batch(device: &str, boot: u64, first_seq: u32, frames: &[Vec<u8>]) -> Vec<u8> {
    let mut buf = vec![0u8; uplink::MAX_BATCH_BYTES];
    let header = uplink::BatchHeader {
        device_id: device,
        boot_id: boot,
        firmware_version: "test",
        telemetry: uplink::Telemetry::default(),
        first_seq,
    };
    let mut w = uplink::BatchWriter::new(&mut buf, &header).unwrap();
    for f in frames {
        w.push_frame(None, f).unwrap();
    }
    w.finish().to_vec()
}

/// Posts a batch; `Ok(Some(seq))` is the ack, `Err` any transport or HTTP failure.
pub fn post(
    c: &mut server::client::Client,
    token: &str,
    body: &[u8],
) -> Result<Option<u32>, String> {
    let auth = format!("Bearer {token}");
    let r = c
        .request("POST", "/api/v1/uplink", &[("Authorization", &auth)], body)
        .map_err(|e| e.to_string())?;
    if r.status != 200 {
        return Err(format!("HTTP {}: {}", r.status, r.text()));
    }
    uplink::Ack::decode(&r.body)
        .map(|a| a.durable_through_seq)
        .map_err(|e| format!("{e:?}"))
}

/// A free loopback port (bound then released; the server binds it with SO_REUSEADDR).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
