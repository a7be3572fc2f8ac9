//! Real servers from Debian for the integration tests: started on 127.0.0.1 on free ports,
//! killed when the test ends (also when it fails).
//!
//! A missing server binary skips the test with a message, unless `TELEINFO_REQUIRE_SERVERS=1`
//! (set by scripts/test-integrations.sh, which installs them): then it fails.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use integrations::Reading;
use meter_sim::{Config, Contract, Interval, Mode, Simulator};

/// The path of `bin`, or `None` (after saying why) when the test should be skipped.
pub fn server_binary(bin: &str, package: &str) -> Option<PathBuf> {
    for dir in ["/usr/sbin", "/usr/bin", "/usr/local/bin", "/usr/local/sbin"] {
        let p = Path::new(dir).join(bin);
        if p.exists() {
            return Some(p);
        }
    }
    if std::env::var("TELEINFO_REQUIRE_SERVERS").is_ok_and(|v| v == "1") {
        panic!("{bin} not found: apt-get install -y {package} (TELEINFO_REQUIRE_SERVERS=1 makes this a failure)");
    }
    eprintln!("SKIPPED: {bin} not found; apt-get install -y {package}, or run scripts/test-integrations.sh");
    None
}

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits until something accepts connections on `port`.
pub fn wait_port(port: u16, within: Duration) {
    let end = Instant::now() + within;
    while Instant::now() < end {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("nothing listens on 127.0.0.1:{port} after {within:?}");
}

/// Polls `f` until it returns `Some`, or panics with `what` after `within`.
pub fn eventually<T>(within: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let end = Instant::now() + within;
    loop {
        if let Some(v) = f() {
            return v;
        }
        if Instant::now() > end {
            panic!("timed out after {within:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A server process, killed on drop.
pub struct Proc {
    child: Option<Child>,
    cmd: (PathBuf, Vec<String>),
    pub log: PathBuf,
}

impl Proc {
    pub fn spawn(bin: &Path, args: &[String], log: PathBuf) -> Proc {
        let mut p = Proc {
            child: None,
            cmd: (bin.to_path_buf(), args.to_vec()),
            log,
        };
        p.start();
        p
    }

    pub fn start(&mut self) {
        assert!(self.child.is_none());
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let child = Command::new(&self.cmd.0)
            .args(&self.cmd.1)
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", self.cmd.0.display()));
        self.child = Some(child);
    }

    /// SIGTERM, then SIGKILL if it is still there after 15 s.
    pub fn terminate(&mut self) {
        if let Some(c) = &mut self.child {
            let _ = Command::new("kill")
                .args(["-TERM", &c.id().to_string()])
                .status();
            let end = Instant::now() + Duration::from_secs(15);
            while Instant::now() < end {
                if matches!(c.try_wait(), Ok(Some(_))) {
                    self.child = None;
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        self.stop();
    }

    /// Kills the process and waits for it (a hard stop: what a crash or a pulled cable does).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Now, Unix seconds.
pub fn now_s() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A simulated meter, one frame per `interval_ms` of meter time from `start_s`.
pub fn simulator(
    seed: u64,
    mode: Mode,
    contract: Contract,
    start_s: i64,
    interval_ms: i64,
) -> Simulator {
    let cfg = Config {
        mode,
        contract,
        start_unix_s: start_s,
        interval: Interval::FixedMs(interval_ms),
        seed,
        overloads_per_day: 0.0,
        ..Config::default()
    };
    Simulator::new(cfg).expect("simulator config")
}

/// `n` simulators with distinct meter addresses (the simulator draws addresses from 8 million,
/// so a thousand seeds collide now and then), seeds from `first_seed`.
pub fn distinct_simulators(
    n: usize,
    first_seed: u64,
    mut make: impl FnMut(usize, u64) -> Simulator,
) -> Vec<Simulator> {
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::with_capacity(n);
    let mut seed = first_seed;
    while out.len() < n {
        let sim = make(out.len(), seed);
        seed += 1;
        if seen.insert(sim.address().to_string()) {
            out.push(sim);
        }
    }
    out
}

/// The next decoded frame of a simulator (meter time; historic frames get `fallback_ms`).
pub fn next_reading(sim: &mut Simulator, fallback_ms: i64) -> Reading {
    let f = sim.next_frame();
    Reading::decode(&f.bytes, fallback_ms).expect("simulated frames name their meter")
}

/// GET `url`, body as text (panics on transport errors).
pub fn http_get(url: &str) -> (u16, String) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into();
    let mut r = agent
        .get(url)
        .call()
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    (r.status().as_u16(), r.body_mut().read_to_string().unwrap())
}

/// POST `url` with an empty form body.
pub fn http_post(url: &str) -> (u16, String) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut r = agent
        .post(url)
        .send("")
        .unwrap_or_else(|e| panic!("POST {url}: {e}"));
    (r.status().as_u16(), r.body_mut().read_to_string().unwrap())
}

/// Resident-set high-water mark of this process, KiB.
pub fn vm_hwm_kib() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Every sample of `metric` in VictoriaMetrics, by `meter` tag, in time order: one
/// `/internal/force_flush` then one `/api/v1/export`.
pub fn vm_export(http: u16, metric: &str) -> BTreeMap<String, Vec<(i64, f64)>> {
    http_get(&format!("http://127.0.0.1:{http}/internal/force_flush"));
    let (st, body) = http_get(&format!(
        "http://127.0.0.1:{http}/api/v1/export?match[]={metric}"
    ));
    assert_eq!(st, 200, "{body}");
    let mut out = BTreeMap::new();
    for line in body.lines().filter(|l| !l.is_empty()) {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let meter = v["metric"]["meter"].as_str().unwrap().to_string();
        let ts = v["timestamps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_i64().unwrap());
        let vals = v["values"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap());
        let mut pts: Vec<(i64, f64)> = ts.zip(vals).collect();
        pts.sort_by_key(|p| p.0);
        // Keyed by meter: a second series of the same meter (another tag set) would
        // otherwise replace the first unseen.
        if out.insert(meter.clone(), pts).is_some() {
            panic!("{metric}: two series for meter {meter}: {line}");
        }
    }
    out
}

/// [`vm_export`] once VictoriaMetrics shows at least `samples` samples of `metric`, or after
/// `within`, whichever comes first: the caller then checks the samples exactly.
///
/// Why wait: a 204 from VictoriaMetrics (1.79, Debian's) means the points are accepted, not
/// yet searchable, and `/internal/force_flush` does not always make the last requests visible
/// to the very next export. Measured here: 2 loads in 10 saw about 70 % of the samples right
/// after the flush and all of them within a second.
pub fn vm_export_settled(
    http: u16,
    metric: &str,
    samples: usize,
    within: Duration,
) -> BTreeMap<String, Vec<(i64, f64)>> {
    let start = Instant::now();
    let mut first_short = None;
    loop {
        let got = vm_export(http, metric);
        let seen = got.values().map(Vec::len).sum::<usize>();
        if seen >= samples || start.elapsed() > within {
            if let Some(first) = first_short {
                eprintln!(
                    "VictoriaMetrics showed {first} of {samples} {metric} samples after the flush, \
                     {seen} after {:.1} s",
                    start.elapsed().as_secs_f64()
                );
            }
            return got;
        }
        first_short.get_or_insert(seen);
        std::thread::sleep(Duration::from_millis(200));
    }
}
