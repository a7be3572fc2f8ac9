//! `teleinfo forward DEVICE --server URL --token T`: the ESP32 firmware's
//! device core on Linux. Serial in (the `read` command's [`Link`]: 7E1,
//! mode detection, surviving unplugging), raw frames checked and cut by the
//! firmware's `uplink::LineReceiver`, queued durably on disk
//! ([`DiskQueue`]), and posted by the firmware's `uplink::Uplink` (same
//! sequence numbers, batching, acks, backoff with jitter, counted
//! oldest-first eviction) over the same wire format and HTTP framing.
//!
//! One task owns the `Uplink` and its queue; the serial link runs in its
//! own task and the post in another, so frames keep being received and
//! committed while a post waits for a slow or absent server.

use crate::forward::http::{Endpoint, Posted};
use crate::forward::queue::DiskQueue;
use crate::serial::{Link, LinkEvent, ModeChoice, OpenError};
use anyhow::{bail, Context, Result};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use uplink::{
    Clock, Counter, DetectorConfig, FrameStore, Identity, LineMode, LineReceiver, PlatformStatus,
    PrepareError, Prepared, SendOutcome, Uplink, UplinkConfig,
};

const AFTER_HELP: &str = "\
The queue (--queue DIR): every frame is written and fsync'd there before it
counts as queued, and stays until the server acknowledged it, so a restart,
a crash or a power cut loses nothing that was queued; frames of an earlier
run are sent first, under their own boot id. When the queue reaches
--queue-max the oldest frames are dropped, counted, and reported to the
server (evicted_frames). One forwarder per queue directory.

Errors: a missing port or a bad URL stops the command at once; a server
that is down or refuses the token (HTTP 401) is reported on stderr and
retried with exponential backoff (1 s doubling to 60 s, with jitter) while
frames keep being queued. Ctrl-C or SIGTERM: the frame being received is
finished, the queue synced, then exit. See docs/forward.md.";

#[derive(clap::Args)]
#[command(after_help = AFTER_HELP)]
pub struct Args {
    /// Serial device of the TIC dongle or UART, e.g. /dev/ttyUSB0, /dev/ttyAMA0 or a
    /// /dev/serial/by-id/... link (which survives replugging).
    pub device: PathBuf,
    /// The teleinfo server: http://HOST[:PORT] (the uplink path /api/v1/uplink is added) or
    /// the full uplink URL.
    #[arg(long, value_name = "URL")]
    pub server: String,
    /// The device token printed by `teleinfo device add NAME` on the server.
    #[arg(long, value_name = "TOKEN", conflicts_with = "token_file")]
    pub token: Option<String>,
    /// Read the token from FILE instead (keeps it out of `ps`).
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// TIC mode: `auto` detects it; `historic` is 1200 Bd, `standard` 9600 Bd (7E1).
    #[arg(long, value_enum, default_value = "auto")]
    pub mode: ModeChoice,
    /// Queue directory. Default: $STATE_DIRECTORY (systemd's StateDirectory=), else
    /// $XDG_STATE_HOME/teleinfo/forward, else ~/.local/state/teleinfo/forward.
    #[arg(long, value_name = "DIR")]
    pub queue: Option<PathBuf>,
    /// Most bytes of queued frames kept on disk (k, M, G suffixes); about 600 bytes per
    /// standard frame, so the default keeps several days of outage.
    #[arg(long, value_name = "SIZE", default_value = "256M")]
    pub queue_max: String,
    /// Device id, the NAME given to `teleinfo device add` (default: this host's name).
    #[arg(long, value_name = "ID")]
    pub device_id: Option<String>,
    /// A frame is posted at the latest this many seconds after it arrived.
    #[arg(long, value_name = "SECS", default_value_t = 5.0)]
    pub max_delay: f64,
}

/// Parses `256M`, `64k`, `1G` or plain bytes.
fn parse_size(text: &str) -> Result<usize> {
    let t = text.trim();
    let (num, mult) = match t.char_indices().last() {
        Some((i, 'k' | 'K')) => (&t[..i], 1usize << 10),
        Some((i, 'm' | 'M')) => (&t[..i], 1 << 20),
        Some((i, 'g' | 'G')) => (&t[..i], 1 << 30),
        _ => (t, 1),
    };
    let n: usize = num
        .parse()
        .ok()
        .filter(|&n| n > 0)
        .with_context(|| format!("--queue-max {text}: expected a size like 256M, 64k or 1G"))?;
    let bytes = n
        .checked_mul(mult)
        .with_context(|| format!("--queue-max {text}: too large"))?;
    if bytes < 16 * 1024 {
        bail!("--queue-max {text}: at least 16k (a few frames)");
    }
    Ok(bytes)
}

