//! `teleinfo read` against real pseudo-terminals and the real binary.
//!
//! Each test opens a pty pair, runs `teleinfo read` on the slave side and
//! writes TIC bytes into the master side, as a USB dongle would deliver them.
//! A pty carries bytes whatever its speed, so `--mode auto` sees the same
//! bytes at 1200 and 9600 Bd: detection must then go by which mode's groups
//! pass their checksums. Every wait is bounded, and the child is killed when
//! a test fails, so a bug cannot hang the run.

use nix::fcntl::OFlag;
use nix::pty::{grantpt, posix_openpt, ptsname_r, unlockpt};
use nix::sys::signal::{kill, Signal};
use nix::sys::termios::{cfmakeraw, tcgetattr, tcsetattr, SetArg};
use nix::unistd::Pid;
use serde_json::Value;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::os::fd::OwnedFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tic::{encode, Horodate, Mode};

const BIN: &str = env!("CARGO_BIN_EXE_teleinfo");
/// Generous: two cores are shared with other builds and tests.
const WAIT: Duration = Duration::from_secs(20);

/// A pseudo-terminal pair. The test keeps the slave open too, in raw mode,
/// so that bytes written before `read` configures it are not altered by the
/// line discipline (CR to LF, echo).
struct Pty {
    master: File,
    _slave: File,
    path: PathBuf,
}

/// Both ends are opened close-on-exec: tests run in parallel threads, and a
/// child inheriting another test's master would keep that pty alive after
/// the test closes it (`openpty(3)` does not set close-on-exec).
fn pty() -> Pty {
    let flags = OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC;
    let master = posix_openpt(flags).expect("posix_openpt");
    grantpt(&master).expect("grantpt");
    unlockpt(&master).expect("unlockpt");
    let path = PathBuf::from(ptsname_r(&master).expect("ptsname"));
    // std opens with O_CLOEXEC already.
    let slave = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(OFlag::O_NOCTTY.bits())
        .open(&path)
        .expect("open the pty slave");
    let mut t = tcgetattr(&slave).expect("tcgetattr");
    cfmakeraw(&mut t);
    tcsetattr(&slave, SetArg::TCSANOW, &t).expect("tcsetattr");
    Pty {
        master: File::from(OwnedFd::from(master)),
        _slave: slave,
        path,
    }
}

impl Pty {
    fn send(&mut self, bytes: &[u8]) {
        // Small pieces with pauses, as a UART delivers them.
        for piece in bytes.chunks(64) {
            self.master
                .write_all(piece)
                .expect("write to the pty master");
            thread::sleep(Duration::from_millis(2));
        }
    }
}

/// The running `teleinfo read`, its output lines gathered by threads.
struct Reader {
    child: Child,
    stdout: Receiver<String>,
    stderr: Receiver<String>,
    stderr_seen: Arc<Mutex<Vec<String>>>,
}

fn lines_of(
    input: impl std::io::Read + Send + 'static,
    keep: Option<Arc<Mutex<Vec<String>>>>,
) -> Receiver<String> {
    let (tx, rx) = channel();
    thread::spawn(move || {
        for line in BufReader::new(input).lines() {
            let Ok(line) = line else { break };
            if let Some(keep) = &keep {
                keep.lock().unwrap().push(line.clone());
            }
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

fn spawn(args: &[&str]) -> Reader {
    let mut child = Command::new(BIN)
        .arg("read")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run teleinfo");
    let seen = Arc::new(Mutex::new(Vec::new()));
    let stdout = lines_of(child.stdout.take().unwrap(), None);
    let stderr = lines_of(child.stderr.take().unwrap(), Some(seen.clone()));
    Reader {
        child,
        stdout,
        stderr,
        stderr_seen: seen,
    }
}

impl Reader {
    fn stderr_so_far(&self) -> Vec<String> {
        self.stderr_seen.lock().unwrap().clone()
    }

    /// The next stdout line, within [`WAIT`].
    fn line(&self) -> String {
        match self.stdout.recv_timeout(WAIT) {
            Ok(line) => line,
            Err(e) => panic!("no output line ({e:?}); stderr: {:?}", self.stderr_so_far()),
        }
    }

    fn frame(&self) -> Value {
        let line = self.line();
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"))
    }

    /// Waits for a stderr line containing `needle` and returns it.
    fn wait_stderr(&self, needle: &str) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.stderr.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return line,
                Ok(_) => {}
                Err(RecvTimeoutError::Timeout) | Err(RecvTimeoutError::Disconnected) => panic!(
                    "no stderr line with {needle:?}; stderr: {:?}",
                    self.stderr_so_far()
                ),
            }
        }
    }

    /// Ctrl-C, then the exit status and every stdout line not read yet.
    fn interrupt(mut self) -> (ExitStatus, Vec<String>, Vec<String>) {
        kill(Pid::from_raw(self.child.id() as i32), Signal::SIGINT).expect("SIGINT");
        let deadline = Instant::now() + WAIT;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                break status;
            }
            assert!(Instant::now() < deadline, "teleinfo read ignored SIGINT");
            thread::sleep(Duration::from_millis(20));
        };
        let mut rest = Vec::new();
        while let Ok(line) = self.stdout.recv_timeout(Duration::from_secs(2)) {
            rest.push(line);
        }
        // The stderr thread ends at the child's exit; give it a moment.
        thread::sleep(Duration::from_millis(100));
        (status, rest, self.stderr_so_far())
    }
}

