//! Every real capture of `../shared/testdata/real/` (when that folder exists)
//! gives the group counts its `SOURCES.md` states, and every damaged group in
//! the noisy captures is rejected.
//!
//! SOURCES.md counts `LF … CR` groups "framing aside" (and LF-separated lines
//! in the files whose capture path lost every CR). [`sources_groups`] extracts
//! exactly those, and each is checked by the real decoder inside its own
//! frame. The frame-level tests then decode the files as they are.

use std::path::{Path, PathBuf};
use tic::{Decoder, EndReason, Event, GroupError};

fn real_dir() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/testdata/real");
    dir.join("SOURCES.md").exists().then_some(dir)
}

/// `(file name, valid, invalid)` from the SOURCES.md table.
fn expected_counts(dir: &Path) -> Vec<(String, u32, u32)> {
    let text = std::fs::read_to_string(dir.join("SOURCES.md")).unwrap();
    let mut rows = Vec::new();
    for line in text.lines().filter(|l| l.starts_with("| `")) {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let file = cells[1].trim_matches('`').to_string();
        // The "groups (valid / invalid)" column: the first "N / M" of the row.
        let groups = cells
            .iter()
            .find_map(|c| {
                let mut words = c.split_whitespace();
                let valid = words.next()?.parse::<u32>().ok()?;
                (words.next()? == "/").then_some(())?;
                let invalid = words.next()?.parse::<u32>().ok()?;
                Some((valid, invalid))
            })
            .unwrap_or_else(|| panic!("no 'N / M' group count in the SOURCES.md row of {file}"));
        rows.push((file, groups.0, groups.1));
    }
    rows
}

/// The groups as SOURCES.md counts them: for each LF, the bytes up to the next
/// CR, abandoned if LF, STX, ETX or EOT comes first; empty ones skipped. In a
/// file without any CR, each non-empty LF-separated line (framing bytes
/// removed).
fn sources_groups(bytes: &[u8]) -> Vec<Vec<u8>> {
    let framing = |b: u8| matches!(b & 0x7F, 0x02..=0x04);
    if !bytes.contains(&b'\r') {
        return bytes
            .split(|&b| b == b'\n')
            .map(|l| {
                l.iter()
                    .copied()
                    .filter(|&b| !framing(b))
                    .collect::<Vec<u8>>()
            })
            .filter(|l| !l.is_empty())
            .collect();
    }
    let mut groups = Vec::new();
    let mut i = 0;
    while let Some(lf) = bytes[i..].iter().position(|&b| b == b'\n') {
        let start = i + lf + 1;
        let end = bytes[start..]
            .iter()
            .position(|&b| b == b'\r' || b == b'\n' || framing(b));
        match end {
            Some(e) if bytes[start + e] == b'\r' => {
                if e > 0 {
                    groups.push(bytes[start..start + e].to_vec());
                }
                i = start + e + 1;
            }
            Some(e) => i = start + e,
            None => break,
        }
    }
    groups
}

struct Decoded {
    valid: u32,
    rejected: Vec<GroupError>,
    frames: Vec<(EndReason, u16, u16)>,
}

fn decode(bytes: &[u8]) -> Decoded {
    let mut d = Decoder::new();
    let mut out = Decoded {
        valid: 0,
        rejected: Vec::new(),
        frames: Vec::new(),
    };
    let record = |ev: Event<'_>, out: &mut Decoded| match ev {
        Event::Group(_) => out.valid += 1,
        Event::Rejected(r) => out.rejected.push(r.error),
        Event::FrameEnd(f) => out
            .frames
            .push((f.reason, f.stats.valid_groups, f.stats.rejected)),
        Event::FrameStart => {}
    };
    let mut input = bytes;
    while !input.is_empty() {
        let (used, ev) = d.feed(input);
        input = &input[used..];
        if let Some(ev) = ev {
            record(ev, &mut out);
        }
    }
    while let Some(ev) = d.finish() {
        record(ev, &mut out);
    }
    out
}