fn default_queue_dir() -> Result<PathBuf> {
    let env = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    if let Some(d) = env("STATE_DIRECTORY") {
        // systemd may list several, colon-separated; the first is ours.
        let first = d
            .to_string_lossy()
            .split(':')
            .next()
            .unwrap_or("")
            .to_string();
        return Ok(PathBuf::from(first));
    }
    if let Some(d) = env("XDG_STATE_HOME") {
        return Ok(d.join("teleinfo/forward"));
    }
    match env("HOME") {
        Some(h) => Ok(h.join(".local/state/teleinfo/forward")),
        None => bail!(
            "no --queue DIR given and neither STATE_DIRECTORY, XDG_STATE_HOME nor HOME is set"
        ),
    }
}

/// This host's name, made a valid device id.
fn default_device_id() -> String {
    let raw = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .unwrap_or_default();
    let id: String = raw
        .trim()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '-'
            }
        })
        .take(32)
        .collect();
    if id.is_empty() {
        "forward".into()
    } else {
        id
    }
}

/// A boot id that differs on every start: std's `RandomState` is seeded
/// from the OS's random source, mixed with the time and pid for good
/// measure.
fn random_boot_id() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(unix_ms(SystemTime::now()) as u128);
    h.write_u32(std::process::id());
    h.finish()
}

fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// A Raspberry Pi has no battery-backed clock: until NTP set it, it reads
/// an old date. Such a time is not sent (the server then uses its receive
/// time and says so) rather than sent wrong.
fn synced_unix_ms(t: SystemTime) -> Option<u64> {
    const JAN_2020_MS: u64 = 1_577_836_800_000;
    Some(unix_ms(t)).filter(|&ms| ms >= JAN_2020_MS)
}

/// Monotonic milliseconds since start, and the system clock (NTP on a
/// Linux box) as the device's wall clock.
struct HostClock {
    start: Instant,
}

impl Clock for HostClock {
    fn now_ms(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }
    fn unix_ms(&self) -> Option<u64> {
        synced_unix_ms(SystemTime::now())
    }
}

/// Link events (reads of up to 4 KiB) handled per group commit at most.
const MAX_EVENTS_PER_COMMIT: usize = 16;

enum FromLink {
    Event(LinkEvent, Option<tic::Mode>),
    Failed(OpenError),
}

pub fn run(args: Args) -> Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the I/O runtime")?;
    runtime.block_on(forward(args))
}

/// The forwarder's state, owned by the main task.
struct Forwarder {
    uplink: Uplink<DiskQueue>,
    line: LineReceiver,
    clock: HostClock,
    /// Counters kept here: store errors, mode changes.
    platform: PlatformStatus,
    /// A frame is being received (an STX came after the last ETX/EOT).
    mid_frame: bool,
    delivered: u64,
    evicting: bool,
    failing_since: Option<Instant>,
    last_failure: String,
}