impl Drop for Reader {
    fn drop(&mut self) {
        // A failed test must not leave the child running.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn frame(mode: Mode, groups: &[(&str, Option<Horodate>, String)]) -> Vec<u8> {
    let mut out = Vec::new();
    encode::write_frame(
        mode,
        groups.iter().map(|(l, h, v)| (*l, *h, v.as_str())),
        &mut |b| out.extend_from_slice(b),
    )
    .expect("encodable frame");
    out
}

fn standard_frame(sinsts: u32) -> Vec<u8> {
    let date = Horodate::parse(b"H240115103000").unwrap();
    frame(
        Mode::Standard,
        &[
            ("ADSC", None, "041776199277".into()),
            ("VTIC", None, "02".into()),
            ("DATE", Some(date), String::new()),
            ("SINSTS", None, format!("{sinsts:05}")),
        ],
    )
}

fn historic_frame(papp: u32) -> Vec<u8> {
    frame(
        Mode::Historic,
        &[
            ("ADCO", None, "021861348497".into()),
            ("OPTARIF", None, "BASE".into()),
            ("ISOUSC", None, "30".into()),
            ("BASE", None, "010151175".into()),
            ("PTEC", None, "TH..".into()),
            ("PAPP", None, format!("{papp:05}")),
        ],
    )
}

/// `frame` with the checksum of its group number `n` (0-based) made wrong.
fn spoil_group(frame: &[u8], n: usize) -> Vec<u8> {
    let mut out = frame.to_vec();
    let cr = out
        .iter()
        .enumerate()
        .filter(|(_, &b)| b == tic::CR)
        .map(|(i, _)| i)
        .nth(n)
        .expect("group exists");
    // XOR 1 keeps the checksum character in 0x20..0x5F, so only the sum is wrong.
    out[cr - 1] ^= 1;
    out
}

fn labels_values(frame: &Value) -> Vec<(String, String)> {
    frame["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            (
                g["label"].as_str().unwrap().to_owned(),
                g["value"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn value_of(frame: &Value, label: &str) -> String {
    labels_values(frame)
        .into_iter()
        .find(|(l, _)| l == label)
        .unwrap_or_else(|| panic!("no {label} in {frame}"))
        .1
}

fn real_capture(name: &str) -> Option<Vec<u8>> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/testdata/real")
        .join(name);
    match std::fs::read(&path) {
        Ok(bytes) => Some(bytes),
        Err(_) => {
            eprintln!("skipped: {} is not here", path.display());
            None
        }
    }
}

fn now_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis()
}

/// Checks `FILE.times` against the capture: returns its (time, offset) lines.
fn check_times(raw: &Path, raw_len: u64, from_ms: u128, to_ms: u128) -> Vec<(u128, u64)> {
    let mut times_path = raw.as_os_str().to_owned();
    times_path.push(".times");
    let text = std::fs::read_to_string(&times_path).expect("times sidecar");
    let mut entries = Vec::new();
    for line in text.lines() {
        if let Some(note) = line.strip_prefix("# ") {
            let time = note.split(' ').next().unwrap();
            let t: u128 = time
                .parse()
                .unwrap_or_else(|_| panic!("note without time: {line}"));
            assert!(
                (from_ms..=to_ms).contains(&t),
                "note time out of range: {line}"
            );
            continue;
        }
        let fields: Vec<&str> = line.split(' ').collect();
        assert_eq!(fields.len(), 2, "not `UNIX_MS OFFSET`: {line:?}");
        let t: u128 = fields[0].parse().expect("UNIX_MS");
        let o: u64 = fields[1].parse().expect("OFFSET");
        assert!((from_ms..=to_ms).contains(&t), "time out of range: {line}");
        if let Some(&(_, last)) = entries.last() {
            assert!(o > last, "offsets must strictly increase: {line}");
        }
        assert!(o < raw_len, "offset past the end of the capture: {line}");
        entries.push((t, o));
    }
    assert_eq!(
        entries.first().map(|e| e.1),
        Some(0),
        "first chunk at offset 0"
    );
    entries
}

#[test]
fn standard_frames_to_jsonl_with_raw_capture() {
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("capture.tic");
    let mut pty = pty();
    let start = now_ms();
    let reader = spawn(&[
        pty.path.to_str().unwrap(),
        "--mode",
        "standard",
        "--format",
        "jsonl",
        "--raw",
        raw.to_str().unwrap(),
    ]);
    reader.wait_stderr("reading");
    let mut sent = Vec::new();
    for sinsts in [420, 1234, 5] {
        let bytes = standard_frame(sinsts);
        pty.send(&bytes);
        sent.extend_from_slice(&bytes);
        let f = reader.frame();
        assert_eq!(f["mode"], "standard");
        assert_eq!(f["complete"], true);
        assert_eq!(f["end"], "etx");
        assert_eq!(f["invalid_groups"], 0);
        assert_eq!(value_of(&f, "ADSC"), "041776199277");
        assert_eq!(value_of(&f, "SINSTS"), format!("{sinsts:05}"));
        let date = &f["groups"][2];
        assert_eq!(date["label"], "DATE");
        assert_eq!(date["horodate"]["utc"], "2024-01-15T09:30:00Z");
    }
    // A bad group is counted, the frame still printed.
    let bad = spoil_group(&standard_frame(77), 3);
    pty.send(&bad);
    sent.extend_from_slice(&bad);
    let f = reader.frame();
    assert_eq!(f["invalid_groups"], 1);
    assert_eq!(f["rejected"]["checksum"], 1);
    // Ctrl-C: clean exit, and the capture flushed although < 1 s old.
    let (status, rest, stderr) = reader.interrupt();
    let end = now_ms();
    assert!(status.success(), "exit {status:?}; stderr {stderr:?}");
    assert!(rest.is_empty(), "no partial frame to print: {rest:?}");
    let captured = std::fs::read(&raw).unwrap();
    assert_eq!(captured, sent, "the raw capture is the bytes written");
    check_times(&raw, captured.len() as u64, start, end);
    // The capture decodes like the live output.
    let decoded = Command::new(BIN)
        .args(["decode", "--format", "jsonl"])
        .arg(&raw)
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8(decoded.stdout).unwrap().lines().count(),
        4
    );
}

#[test]
fn raw_capture_appends_and_keeps_offsets() {
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("capture.tic");
    std::fs::write(&raw, b"earlier bytes").unwrap();
    let mut pty = pty();
    let start = now_ms();
    let reader = spawn(&[
        pty.path.to_str().unwrap(),
        "--mode",
        "historic",
        "--format",
        "jsonl",
        "--raw",
        raw.to_str().unwrap(),
    ]);
    reader.wait_stderr("reading");
    let bytes = historic_frame(1230);
    pty.send(&bytes);
    assert_eq!(reader.frame()["mode"], "historic");
    let (status, _, _) = reader.interrupt();
    assert!(status.success());
    let captured = std::fs::read(&raw).unwrap();
    assert_eq!(&captured[..13], b"earlier bytes");
    assert_eq!(&captured[13..], &bytes[..]);
    let mut times_path = raw.as_os_str().to_owned();
    times_path.push(".times");
    let text = std::fs::read_to_string(times_path).unwrap();
    let first = text.lines().find(|l| !l.starts_with('#')).unwrap();
    let (t, o) = first.split_once(' ').unwrap();
    assert_eq!(o, "13", "offsets continue after the old content");
    assert!(t.parse::<u128>().unwrap() >= start);
}

/// What `teleinfo decode --format jsonl` prints for `bytes`.
fn decode_jsonl(bytes: &[u8]) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("c.tic");
    std::fs::write(&file, bytes).unwrap();
    let out = Command::new(BIN)
        .args(["decode", "--format", "jsonl"])
        .arg(&file)
        .output()
        .unwrap();
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Replays a real capture into `read --mode auto`; checks the mode chosen
/// and that the live output equals `decode` of the same bytes (nothing lost
/// to detection: the winning window's bytes are replayed).
fn replay_real(name: &str, expected_mode: &str, min_frames: usize) {
    let Some(bytes) = real_capture(name) else {
        return;
    };
    let expected = decode_jsonl(&bytes);
    assert!(expected.len() >= min_frames);
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("capture.tic");
    let mut pty = pty();
    let reader = spawn(&[
        pty.path.to_str().unwrap(),
        "--format",
        "jsonl",
        "--raw",
        raw.to_str().unwrap(),
    ]);
    reader.wait_stderr("detecting the mode");
    pty.send(&bytes);
    let chosen = reader.wait_stderr("mode: ");
    assert!(
        chosen.contains(&format!("mode: {expected_mode} (")),
        "{chosen}"
    );
    // All complete frames arrive live; the last, cut one only at Ctrl-C.
    let mut got: Vec<String> = (0..expected.len() - 1).map(|_| reader.line()).collect();
    let (status, rest, stderr) = reader.interrupt();
    assert!(status.success(), "{stderr:?}");
    got.extend(rest);
    assert_eq!(got, expected);
    assert_eq!(std::fs::read(&raw).unwrap(), bytes);
    let modes = stderr.iter().filter(|l| l.contains("mode: ")).count();
    assert_eq!(modes, 1, "decided once: {stderr:?}");
}

#[test]
fn auto_settles_on_standard_with_a_real_capture() {
    replay_real(
        "lains_ticdecodecpp__continuous_linky_1P_standard_TIC_sample.bin",
        "standard",
        12,
    );
}

#[test]
fn auto_settles_on_historic_with_a_real_capture() {
    replay_real("esciara_pyteleinfo__captured_frames.bin", "historic", 10);
}

#[test]
fn auto_on_a_noisy_real_capture_decides_once() {
    // 13 groups damaged by real line noise among 474 valid ones.
    replay_real(
        "gaetronik_teleinfo-nom__stream_standard_raw.txt",
        "standard",
        7,
    );
}

#[test]
fn auto_settles_on_generated_frames_of_either_mode() {
    for (mode, frames) in [
        ("standard", (0..3).map(standard_frame).collect::<Vec<_>>()),
        ("historic", (0..3).map(historic_frame).collect::<Vec<_>>()),
    ] {
        let mut pty = pty();
        let reader = spawn(&[
            pty.path.to_str().unwrap(),
            "--mode",
            "auto",
            "--format",
            "jsonl",
        ]);
        reader.wait_stderr("detecting the mode");
        for f in &frames {
            pty.send(f);
        }
        let chosen = reader.wait_stderr("mode: ");
        assert!(chosen.contains(&format!("mode: {mode} (")), "{chosen}");
        for n in 0..3u32 {
            let f = reader.frame();
            assert_eq!(f["mode"], mode);
            let label = if mode == "standard" { "SINSTS" } else { "PAPP" };
            assert_eq!(value_of(&f, label), format!("{n:05}"), "first frames kept");
        }
        let (status, _, _) = reader.interrupt();
        assert!(status.success());
    }
}

#[test]
fn auto_is_not_flipped_by_one_bad_group() {
    let mut pty = pty();
    let reader = spawn(&[pty.path.to_str().unwrap(), "--format", "jsonl"]);
    reader.wait_stderr("detecting the mode");
    // Before the decision: a frame with 2 valid standard groups and 2 bad
    // ones, a lone valid historic group (under the 3 needed), then a good
    // standard frame.
    pty.send(&spoil_group(&spoil_group(&standard_frame(1), 1), 2));
    pty.send(&frame(Mode::Historic, &[("PAPP", None, "00100".into())]));
    pty.send(&standard_frame(2));
    let chosen = reader.wait_stderr("mode: ");
    assert!(chosen.contains("mode: standard ("), "{chosen}");
    // After it: more bad groups, a whole frame of bad ones, then good frames.
    pty.send(&spoil_group(&standard_frame(3), 0));
    pty.send(&spoil_group(&spoil_group(&standard_frame(4), 2), 3));
    for n in 5..8 {
        pty.send(&standard_frame(n));
    }
    let mut sinsts = Vec::new();
    while sinsts.last().map(String::as_str) != Some("00007") {
        let f = reader.frame();
        if f["mode"] == "standard" && f["invalid_groups"] == 0 {
            sinsts.push(value_of(&f, "SINSTS"));
        }
    }
    assert_eq!(sinsts, ["00002", "00005", "00006", "00007"]);
    let (status, _, stderr) = reader.interrupt();
    assert!(status.success());
    let decisions: Vec<_> = stderr.iter().filter(|l| l.contains("mode: ")).collect();
    assert_eq!(decisions.len(), 1, "{stderr:?}");
    assert!(
        !stderr
            .iter()
            .any(|l| l.contains("detecting the mode again")),
        "{stderr:?}"
    );
}

#[test]
fn auto_says_what_it_saw_until_a_speed_works() {
    let mut pty = pty();
    let reader = spawn(&[pty.path.to_str().unwrap(), "--format", "jsonl"]);
    reader.wait_stderr("detecting the mode");
    // Nothing during the 1200 Bd window: silence.
    let first = reader.wait_stderr("auto: no historic frames at 1200 Bd");
    assert!(first.contains("silence"), "{first}");
    // Bytes without any frame start during the 9600 Bd window: garbage.
    let garbage: Vec<u8> = (0..400u32).map(|i| b'a' + (i % 26) as u8).collect();
    pty.send(&garbage);
    let second = reader.wait_stderr("auto: no standard frames at 9600 Bd");
    assert!(second.contains("garbage"), "{second}");
    // Frames whose every group fails its checksum.
    let mut bad = Vec::new();
    for n in 0..3 {
        let f = standard_frame(n);
        bad.extend((0..4).fold(f, |f, g| spoil_group(&f, g)));
    }
    pty.send(&bad);
    let third = reader.wait_stderr("auto: no historic frames at 1200 Bd");
    assert!(third.contains("failing their checksum"), "{third}");
    // Then real frames: settled.
    for n in 0..4 {
        pty.send(&standard_frame(n));
    }
    reader.wait_stderr("mode: standard (");
    let (status, _, _) = reader.interrupt();
    assert!(status.success());
}

#[test]
fn text_output_matches_decode() {
    let Some(bytes) = real_capture("esciara_pyteleinfo__captured_frames.bin") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("c.tic");
    std::fs::write(&file, &bytes).unwrap();
    let expected = Command::new(BIN)
        .arg("decode")
        .arg(&file)
        .output()
        .unwrap()
        .stdout;
    let expected = String::from_utf8(expected).unwrap();
    let mut pty = pty();
    let reader = spawn(&[pty.path.to_str().unwrap(), "--mode", "historic"]);
    reader.wait_stderr("reading");
    pty.send(&bytes);
    // The last line of the last frame says it is complete only once its
    // groups are printed: wait for as many lines as `decode` printed.
    let got: Vec<String> = expected.lines().map(|_| reader.line()).collect();
    let (status, rest, _) = reader.interrupt();
    assert!(status.success());
    assert!(rest.is_empty(), "{rest:?}");
    assert_eq!(got.join("\n") + "\n", expected);
}

#[test]
fn a_busy_port_is_one_line_and_a_failure() {
    let pty = pty();
    let path = pty.path.to_str().unwrap();
    let first = spawn(&[path, "--mode", "standard"]);
    first.wait_stderr("reading");
    let out = run_bounded(&["read", "--mode", "standard", path]);
    assert!(!out.status.success());
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains(path) && stderr.contains("busy"), "{stderr}");
    let (status, _, _) = first.interrupt();
    assert!(status.success());
}

