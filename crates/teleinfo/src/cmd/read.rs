//! `teleinfo read DEVICE`: read a TIC dongle live and print its frames as
//! `teleinfo decode` does; optionally keep a raw capture with receive times.
//!
//! The port handling (7E1, mode detection, reopening after unplugging) is in
//! [`crate::serial`]; this module prints, captures and stops on Ctrl-C.
//! Notices (mode chosen, port lost, reconnected) go to standard error, one
//! line each, so standard output carries only frames.
//!
//! # Raw capture: `--raw FILE`
//!
//! `FILE` receives the bytes exactly as read from the port, appended, so
//! `teleinfo decode FILE` decodes it like the live output. Historic-mode
//! frames carry no time, so the receive times go to a sidecar, `FILE.times`,
//! a text file appended in step:
//!
//! ```text
//! # 1796311200000 reading /dev/ttyUSB0 at 1200 Bd (detecting the mode)
//! # 1796311203512 mode: historic (1200 Bd): 3 groups passed their checksums
//! 1796311201950 0
//! 1796311202013 64
//! ```
//!
//! * `UNIX_MS OFFSET` per read that returned bytes: `UNIX_MS` is the wall
//!   clock (milliseconds since 1970-01-01 UTC) when the read returned, so just
//!   after the chunk's last byte arrived (give or take the driver's latency,
//!   a few ms to tens of ms for USB adapters); `OFFSET` is the position in
//!   `FILE` of the chunk's first byte. A chunk runs to the next line's
//!   `OFFSET` (the last one to the end of `FILE`); offsets strictly increase.
//!   So a frame ending at byte `e` (its ETX) was complete at the `UNIX_MS` of
//!   the last line whose `OFFSET <= e`.
//! * Lines starting with `#` are notes for people (connections, mode,
//!   disconnections), the time first; readers skip them.
//! * When `FILE` already exists, the first new line's `OFFSET` is its old
//!   length: earlier bytes keep the times written then.
//! * With `--mode auto`, only bytes received at the chosen speed are written
//!   (those of the successful detection window included, with their own
//!   times): bytes heard at the wrong speed are garbage.
//! * The one byte not received from the meter: when the port is lost (or
//!   `auto` detects again) in the middle of a frame, an EOT (0x04) is written,
//!   with a note, so the frame reads as interrupted — what the meter itself
//!   sends when it stops mid-frame (tic-protocol.md §2.2) — instead of being
//!   glued to the bytes after the reconnection. The live output does the same.
//! * Data is flushed before the times that point into it, at least every
//!   second and on exit (Ctrl-C or SIGTERM), so an offset never points past
//!   the end of `FILE`.

use crate::frames::{DecodedFrame, Format, FrameCollector, FrameWriter};
use crate::serial::{Chunk, Link, LinkEvent, ModeChoice};
use anyhow::{Context, Result};
use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::signal::unix::{signal, SignalKind};

/// The `--raw` scheme, for `--help` (the module documentation says more).
const RAW_HELP: &str = "\
Raw capture (--raw FILE):
  FILE gets the bytes exactly as read, appended, so `teleinfo decode FILE`
  works on it. FILE.times gets one line per read that returned bytes:
      UNIX_MS OFFSET
  UNIX_MS = wall-clock time (ms since 1970 UTC) when the read returned, just
  after the chunk's last byte arrived; OFFSET = position in FILE of the
  chunk's first byte (offsets strictly increase; a chunk runs to the next
  line's OFFSET). A frame whose ETX is at byte e was complete at the UNIX_MS
  of the last line with OFFSET <= e: that is how `teleinfo import` re-times
  historic frames. Lines starting with '#' are notes (time first: connections,
  mode, disconnections). If the port is lost mid-frame an EOT byte (0x04) is
  written so the frame reads as interrupted. Both files are flushed every
  second and on exit (Ctrl-C).

