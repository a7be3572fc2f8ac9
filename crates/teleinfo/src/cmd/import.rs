//! `teleinfo import FILE...`: raw TIC captures into the store, decoded like live frames.
//!
//! Frame times: a capture written by `teleinfo read --raw FILE` has a `FILE.times` sidecar
//! (see cmd/read.rs), giving each frame the time its ETX arrived; standard-mode frames use
//! their meter DATE in any case (converted to UTC with the season letter); for a plain
//! historic capture give `--start` and `--interval` (historic frames carry no time).
//!
//! Each file is a source of its own (`import:NAME`, boot id from the file's content), with the
//! frame index as sequence number: importing the same file twice stores nothing twice.
//! Imports open the store directly, so the server must be stopped (the store's lock says so).

use anyhow::{bail, Context, Result};
use content_hash::content_id;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

/// Arguments of `import`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Raw captures (`teleinfo read --raw` output, or any raw TIC bytes).
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// TOML configuration file (env TELEINFO_CONFIG), for its data_dir.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Data directory (env TELEINFO_DATA).
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// Time of the first frame when the file has no `.times` sidecar: Unix s or ms, or RFC 3339.
    #[arg(long, value_name = "TIME")]
    pub start: Option<String>,
    /// Spacing of frames without a sidecar, e.g. `1s`, `1500ms` (historic frames come about
    /// every 1-2 s at 1200 Bd).
    #[arg(long, value_name = "DURATION")]
    pub interval: Option<String>,
    /// Frames per store write.
    #[arg(long, default_value_t = 2000)]
    pub batch: usize,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

/// A content id for the boot id: FNV-1a over the length and the first and last 1 MiB (no
/// need for a cryptographic hash: it only separates files).
mod content_hash {
    pub fn content_id(bytes: &[u8]) -> u64 {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        let mut eat = |b: u8| {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01B3);
        };
        for b in (bytes.len() as u64).to_le_bytes() {
            eat(b);
        }
        let n = bytes.len().min(1 << 20);
        bytes[..n].iter().for_each(|&b| eat(b));
        bytes[bytes.len() - n..].iter().for_each(|&b| eat(b));
        h & (i64::MAX as u64)
    }
}

/// Frames of a raw capture: `(start, end_inclusive)` of each STX..ETX.
fn split_frames(bytes: &[u8]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, &b) in bytes.iter().enumerate() {
        match b & 0x7F {
            0x02 => start = Some(i),
            0x03 => {
                if let Some(s) = start.take() {
                    out.push((s, i));
                }
            }
            // EOT: the meter (or `read` on a lost port) cut the frame.
            0x04 => start = None,
            _ => {}
        }
    }
    out
}

/// `UNIX_MS OFFSET` lines of a `.times` sidecar, sorted by offset.
fn read_times(path: &std::path::Path) -> Result<Option<Vec<(u64, i64)>>> {
    let mut p = path.as_os_str().to_owned();
    p.push(".times");
    let text = match std::fs::read_to_string(&p) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(e).with_context(|| format!("reading {}", PathBuf::from(&p).display()))
        }
    };
    let mut v = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut it = line.split_whitespace();
        let (Some(ms), Some(off)) = (it.next(), it.next()) else {
            bail!(
                "{}: line {}: expected `UNIX_MS OFFSET`",
                PathBuf::from(&p).display(),
                n + 1
            );
        };
        let ms: i64 = ms
            .parse()
            .with_context(|| format!("line {}: bad UNIX_MS", n + 1))?;
        let off: u64 = off
            .parse()
            .with_context(|| format!("line {}: bad OFFSET", n + 1))?;
        v.push((off, ms));
    }
    v.sort_by_key(|x| x.0);
    Ok(Some(v))
}

/// Runs the import.
pub fn run(args: Args) -> Result<ExitCode> {
    let cfg = super::serve::load_config(args.config.as_ref(), args.data.as_ref())?;
    let now = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64)
    };
    let start = args
        .start
        .as_deref()
        .map(|s| server::tsdb::parse_time(s, now()).map_err(anyhow::Error::msg))
        .transpose()?;
    let interval = args
        .interval
        .as_deref()
        .map(|s| server::tsdb::parse_duration_ms(s).map_err(anyhow::Error::msg))
        .transpose()?;
    if args.batch == 0 || args.batch > store::limits::MAX_BATCH_FRAMES {
        bail!("--batch must be 1..={}", store::limits::MAX_BATCH_FRAMES);
    }
    let store = Arc::new(
        server::open_store(&cfg.data_dir)
            .context("is `teleinfo serve` running on this data directory? stop it first")?,
    );
    let ingest =
        server::ingest::Ingest::new(store.clone(), Arc::new(server::live::Live::default()));
    let (mut total_frames, mut total_stored) = (0u64, 0u64);
    for file in &args.files {
        let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
        let times = read_times(file)?;
        let frames = split_frames(&bytes);
        let name: String = file
            .file_name()
            .map(|n| {
                n.to_string_lossy()
                    .chars()
                    .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
                    .take(24)
                    .collect()
            })
            .unwrap_or_default();
        let source = store::Source {
            device_id: format!("import-{name}"),
            boot_id: content_id(&bytes),
        };
        let bar = if args.quiet {
            indicatif::ProgressBar::hidden()
        } else {
            indicatif::ProgressBar::new(frames.len() as u64)
        };
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{msg} [{bar:40}] {pos}/{len} frames ({per_sec}, {eta})",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        bar.set_message(file.display().to_string());
        let mut missing_time = 0u64;
        for (ci, chunk) in frames.chunks(args.batch).enumerate() {
            let mut inf = Vec::with_capacity(chunk.len());
            for (j, &(s, e)) in chunk.iter().enumerate() {
                let idx = ci * args.batch + j;
                let raw = &bytes[s..=e];
                let receive = match &times {
                    Some(t) => {
                        let k = t.partition_point(|(off, _)| *off <= e as u64);
                        (k > 0).then(|| t[k - 1].1)
                    }
                    None => match (start, interval) {
                        (Some(st), Some(iv)) => Some(st + iv * idx as i64),
                        (Some(st), None) => Some(st),
                        _ => None,
                    },
                };
                let receive =
                    match receive.or_else(|| server::frame::decode(raw, false).meter_time_ms()) {
                        Some(r) => r,
                        None => {
                            missing_time += 1;
                            continue;
                        }
                    };
                inf.push(server::ingest::InFrame {
                    seq: idx as u64,
                    bytes: raw,
                    device_time_ms: None,
                    receive_ms: receive,
                });
            }
            if !inf.is_empty() {
                let r = ingest.ingest(source.clone(), &inf, now())?;
                total_stored += r.frames_written as u64;
            }
            bar.inc(chunk.len() as u64);
        }
        bar.finish();
        total_frames += frames.len() as u64;
        if missing_time > 0 {
            bail!(
                "{}: {missing_time} frames have no time (historic mode, no .times sidecar): give --start and --interval",
                file.display()
            );
        }
    }
    store.checkpoint()?;
    eprintln!(
        "imported {total_stored} new frames of {total_frames} found ({} already stored)",
        total_frames - total_stored
    );
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_frames_and_skips_cut_ones() {
        let b = b"xx\x02ab\x03\x02cut\x04\x02cd\x03\x02tail";
        assert_eq!(split_frames(b), vec![(2, 5), (11, 14)]);
    }
}