/// Points `link` at `target` atomically, as udev does with /dev/serial/by-id.
fn point(link: &Path, target: &Path) {
    let tmp = link.with_extension("new");
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(target, &tmp).unwrap();
    std::fs::rename(&tmp, link).unwrap();
}

#[test]
fn survives_unplug_and_replug_through_a_symlink() {
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("ttyTIC");
    let raw = dir.path().join("capture.tic");
    let mut first = pty();
    point(&link, &first.path);
    let reader = spawn(&[
        link.to_str().unwrap(),
        "--format",
        "jsonl",
        "--raw",
        raw.to_str().unwrap(),
    ]);
    reader.wait_stderr("detecting the mode");
    for n in 0..3 {
        first.send(&standard_frame(n));
    }
    reader.wait_stderr("mode: standard (");
    for n in 0..3u32 {
        assert_eq!(value_of(&reader.frame(), "SINSTS"), format!("{n:05}"));
    }
    // Unplug in the middle of a frame: the half frame must not be glued to
    // what comes after the replug.
    let half = standard_frame(99);
    first.send(&half[..20]);
    thread::sleep(Duration::from_millis(300));
    drop(first);
    let lost = reader.wait_stderr("lost ");
    assert!(lost.contains("ttyTIC"), "{lost}");
    let cut = reader.frame();
    assert_eq!(cut["end"], "eot", "the half frame ends at the loss: {cut}");
    thread::sleep(Duration::from_millis(1500));
    let mut second = pty();
    point(&link, &second.path);
    let back = reader.wait_stderr("reconnected");
    assert!(
        back.contains("standard mode, as detected"),
        "same mode kept: {back}"
    );
    for n in 10..13 {
        second.send(&standard_frame(n));
    }
    for n in 10..13u32 {
        let f = reader.frame();
        assert_eq!(f["mode"], "standard");
        assert_eq!(value_of(&f, "SINSTS"), format!("{n:05}"));
    }
    let (status, _, stderr) = reader.interrupt();
    assert!(status.success(), "{stderr:?}");
    assert_eq!(
        stderr.iter().filter(|l| l.contains("lost ")).count(),
        1,
        "said once: {stderr:?}"
    );
    // The capture holds the EOT written at the loss, then the new frames.
    let captured = std::fs::read(&raw).unwrap();
    let eot = captured
        .iter()
        .position(|&b| b == tic::EOT)
        .expect("EOT in the capture");
    assert!(captured[..eot].ends_with(&half[..20]));
    assert!(captured[eot + 1..].starts_with(&standard_frame(10)));
}

