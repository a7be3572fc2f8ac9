//! `teleinfo decode`: the JSON-lines contract, the formats and bad input,
//! through the real binary.

use serde_json::Value;
use std::io::Write;
use std::process::{Command, Output, Stdio};

fn teleinfo(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_teleinfo"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().unwrap()
}

fn jsonl(stdin: &[u8]) -> Vec<Value> {
    let out = teleinfo(&["decode", "--format", "jsonl"], stdin);
    assert!(out.status.success());
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn jsonl_contract_on_a_standard_frame() {
    let frame =
        b"\x02\nADSC\t041776199277\tI\r\nDATE\tE170915101601\t\t>\r\nNGTF\t     TEMPO      \tF\r\
                  \nDPM1\t 200214060000\t00\t\\\r\x03";
    let frames = jsonl(frame);
    assert_eq!(frames.len(), 1);
    let f = &frames[0];
    assert_eq!(f["mode"], "standard");
    assert_eq!(f["complete"], true);
    assert_eq!(f["invalid_groups"], 0);
    let g = f["groups"].as_array().unwrap();
    assert_eq!(g[0]["label"], "ADSC");
    assert_eq!(g[0]["value"], "041776199277");
    assert_eq!(g[0]["horodate"], Value::Null);
    assert_eq!(g[1]["value"], "");
    assert_eq!(g[1]["horodate"]["season"], "E");
    assert_eq!(g[1]["horodate"]["local"], "2017-09-15T10:16:01");
    assert_eq!(g[1]["horodate"]["utc"], "2017-09-15T08:16:01Z");
    assert_eq!(g[2]["value"], "     TEMPO      ");
    assert_eq!(g[3]["horodate"]["season"], " ");
    assert_eq!(g[3]["horodate"]["utc"], Value::Null);
}

#[test]
fn jsonl_contract_on_interrupted_and_noisy_frames() {
    // Historic: a good group, a corrupted one, then EOT; then a frame cut by
    // a new STX; then one cut by the end of input. Bytes before the first STX
    // and between frames are ignored; bit 7 is ignored.
    let mut bytes = b"noise\r\n\x03".to_vec();
    bytes.extend_from_slice(b"\x02\nADCO 021861348497 L\r\nPAPP 00420 X\r\x04");
    bytes.extend_from_slice(b"between");
    bytes.extend_from_slice(b"\x02\nADCO 021861348497 L\r\nPTEC HP");
    bytes.extend([0x02 | 0x80]);
    bytes.extend(b"\nPTEC HP..  \r".iter().map(|b| b | 0x80));
    let frames = jsonl(&bytes);
    assert_eq!(frames.len(), 3, "{frames:?}");
    assert_eq!(frames[0]["complete"], false);
    assert_eq!(frames[0]["invalid_groups"], 1);
    assert_eq!(frames[0]["groups"].as_array().unwrap().len(), 1);
    assert_eq!(frames[0]["mode"], "historic");
    assert_eq!(frames[1]["complete"], false);
    assert_eq!(frames[1]["invalid_groups"], 1); // PTEC cut by STX
    assert_eq!(frames[2]["complete"], false);
    assert_eq!(frames[2]["groups"][0]["value"], "HP..");
}

#[test]
fn text_and_stats_formats() {
    let frame = b"\x02\nADCO 021861348497 L\r\nPAPP 00420 X\r\nPTEC HP..  \r\x03";
    let out = teleinfo(&["decode"], frame);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("frame 1: historic, complete, 2 groups, 1 rejected"),
        "{text}"
    );
    assert!(text.contains("checksum mismatch"), "{text}");
    let out = teleinfo(&["decode", "--format", "stats", "-"], frame);
    let stats = String::from_utf8(out.stdout).unwrap();
    assert!(stats.contains("complete:        1"), "{stats}");
    assert!(stats.contains("checksum         1"), "{stats}");
    assert!(stats.contains("meters:            021861348497"), "{stats}");
}

#[test]
fn no_stx_means_no_output_and_a_diagnosis() {
    let out = teleinfo(
        &["decode", "--format", "jsonl"],
        b"\nADCO 021861348497 L\r\nPTEC HP..  \r",
    );
    assert!(out.status.success());
    assert!(out.stdout.is_empty());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("no frame found") && err.contains("2 valid TIC groups"),
        "{err}"
    );
    let out = teleinfo(&["decode"], &[0x55u8; 100]);
    assert!(out.status.success() && out.stdout.is_empty());
    assert!(String::from_utf8(out.stderr)
        .unwrap()
        .contains("no frame found"));
}

#[test]
fn unreadable_file_is_one_line_naming_it() {
    let out = teleinfo(&["decode", "/nonexistent/capture.bin"], b"");
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("/nonexistent/capture.bin") && err.contains("No such file"),
        "{err}"
    );
}
