//! `teleinfo decode [FILE|-]`: decode a TIC capture and print its frames.

use crate::frames::{DecodedFrame, Format, FrameCollector, FrameWriter};
use anyhow::{Context, Result};
use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

/// Bytes kept from the start of the input to diagnose a capture without STX.
const PROBE_LEN: usize = 64 * 1024;

#[derive(clap::Args)]
pub struct Args {
    /// Capture to decode (raw TIC bytes); `-` or nothing reads standard input.
    pub file: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
    /// Also accept historic groups checksummed with the final separator
    /// ("mode 2"), as some non-Linky meters made after 2013 send. Off by
    /// default: it doubles the odds that a corrupted group passes.
    #[arg(long)]
    pub historic_mode2: bool,
}

pub fn run(args: Args) -> Result<ExitCode> {
    let (mut input, name): (Box<dyn Read>, String) = match &args.file {
        None => (Box::new(io::stdin().lock()), "standard input".into()),
        Some(p) if p.as_os_str() == "-" => (Box::new(io::stdin().lock()), "standard input".into()),
        Some(p) => (
            Box::new(File::open(p).with_context(|| format!("cannot open {}", p.display()))?),
            p.display().to_string(),
        ),
    };
    let options = tic::Options {
        historic_mode2: args.historic_mode2,
    };
    let stdout = io::stdout().lock();
    let mut writer = FrameWriter::new(BufWriter::with_capacity(64 * 1024, stdout), args.format);
    let mut collector = FrameCollector::new(options);
    let mut probe = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    let mut write_error: Option<io::Error> = None;
    // Written as a macro so each use borrows `writer` only for one call.
    macro_rules! on_frame {
        () => {
            &mut |frame: DecodedFrame, rejections: &[tic::GroupError]| {
                if write_error.is_none() {
                    if let Err(e) = writer.write_frame(&frame, rejections) {
                        write_error = Some(e);
                    }
                }
            }
        };
    }
    loop {
        let n = match input.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e).with_context(|| format!("cannot read {name}")),
        };
        if probe.len() < PROBE_LEN {
            let take = n.min(PROBE_LEN - probe.len());
            probe.extend_from_slice(&chunk[..take]);
        }
        collector.push(&chunk[..n], on_frame!());
        if write_error.is_some() {
            break;
        }
    }
    collector.finish(on_frame!());
    if let Some(e) = write_error {
        return finish_output_error(e);
    }
    if writer.frames() == 0 {
        report_no_frame(&name, &probe);
    } else if args.format == Format::Stats {
        let stats = std::mem::take(&mut writer.stats);
        if let Err(e) = stats.write(&mut writer.into_inner()) {
            return finish_output_error(e);
        }
        return Ok(ExitCode::SUCCESS);
    }
    if let Err(e) = writer.flush() {
        return finish_output_error(e);
    }
    Ok(ExitCode::SUCCESS)
}

/// A closed pipe (`teleinfo decode | head`) is the reader's choice, not an error.
fn finish_output_error(e: io::Error) -> Result<ExitCode> {
    if e.kind() == io::ErrorKind::BrokenPipe {
        Ok(ExitCode::SUCCESS)
    } else {
        Err(e).context("cannot write the output")
    }
}

/// No STX anywhere: say so, and say whether the bytes look like unframed groups.
fn report_no_frame(name: &str, probe: &[u8]) {
    let mut framed = Vec::with_capacity(probe.len() + 2);
    framed.push(tic::STX);
    framed.extend(probe.iter().map(|b| b & 0x7F).filter(|&b| b != tic::STX));
    framed.push(tic::ETX);
    let mut groups = 0u64;
    let mut collector = FrameCollector::new(tic::Options::default());
    let mut count = |f: DecodedFrame, _: &[tic::GroupError]| groups += f.groups.len() as u64;
    collector.push(&framed, &mut count);
    collector.finish(&mut count);
    let mut err = io::stderr().lock();
    let _ = if probe.is_empty() {
        writeln!(
            err,
            "teleinfo: no frame found in {name}: the input is empty"
        )
    } else if groups > 0 {
        writeln!(
            err,
            "teleinfo: no frame found in {name} (no STX byte), but it holds {groups} valid TIC groups \
             without frame markers: the capture path dropped STX/ETX. Decode it framed with \
             `(printf '\\002'; cat FILE; printf '\\003') | teleinfo decode`"
        )
    } else {
        writeln!(
            err,
            "teleinfo: no frame found in {name}: no STX byte and no TIC group. Is this a TIC capture? \
             (wrong baud rate or wiring gives bytes like these)"
        )
    };
}
