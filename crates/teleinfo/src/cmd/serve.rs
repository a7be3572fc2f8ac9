//! `teleinfo serve`: the server with its embedded store (crates/server).
//!
//! Settings come from, lowest to highest precedence: built-in defaults, the TOML file given by
//! `--config` (or `TELEINFO_CONFIG`), environment variables `TELEINFO_*`, and flags. See
//! docs/server.md for every setting.

use anyhow::{Context, Result};
use server::Config;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use crate::serial::{Link, LinkEvent, ModeChoice};

/// Arguments of `serve`.
#[derive(clap::Args, Debug, Default)]
pub struct Args {
    /// TOML configuration file (env TELEINFO_CONFIG).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Data directory holding store.db and devices.json (env TELEINFO_DATA; default: the
    /// per-user data directory, e.g. ~/.local/share/teleinfo).
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// HTTP listen address (env TELEINFO_LISTEN; default 127.0.0.1:8080).
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
    /// Enable the OpenTSDB telnet `put` listener (env TELEINFO_OPENTSDB_TELNET); without a
    /// value it listens on 127.0.0.1:4242.
    #[arg(long, value_name = "ADDR", num_args = 0..=1, default_missing_value = "127.0.0.1:4242")]
    pub opentsdb_telnet: Option<String>,
    /// Network allowed to write with OpenTSDB put without a token, repeatable (env
    /// TELEINFO_PUT_ALLOW, comma-separated; default loopback only).
    #[arg(long, value_name = "CIDR")]
    pub put_allow: Vec<String>,
    /// Token required by every read endpoint (env TELEINFO_READ_TOKEN).
    #[arg(long, value_name = "TOKEN")]
    pub read_token: Option<String>,
    /// Token allowing /api/put from any address (env TELEINFO_WRITE_TOKEN).
    #[arg(long, value_name = "TOKEN")]
    pub write_token: Option<String>,
    /// Time zone of local days for energy per period (env TELEINFO_TIME_ZONE; default
    /// Europe/Paris).
    #[arg(long, value_name = "IANA_NAME")]
    pub time_zone: Option<String>,
    /// Local serial port DEVICE[:auto|historic|standard], repeatable.
    #[arg(long, value_name = "DEVICE[:MODE]")]
    pub serial: Vec<String>,
    /// Log level: error, warn, info, debug, trace (env TELEINFO_LOG).
    #[arg(long, value_name = "LEVEL")]
    pub log_level: Option<String>,
    /// Publish to an MQTT broker with Home Assistant discovery, e.g. mqtt://127.0.0.1:1883
    /// (env TELEINFO_MQTT; the [mqtt] section of the config file sets the rest, docs/mqtt.md).
    #[arg(long, value_name = "URL")]
    pub mqtt: Option<String>,
    /// Forward every point to OpenTSDB or VictoriaMetrics' OpenTSDB listener (/api/put),
    /// e.g. http://127.0.0.1:4242; repeatable (docs/forwarding.md).
    #[arg(long, value_name = "URL")]
    pub forward_opentsdb: Vec<String>,
    /// Forward every point to InfluxDB, e.g. http://127.0.0.1:8086/write?db=teleinfo (1.x) or
    /// .../api/v2/write?org=O&bucket=B (2.x); repeatable.
    #[arg(long, value_name = "URL")]
    pub forward_influx: Vec<String>,
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// Builds the configuration from file, environment and flags (flags win).
pub fn load_config(config: Option<&PathBuf>, data: Option<&PathBuf>) -> Result<Config> {
    let file = config
        .cloned()
        .or_else(|| env("TELEINFO_CONFIG").map(PathBuf::from));
    let mut cfg = match &file {
        Some(f) => Config::from_file(f)?,
        None => Config::default(),
    };
    if let Some(d) = data
        .cloned()
        .or_else(|| env("TELEINFO_DATA").map(PathBuf::from))
    {
        cfg.data_dir = d;
    }
    Ok(cfg)
}

fn apply(args: &Args) -> Result<Config> {
    let mut cfg = load_config(args.config.as_ref(), args.data.as_ref())?;
    if let Some(v) = args.listen.clone().or_else(|| env("TELEINFO_LISTEN")) {
        cfg.listen = v;
    }
    if let Some(v) = args
        .opentsdb_telnet
        .clone()
        .or_else(|| env("TELEINFO_OPENTSDB_TELNET"))
    {
        cfg.opentsdb_telnet = Some(v);
    }
    if !args.put_allow.is_empty() {
        cfg.put_allow = args.put_allow.clone();
    } else if let Some(v) = env("TELEINFO_PUT_ALLOW") {
        cfg.put_allow = v.split(',').map(|s| s.trim().to_string()).collect();
    }
    if let Some(v) = args
        .read_token
        .clone()
        .or_else(|| env("TELEINFO_READ_TOKEN"))
    {
        cfg.read_token = Some(v);
    }
    if let Some(v) = args
        .write_token
        .clone()
        .or_else(|| env("TELEINFO_WRITE_TOKEN"))
    {
        cfg.write_token = Some(v);
    }
    if let Some(v) = args.time_zone.clone().or_else(|| env("TELEINFO_TIME_ZONE")) {
        cfg.time_zone = v;
    }
    if !args.serial.is_empty() {
        cfg.serial = args.serial.clone();
    }
    if let Some(url) = args.mqtt.clone().or_else(|| env("TELEINFO_MQTT")) {
        // The flag names the broker; the file's other [mqtt] settings still apply.
        let mut m = cfg.mqtt.take().unwrap_or_default();
        m.url = url;
        cfg.mqtt = Some(m);
    }
    // Flags add forwarders to those of the file.
    use server::config::{ForwardConfig, ForwardKind};
    for u in &args.forward_opentsdb {
        cfg.forward
            .push(ForwardConfig::new(ForwardKind::Opentsdb, u));
    }
    for u in &args.forward_influx {
        cfg.forward.push(ForwardConfig::new(ForwardKind::Influx, u));
    }
    cfg.validate()?;
    Ok(cfg)
}

/// Runs the server until SIGINT/SIGTERM.
pub fn run(args: Args) -> Result<ExitCode> {
    let level = args
        .log_level
        .clone()
        .or_else(|| env("TELEINFO_LOG"))
        .unwrap_or_else(|| "info".into());
    server::init_logging(&level).map_err(anyhow::Error::msg)?;
    let cfg = apply(&args)?;
    let rt = server::runtime().context("cannot start the async runtime")?;
    rt.block_on(async move {
        let serials = cfg.serial.clone();
        let srv = server::Server::bind(cfg).await?;
        // One line per listener on stdout, so scripts and tests can find the ports (with
        // `--listen 127.0.0.1:0` the system picks one).
        let mut out = std::io::stdout().lock();
        if let Some(a) = srv.http_addr() {
            writeln!(out, "teleinfo serve: http listening on {a}")?;
        }
        if let Some(a) = srv.telnet_addr() {
            writeln!(out, "teleinfo serve: opentsdb telnet listening on {a}")?;
        }
        out.flush()?;
        drop(out);
        let state = srv.state();
        for spec in serials {
            let (path, choice) = parse_serial(&spec)?;
            tokio::spawn(serial_input(state.clone(), path, choice));
        }
        srv.run(server::shutdown_signal()).await?;
        Ok::<_, anyhow::Error>(())
    })?;
    Ok(ExitCode::SUCCESS)
}

/// `DEVICE[:auto|historic|standard]`.
fn parse_serial(spec: &str) -> Result<(PathBuf, ModeChoice)> {
    let (path, mode) = match spec.rsplit_once(':') {
        Some((p, m)) if matches!(m, "auto" | "historic" | "standard") => (p, m),
        _ => (spec, "auto"),
    };
    let choice = match mode {
        "historic" => ModeChoice::Historic,
        "standard" => ModeChoice::Standard,
        _ => ModeChoice::Auto,
    };
    if path.is_empty() {
        anyhow::bail!(
            "--serial {spec:?}: write DEVICE[:auto|historic|standard], e.g. /dev/ttyUSB0:auto"
        );
    }
    Ok((PathBuf::from(path), choice))
}

/// The source name of a port: `serial-` and the path with anything outside the device-id
/// alphabet replaced (`/dev/ttyUSB0` → `serial-dev_ttyUSB0`).
fn serial_device_id(path: &std::path::Path) -> String {
    let p: String = path
        .to_string_lossy()
        .trim_start_matches('/')
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut id = format!("serial-{p}");
    id.truncate(32); // the device-id limit of the uplink wire format
    id
}

/// Longest frame kept from a port before it is dropped as garbage (a real frame is < 2 KiB).
const MAX_SERIAL_FRAME: usize = 16 * 1024;

/// Reads a local port (surviving unplug/replug: `crate::serial::Link` reopens it) and stores
/// every complete frame through the same pipeline as the uplink, one durable write per frame.
async fn serial_input(state: server::app::Shared, path: PathBuf, choice: ModeChoice) {
    let device = serial_device_id(&path);
    // A new boot id per server start: sequence numbers restart at 0.
    let boot_id = server::app::now_ms() as u64;
    let mut link = Link::new(path.clone(), choice);
    let mut frame: Vec<u8> = Vec::new();
    let mut in_frame = false;
    let mut seq: u64 = 0;
    let mut shutdown = state.shutdown.subscribe();
    loop {
        let ev = tokio::select! {
            _ = shutdown.changed() => return,
            ev = link.next() => ev,
        };
        let chunk = match ev {
            Ok(LinkEvent::Data(c)) => c,
            Ok(LinkEvent::Break) => {
                frame.clear();
                in_frame = false;
                continue;
            }
            Ok(LinkEvent::Notice(n)) => {
                tracing::info!("{}: {n}", path.display());
                continue;
            }
            Err(e) => {
                tracing::error!("serial input stopped: {e}");
                return;
            }
        };
        let at = chunk
            .at
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        let mut complete: Vec<Vec<u8>> = Vec::new();
        for &b in &chunk.bytes {
            match b & 0x7F {
                0x02 => {
                    frame.clear();
                    frame.push(b);
                    in_frame = true;
                }
                0x03 if in_frame => {
                    frame.push(b);
                    complete.push(std::mem::take(&mut frame));
                    in_frame = false;
                }
                0x04 => {
                    frame.clear();
                    in_frame = false;
                }
                _ if in_frame => {
                    if frame.len() < MAX_SERIAL_FRAME {
                        frame.push(b);
                    } else {
                        frame.clear();
                        in_frame = false;
                    }
                }
                _ => {}
            }
        }
        if complete.is_empty() {
            continue;
        }
        let first = seq;
        seq += complete.len() as u64;
        let ingest = state.ingest.clone();
        let source = store::Source {
            device_id: device.clone(),
            boot_id,
        };
        let res = tokio::task::spawn_blocking(move || {
            let frames: Vec<server::ingest::InFrame<'_>> = complete
                .iter()
                .enumerate()
                .map(|(i, b)| server::ingest::InFrame {
                    seq: first + i as u64,
                    bytes: b,
                    device_time_ms: None,
                    receive_ms: at,
                })
                .collect();
            ingest.ingest(source, &frames, at)
        })
        .await;
        match res {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::warn!("{}: frames not stored: {e}", path.display()),
            Err(e) => tracing::warn!("{}: store task failed: {e}", path.display()),
        }
    }
}
