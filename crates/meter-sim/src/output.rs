//! Where frames go and how fast: stdout, a file, a TCP listener or a
//! pseudo-terminal; paced like the wire or as fast as possible.
//!
//! Real-time pacing writes each frame in small chunks so that its bytes
//! arrive at the mode's line speed (10 bits per 7E1 character, §1.3), and
//! starts each frame when its simulated time comes: with [`Interval::Wire`]
//! that is right after the previous one plus the 16.7–33.4 ms gap (§1.6).
//!
//! [`Interval::Wire`]: crate::Interval::Wire

use crate::{Frame, Simulator};
use std::io::{self, Write};
use std::net::{TcpListener, TcpStream, ToSocketAddrs};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// When to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// Never.
    Endless,
    /// After this many frames.
    Frames(u64),
    /// After this much simulated time, ms (frames whose time is before the end).
    DurationMs(i64),
}

/// What a run produced.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RunStats {
    /// Frames written.
    pub frames: u64,
    /// Bytes written.
    pub bytes: u64,
    /// Fault records written.
    pub faults: u64,
}

/// Runs a simulator into a byte sink, with an optional ground-truth log
/// (JSON lines, one [`crate::FaultRecord`] each).
///
/// ```
/// use meter_sim::{output::{run, Limit}, Config, Simulator};
/// let mut sim = Simulator::new(Config::default()).unwrap();
/// let mut out = Vec::new();
/// let stats = run(&mut sim, Limit::Frames(3), false, &mut out, None).unwrap();
/// assert_eq!(stats.frames, 3);
/// assert_eq!(out.len() as u64, stats.bytes);
/// ```
pub fn run(
    sim: &mut Simulator,
    limit: Limit,
    realtime: bool,
    sink: &mut dyn Write,
    mut fault_log: Option<&mut dyn Write>,
) -> io::Result<RunStats> {
    let mut stats = RunStats::default();
    let mut frame = sim.next_frame();
    let first_ms = frame.true_time_unix_ms;
    let started = Instant::now();
    loop {
        match limit {
            Limit::Frames(n) if stats.frames >= n => break,
            Limit::DurationMs(d) if frame.true_time_unix_ms - first_ms >= d => break,
            _ => {}
        }
        if realtime {
            let due = started + Duration::from_millis((frame.true_time_unix_ms - first_ms) as u64);
            sleep_until(due);
            write_paced(sink, &frame)?;
        } else {
            sink.write_all(&frame.bytes)?;
        }
        if let Some(log) = fault_log.as_deref_mut() {
            for record in &frame.faults {
                writeln!(log, "{}", record.to_json())?;
                stats.faults += 1;
            }
            if realtime {
                log.flush()?;
            }
        }
        stats.frames += 1;
        stats.bytes += frame.bytes.len() as u64;
        sim.next_into(&mut frame);
    }
    sink.flush()?;
    if let Some(log) = fault_log {
        log.flush()?;
    }
    Ok(stats)
}

fn sleep_until(due: Instant) {
    let now = Instant::now();
    if due > now {
        std::thread::sleep(due - now);
    }
}

/// Writes a frame at its line speed, in chunks of about 16.7 ms.
fn write_paced(sink: &mut dyn Write, frame: &Frame) -> io::Result<()> {
    let baud = frame.baud() as u64;
    let chunk = (baud / 600).max(1) as usize;
    let start = Instant::now();
    let mut sent = 0usize;
    for part in frame.bytes.chunks(chunk) {
        sink.write_all(part)?;
        sink.flush()?;
        sent += part.len();
        sleep_until(start + Duration::from_micros(sent as u64 * 10 * 1_000_000 / baud));
    }
    Ok(())
}

/// A TCP listener that sends the stream to every connected client.
///
/// Accelerated runs wait for a first client so that nothing is generated for
/// nobody; real-time runs, like a meter, send regardless.
pub struct TcpBroadcast {
    clients: Arc<Mutex<Vec<TcpStream>>>,
    wait_for_client: bool,
    local_addr: std::net::SocketAddr,
}

impl TcpBroadcast {
    /// Listens on `addr` (e.g. `127.0.0.1:3000`; port 0 picks a free one).
    pub fn bind(addr: impl ToSocketAddrs, wait_for_client: bool) -> io::Result<TcpBroadcast> {
        let listener = TcpListener::bind(addr)?;
        let local_addr = listener.local_addr()?;
        let clients: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let accepted = Arc::clone(&clients);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let _ = stream.set_nodelay(true);
                if let Ok(mut list) = accepted.lock() {
                    list.push(stream);
                }
            }
        });
        Ok(TcpBroadcast {
            clients,
            wait_for_client,
            local_addr,
        })
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> std::net::SocketAddr {
        self.local_addr
    }
}

