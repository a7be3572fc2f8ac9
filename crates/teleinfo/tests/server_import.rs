//! `teleinfo import` of raw captures (plain, with a `.times` sidecar, historic needing
//! --start/--interval) and `teleinfo export` of what was stored.

mod server_support;

use server_support::*;
use std::process::Command;

fn run(args: &[&str], dir: &std::path::Path) -> (bool, String, String) {
    let out = Command::new(BIN)
        .args(args)
        .arg("--data")
        .arg(dir)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn import_then_export() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // Standard mode: times come from each frame's DATE.
    let (meter, frames) = sim_frames(50, 4);
    let std_file = dir.path().join("std.tic");
    std::fs::write(&std_file, frames.concat()).unwrap();
    let (ok, _, err) = run(&["import", "--quiet", std_file.to_str().unwrap()], &data);
    assert!(ok, "{err}");
    assert!(err.contains("imported 50 new frames of 50"), "{err}");
    let (ok, _, err) = run(&["import", "--quiet", std_file.to_str().unwrap()], &data);
    assert!(
        ok && err.contains("imported 0 new frames of 50"),
        "re-import stores nothing twice: {err}"
    );

    // Historic mode, plain file: needs --start/--interval.
    let cfg = meter_sim::Config {
        mode: tic::Mode::Historic,
        seed: 9,
        ..meter_sim::Config::default()
    };
    let mut sim = meter_sim::Simulator::new(cfg).unwrap();
    let hist: Vec<u8> = (0..30).flat_map(|_| sim.next_frame().bytes).collect();
    let hmeter = sim.address().to_string();
    let hist_file = dir.path().join("hist.tic");
    std::fs::write(&hist_file, &hist).unwrap();
    let (ok, _, err) = run(&["import", "--quiet", hist_file.to_str().unwrap()], &data);
    assert!(!ok && err.contains("--start"), "{err}");
    let (ok, _, err) = run(
        &[
            "import",
            "--quiet",
            "--start",
            "1767222000",
            "--interval",
            "2s",
            hist_file.to_str().unwrap(),
        ],
        &data,
    );
    assert!(ok, "{err}");

    // A `read --raw` capture with its sidecar: frame i completes at 1767300000000 + 1000 i.
    let (_, frames2) = sim_frames(10, 5);
    let raw_file = dir.path().join("cap.raw");
    let mut bytes = Vec::new();
    let mut times = String::from("# 1767300000000 reading /dev/ttyUSB0\n");
    for (i, f) in frames2.iter().enumerate() {
        let at = bytes.len();
        bytes.extend_from_slice(f);
        times.push_str(&format!(
            "{} {at}\n",
            1_767_300_000_000_i64 + 1000 * i as i64
        ));
    }
    std::fs::write(&raw_file, &bytes).unwrap();
    std::fs::write(dir.path().join("cap.raw.times"), times).unwrap();
    let (ok, _, err) = run(&["import", "--quiet", raw_file.to_str().unwrap()], &data);
    assert!(ok, "{err}");

    let (ok, csv, err) = run(
        &[
            "export",
            "--meter",
            &meter,
            "--from",
            "1700000000",
            "--to",
            "1900000000",
            "--metric",
            "SINSTS",
        ],
        &data,
    );
    assert!(ok, "{err}");
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], "ts_ms,time_utc,metric,value");
    assert_eq!(lines.len(), 1 + 50, "{csv}");
    assert!(lines[1].contains(",SINSTS,"));
    let (ok, json, err) = run(
        &[
            "export",
            "--meter",
            &hmeter,
            "--from",
            "1767222000",
            "--to",
            "1767222100",
            "--format",
            "json",
        ],
        &data,
    );
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let papp = v["series"]["PAPP"].as_array().unwrap();
    assert_eq!(papp.len(), 30);
    assert_eq!(
        papp[1][0].as_i64().unwrap() - papp[0][0].as_i64().unwrap(),
        2000
    );
    let (ok, _, err) = run(&["export", "--meter", "nope", "--from", "0"], &data);
    assert!(!ok && err.contains("no series"), "{err}");
}