#[test]
fn missing_device_is_one_line_and_a_failure() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("ttyUSB9");
    let out = run_bounded(&["read", missing.to_str().unwrap()]);
    assert!(!out.status.success());
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains(missing.to_str().unwrap()), "{stderr}");
    assert!(stderr.contains("no such device"), "{stderr}");
}

#[test]
fn a_plain_file_is_not_a_serial_port() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("notatty");
    std::fs::write(&file, b"x").unwrap();
    let out = run_bounded(&["read", "--mode", "standard", file.to_str().unwrap()]);
    assert!(!out.status.success());
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains(file.to_str().unwrap()), "{stderr}");
    assert!(stderr.contains("not a serial port"), "{stderr}");
}

#[test]
fn help_documents_the_raw_time_scheme() {
    let out = run_bounded(&["read", "--help"]);
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    for needle in [
        "FILE.times",
        "UNIX_MS OFFSET",
        "--mode",
        "auto",
        "historic",
        "standard",
        "jsonl",
    ] {
        assert!(help.contains(needle), "--help lacks {needle:?}:\n{help}");
    }
}

/// Runs the binary to completion, killed after [`WAIT`].
fn run_bounded(args: &[&str]) -> std::process::Output {
    let mut child = Command::new(BIN)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + WAIT;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("teleinfo {args:?} did not exit");
        }
        thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}
