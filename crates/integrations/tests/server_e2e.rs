//! The whole path: simulated devices post uplink batches to an in-process `teleinfo serve`
//! configured with MQTT (mosquitto) and an OpenTSDB forwarder (VictoriaMetrics); what the
//! devices sent comes out on both.

mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use integrations::{ForwardConfig, ForwardKind, MqttConfig, Outputs, Reading};
use meter_sim::{Contract, Mode, Simulator};
use server::client::Client;

struct Running {
    http: SocketAddr,
    outputs: Arc<Outputs>,
    rt: tokio::runtime::Runtime,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    done: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    dir: tempfile::TempDir,
}

impl Running {
    fn start(tweak: impl FnOnce(&mut server::Config)) -> Running {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = server::Config {
            data_dir: dir.path().to_path_buf(),
            listen: "127.0.0.1:0".into(),
            ..Default::default()
        };
        tweak(&mut cfg);
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let srv = rt.block_on(server::Server::bind(cfg)).unwrap();
        let http = srv.http_addr().unwrap();
        let outputs = srv
            .state()
            .ingest
            .outputs()
            .expect("outputs configured")
            .clone();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let done = rt.spawn(srv.run(async move {
            let _ = rx.await;
        }));
        Running {
            http,
            outputs,
            rt,
            stop: Some(tx),
            done: Some(done),
            dir,
        }
    }

    fn add_device(&self, name: &str) -> String {
        server::devices::Devices::open(self.dir.path())
            .add(name)
            .unwrap()
    }

    fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(d) = self.done.take() {
            self.rt.block_on(d).unwrap().unwrap();
        }
    }
}

