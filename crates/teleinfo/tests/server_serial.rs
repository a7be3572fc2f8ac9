//! `teleinfo serve --serial PTY:standard`: frames written to a pseudo-terminal (a virtual USB
//! dongle) are stored and served, with the meter's DATE as their time.

mod server_support;

use nix::fcntl::OFlag;
use nix::pty::{grantpt, posix_openpt, ptsname_r, unlockpt};
use nix::sys::termios::{cfmakeraw, tcgetattr, tcsetattr, SetArg};
use server_support::*;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::fd::OwnedFd;
use std::os::unix::fs::OpenOptionsExt;
use std::time::{Duration, Instant};

#[test]
fn serial_port_frames_are_stored() {
    let master = posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC).unwrap();
    grantpt(&master).unwrap();
    unlockpt(&master).unwrap();
    let path = ptsname_r(&master).unwrap();
    // Keep the slave open in raw mode so the line discipline does not alter early bytes.
    let slave = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(OFlag::O_NOCTTY.bits())
        .open(&path)
        .unwrap();
    let mut t = tcgetattr(&slave).unwrap();
    cfmakeraw(&mut t);
    tcsetattr(&slave, SetArg::TCSANOW, &t).unwrap();
    let mut master = File::from(OwnedFd::from(master));

    let dir = tempfile::tempdir().unwrap();
    let spec = format!("{path}:standard");
    let srv = Serve::start(dir.path(), "127.0.0.1:0", &["--serial", &spec]);
    let (meter, frames) = sim_frames(8, 6);
    // Let the server open the port, then write like a UART: small pieces.
    std::thread::sleep(Duration::from_millis(500));
    for f in &frames {
        for piece in f.chunks(64) {
            master.write_all(piece).unwrap();
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    let mut c = server::client::Client::new(srv.http);
    let deadline = Instant::now() + Duration::from_secs(20);
    let url =
        format!("/api/v1/query?metric=SINSTS&meter={meter}&from=1700000000000&to=1900000000000");
    loop {
        let v = c.get(&url).unwrap().json();
        let n = v["values"]["raw"].as_array().map_or(0, |a| a.len());
        if n == frames.len() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "only {n} of {} frames stored: {v}",
            frames.len()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let l = c
        .get(&format!("/api/v1/meters/{meter}/latest"))
        .unwrap()
        .json();
    assert_eq!(l["time_source"], "meter");
    assert!(
        l["device"].as_str().unwrap().starts_with("serial-dev_pts_"),
        "{l}"
    );
    drop(slave);
    assert!(srv.terminate());
}
