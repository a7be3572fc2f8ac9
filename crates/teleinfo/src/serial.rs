//! Serial ports carrying TIC: opening at 7E1, telling the mode, surviving
//! unplugging. Used by `read`; written to be reused by `serve` and `forward`.
//!
//! [`Link`] owns one device path and yields [`LinkEvent`]s: the bytes received
//! at the right speed, stream breaks, and one-line notices for the user.
//!
//! * **Opening** ([`open`]): 7 data bits, even parity, 1 stop bit at the
//!   mode's speed (tic-protocol.md §1.3). A device that refuses 7E1 (some
//!   adapters, some pseudo-terminals answer EINVAL) is opened 8N1 instead,
//!   with a warning: the decoder ignores bit 7, so the bytes decode the same,
//!   only parity goes unchecked.
//! * **Mode detection** (`auto`): at the wrong speed a UART delivers garbage,
//!   so each speed is given a listening window (5 s at 1200 Bd, where a frame
//!   takes up to 2.5 s, 3 s at 9600 Bd) and the mode is settled only when
//!   [`SETTLE_GROUPS`] groups of one mode passed every check. Rejected groups
//!   never count against a speed, so one bad group cannot flip the decision.
//!   Speeds are tried in turn until one works; each failed window is reported
//!   once with what it showed (silence, garbage, groups failing checksums).
//!   The bytes of the winning window are kept and handed out when the mode is
//!   settled, so no frame is lost to detection; bytes of failed windows are
//!   dropped (they were received at the wrong speed).
//! * **Health**: once settled, [`QUIET_AFTER`] without a valid group is
//!   reported once. In `auto`, if bytes kept coming (garbage: the meter was
//!   switched to the other mode), detection starts again; silence alone never
//!   restarts it (an unwired meter says nothing at either speed).
//! * **Unplugging**: a read error or end of file (a USB dongle unplugged, a
//!   pseudo-terminal closed) is reported once; the path is reopened every
//!   [`RETRY_EVERY`], at the settled mode's speed if there is one, so a
//!   `/dev/serial/by-id/...` link that udev re-creates on replug resumes.
//!   Only the first open may fail the command ([`OpenError`]).

use std::collections::VecDeque;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};
use tic::{Decoder, Event, GroupError, Mode};
use tokio::io::AsyncReadExt;
use tokio_serial::{
    DataBits, FlowControl, Parity, SerialPort, SerialPortBuilderExt, SerialStream, StopBits,
};

/// Valid groups of one mode needed to settle it. Three, not one: a single
/// group could pass by chance (the checksum has only 6 bits), three in a row
/// from garbage cannot in practice.
pub const SETTLE_GROUPS: u32 = 3;

/// How often a lost port is reopened.
pub const RETRY_EVERY: Duration = Duration::from_secs(1);

/// Time without a valid group after which the user is told (and `auto`
/// detects again if bytes kept coming). Well above the 10 s a receiver must
/// tolerate after an interrupted frame (tic-protocol.md §2.2).
pub const QUIET_AFTER: Duration = Duration::from_secs(30);

/// Bytes of a detection window kept for replay; a 5 s window at 9600 Bd is
/// under 5 KB, the bound only protects against a port delivering far faster.
const MAX_WINDOW_BYTES: usize = 256 * 1024;

/// The listening window of a speed during detection.
fn window(mode: Mode) -> Duration {
    match mode {
        // Up to 2.5 s per frame and the decoder needs an STX first: two frames.
        Mode::Historic => Duration::from_secs(5),
        // Up to 1.6 s per frame.
        Mode::Standard => Duration::from_secs(3),
    }
}

/// Which mode to read in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ModeChoice {
    /// Try both speeds until one delivers valid groups.
    Auto,
    /// 1200 Bd, the factory setting of every Linky.
    Historic,
    /// 9600 Bd.
    Standard,
}

impl ModeChoice {
    fn fixed(self) -> Option<Mode> {
        match self {
            ModeChoice::Auto => None,
            ModeChoice::Historic => Some(Mode::Historic),
            ModeChoice::Standard => Some(Mode::Standard),
        }
    }
}