fn batch(device: &str, boot: u64, first_seq: u32, frames: &[Vec<u8>]) -> Vec<u8> {
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

fn post(c: &mut Client, token: &str, body: &[u8]) {
    let auth = format!("Bearer {token}");
    let r = c
        .request(
            "POST",
            "/api/v1/uplink",
            &[
                ("Authorization", &auth),
                ("Content-Type", "application/vnd.teleinfo.batch"),
            ],
            body,
        )
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
}

fn vm(dir: &std::path::Path) -> Option<(Proc, u16, u16)> {
    let bin = server_binary("victoria-metrics", "victoria-metrics")?;
    let (http, tsdb) = (free_port(), free_port());
    let p = Proc::spawn(
        &bin,
        &[
            format!("-storageDataPath={}", dir.join("vm").display()),
            format!("-httpListenAddr=127.0.0.1:{http}"),
            format!("-opentsdbHTTPListenAddr=127.0.0.1:{tsdb}"),
            "-retentionPeriod=100y".into(),
            "-dedup.minScrapeInterval=1ms".into(),
            "-search.latencyOffset=0s".into(),
            "-search.maxExportSeries=100000".into(),
        ],
        dir.join("vm.log"),
    );
    wait_port(http, Duration::from_secs(20));
    wait_port(tsdb, Duration::from_secs(20));
    Some((p, http, tsdb))
}

fn drained(out: &Outputs, within: Duration) {
    eventually(within, "the forward queue to drain", || {
        out.forwarders()
            .iter()
            .all(|f| f.queue().is_empty())
            .then_some(())
    });
}

#[test]
fn uplink_frames_reach_mqtt_and_victoriametrics() {
    let dir = tempfile::tempdir().unwrap();
    let Some((_vm, vm_http, tsdb)) = vm(dir.path()) else {
        return;
    };
    let Some(mqtt_bin) = server_binary("mosquitto", "mosquitto") else {
        return;
    };
    let mport = free_port();
    let conf = dir.path().join("mosquitto.conf");
    std::fs::write(
        &conf,
        format!("listener {mport} 127.0.0.1\nallow_anonymous true\n"),
    )
    .unwrap();
    let _broker = Proc::spawn(
        &mqtt_bin,
        &["-c".into(), conf.display().to_string()],
        dir.path().join("mosquitto.log"),
    );
    wait_port(mport, Duration::from_secs(10));

    let srv = Running::start(|c| {
        c.mqtt = Some(MqttConfig {
            topic_prefix: "e2e".into(),
            publish_interval_s: 0.2,
            ..MqttConfig::new(&format!("mqtt://127.0.0.1:{mport}"))
        });
        c.forward.push(ForwardConfig::new(
            ForwardKind::Opentsdb,
            &format!("http://127.0.0.1:{tsdb}"),
        ));
    });
    let start = now_s() - 7200;
    let mut expected: BTreeMap<String, Vec<Reading>> = BTreeMap::new();
    let mut client = Client::new(srv.http);
    for d in 0..3u64 {
        let name = format!("dev{d}");
        let token = srv.add_device(&name);
        let contract =
            [Contract::Base, Contract::default_hchp(), Contract::Tempo][d as usize].clone();
        let mut sim = simulator(500 + d, Mode::Standard, contract, start, 1000);
        let frames: Vec<Vec<u8>> = (0..100).map(|_| sim.next_frame().bytes).collect();
        for (i, chunk) in frames.chunks(20).enumerate() {
            post(
                &mut client,
                &token,
                &batch(&name, 42, (i * 20) as u32, chunk),
            );
        }
        let rs: Vec<Reading> = frames
            .iter()
            .map(|f| Reading::decode(f, 0).unwrap())
            .collect();
        expected.insert(rs[0].meter.clone(), rs);
    }
    drained(&srv.outputs, Duration::from_secs(30));
    for (metric, label) in [
        ("SINSTS", "SINSTS"),
        ("EAST", "EAST"),
        ("power.apparent", "SINSTS"),
    ] {
        let samples = expected.values().map(Vec::len).sum();
        let got = vm_export_settled(vm_http, metric, samples, Duration::from_secs(30));
        for (meter, rs) in &expected {
            let want: Vec<(i64, f64)> = rs
                .iter()
                .map(|r| (r.ts_ms, r.value(label).unwrap()))
                .collect();
            assert_eq!(got.get(meter), Some(&want), "{metric} of {meter}");
        }
    }

    // MQTT: the devices' meters, with discovery, and the last index.
    let (meter, rs) = expected.iter().next().unwrap();
    let want = format!("{}", rs.last().unwrap().value("EAST").unwrap() as i64);
    let sub = |topic: &str| {
        let out = std::process::Command::new("mosquitto_sub")
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &mport.to_string(),
                "-t",
                topic,
                "-C",
                "1",
                "-W",
                "5",
            ])
            .output();
        out.ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    if server_binary("mosquitto_sub", "mosquitto-clients").is_some() {
        // The publisher sends each meter's state once per publish interval, after the
        // forwarders may have drained: the retained value catches up within a few periods.
        let t0 = std::time::Instant::now();
        let east = loop {
            let got = sub(&format!("e2e/{meter}/EAST"));
            if got.as_deref() == Some(want.as_str()) || t0.elapsed() > Duration::from_secs(20) {
                break got;
            }
            std::thread::sleep(Duration::from_millis(200));
        };
        assert_eq!(east.as_deref(), Some(want.as_str()));
        let disc = sub(&format!(
            "homeassistant/sensor/teleinfo_{meter}/east/config"
        ))
        .unwrap();
        let v: serde_json::Value = serde_json::from_str(&disc).unwrap();
        assert_eq!(v["state_class"], "total_increasing");
    }
    let mut c = Client::new(srv.http);
    let m = c.get("/metrics").unwrap().text();
    assert!(m.contains("teleinfo_forward_up{forwarder="), "{m}");
    assert!(m.contains("teleinfo_mqtt_connected 1"), "{m}");
    srv.stop();
}

