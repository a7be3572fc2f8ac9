//! `teleinfo export --meter M --from T --to T [--format csv|json]`: every series of a meter
//! from the store, oldest first. Reads the store directly: stop the server first (the store's
//! lock says so), or use the HTTP API (`/api/v1/query`) on a running server.

use anyhow::{bail, Context, Result};
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `export`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Meter address (the `meter` tag).
    #[arg(long)]
    pub meter: String,
    /// Start: Unix s or ms, RFC 3339, `7d-ago`…
    #[arg(long)]
    pub from: String,
    /// End (exclusive); default now.
    #[arg(long, default_value = "now")]
    pub to: String,
    /// csv (ts_ms,time_utc,metric,value) or json ({"meter","series":{metric:[[ts_ms,value]…]}}).
    #[arg(long, default_value = "csv")]
    pub format: String,
    /// Only these metrics (repeatable); default every series of the meter.
    #[arg(long)]
    pub metric: Vec<String>,
    /// TOML configuration file (env TELEINFO_CONFIG), for its data_dir.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Data directory (env TELEINFO_DATA).
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
}

/// Runs the export.
pub fn run(args: Args) -> Result<ExitCode> {
    let cfg = super::serve::load_config(args.config.as_ref(), args.data.as_ref())?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let from = server::tsdb::parse_time(&args.from, now).map_err(anyhow::Error::msg)?;
    let to = server::tsdb::parse_time(&args.to, now).map_err(anyhow::Error::msg)?;
    if from >= to {
        bail!("--from must be before --to");
    }
    if !matches!(args.format.as_str(), "csv" | "json") {
        bail!("--format must be csv or json");
    }
    let store = server::open_store(&cfg.data_dir)
        .context("is `teleinfo serve` running on this data directory? stop it first")?;
    let series: Vec<_> = store
        .list_series()
        .into_iter()
        .filter(|(_, k)| k.tag("meter") == Some(args.meter.as_str()))
        .filter(|(_, k)| args.metric.is_empty() || args.metric.iter().any(|m| m == k.metric()))
        .collect();
    if series.is_empty() {
        bail!(
            "no series for meter {:?} in {}",
            args.meter,
            cfg.data_dir.display()
        );
    }
    let mut out = BufWriter::new(std::io::stdout().lock());
    if args.format == "csv" {
        writeln!(out, "ts_ms,time_utc,metric,value")?;
        // Merge all series by time: read each, then sort (bounded by the store's query limit).
        let mut rows: Vec<(i64, usize, f64)> = Vec::new();
        for (i, (id, _)) in series.iter().enumerate() {
            let p = store.read_range(*id, from, to)?;
            rows.extend(p.ts_ms.into_iter().zip(p.values).map(|(t, v)| (t, i, v)));
        }
        rows.sort_by_key(|r| (r.0, r.1));
        for (t, i, v) in rows {
            let iso = jiff::Timestamp::from_millisecond(t)
                .map(|x| x.to_string())
                .unwrap_or_default();
            writeln!(out, "{t},{iso},{},{v}", series[i].1.metric())?;
        }
    } else {
        write!(
            out,
            "{{\"meter\":{},\"from\":{from},\"to\":{to},\"series\":{{",
            serde_json::to_string(&args.meter)?
        )?;
        for (i, (id, k)) in series.iter().enumerate() {
            let p = store.read_range(*id, from, to)?;
            if i > 0 {
                write!(out, ",")?;
            }
            write!(out, "{}:[", serde_json::to_string(k.metric())?)?;
            for (j, (t, v)) in p.ts_ms.iter().zip(&p.values).enumerate() {
                if j > 0 {
                    write!(out, ",")?;
                }
                write!(out, "[{t},{v}]")?;
            }
            write!(out, "]")?;
        }
        writeln!(out, "}}}}")?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}