#[test]
fn group_counts_match_sources_md() {
    let Some(dir) = real_dir() else {
        eprintln!("../shared/testdata/real not found: skipped (the generated fixtures still run)");
        return;
    };
    let expected = expected_counts(&dir);
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n != "SOURCES.md")
        .collect();
    files.sort();
    assert!(
        files.len() >= 15,
        "expected the 15 captures, found {files:?}"
    );
    for file in files {
        let (_, valid, invalid) = expected
            .iter()
            .find(|(f, _, _)| *f == file)
            .unwrap_or_else(|| panic!("{file} has no row in SOURCES.md"));
        let bytes = std::fs::read(dir.join(&file)).unwrap();
        let (mut got_valid, mut got_invalid) = (0, 0);
        for group in sources_groups(&bytes) {
            let mut framed = vec![0x02, b'\n'];
            framed.extend_from_slice(&group);
            framed.extend_from_slice(b"\r\x03");
            let d = decode(&framed);
            assert_eq!(d.valid + d.rejected.len() as u32, 1, "{file}: {group:?}");
            got_valid += d.valid;
            got_invalid += d.rejected.len() as u32;
        }
        assert_eq!(
            (got_valid, got_invalid),
            (*valid, *invalid),
            "{file}: (valid, invalid) groups"
        );
    }
}

fn read(name: &str) -> Option<Vec<u8>> {
    Some(std::fs::read(real_dir()?.join(name)).unwrap())
}

#[test]
fn noisy_standard_stream_rejects_every_damaged_group() {
    let Some(bytes) = read("gaetronik_teleinfo-nom__stream_standard_raw.txt") else {
        return;
    };
    let d = decode(&bytes);
    // 7 complete frames; the capture starts mid-frame and ends mid-frame.
    let complete: Vec<_> = d.frames.iter().filter(|f| f.0 == EndReason::Etx).collect();
    assert_eq!(complete.len(), 7);
    // Every group whose checksum was damaged in transit is rejected...
    let checksum = d
        .rejected
        .iter()
        .filter(|e| matches!(e, GroupError::Checksum { .. }))
        .count();
    // ...13 in all, of which 1 lies before the first STX (outside any frame,
    // so not decoded) — SOURCES.md counts them framing aside.
    assert_eq!(checksum, 12);
    // The two groups whose CR arrived as FF (EASD01, EASF06) run into the next
    // LF and are rejected as cut; so are a lone `P` followed by LF and the
    // final LF cut by the end of the capture.
    let truncated = d
        .rejected
        .iter()
        .filter(|e| **e == GroupError::Truncated)
        .count();
    assert_eq!(
        truncated, 4,
        "2 FF-terminated groups, `LF P LF`, 1 cut by the end"
    );
    // No valid group of a complete frame is missing: each complete frame has
    // every group either valid or rejected, 55 to 63 in all.
    for (_, valid, rejected) in complete {
        assert!(
            (55..=75).contains(&(valid + rejected)),
            "{valid} + {rejected}"
        );
    }
}

#[test]
fn every_accepted_group_of_every_capture_has_a_well_formed_value() {
    let Some(dir) = real_dir() else { return };
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        let mut d = Decoder::new();
        let mut input = &bytes[..];
        while !input.is_empty() {
            let (used, ev) = d.feed(input);
            input = &input[used..];
            if let Some(Event::Group(g)) = ev {
                if let Some(info) = g.info {
                    assert!(info.format.accepts(g.value_bytes()));
                    if info.horodated {
                        assert!(
                            g.horodate.is_some(),
                            "{}: {} without horodate",
                            path.display(),
                            g.label
                        );
                    } else {
                        assert!(
                            g.horodate.is_none(),
                            "{}: {} with horodate",
                            path.display(),
                            g.label
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn eight_bit_captures_decode_like_seven_bit_ones() {
    let Some(bytes) = read("lains_ticdecodecpp__continuous_linky_1P_standard_TIC_sample.bin")
    else {
        return;
    };
    // Set bit 7 as an 8N1 capture of 7E1 bytes does (the parity bit).
    let with_parity: Vec<u8> = bytes
        .iter()
        .map(|&b| if b.count_ones() % 2 == 1 { b | 0x80 } else { b })
        .collect();
    let (a, b) = (decode(&bytes), decode(&with_parity));
    assert_eq!(
        (a.valid, &a.rejected, &a.frames),
        (b.valid, &b.rejected, &b.frames)
    );
    assert_eq!(a.valid, 456);
}
