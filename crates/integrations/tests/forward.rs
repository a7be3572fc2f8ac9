//! Forwarders against real backends: VictoriaMetrics (through its OpenTSDB HTTP listener)
//! and InfluxDB 1.x. What arrives equals what was sent; a backend stopped for a while, and
//! the forwarder itself restarted meanwhile, loses nothing and keeps the order.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::Duration;

use common::*;
use integrations::{ForwardConfig, ForwardKind, Outputs, OutputsConfig, Reading};
use meter_sim::{Contract, Mode};

/// (meter, series) → [(ts_ms, value)] of what the outputs were given: everything (the first
/// value of an index is held until the next frame confirms it, then forwarded).
type Expected = BTreeMap<(String, String), Vec<(i64, f64)>>;

fn expect(readings: &[Reading], exp: &mut Expected) {
    for r in readings {
        for (name, v) in r.series() {
            exp.entry((r.meter.clone(), name.to_string()))
                .or_default()
                .push((r.ts_ms, v));
        }
    }
}

/// Three meters (standard Tempo, standard HC/HP, historic HC/HP), `n` frames each, 2 s apart,
/// starting `start_s`.
struct Fleet {
    sims: Vec<meter_sim::Simulator>,
    hist_ts: i64,
}

impl Fleet {
    fn new(start_s: i64) -> Fleet {
        Fleet {
            sims: vec![
                simulator(11, Mode::Standard, Contract::Tempo, start_s, 2000),
                simulator(12, Mode::Standard, Contract::default_hchp(), start_s, 2000),
                simulator(13, Mode::Historic, Contract::default_hchp(), start_s, 2000),
            ],
            hist_ts: start_s * 1000,
        }
    }

    fn frames(&mut self, n: usize) -> Vec<Reading> {
        let mut out = Vec::new();
        for _ in 0..n {
            self.hist_ts += 2000;
            for s in &mut self.sims {
                out.push(next_reading(s, self.hist_ts));
            }
        }
        out
    }
}

fn drained(out: &Outputs, within: Duration) {
    eventually(within, "the forward queue to drain", || {
        out.forwarders()
            .iter()
            .all(|f| f.queue().is_empty())
            .then_some(())
    });
}

fn vm(dir: &Path, http: u16, tsdb: u16) -> Option<Proc> {
    let bin = server_binary("victoria-metrics", "victoria-metrics")?;
    let args = vec![
        format!("-storageDataPath={}", dir.join("vm").display()),
        format!("-httpListenAddr=127.0.0.1:{http}"),
        format!("-opentsdbHTTPListenAddr=127.0.0.1:{tsdb}"),
        "-retentionPeriod=100y".into(),
        // At-least-once delivery may resend a batch: one sample per series and millisecond.
        "-dedup.minScrapeInterval=1ms".into(),
        "-search.latencyOffset=0s".into(),
    ];
    let p = Proc::spawn(&bin, &args, dir.join("vm.log"));
    wait_port(http, Duration::from_secs(20));
    wait_port(tsdb, Duration::from_secs(20));
    Some(p)
}

/// How many samples of `metric` the backend must end up with.
fn expected_samples(exp: &Expected, metric: &str) -> usize {
    exp.iter()
        .filter(|((_, m), _)| m == metric)
        .map(|(_, pts)| pts.len())
        .sum()
}

fn compare(exp: &Expected, metric: &str, got: &BTreeMap<String, Vec<(i64, f64)>>) -> usize {
    let mut n = 0;
    let mut meters = 0;
    for ((meter, m), pts) in exp {
        if m != metric {
            continue;
        }
        meters += 1;
        let g = got
            .get(meter)
            .unwrap_or_else(|| panic!("{metric} of {meter}: nothing in the backend"));
        assert_eq!(g.len(), pts.len(), "{metric} of {meter}: count");
        assert_eq!(g, pts, "{metric} of {meter}: values");
        n += pts.len();
    }
    assert!(meters > 0, "no {metric} expected");
    n
}

#[test]
fn victoriametrics_via_opentsdb_put_survives_outage_and_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (http, tsdb) = (free_port(), free_port());
    let Some(mut backend) = vm(dir.path(), http, tsdb) else {
        return;
    };
    let cfg = OutputsConfig {
        mqtt: None,
        forward: vec![ForwardConfig {
            batch_points: 500,
            ..ForwardConfig::new(ForwardKind::Opentsdb, &format!("http://127.0.0.1:{tsdb}"))
        }],
    };
    let qdir = dir.path().join("queues");
    let mut exp = Expected::new();
    let mut fleet = Fleet::new(now_s() - 3600);

    // 1. Backend up.
    let out = Outputs::start(&cfg, &qdir).unwrap();
    let batch = fleet.frames(40);
    expect(&batch, &mut exp);
    for chunk in batch.chunks(7) {
        out.submit(chunk.to_vec()).unwrap();
    }
    drained(&out, Duration::from_secs(30));

    // 2. Backend down: frames queue on disk; the forwarder retries. (A graceful stop:
    // VictoriaMetrics acknowledges writes before they are on disk, and a SIGKILL loses its
    // last second — a backend property, see docs/forwarding.md.)
    backend.terminate();
    let batch = fleet.frames(60);
    expect(&batch, &mut exp);
    for chunk in batch.chunks(5) {
        out.submit(chunk.to_vec()).unwrap();
    }
    let f = &out.forwarders()[0];
    eventually(Duration::from_secs(10), "failed attempts", || {
        (f.stats().failed_attempts.load(Ordering::Relaxed) > 0).then_some(())
    });
    assert!(f.queue().points() > 0);
    assert_eq!(f.stats().up.load(Ordering::Relaxed), 0);

    // 3. The gateway restarts while the backend is still down: the queue is on disk.
    let queued = f.queue().points();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(out.shutdown());
    let out = Outputs::start(&cfg, &qdir).unwrap();
    assert_eq!(out.forwarders()[0].queue().points(), queued);
    let batch = fleet.frames(20);
    expect(&batch, &mut exp);
    out.submit(batch).unwrap();

    // 4. Backend back: everything arrives, in order, nothing missing, nothing extra.
    std::thread::sleep(Duration::from_secs(2));
    backend.start();
    drained(&out, Duration::from_secs(60));
    let n = ["SINSTS", "EAST", "HCHC", "PAPP", "NJOURF.next"]
        .iter()
        .map(|metric| {
            let want = expected_samples(&exp, metric);
            let got = vm_export_settled(http, metric, want, Duration::from_secs(30));
            compare(&exp, metric, &got)
        })
        .sum::<usize>();
    assert!(n > 300, "{n}");
    let sent = out.forwarders()[0]
        .stats()
        .sent_points
        .load(Ordering::Relaxed);
    assert!(sent > 0);
    assert_eq!(
        out.forwarders()[0]
            .stats()
            .rejected_points
            .load(Ordering::Relaxed),
        0
    );
    rt.block_on(out.shutdown());
}