/// Load through the server: devices × one 2-frame batch every 2 s, over HTTP, into the store,
/// MQTT-less, forwarded to VictoriaMetrics.
#[test]
#[ignore]
fn thousand_devices_through_the_server() {
    let devices: usize = std::env::var("TELEINFO_LOAD_DEVICES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let paced_s: usize = std::env::var("TELEINFO_LOAD_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let dir = tempfile::tempdir().unwrap();
    let Some((_vm, vm_http, tsdb)) = vm(dir.path()) else {
        return;
    };
    let srv = Running::start(|c| {
        c.forward.push(ForwardConfig::new(
            ForwardKind::Opentsdb,
            &format!("http://127.0.0.1:{tsdb}"),
        ));
    });
    let start = now_s() - 7200;
    struct Dev {
        name: String,
        token: String,
        sim: Simulator,
        seq: u32,
    }
    let sims = distinct_simulators(devices, 9000, |i, seed| {
        let contract = [Contract::Base, Contract::default_hchp(), Contract::Tempo][i % 3].clone();
        simulator(seed, Mode::Standard, contract, start, 1000)
    });
    let devs: Vec<std::sync::Mutex<Dev>> = sims
        .into_iter()
        .enumerate()
        .map(|(i, sim)| {
            let name = format!("d{i}");
            let token = srv.add_device(&name);
            std::sync::Mutex::new(Dev {
                name,
                token,
                sim,
                seq: 0,
            })
        })
        .collect();
    let http = srv.http;
    let f = &srv.outputs.forwarders()[0];
    let hwm0 = vm_hwm_kib();
    const THREADS: usize = 16;
    let round = || {
        std::thread::scope(|s| {
            for w in 0..THREADS {
                let devs = &devs;
                s.spawn(move || {
                    let mut c = Client::new(http);
                    for cell in devs.iter().skip(w).step_by(THREADS) {
                        let mut d = cell.lock().unwrap();
                        let frames = vec![d.sim.next_frame().bytes, d.sim.next_frame().bytes];
                        let body = batch(&d.name, 1, d.seq, &frames);
                        d.seq += 2;
                        post(&mut c, &d.token, &body);
                    }
                });
            }
        });
    };
    let t0 = Instant::now();
    let mut busy = Duration::ZERO;
    let mut max_lag = 0i64;
    let rounds = paced_s / 2;
    for r in 0..rounds {
        let t = Instant::now();
        round();
        busy += t.elapsed();
        max_lag = max_lag.max(f.stats().last_lag_ms.load(Ordering::Relaxed));
        std::thread::sleep(
            (t0 + Duration::from_secs(2 * (r as u64 + 1)))
                .saturating_duration_since(Instant::now()),
        );
    }
    let tb = Instant::now();
    let burst_rounds = 5;
    for _ in 0..burst_rounds {
        round();
    }
    let burst = tb.elapsed();
    drained(&srv.outputs, Duration::from_secs(300));
    let drain = tb.elapsed() - burst;
    let hwm = vm_hwm_kib();
    let frames_per_meter = 2 * (rounds + burst_rounds);
    let got = vm_export_settled(
        vm_http,
        "SINSTS",
        devices * frames_per_meter,
        Duration::from_secs(30),
    );
    assert_eq!(got.len(), devices);
    for (m, pts) in &got {
        assert_eq!(pts.len(), frames_per_meter, "SINSTS of {m}");
    }
    let report = format!(
        "LOAD-SERVER devices={devices}: paced {} frames in {} s over HTTP uplink (2-frame batches), busy {:.0}% of the \
         time, max forward lag {max_lag} ms | burst {} frames in {:.2} s = {:.0} frames/s stored+queued, drained {:.2} s \
         later | every SINSTS sample in VictoriaMetrics | VmHWM {} MiB (server + store + clients + simulators; {} MiB \
         before)",
        devices * rounds * 2,
        rounds * 2,
        busy.as_secs_f64() * 100.0 / (rounds * 2) as f64,
        devices * burst_rounds * 2,
        burst.as_secs_f64(),
        (devices * burst_rounds * 2) as f64 / burst.as_secs_f64(),
        drain.as_secs_f64(),
        hwm / 1024,
        hwm0 / 1024,
    );
    eprintln!("{report}");
    if let Ok(p) = std::env::var("TELEINFO_LOAD_SERVER_REPORT") {
        std::fs::write(p, format!("{report}\n")).unwrap();
    }
    assert!(
        busy < Duration::from_secs(2 * rounds as u64),
        "the server cannot keep up with {devices} devices"
    );
    assert!(max_lag < 5000, "forward lag {max_lag} ms");
    srv.stop();
}