Mode detection (--mode auto, the default):
  each speed is tried for a few seconds (1200 Bd: 5 s, 9600 Bd: 3 s), in turn
  until 3 groups of one mode pass their checksums; the choice and what each
  failed try showed (silence, garbage, failing checksums) go to stderr.
  Unplugging is survived: the device path is reopened every second.";

/// Output formats of `read` (`decode`'s, without the end-of-capture stats).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReadFormat {
    /// Readable: one header line per frame, one line per group.
    Text,
    /// One JSON object per frame, as `teleinfo decode --format jsonl`.
    Jsonl,
}

#[derive(clap::Args)]
#[command(after_help = RAW_HELP)]
pub struct Args {
    /// Serial device of the TIC dongle or UART, e.g. /dev/ttyUSB0 or a
    /// /dev/serial/by-id/... link (which survives replugging).
    pub device: PathBuf,
    /// TIC mode: `auto` detects it from the speed at which groups pass
    /// their checksums; `historic` is 1200 Bd, `standard` 9600 Bd (7E1).
    #[arg(long, value_enum, default_value = "auto")]
    pub mode: ModeChoice,
    /// Append the raw bytes to FILE and their receive times to FILE.times
    /// (format below).
    #[arg(long, value_name = "FILE")]
    pub raw: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    pub format: ReadFormat,
    /// Also accept historic groups checksummed with the final separator
    /// ("mode 2"), as some non-Linky meters made after 2013 send.
    #[arg(long)]
    pub historic_mode2: bool,
}

pub fn run(args: Args) -> Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the I/O runtime")?;
    runtime.block_on(read(args))
}

fn unix_ms(t: SystemTime) -> u128 {
    // A clock before 1970 is a broken clock; 0 makes that visible.
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis())
}

/// `FILE` and `FILE.times` (see the module documentation).
struct RawCapture {
    path: PathBuf,
    data: BufWriter<File>,
    times: File,
    /// Times lines not yet written: they go out only after the data they
    /// point into has been flushed.
    pending: String,
    offset: u64,
    last_flush: Instant,
}

impl RawCapture {
    fn open(path: &Path) -> Result<RawCapture> {
        let append = |p: &Path| {
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .with_context(|| format!("cannot open the raw capture {}", p.display()))
        };
        let data = append(path)?;
        let offset = data
            .metadata()
            .with_context(|| format!("cannot read the size of {}", path.display()))?
            .len();
        let mut times_path = OsString::from(path.as_os_str());
        times_path.push(".times");
        let times = append(Path::new(&times_path))?;
        Ok(RawCapture {
            path: path.to_owned(),
            data: BufWriter::with_capacity(64 * 1024, data),
            times,
            pending: String::new(),
            offset,
            last_flush: Instant::now(),
        })
    }

    fn note(&mut self, text: &str) {
        self.pending += &format!("# {} {text}\n", unix_ms(SystemTime::now()));
    }

    fn chunk(&mut self, chunk: &Chunk) -> io::Result<()> {
        if chunk.bytes.is_empty() {
            return Ok(());
        }
        self.data.write_all(&chunk.bytes)?;
        self.pending += &format!("{} {}\n", unix_ms(chunk.at), self.offset);
        self.offset += chunk.bytes.len() as u64;
        if self.last_flush.elapsed() >= Duration::from_secs(1) || self.pending.len() > 64 * 1024 {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.data.flush()?;
        self.times.write_all(self.pending.as_bytes())?;
        self.pending.clear();
        self.last_flush = Instant::now();
        Ok(())
    }
}

/// Frames to standard output, flushed per frame (it is a live view).
struct Output {
    writer: FrameWriter<BufWriter<io::Stdout>>,
    collector: FrameCollector,
    /// Standard output is closed (`teleinfo read ... | head`): stop quietly.
    closed: bool,
}

impl Output {
    fn push(&mut self, bytes: &[u8]) -> Result<()> {
        let mut error = None;
        let writer = &mut self.writer;
        self.collector.push(
            bytes,
            &mut |frame: DecodedFrame, rejections: &[tic::GroupError]| {
                if error.is_none() {
                    error = writer.write_frame(&frame, rejections).err();
                }
            },
        );
        self.check(error)
    }

