//! `teleinfo serve` and `teleinfo device` as a user runs them: config file + flags, device
//! tokens, a real uplink post, graceful SIGTERM with everything flushed, restart.

mod server_support;

use server_support::*;
use std::process::Command;

#[test]
fn serve_device_and_graceful_restart() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("teleinfo.toml");
    // The file says port 1 (unusable); the flag must win.
    std::fs::write(&cfg, "listen = \"127.0.0.1:1\"\ntime_zone = \"Europe/Paris\"\n[pricing]\nsubscription_per_day = 0.4\n").unwrap();
    let token = add_device(dir.path(), "esp-1");
    assert!(token.starts_with("tid_"));
    let dup = Command::new(BIN)
        .args(["device", "add", "esp-1", "--data"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!dup.status.success());
    assert!(String::from_utf8_lossy(&dup.stderr).contains("already exists"));
    let list = Command::new(BIN)
        .args(["device", "list", "--data"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&list.stdout).contains("esp-1\tactive"));

    let cfg_s = cfg.to_str().unwrap();
    let srv = Serve::start(
        dir.path(),
        "127.0.0.1:0",
        &["--config", cfg_s, "--opentsdb-telnet", "127.0.0.1:0"],
    );
    assert!(srv.telnet.is_some());
    let mut c = server::client::Client::new(srv.http);
    let (meter, frames) = sim_frames(20, 2);
    assert_eq!(
        post(&mut c, &token, &batch("esp-1", 7, 0, &frames)),
        Ok(Some(19))
    );
    let ok = Command::new(BIN)
        .args(["device", "revoke", "esp-1", "--data"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(ok.status.success());
    assert!(post(&mut c, &token, &batch("esp-1", 7, 20, &frames[..1]))
        .unwrap_err()
        .contains("401"));
    assert!(srv.terminate(), "SIGTERM must stop the server cleanly");

    let srv = Serve::start(dir.path(), "127.0.0.1:0", &["--config", cfg_s]);
    let mut c = server::client::Client::new(srv.http);
    let v = c
        .get(&format!(
            "/api/v1/query?metric=SINSTS&meter={meter}&from=1700000000000&to=1900000000000"
        ))
        .unwrap()
        .json();
    assert_eq!(v["values"]["raw"].as_array().unwrap().len(), 20, "{v}");
    assert!(srv.terminate());

    let bad = Command::new(BIN)
        .args(["serve", "--listen", "nonsense", "--data"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("listen"));
}