/// Bytes as one read returned them, with the time the read returned.
#[derive(Debug, Clone)]
pub struct Chunk {
    pub at: SystemTime,
    pub bytes: Vec<u8>,
}

/// What a [`Link`] has to say.
#[derive(Debug)]
pub enum LinkEvent {
    /// Bytes received at the settled mode's speed, in order.
    Data(Chunk),
    /// The byte stream is discontinuous here (port lost, or detection starts
    /// again): a frame in progress will never be completed.
    Break,
    /// One line for the user (no trailing newline).
    Notice(String),
}

/// The first open failed: the path and the cause, in one line.
#[derive(Debug)]
pub struct OpenError {
    pub path: PathBuf,
    pub cause: String,
}

impl fmt::Display for OpenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cannot open {}: {}", self.path.display(), self.cause)
    }
}

impl std::error::Error for OpenError {}

/// An open port, and a warning if it could not be set to 7E1.
pub struct Opened {
    pub port: SerialStream,
    pub warning: Option<String>,
}

/// Opens `path` at `baud`, 7E1, falling back to 8N1 if 7E1 is refused.
pub fn open(path: &Path, baud: u32) -> Result<Opened, OpenError> {
    let fail = |cause: String| OpenError {
        path: path.to_owned(),
        cause,
    };
    // Checked first so that a missing dongle gets a plain answer rather than
    // the port library's wording.
    if let Err(e) = std::fs::metadata(path) {
        return Err(fail(if e.kind() == std::io::ErrorKind::NotFound {
            "no such device (is the dongle plugged in?)".into()
        } else {
            e.to_string()
        }));
    }
    let name = path.to_string_lossy();
    let builder = |bits, parity| {
        tokio_serial::new(name.as_ref(), baud)
            .data_bits(bits)
            .parity(parity)
            .stop_bits(StopBits::One)
            .flow_control(FlowControl::None)
    };
    match builder(DataBits::Seven, Parity::Even).open_native_async() {
        Ok(port) => Ok(Opened {
            port,
            warning: None,
        }),
        Err(e) if is_config_refused(&e) => {
            match builder(DataBits::Eight, Parity::None).open_native_async() {
                Ok(port) => Ok(Opened {
                    port,
                    warning: Some(format!(
                        "{} refused 7E1 at {baud} Bd ({}): reading it 8N1 instead; bit 7 \
                         (the parity bit) is ignored, so bytes decode the same but parity is \
                         not checked",
                        path.display(),
                        e.description
                    )),
                }),
                Err(_) => Err(fail(describe(&e))),
            }
        }
        Err(e) => Err(fail(describe(&e))),
    }
}

/// Whether the device opened but refused the line settings (EINVAL, or
/// settings read back different), as opposed to being absent or busy.
fn is_config_refused(e: &tokio_serial::Error) -> bool {
    use tokio_serial::ErrorKind as K;
    match e.kind {
        K::InvalidInput | K::Io(std::io::ErrorKind::InvalidInput) => true,
        K::Unknown => {
            let d = e.description.to_ascii_lowercase();
            d.contains("invalid argument") || d.contains("did not apply")
        }
        _ => false,
    }
}

/// The cause of an open failure in the user's terms.
fn describe(e: &tokio_serial::Error) -> String {
    use tokio_serial::ErrorKind as K;
    let d = e.description.to_ascii_lowercase();
    match e.kind {
        K::NoDevice if d.contains("lock") || d.contains("busy") => {
            "busy: another program has it open".into()
        }
        K::NoDevice => format!("no such device ({})", e.description),
        K::Io(std::io::ErrorKind::NotFound) => "no such device (is the dongle plugged in?)".into(),
        K::Io(std::io::ErrorKind::PermissionDenied) => {
            "permission denied (is the user in the dialout group?)".into()
        }
        // ENOTTY, worded differently by libc versions.
        _ if d.contains("inappropriate ioctl") || d.contains("typewriter") => {
            "not a serial port (it cannot be configured)".into()
        }
        _ => format!("cannot configure it as a serial port: {}", e.description),
    }
}

/// What a stretch of input showed; counted with its own decoder.
#[derive(Debug, Default, Clone)]
struct Observation {
    bytes: u64,
    frames: u32,
    /// Valid groups, by mode: [historic, standard].
    valid: [u32; 2],
    rejected: u32,
    checksum_failures: u32,
}