impl Forwarder {
    async fn on_event(&mut self, event: LinkEvent, mode: Option<tic::Mode>) {
        let new_mode = match mode {
            Some(tic::Mode::Historic) => LineMode::Historic,
            Some(tic::Mode::Standard) => LineMode::Standard,
            None => LineMode::Unknown,
        };
        if new_mode != self.platform.line_mode {
            if self.platform.line_mode != LineMode::Unknown {
                self.platform.counters.bump(Counter::ModeChanges);
            }
            self.platform.line_mode = new_mode;
        }
        let now = self.clock.now_ms();
        match event {
            LinkEvent::Notice(msg) => eprintln!("teleinfo forward: {msg}"),
            LinkEvent::Break => {
                // The frame in progress will never be completed: end it as
                // interrupted rather than glue it to later bytes.
                self.line.feed(&[tic::EOT], now, &mut |_| {});
                self.mid_frame = false;
            }
            LinkEvent::Data(chunk) => {
                for &b in &chunk.bytes {
                    match b {
                        tic::STX => self.mid_frame = true,
                        tic::ETX | tic::EOT => self.mid_frame = false,
                        _ => {}
                    }
                }
                let mut frames = Vec::new();
                self.line
                    .feed(&chunk.bytes, now, &mut |f| frames.push(f.bytes.to_vec()));
                // All frames of a chunk completed no later than its read.
                let at = synced_unix_ms(chunk.at);
                let evicted = self.uplink.counters().get(Counter::EvictedFrames);
                for f in frames {
                    // Failures are counted by the uplink itself (oversize,
                    // store errors) and reported in its telemetry.
                    let _ = self.uplink.enqueue(&f, at, now).await;
                }
                if self.uplink.counters().get(Counter::EvictedFrames) != evicted && !self.evicting {
                    self.evicting = true;
                    eprintln!(
                        "teleinfo forward: the queue is full ({} bytes): dropping the oldest frames \
                         (counted in the evicted_frames telemetry)",
                        self.uplink.store().capacity_bytes()
                    );
                }
            }
        }
    }

    /// Group commit: every frame staged since the last call is written and
    /// fsync'd once; then the head moves past freed frames.
    fn commit(&mut self) {
        let staged = self.uplink.store().staged_frames();
        if let Err(e) = self.uplink.store_mut().commit() {
            self.platform
                .counters
                .add(Counter::StoreErrors, staged.max(1) as u32);
            eprintln!("teleinfo forward: cannot write the queue: {e}; {staged} frames lost");
        }
        self.sync_head();
    }

    fn sync_head(&mut self) {
        if let Err(e) = self.uplink.store_mut().sync_head() {
            self.platform.counters.bump(Counter::StoreErrors);
            eprintln!("teleinfo forward: cannot update the queue head: {e}");
        }
    }

    fn queued(&self) -> String {
        let s = self.uplink.store();
        format!("{} frames queued ({} bytes)", s.frames(), s.used_bytes())
    }

    async fn completed(&mut self, prepared: &Prepared, posted: Posted, endpoint: &Endpoint) {
        let now = self.clock.now_ms();
        let outcome = self.uplink.complete(prepared, posted.result, now).await;
        self.sync_head();
        match outcome {
            SendOutcome::Delivered { freed } => {
                self.delivered += freed as u64;
                if self.uplink.store().used_bytes() * 2 < self.uplink.store().capacity_bytes() {
                    self.evicting = false;
                }
                if let Some(since) = self.failing_since.take() {
                    eprintln!(
                        "teleinfo forward: {} answers again after {} s; {}",
                        endpoint.describe(),
                        since.elapsed().as_secs(),
                        self.queued()
                    );
                    self.last_failure.clear();
                }
            }
            SendOutcome::Partial { freed, retry_in_ms } => {
                self.delivered += freed as u64;
                eprintln!(
                    "teleinfo forward: the server made only part of a batch durable; {}; \
                     retrying in {:.1} s",
                    self.queued(),
                    retry_in_ms as f64 / 1000.0
                );
            }
            SendOutcome::Failed { retry_in_ms, .. } => {
                self.failing_since.get_or_insert_with(Instant::now);
                // Every failure is said, but the same one only once a
                // minute at most: the backoff caps retries there anyway.
                if posted.detail != self.last_failure || retry_in_ms >= 30_000 {
                    eprintln!(
                        "teleinfo forward: post to {} failed: {}; {}; retrying in {:.1} s",
                        endpoint.describe(),
                        posted.detail,
                        self.queued(),
                        retry_in_ms as f64 / 1000.0
                    );
                    self.last_failure = posted.detail;
                }
            }
        }
    }
}

