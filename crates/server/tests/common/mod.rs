//! Starts an in-process server on 127.0.0.1 (ephemeral ports) for the integration tests.
#![allow(dead_code)]

use std::net::SocketAddr;

use server::client::Client;
use server::Config;

pub struct TestServer {
    pub http: SocketAddr,
    pub telnet: Option<SocketAddr>,
    pub dir: tempfile::TempDir,
    pub rt: tokio::runtime::Runtime,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    done: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl TestServer {
    pub fn start(tweak: impl FnOnce(&mut Config)) -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = Config {
            data_dir: dir.path().to_path_buf(),
            listen: "127.0.0.1:0".into(),
            ..Config::default()
        };
        cfg.opentsdb_telnet = Some("127.0.0.1:0".into());
        tweak(&mut cfg);
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let srv = rt.block_on(server::Server::bind(cfg)).unwrap();
        let http = srv.http_addr().unwrap();
        let telnet = srv.telnet_addr();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let done = rt.spawn(srv.run(async move {
            let _ = rx.await;
        }));
        TestServer {
            http,
            telnet,
            dir,
            rt,
            stop: Some(tx),
            done: Some(done),
        }
    }

    pub fn client(&self) -> Client {
        Client::new(self.http)
    }

    pub fn add_device(&self, name: &str) -> String {
        server::devices::Devices::open(self.dir.path())
            .add(name)
            .unwrap()
    }

    /// Graceful stop; returns once the store is flushed.
    pub fn stop(mut self) -> tempfile::TempDir {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(d) = self.done.take() {
            self.rt.block_on(d).unwrap().unwrap();
        }
        let TestServer { dir, rt, .. } = self;
        rt.shutdown_timeout(std::time::Duration::from_secs(5));
        dir
    }
}

/// Standard-mode frames from the simulator, one per second of meter time.
pub fn sim_frames(n: usize, seed: u64) -> (String, Vec<meter_sim::Frame>) {
    let cfg = meter_sim::Config {
        seed,
        interval: meter_sim::Interval::FixedMs(1000),
        ..meter_sim::Config::default()
    };
    let mut sim = meter_sim::Simulator::new(cfg).unwrap();
    let frames: Vec<_> = (0..n).map(|_| sim.next_frame()).collect();
    (sim.address().to_string(), frames)
}

/// An uplink batch body.
pub fn batch(device: &str, boot: u64, first_seq: u32, frames: &[&[u8]]) -> Vec<u8> {
    let mut buf = vec![0u8; uplink::MAX_BATCH_BYTES];
    let header = uplink::BatchHeader {
        device_id: device,
        boot_id: boot,
        firmware_version: "test",
        telemetry: uplink::Telemetry {
            rssi_dbm: -60,
            queue_capacity_bytes: 1000,
            queued_bytes: 250,
            ..Default::default()
        },
        first_seq,
    };
    let mut w = uplink::BatchWriter::new(&mut buf, &header).unwrap();
    for f in frames {
        w.push_frame(None, f).unwrap();
    }
    w.finish().to_vec()
}

pub fn post_batch(c: &mut Client, token: &str, body: &[u8]) -> server::client::Response {
    let auth = format!("Bearer {token}");
    c.request(
        "POST",
        "/api/v1/uplink",
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/vnd.teleinfo.batch"),
        ],
        body,
    )
    .unwrap()
}

pub fn ack_seq(r: &server::client::Response) -> Option<u32> {
    assert_eq!(r.status, 200, "{}", r.text());
    uplink::Ack::decode(&r.body).unwrap().durable_through_seq
}