impl Write for TcpBroadcast {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        loop {
            {
                let mut list = self
                    .clients
                    .lock()
                    .map_err(|_| io::Error::other("client list poisoned"))?;
                if !list.is_empty() || !self.wait_for_client {
                    // A client that fails is dropped; the others go on.
                    list.retain_mut(|c| c.write_all(buf).is_ok());
                    if !list.is_empty() || !self.wait_for_client {
                        return Ok(buf.len());
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A pseudo-terminal: the simulator writes the master side; readers open the
/// slave path (`/dev/pts/N`) like a USB TIC dongle. The slave is set raw
/// (no CR/LF translation, no echo) and kept open so that writes never fail
/// while no reader is attached.
#[cfg(unix)]
pub struct Pty {
    master: std::fs::File,
    _slave: std::os::fd::OwnedFd,
    path: std::path::PathBuf,
    drop_when_full: bool,
    /// Bytes dropped because no reader drained the terminal (real-time only).
    pub dropped: u64,
}

#[cfg(unix)]
impl Pty {
    /// Opens a pseudo-terminal. With `drop_when_full` (real time: a meter
    /// never waits), bytes no reader takes are dropped instead of blocking.
    pub fn open(drop_when_full: bool) -> io::Result<Pty> {
        use nix::sys::termios::{cfmakeraw, tcgetattr, tcsetattr, SetArg};
        let pty = nix::pty::openpty(None, None).map_err(io::Error::from)?;
        let mut termios = tcgetattr(&pty.slave).map_err(io::Error::from)?;
        cfmakeraw(&mut termios);
        tcsetattr(&pty.slave, SetArg::TCSANOW, &termios).map_err(io::Error::from)?;
        let path = nix::unistd::ttyname(&pty.slave).map_err(io::Error::from)?;
        if drop_when_full {
            use nix::fcntl::{fcntl, FcntlArg, OFlag};
            let flags = fcntl(&pty.master, FcntlArg::F_GETFL).map_err(io::Error::from)?;
            let flags = OFlag::from_bits_truncate(flags) | OFlag::O_NONBLOCK;
            fcntl(&pty.master, FcntlArg::F_SETFL(flags)).map_err(io::Error::from)?;
        }
        Ok(Pty {
            master: std::fs::File::from(pty.master),
            _slave: pty.slave,
            path,
            drop_when_full,
            dropped: 0,
        })
    }

    /// The slave's path, e.g. `/dev/pts/3`.
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }
}

#[cfg(unix)]
impl Write for Pty {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self.master.write(buf) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock && self.drop_when_full => {
                self.dropped += buf.len() as u64;
                Ok(buf.len())
            }
            other => other,
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        self.master.flush()
    }
}

/// Parses a simulated duration: `90s`, `15m`, `12h`, `30d`, `2w`, `1y` (365 days) or plain seconds.
pub fn parse_duration_ms(text: &str) -> Result<i64, String> {
    let bad = || {
        format!("--duration `{text}`: expected a number with a unit s, m, h, d, w or y (365 days), e.g. 1y, 30d, 12h, 90s")
    };
    let (number, unit_s) = match text.char_indices().last() {
        Some((i, 's')) => (&text[..i], 1.0),
        Some((i, 'm')) => (&text[..i], 60.0),
        Some((i, 'h')) => (&text[..i], 3600.0),
        Some((i, 'd')) => (&text[..i], 86_400.0),
        Some((i, 'w')) => (&text[..i], 7.0 * 86_400.0),
        Some((i, 'y')) => (&text[..i], 365.0 * 86_400.0),
        Some(_) => (text, 1.0),
        None => return Err(bad()),
    };
    let value: f64 = number.parse().map_err(|_| bad())?;
    let ms = value * unit_s * 1000.0;
    if !ms.is_finite() || ms <= 0.0 || ms > 200.0 * 365.0 * 86_400_000.0 {
        return Err(bad());
    }
    Ok(ms.round() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration_ms("90s"), Ok(90_000));
        assert_eq!(parse_duration_ms("1y"), Ok(365 * 86_400_000));
        assert_eq!(parse_duration_ms("1.5h"), Ok(5_400_000));
        assert_eq!(parse_duration_ms("42"), Ok(42_000));
        assert!(parse_duration_ms("-1d").is_err());
        assert!(parse_duration_ms("").is_err());
        assert!(parse_duration_ms("tomorrow").is_err());
    }
}