fn index(mode: Mode) -> usize {
    match mode {
        Mode::Historic => 0,
        Mode::Standard => 1,
    }
}

impl Observation {
    fn feed(&mut self, decoder: &mut Decoder, mut input: &[u8]) {
        self.bytes += input.len() as u64;
        while !input.is_empty() {
            let (used, event) = decoder.feed(input);
            input = &input[used..];
            match event {
                Some(Event::FrameStart) => self.frames += 1,
                Some(Event::Group(g)) => self.valid[index(g.mode)] += 1,
                Some(Event::Rejected(r)) => {
                    self.rejected += 1;
                    if matches!(r.error, GroupError::Checksum { .. }) {
                        self.checksum_failures += 1;
                    }
                }
                Some(Event::FrameEnd(_)) | None => {}
            }
        }
    }

    fn valid_total(&self) -> u32 {
        self.valid[0] + self.valid[1]
    }

    /// The mode to settle on: [`SETTLE_GROUPS`] valid groups of one mode,
    /// and more than of the other.
    fn settled(&self) -> Option<Mode> {
        [Mode::Historic, Mode::Standard].into_iter().find(|&m| {
            let (this, other) = (self.valid[index(m)], self.valid[1 - index(m)]);
            this >= SETTLE_GROUPS && this > other
        })
    }

    /// The kind of what was seen, to tell a change from more of the same.
    fn kind(&self) -> &'static str {
        match () {
            _ if self.bytes == 0 => "silence",
            _ if self.frames == 0 => "garbage",
            _ if self.valid_total() == 0 && self.rejected == 0 => "no group",
            _ if self.valid_total() == 0 => "all rejected",
            _ => "some valid",
        }
    }

    fn describe(&self) -> String {
        if self.bytes == 0 {
            return "silence (no byte received)".into();
        }
        if self.frames == 0 {
            return format!(
                "{} bytes of garbage, no frame start (wrong speed, wiring or noise)",
                self.bytes
            );
        }
        if self.valid_total() == 0 && self.rejected == 0 {
            return format!(
                "{} bytes, {} frame starts but no complete group",
                self.bytes, self.frames
            );
        }
        let mut s = format!(
            "{} bytes, {} valid groups, {} rejected",
            self.bytes,
            self.valid_total(),
            self.rejected
        );
        if self.checksum_failures > 0 {
            s += &format!(" ({} failing their checksum)", self.checksum_failures);
        }
        s
    }
}

/// Detection in progress: the speed being tried and what it gave so far.
struct Attempt {
    trying: Mode,
    ends: Instant,
    seen: Observation,
    decoder: Decoder,
    chunks: VecDeque<Chunk>,
    kept: usize,
}

impl Attempt {
    fn new(trying: Mode) -> Attempt {
        Attempt {
            trying,
            ends: Instant::now() + window(trying),
            seen: Observation::default(),
            decoder: Decoder::new(),
            chunks: VecDeque::new(),
            kept: 0,
        }
    }
}

/// Watching a settled link: time of the last valid group and what came since.
struct Health {
    last_valid: Instant,
    since: Observation,
    decoder: Decoder,
    reported: bool,
}

impl Health {
    fn new() -> Health {
        Health {
            last_valid: Instant::now(),
            since: Observation::default(),
            decoder: Decoder::new(),
            reported: false,
        }
    }
}

enum Phase {
    Detecting(Attempt),
    Settled(Mode, Health),
}

/// One serial device carrying TIC, opened, detected and reopened as needed.
pub struct Link {
    path: PathBuf,
    choice: ModeChoice,
    phase: Phase,
    port: Option<SerialStream>,
    ever_opened: bool,
    lost_at: Option<Instant>,
    /// Why the last reopen failed, to say it once, not every second.
    retry_cause: Option<String>,
    /// The kind of the last failed-window report per speed, to report a
    /// change only.
    last_report: [Option<&'static str>; 2],
    pending: VecDeque<LinkEvent>,
    buf: Vec<u8>,
}

impl Link {
    pub fn new(path: PathBuf, choice: ModeChoice) -> Link {
        let phase = match choice.fixed() {
            Some(mode) => Phase::Settled(mode, Health::new()),
            // Historic first: every Linky leaves the factory in it.
            None => Phase::Detecting(Attempt::new(Mode::Historic)),
        };
        Link {
            path,
            choice,
            phase,
            port: None,
            ever_opened: false,
            lost_at: None,
            retry_cause: None,
            last_report: [None, None],
            pending: VecDeque::new(),
            buf: vec![0; 4096],
        }
    }