fn influxd(dir: &Path, http: u16, rpc: u16) -> Option<Proc> {
    let bin = server_binary("influxd", "influxdb")?;
    let d = dir.join("influx");
    let conf = dir.join("influxdb.conf");
    std::fs::write(
        &conf,
        format!(
            "reporting-disabled = true\nbind-address = \"127.0.0.1:{rpc}\"\n\
             [meta]\n  dir = \"{0}/meta\"\n[data]\n  dir = \"{0}/data\"\n  wal-dir = \"{0}/wal\"\n  query-log-enabled = false\n\
             [http]\n  bind-address = \"127.0.0.1:{http}\"\n  log-enabled = false\n\
             [monitor]\n  store-enabled = false\n",
            d.display()
        ),
    )
    .unwrap();
    let p = Proc::spawn(
        &bin,
        &["-config".into(), conf.display().to_string()],
        dir.join("influxd.log"),
    );
    wait_port(http, Duration::from_secs(30));
    eventually(Duration::from_secs(20), "influxd /ping", || {
        (http_get(&format!("http://127.0.0.1:{http}/ping")).0 == 204).then_some(())
    });
    Some(p)
}

fn influx_series(http: u16, field: &str) -> BTreeMap<String, Vec<(i64, f64)>> {
    let q = format!("SELECT \"{field}\" FROM teleinfo WHERE \"{field}\" > -1 GROUP BY meter");
    let url = format!(
        "http://127.0.0.1:{http}/query?db=linky&epoch=ms&q={}",
        urlencode(&q)
    );
    let (st, body) = http_get(&url);
    assert_eq!(st, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let mut out = BTreeMap::new();
    for s in v["results"][0]["series"]
        .as_array()
        .cloned()
        .unwrap_or_default()
    {
        let meter = s["tags"]["meter"].as_str().unwrap().to_string();
        let pts = s["values"]
            .as_array()
            .unwrap()
            .iter()
            .map(|row| (row[0].as_i64().unwrap(), row[1].as_f64().unwrap()))
            .collect();
        out.insert(meter, pts);
    }
    out
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[test]
fn influxdb_line_protocol_survives_outage() {
    let dir = tempfile::tempdir().unwrap();
    let (http, rpc) = (free_port(), free_port());
    let Some(mut backend) = influxd(dir.path(), http, rpc) else {
        return;
    };
    let (st, body) = http_post(&format!(
        "http://127.0.0.1:{http}/query?q={}",
        urlencode("CREATE DATABASE linky")
    ));
    assert_eq!(st, 200, "{body}");
    let cfg = OutputsConfig {
        mqtt: None,
        forward: vec![ForwardConfig {
            batch_points: 300,
            ..ForwardConfig::new(
                ForwardKind::Influx,
                &format!("http://127.0.0.1:{http}/write?db=linky"),
            )
        }],
    };
    let mut exp = Expected::new();
    let mut fleet = Fleet::new(now_s() - 3600);
    let out = Outputs::start(&cfg, &dir.path().join("queues")).unwrap();
    let batch = fleet.frames(30);
    expect(&batch, &mut exp);
    out.submit(batch).unwrap();
    drained(&out, Duration::from_secs(30));

    backend.terminate();
    for _ in 0..10 {
        let batch = fleet.frames(5);
        expect(&batch, &mut exp);
        out.submit(batch).unwrap();
    }
    let f = &out.forwarders()[0];
    eventually(Duration::from_secs(10), "failed attempts", || {
        (f.stats().failed_attempts.load(Ordering::Relaxed) > 0).then_some(())
    });
    assert!(!f.queue().is_empty());
    std::thread::sleep(Duration::from_secs(2));
    backend.start();
    drained(&out, Duration::from_secs(60));
    let n = compare(&exp, "SINSTS", &influx_series(http, "SINSTS"))
        + compare(&exp, "EAST", &influx_series(http, "EAST"))
        + compare(&exp, "HCHP", &influx_series(http, "HCHP"))
        + compare(&exp, "PAPP", &influx_series(http, "PAPP"));
    assert!(n > 300, "{n}");
    assert_eq!(f.stats().rejected_points.load(Ordering::Relaxed), 0);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(out.shutdown());
}