    fn finish(&mut self) -> Result<()> {
        let mut error = None;
        let writer = &mut self.writer;
        self.collector
            .finish(&mut |frame: DecodedFrame, rejections: &[tic::GroupError]| {
                if error.is_none() {
                    error = writer.write_frame(&frame, rejections).err();
                }
            });
        self.check(error)
    }

    fn check(&mut self, error: Option<io::Error>) -> Result<()> {
        match error.map_or_else(|| self.writer.flush(), Err) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {
                self.closed = true;
                Ok(())
            }
            Err(e) => Err(e).context("cannot write the output"),
        }
    }
}

/// Applies one link event: notices to stderr (and the capture's notes),
/// bytes to the capture and the output, breaks as EOT when mid-frame.
fn handle(event: LinkEvent, raw: &mut Option<RawCapture>, out: &mut Output) -> Result<()> {
    let raw_error = |path: &Path| format!("cannot write the raw capture {}", path.display());
    let chunk = match event {
        LinkEvent::Notice(msg) => {
            eprintln!("teleinfo: {msg}");
            if let Some(raw) = raw.as_mut() {
                raw.note(&msg);
            }
            return Ok(());
        }
        LinkEvent::Data(chunk) => chunk,
        LinkEvent::Break if out.collector.in_frame() => {
            if let Some(raw) = raw.as_mut() {
                raw.note("EOT written: the stream broke in the middle of a frame");
            }
            Chunk {
                at: SystemTime::now(),
                bytes: vec![tic::EOT],
            }
        }
        LinkEvent::Break => return Ok(()),
    };
    if let Some(raw) = raw.as_mut() {
        raw.chunk(&chunk).with_context(|| raw_error(&raw.path))?;
    }
    out.push(&chunk.bytes)
}

async fn read(args: Args) -> Result<ExitCode> {
    // Installed first so that Ctrl-C during a slow open still exits cleanly.
    let mut interrupt = signal(SignalKind::interrupt()).context("cannot handle SIGINT")?;
    let mut terminate = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
    let mut raw = args.raw.as_deref().map(RawCapture::open).transpose()?;
    let format = match args.format {
        ReadFormat::Text => Format::Text,
        ReadFormat::Jsonl => Format::Jsonl,
    };
    let mut out = Output {
        writer: FrameWriter::new(BufWriter::new(io::stdout()), format),
        collector: FrameCollector::new(tic::Options {
            historic_mode2: args.historic_mode2,
        }),
        closed: false,
    };
    let mut link = Link::new(args.device.clone(), args.mode);
    let mut outcome: Result<()> = loop {
        let event = tokio::select! {
            event = link.next() => event,
            _ = interrupt.recv() => break Ok(()),
            _ = terminate.recv() => break Ok(()),
        };
        let step = match event {
            Ok(event) => handle(event, &mut raw, &mut out),
            Err(open_error) => break Err(open_error.into()),
        };
        if step.is_err() || out.closed {
            break step;
        }
    };
    // Bytes the link had already received (e.g. a detection window being
    // handed out when Ctrl-C came) still go to the capture and the output.
    for event in link.take_pending() {
        if outcome.is_err() || out.closed {
            break;
        }
        outcome = handle(event, &mut raw, &mut out);
    }
    // The frame in progress is printed as cut by the end of input, as
    // `decode` prints it from the capture.
    let finished = if out.closed { Ok(()) } else { out.finish() };
    let flushed = match raw.as_mut() {
        Some(raw) => {
            raw.note("stopped");
            raw.flush()
                .with_context(|| format!("cannot write the raw capture {}", raw.path.display()))
        }
        None => Ok(()),
    };
    outcome.and(finished).and(flushed)?;
    eprintln!(
        "teleinfo: stopped after {} frames ({})",
        out.writer.frames(),
        link.mode().map_or("mode not settled", tic::Mode::as_str)
    );
    Ok(ExitCode::SUCCESS)
}