    /// Events already decided, without waiting: call it after the last
    /// [`Link::next`] (e.g. on Ctrl-C) so that no received byte is dropped.
    pub fn take_pending(&mut self) -> Vec<LinkEvent> {
        self.pending.drain(..).collect()
    }

    /// The settled mode, if any.
    pub fn mode(&self) -> Option<Mode> {
        match &self.phase {
            Phase::Settled(m, _) => Some(*m),
            Phase::Detecting(_) => None,
        }
    }

    fn speed(&self) -> Mode {
        match &self.phase {
            Phase::Settled(m, _) => *m,
            Phase::Detecting(a) => a.trying,
        }
    }

    /// The next event. Fails only if the very first open fails; later
    /// failures are reported as notices and retried.
    pub async fn next(&mut self) -> Result<LinkEvent, OpenError> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                return Ok(event);
            }
            if self.port.is_none() {
                self.try_open().await?;
                continue;
            }
            let deadline = match &self.phase {
                Phase::Detecting(a) => a.ends,
                Phase::Settled(..) => Instant::now() + Duration::from_secs(1),
            };
            let (Some(port), buf) = (self.port.as_mut(), &mut self.buf) else {
                continue;
            };
            let read = tokio::select! {
                r = port.read(buf) => Some(r),
                _ = tokio::time::sleep_until(deadline.into()) => None,
            };
            match read {
                None => self.on_timer(),
                // A tty reads 0 bytes only once hung up (unplugged, pty closed).
                Some(Ok(0)) => self.lost("the device hung up".into()),
                Some(Ok(n)) => {
                    let chunk = Chunk {
                        at: SystemTime::now(),
                        bytes: self.buf[..n].to_vec(),
                    };
                    self.on_chunk(chunk);
                }
                Some(Err(e)) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Some(Err(e)) => self.lost(e.to_string()),
            }
        }
    }

    async fn try_open(&mut self) -> Result<(), OpenError> {
        let mode = self.speed();
        match open(&self.path, mode.baud()) {
            Ok(opened) => {
                if let Some(w) = opened.warning {
                    self.pending.push_back(LinkEvent::Notice(w));
                }
                self.port = Some(opened.port);
                let what = match (&self.phase, self.choice) {
                    (Phase::Settled(..), ModeChoice::Auto) => {
                        format!("{} mode, as detected", mode.as_str())
                    }
                    (Phase::Settled(..), _) => format!("{} mode", mode.as_str()),
                    (Phase::Detecting(_), _) => "detecting the mode".into(),
                };
                let msg = match self.lost_at.take() {
                    None => format!(
                        "reading {} at {} Bd ({what})",
                        self.path.display(),
                        mode.baud()
                    ),
                    Some(t) => format!(
                        "reconnected to {} after {} s, at {} Bd ({what})",
                        self.path.display(),
                        t.elapsed().as_secs(),
                        mode.baud()
                    ),
                };
                self.pending.push_back(LinkEvent::Notice(msg));
                self.ever_opened = true;
                self.retry_cause = None;
                // A fresh start for timers: the time spent unplugged says
                // nothing about the meter.
                match &mut self.phase {
                    Phase::Detecting(a) => *a = Attempt::new(a.trying),
                    Phase::Settled(_, h) => *h = Health::new(),
                }
                Ok(())
            }
            Err(e) if !self.ever_opened => Err(e),
            Err(e) => {
                if self.retry_cause.as_ref() != Some(&e.cause) {
                    self.pending.push_back(LinkEvent::Notice(format!(
                        "{e}; still trying every {} s",
                        RETRY_EVERY.as_secs()
                    )));
                    self.retry_cause = Some(e.cause);
                    // Said now; the sleep comes on the next call.
                    return Ok(());
                }
                tokio::time::sleep(RETRY_EVERY).await;
                Ok(())
            }
        }
    }

    fn lost(&mut self, cause: String) {
        self.port = None;
        self.lost_at = Some(Instant::now());
        self.pending.push_back(LinkEvent::Notice(format!(
            "lost {}: {cause}; reopening it every {} s",
            self.path.display(),
            RETRY_EVERY.as_secs()
        )));
        self.pending.push_back(LinkEvent::Break);
    }

    fn set_speed(&mut self, mode: Mode) {
        if let Some(port) = self.port.as_mut() {
            if let Err(e) = port.set_baud_rate(mode.baud()) {
                self.lost(format!("cannot set {} Bd: {}", mode.baud(), e.description));
            }
        }
    }

    fn on_chunk(&mut self, chunk: Chunk) {
        match &mut self.phase {
            Phase::Settled(mode, health) => {
                let mode = *mode;
                health.since.feed(&mut health.decoder, &chunk.bytes);
                if health.since.valid_total() > 0 {
                    health.last_valid = Instant::now();
                    health.since = Observation::default();
                    if std::mem::take(&mut health.reported) {
                        self.pending.push_back(LinkEvent::Notice(format!(
                            "valid {} groups again",
                            mode.as_str()
                        )));
                    }
                }
                self.pending.push_back(LinkEvent::Data(chunk));
                self.check_health();
            }
            Phase::Detecting(attempt) => {
                attempt.seen.feed(&mut attempt.decoder, &chunk.bytes);
                attempt.kept += chunk.bytes.len();
                attempt.chunks.push_back(chunk);
                while attempt.kept > MAX_WINDOW_BYTES {
                    if let Some(old) = attempt.chunks.pop_front() {
                        attempt.kept -= old.bytes.len();
                    }
                }
                let Some(mode) = attempt.seen.settled() else {
                    return;
                };
                let trying = attempt.trying;
                let valid = attempt.seen.valid[index(mode)];
                let chunks = std::mem::take(&mut attempt.chunks);
                let mut msg = format!(
                    "mode: {} ({} Bd): {valid} groups passed their checksums",
                    mode.as_str(),
                    mode.baud()
                );
                if trying != mode {
                    // Impossible on a real UART (the wrong speed gives
                    // garbage); a pseudo-terminal carries bytes whatever the speed.
                    msg += &format!(
                        ", though received while set to {} Bd (the port ignores its speed: \
                         a pseudo-terminal?)",
                        trying.baud()
                    );
                }
                self.pending.push_back(LinkEvent::Notice(msg));
                self.pending.extend(chunks.into_iter().map(LinkEvent::Data));
                self.phase = Phase::Settled(mode, Health::new());
                self.last_report = [None, None];
                if trying != mode {
                    self.set_speed(mode);
                }
            }
        }
    }

    fn on_timer(&mut self) {
        match &mut self.phase {
            Phase::Detecting(attempt) => {
                let trying = attempt.trying;
                let seen = attempt.seen.describe();
                let kind = attempt.seen.kind();
                // Say what a speed showed the first time and whenever it
                // changes; cycling over the same silence says nothing new.
                if self.last_report[index(trying)] != Some(kind) {
                    self.pending.push_back(LinkEvent::Notice(format!(
                        "auto: no {} frames at {} Bd in {} s: {seen}",
                        trying.as_str(),
                        trying.baud(),
                        window(trying).as_secs()
                    )));
                    self.last_report[index(trying)] = Some(kind);
                }
                let next = match trying {
                    Mode::Historic => Mode::Standard,
                    Mode::Standard => Mode::Historic,
                };
                self.phase = Phase::Detecting(Attempt::new(next));
                self.set_speed(next);
            }
            Phase::Settled(..) => self.check_health(),
        }
    }

    /// Once settled: say when valid groups stopped for [`QUIET_AFTER`]; in
    /// `auto`, detect again if bytes kept coming. Called on every chunk too,
    /// since a steady flow of garbage keeps the read timer from firing.
    fn check_health(&mut self) {
        let Phase::Settled(mode, health) = &mut self.phase else {
            return;
        };
        let mode = *mode;
        if health.reported || health.last_valid.elapsed() < QUIET_AFTER {
            return;
        }
        health.reported = true;
        let quiet = health.last_valid.elapsed().as_secs();
        let seen = health.since.describe();
        let silent = health.since.bytes == 0;
        if self.choice == ModeChoice::Auto && !silent {
            self.pending.push_back(LinkEvent::Notice(format!(
                "no valid {} group for {quiet} s: {seen}; detecting the mode again",
                mode.as_str()
            )));
            self.pending.push_back(LinkEvent::Break);
            self.phase = Phase::Detecting(Attempt::new(mode));
        } else {
            self.pending.push_back(LinkEvent::Notice(format!(
                "no valid {} group for {quiet} s: {seen}",
                mode.as_str()
            )));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tic::encode;

    fn frame(mode: Mode, groups: &[(&str, &str)]) -> Vec<u8> {
        let mut out = Vec::new();
        encode::write_frame(mode, groups.iter().map(|&(l, v)| (l, None, v)), &mut |b| {
            out.extend_from_slice(b)
        })
        .unwrap();
        out
    }

    fn observe(bytes: &[u8]) -> Observation {
        let mut seen = Observation::default();
        seen.feed(&mut Decoder::new(), bytes);
        seen
    }

    #[test]
    fn three_valid_groups_of_one_mode_settle_it() {
        let two = frame(Mode::Standard, &[("VTIC", "02"), ("SINSTS", "00420")]);
        assert_eq!(observe(&two).settled(), None, "two groups are not enough");
        let three = frame(
            Mode::Standard,
            &[("VTIC", "02"), ("SINSTS", "00420"), ("IRMS1", "002")],
        );
        assert_eq!(observe(&three).settled(), Some(Mode::Standard));
        let historic = frame(
            Mode::Historic,
            &[("ISOUSC", "30"), ("IINST", "002"), ("PAPP", "00420")],
        );
        assert_eq!(observe(&historic).settled(), Some(Mode::Historic));
    }

    #[test]
    fn rejected_groups_do_not_count_against_a_mode() {
        let mut bytes = frame(
            Mode::Standard,
            &[("VTIC", "02"), ("SINSTS", "00420"), ("IRMS1", "002")],
        );
        // Spoil the checksum of the first group, then add a good frame.
        let ck = bytes.iter().position(|&b| b == tic::CR).unwrap() - 1;
        bytes[ck] ^= 1;
        let seen = observe(&bytes);
        assert_eq!(seen.settled(), None);
        assert_eq!((seen.rejected, seen.checksum_failures), (1, 1));
        bytes.extend(frame(Mode::Standard, &[("SINSTS", "00421")]));
        assert_eq!(observe(&bytes).settled(), Some(Mode::Standard));
    }

    #[test]
    fn a_mix_settles_on_the_mode_with_more_groups() {
        let mut bytes = frame(
            Mode::Historic,
            &[("ISOUSC", "30"), ("IINST", "002"), ("PAPP", "00420")],
        );
        bytes.extend(frame(
            Mode::Standard,
            &[("VTIC", "02"), ("SINSTS", "00420"), ("IRMS1", "002")],
        ));
        // 3 and 3: a tie decides nothing; the next groups will.
        assert_eq!(observe(&bytes).settled(), None);
    }

    fn notices(link: &mut Link) -> Vec<String> {
        link.pending
            .drain(..)
            .filter_map(|e| match e {
                LinkEvent::Notice(n) => Some(n),
                _ => None,
            })
            .collect()
    }

    fn settled_long_ago(choice: ModeChoice, mode: Mode) -> Link {
        let mut link = Link::new(PathBuf::from("/dev/ttyTEST"), choice);
        let mut health = Health::new();
        health.last_valid = Instant::now() - QUIET_AFTER - Duration::from_secs(1);
        link.phase = Phase::Settled(mode, health);
        link
    }

    fn chunk(bytes: &[u8]) -> Chunk {
        Chunk {
            at: SystemTime::now(),
            bytes: bytes.to_vec(),
        }
    }

    #[test]
    fn auto_detects_again_after_a_long_spell_of_garbage() {
        let mut link = settled_long_ago(ModeChoice::Auto, Mode::Historic);
        link.on_chunk(chunk(b"\x7f\x1f\x55 garbage at the wrong speed"));
        assert!(matches!(link.pending.front(), Some(LinkEvent::Data(_))));
        assert!(
            matches!(link.pending.back(), Some(LinkEvent::Break)),
            "{:?}",
            link.pending
        );
        let said = notices(&mut link);
        assert_eq!(said.len(), 1);
        assert!(said[0].contains("detecting the mode again"), "{said:?}");
        assert_eq!(link.mode(), None);
    }

    #[test]
    fn silence_is_reported_once_and_keeps_the_mode() {
        let mut link = settled_long_ago(ModeChoice::Auto, Mode::Standard);
        link.on_timer();
        link.on_timer();
        let said = notices(&mut link);
        assert_eq!(said.len(), 1, "{said:?}");
        assert!(said[0].contains("silence"), "{said:?}");
        assert_eq!(link.mode(), Some(Mode::Standard));
        // Valid groups again: said once.
        let good = frame(Mode::Standard, &[("SINSTS", "00420")]);
        link.on_chunk(chunk(&good));
        let said = notices(&mut link);
        assert_eq!(said, ["valid standard groups again"]);
    }

    #[test]
    fn a_fixed_mode_is_kept_through_garbage() {
        let mut link = settled_long_ago(ModeChoice::Historic, Mode::Historic);
        link.on_chunk(chunk(b"garbage"));
        link.on_chunk(chunk(b"more garbage"));
        let said = notices(&mut link);
        assert_eq!(said.len(), 1, "{said:?}");
        assert!(said[0].contains("garbage"), "{said:?}");
        assert_eq!(link.mode(), Some(Mode::Historic));
    }

    #[test]
    fn detection_alternates_speeds_and_reports_changes_only() {
        let mut link = Link::new(PathBuf::from("/dev/ttyTEST"), ModeChoice::Auto);
        let trying = |link: &Link| match &link.phase {
            Phase::Detecting(a) => a.trying,
            Phase::Settled(..) => panic!("settled"),
        };
        assert_eq!(trying(&link), Mode::Historic);
        link.on_timer();
        assert_eq!(trying(&link), Mode::Standard);
        link.on_timer();
        assert_eq!(trying(&link), Mode::Historic);
        // Silence again at both speeds: nothing new to say.
        link.on_timer();
        link.on_timer();
        let said = notices(&mut link);
        assert_eq!(said.len(), 2, "{said:?}");
        assert!(said[0].contains("1200 Bd") && said[0].contains("silence"));
        assert!(said[1].contains("9600 Bd") && said[1].contains("silence"));
        // Garbage of a different length is still garbage: said once.
        for n in [10, 20] {
            link.on_chunk(chunk(&vec![b'x'; n]));
            link.on_timer();
            link.on_timer();
        }
        let said = notices(&mut link);
        assert_eq!(said.len(), 1, "{said:?}");
        assert!(said[0].contains("garbage"), "{said:?}");
        // Valid groups: settled, and the window's bytes are handed out.
        let good = frame(
            Mode::Standard,
            &[("VTIC", "02"), ("SINSTS", "00420"), ("IRMS1", "002")],
        );
        link.on_chunk(chunk(&good));
        assert_eq!(link.mode(), Some(Mode::Standard));
        let data: Vec<u8> = link
            .pending
            .iter()
            .filter_map(|e| match e {
                LinkEvent::Data(c) => Some(c.bytes.clone()),
                _ => None,
            })
            .flatten()
            .collect();
        assert_eq!(data, good);
    }

    #[test]
    fn observations_say_what_was_seen() {
        assert!(observe(b"").describe().contains("silence"));
        assert!(observe(b"\x7f\x1f garbage").describe().contains("garbage"));
        let mut bad = frame(Mode::Standard, &[("SINSTS", "00420")]);
        let ck = bad.iter().position(|&b| b == tic::CR).unwrap() - 1;
        bad[ck] ^= 1;
        let text = observe(&bad).describe();
        assert!(
            text.contains("0 valid groups, 1 rejected (1 failing their checksum)"),
            "{text}"
        );
    }
}
