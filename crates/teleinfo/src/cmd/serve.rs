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
        for s in serials {
            eprintln!("teleinfo serve: --serial {s}: serial input is not available in this build yet; use the uplink");
        }
        srv.run(server::shutdown_signal()).await?;
        Ok::<_, anyhow::Error>(())
    })?;
    Ok(ExitCode::SUCCESS)
}