async fn forward(args: Args) -> Result<ExitCode> {
    // Installed first so that Ctrl-C during a slow open still exits cleanly.
    let mut interrupt = signal(SignalKind::interrupt()).context("cannot handle SIGINT")?;
    let mut terminate = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
    let token = match (&args.token, &args.token_file) {
        (Some(t), _) => t.trim().to_string(),
        (None, Some(f)) => std::fs::read_to_string(f)
            .with_context(|| format!("cannot read the token file {}", f.display()))?
            .trim()
            .to_string(),
        (None, None) => bail!(
            "no device token: give --token TOKEN or --token-file FILE (create one on the server \
             with `teleinfo device add NAME`)"
        ),
    };
    let endpoint = Arc::new(Endpoint::new(&args.server, &token).map_err(anyhow::Error::msg)?);
    let device_id = args.device_id.clone().unwrap_or_else(default_device_id);
    if !uplink::wire::valid_device_id(&device_id) {
        bail!(
            "--device-id {device_id:?}: 1 to 32 characters among letters, digits, '.', '_' and '-'"
        );
    }
    if !(args.max_delay.is_finite() && (0.0..=3600.0).contains(&args.max_delay)) {
        bail!(
            "--max-delay {}: expected seconds between 0 and 3600",
            args.max_delay
        );
    }
    let capacity = parse_size(&args.queue_max)?;
    // The port is tried once before anything else, so that a wrong path or
    // a permission problem is the only line the user sees. (The link opens
    // it again for good; only this first open may fail the command.)
    drop(crate::serial::open(&args.device, 1200)?);
    let dir = match &args.queue {
        Some(d) => d.clone(),
        None => default_queue_dir()?,
    };
    let (queue, recovery) =
        DiskQueue::open(&dir, &device_id, capacity).map_err(|e| anyhow::anyhow!("queue: {e}"))?;
    let boot_id = random_boot_id();
    eprintln!(
        "teleinfo forward: device {device_id}, boot {boot_id:016x}, posting to {}",
        endpoint.describe()
    );
    eprintln!(
        "teleinfo forward: queue {}: {} frames of {} earlier runs to send first{}{}",
        dir.display(),
        recovery.frames,
        recovery.boots,
        if recovery.cut_bytes > 0 {
            format!(
                "; {} bytes of a torn last write cut off (never committed)",
                recovery.cut_bytes
            )
        } else {
            String::new()
        },
        if recovery.head_reset {
            "; the head file was unreadable: everything on disk is sent again (the server skips duplicates)"
        } else {
            ""
        }
    );

    let clock = HostClock {
        start: Instant::now(),
    };
    let config = UplinkConfig {
        // A Linux box has the memory for the protocol's largest batches,
        // which drain a long outage's backlog faster than the ESP32's.
        max_batch_bytes: uplink::MAX_BATCH_BYTES,
        max_batch_frames: uplink::MAX_BATCH_FRAMES,
        max_batch_age_ms: (args.max_delay * 1000.0) as u64,
        ..UplinkConfig::default()
    };
    let mut fw = Forwarder {
        uplink: Uplink::new(queue, config, boot_id, clock.now_ms()),
        line: LineReceiver::new(DetectorConfig::default(), clock.now_ms()),
        platform: PlatformStatus::default(),
        clock,
        mid_frame: false,
        delivered: 0,
        evicting: false,
        failing_since: None,
        last_failure: String::new(),
    };
    let identity_fw = format!("teleinfo-forward {}", env!("CARGO_PKG_VERSION"));
    let identity = Identity {
        device_id: &device_id,
        firmware_version: &identity_fw,
    };

    // The serial link in its own task: its reads never wait for a post or
    // an fsync, and the kernel buffers bytes meanwhile anyway.
    let (tx, mut rx) = mpsc::channel::<FromLink>(256);
    let mut link = Link::new(args.device.clone(), args.mode);
    let link_task = tokio::spawn(async move {
        loop {
            match link.next().await {
                Ok(event) => {
                    if tx.send(FromLink::Event(event, link.mode())).await.is_err() {
                        break;
                    }
                }
                Err(e) => {
                    let _ = tx.send(FromLink::Failed(e)).await;
                    break;
                }
            }
        }
    });

    let start = tokio::time::Instant::now();
    let mut buf = vec![0u8; uplink::MAX_BATCH_BYTES];
    let mut inflight: Option<(Prepared, JoinHandle<Posted>)> = None;
    // After a failed prepare, wait before the next one (never a tight loop).
    let mut prepare_not_before = start;
    let fatal: Option<anyhow::Error> = loop {
        let send_at =
            (start + Duration::from_millis(fw.uplink.next_send_ms())).max(prepare_not_before);
        tokio::select! {
            _ = interrupt.recv() => break None,
            _ = terminate.recv() => break None,
            msg = rx.recv() => {
                if msg.is_none() {
                    // Only a panicked link task closes the channel unsaid.
                    break Some(anyhow::anyhow!("the serial link task stopped"));
                }
                let mut msg = msg;
                let mut failed = None;
                // Take what was already received, one fsync for all of it;
                // bounded, so that a flood (a fast pseudo-terminal, a long
                // backlog) still commits every few reads.
                let mut taken = 0;
                while let Some(m) = msg.take() {
                    match m {
                        FromLink::Event(event, mode) => fw.on_event(event, mode).await,
                        FromLink::Failed(e) => failed = Some(e),
                    }
                    taken += 1;
                    if taken < MAX_EVENTS_PER_COMMIT {
                        msg = rx.try_recv().ok();
                    }
                }
                fw.commit();
                if let Some(e) = failed {
                    break Some(e.into());
                }
            }
            joined = async { (&mut inflight.as_mut().expect("guarded").1).await }, if inflight.is_some() => {
                let Some((prepared, _)) = inflight.take() else { continue };
                let posted = joined.unwrap_or_else(|e| Posted {
                    result: Err(uplink::PostError::Connection),
                    detail: format!("the post task failed: {e}"),
                });
                fw.completed(&prepared, posted, &endpoint).await;
            }
            _ = tokio::time::sleep_until(send_at), if inflight.is_none() => {
                let now = fw.clock.now_ms();
                let platform = PlatformStatus {
                    counters: fw.platform.counters.merged(fw.line.counters()),
                    ..fw.platform
                };
                match fw.uplink.prepare(&mut buf, &identity, &platform, now).await {
                    Ok(prepared) => {
                        let body = buf[..prepared.len].to_vec();
                        let ep = Arc::clone(&endpoint);
                        inflight = Some((prepared, tokio::spawn(async move { ep.post(&body).await })));
                    }
                    Err(e) => {
                        eprintln!("teleinfo forward: cannot build a batch: {e:?}");
                        fw.platform.counters.bump(Counter::StoreErrors);
                        if matches!(e, PrepareError::Store(_)) {
                            // An unreadable queued frame would block the
                            // queue forever: drop it, counted.
                            eprintln!("teleinfo forward: dropping the unreadable oldest queued frame");
                            let _ = fw.uplink.store_mut().pop_oldest().await;
                            fw.sync_head();
                        }
                        prepare_not_before = tokio::time::Instant::now() + Duration::from_secs(1);
                    }
                }
            }
        }
    };
    if let Some(e) = fatal {
        link_task.abort();
        let _ = fw.uplink.store_mut().close();
        return Err(e);
    }

    // Clean shutdown: finish the frame being received (so a restart does
    // not cut it), let a post in flight land (so its ack frees its frames),
    // then make the queue durable.
    eprintln!("teleinfo forward: stopping");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    loop {
        // What was read before the signal is handled first in any case.
        while let Ok(msg) = rx.try_recv() {
            if let FromLink::Event(event, mode) = msg {
                fw.on_event(event, mode).await;
            }
        }
        if !fw.mid_frame {
            break;
        }
        tokio::select! {
            msg = rx.recv() => match msg {
                Some(FromLink::Event(event, mode)) => fw.on_event(event, mode).await,
                _ => break,
            },
            _ = tokio::time::sleep_until(deadline) => break,
        }
    }
    link_task.abort();
    fw.commit();
    if let Some((prepared, handle)) = inflight.take() {
        let wait = deadline
            .saturating_duration_since(tokio::time::Instant::now())
            .max(Duration::from_secs(2));
        if let Ok(Ok(posted)) = tokio::time::timeout(wait, handle).await {
            fw.completed(&prepared, posted, &endpoint).await;
        }
    }
    fw.uplink
        .store_mut()
        .close()
        .with_context(|| format!("cannot sync the queue {}", dir.display()))?;
    eprintln!(
        "teleinfo forward: stopped; {} frames delivered in this run, {} kept in {} for the next",
        fw.delivered,
        fw.uplink.store().frames(),
        dir.display()
    );
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("256M").unwrap(), 256 << 20);
        assert_eq!(parse_size("64k").unwrap(), 64 << 10);
        assert_eq!(parse_size("100000").unwrap(), 100_000);
        assert!(parse_size("1k").is_err());
        assert!(parse_size("lots").is_err());
    }

    #[test]
    fn boot_ids_differ() {
        assert_ne!(random_boot_id(), random_boot_id());
    }
}
