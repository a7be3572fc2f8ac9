//! The project's own fixtures, made with the encoder: every label of both
//! modes and every error kind. These run in a fresh clone without `../shared`.

use tic::labels::{self, DataFormat};
use tic::{encode, Decoder, EndReason, Event, GroupError, Horodate, HorodateError, Mode};

/// A valid value for a label's format and nominal length.
fn sample_value(info: &tic::LabelInfo) -> String {
    let n = info.chars.max(1) as usize;
    match info.format {
        DataFormat::Digits => "7".repeat(n),
        DataFormat::Hex => "0123456789ABCDEF"[..n.min(16)].to_string(),
        DataFormat::Empty => String::new(),
        DataFormat::DayProfile => {
            "00004001 0600C002 2200800A NONUTILE NONUTILE NONUTILE NONUTILE NONUTILE NONUTILE NONUTILE NONUTILE"
                .to_string()
        }
        DataFormat::Text => format!("{:^width$}", "X Y", width = n),
    }
}

#[derive(Debug, PartialEq)]
enum Seen {
    Start,
    Group(String, String, Option<Horodate>),
    Rejected(GroupError),
    End(EndReason, Option<Mode>, u16, u16),
}

fn decode_all(bytes: &[u8]) -> Vec<Seen> {
    let mut d = Decoder::new();
    let mut seen = Vec::new();
    let mut input = bytes;
    let push = |ev: Event<'_>, seen: &mut Vec<Seen>| {
        seen.push(match ev {
            Event::FrameStart => Seen::Start,
            Event::Group(g) => Seen::Group(g.label.into(), g.value().into(), g.horodate),
            Event::Rejected(r) => Seen::Rejected(r.error),
            Event::FrameEnd(f) => Seen::End(
                f.reason,
                f.stats.mode,
                f.stats.valid_groups,
                f.stats.rejected,
            ),
        })
    };
    while !input.is_empty() {
        let (used, ev) = d.feed(input);
        input = &input[used..];
        if let Some(ev) = ev {
            push(ev, &mut seen);
        }
    }
    while let Some(ev) = d.finish() {
        push(ev, &mut seen);
    }
    seen
}

#[test]
fn every_label_of_both_modes_round_trips_with_its_dictionary_entry() {
    let h = Horodate::parse(b"E250630121314").unwrap();
    for mode in [Mode::Historic, Mode::Standard] {
        let values: Vec<(String, Option<Horodate>, String)> = labels::all(mode)
            .iter()
            .map(|info| {
                let horodate = info.horodated.then_some(h);
                (info.label.to_string(), horodate, sample_value(info))
            })
            .collect();
        let mut frame = Vec::new();
        encode::write_frame(
            mode,
            values.iter().map(|(l, h, v)| (l.as_str(), *h, v.as_str())),
            &mut |b| frame.extend_from_slice(b),
        )
        .unwrap();
        let mut d = Decoder::new();
        let mut input = &frame[..];
        let mut checked = 0;
        while !input.is_empty() {
            let (used, ev) = d.feed(input);
            input = &input[used..];
            match ev {
                Some(Event::Group(g)) => {
                    let (label, horodate, value) = &values[checked];
                    assert_eq!(
                        (g.label, g.value(), g.horodate),
                        (label.as_str(), value.as_str(), *horodate)
                    );
                    let info = g.info.expect("dictionary entry");
                    assert_eq!(info.label, label);
                    assert_eq!(g.mode, mode);
                    checked += 1;
                }
                Some(Event::Rejected(r)) => {
                    panic!("{mode:?}: rejected {:?} at group {checked}", r.error)
                }
                Some(Event::FrameEnd(f)) => {
                    assert!(f.complete);
                    assert_eq!(f.stats.valid_groups as usize, values.len());
                }
                _ => {}
            }
        }
        assert_eq!(checked, labels::all(mode).len());
    }
}

#[test]
fn unknown_well_formed_labels_are_kept() {
    let mut frame = Vec::new();
    encode::write_frame(
        Mode::Standard,
        [("FUTURE9", None, "abc DEF"), ("EA_s", None, "12")],
        &mut |b| frame.extend_from_slice(b),
    )
    .unwrap();
    let seen = decode_all(&frame);
    assert_eq!(
        seen[1],
        Seen::Group("FUTURE9".into(), "abc DEF".into(), None)
    );
    assert_eq!(seen[2], Seen::Group("EA_s".into(), "12".into(), None));
}

/// One standard group with a horodate, as bytes between LF and CR.
fn group(mode: Mode, label: &str, horodate: Option<&str>, value: &str) -> Vec<u8> {
    let h = horodate.map(|h| Horodate::parse(h.as_bytes()).unwrap());
    let mut out = Vec::new();
    encode::write_group(mode, label, h.as_ref(), value, &mut |b| {
        out.extend_from_slice(b)
    })
    .unwrap();
    out[1..out.len() - 1].to_vec()
}

/// Recomputes the checksum after editing a group's content.
fn reseal(mut content: Vec<u8>) -> Vec<u8> {
    let n = content.len();
    let mode = if content[n - 2] == b'\t' {
        Mode::Standard
    } else {
        Mode::Historic
    };
    content[n - 1] = tic::checksum(mode, &content[..n - 1]);
    content
}

fn framed(contents: &[&[u8]]) -> Vec<u8> {
    let mut f = vec![0x02];
    for c in contents {
        f.push(b'\n');
        f.extend_from_slice(c);
        f.push(b'\r');
    }
    f.push(0x03);
    f
}

fn only_rejection(bytes: &[u8]) -> GroupError {
    let rejected: Vec<_> = decode_all(bytes)
        .into_iter()
        .filter_map(|s| match s {
            Seen::Rejected(e) => Some(e),
            _ => None,
        })
        .collect();
    assert_eq!(rejected.len(), 1, "{rejected:?} in {bytes:?}");
    rejected[0]
}

#[test]
fn every_error_kind_is_detected_and_named() {
    let good = group(Mode::Standard, "EAST", None, "012345678");
    let mut kinds = std::collections::BTreeSet::new();
    let mut check = |bytes: Vec<u8>, expected: GroupError| {
        let got = only_rejection(&bytes);
        assert_eq!(got, expected, "{bytes:?}");
        kinds.insert(got.kind_name());
    };

    // Truncated: cut by LF, by STX, by EOT, by ETX and by the end of input.
    check(
        b"\x02\nEAST\t0123"
            .iter()
            .chain(&framed(&[&good])[1..])
            .copied()
            .collect(),
        GroupError::Truncated,
    );
    check(
        b"\x02\nEAST\t01\x02\nEAST\t012345678\t3\r\x03".to_vec(),
        GroupError::Truncated,
    );
    check(b"\x02\nEAST\t01\x04".to_vec(), GroupError::Truncated);
    check(b"\x02\nEAST\t01\x03".to_vec(), GroupError::Truncated);
    check(b"\x02\nEAST\t01".to_vec(), GroupError::Truncated);
    // Too long: rejected once, then the decoder waits for the next LF.
    let mut long = b"\x02\nMSG1\t".to_vec();
    long.extend(std::iter::repeat_n(b'A', 300));
    long.extend_from_slice(b"\tX\r");
    long.extend_from_slice(&framed(&[&good])[1..]);
    check(long, GroupError::TooLong);
    // A control byte inside the group (a CR received as FF runs into the next group).
    check(framed(&[b"EAST\t0123\x0c5678\t4"]), GroupError::InvalidByte);
    check(framed(&[b"AB"]), GroupError::TooShort);
    check(framed(&[b"EAST:012345678:4"]), GroupError::MissingSeparator);
    check(
        framed(&[&reseal(b"EAST012345678 X".to_vec())]),
        GroupError::FieldCount,
    );
    check(
        framed(&[&reseal(b"\t012345678\tX".to_vec())]),
        GroupError::EmptyLabel,
    );
    let mut bad_ck = good.clone();
    *bad_ck.last_mut().unwrap() ^= 0x01;
    check(
        framed(&[&bad_ck]),
        GroupError::Checksum {
            expected: good[good.len() - 1],
            found: bad_ck[bad_ck.len() - 1],
        },
    );
    check(
        framed(&[&reseal(b"SMAXSN\tE251332100926\t00000\tX".to_vec())]),
        GroupError::Horodate(HorodateError::Impossible),
    );
    // Flipping bit 6 of a digit ('0' 0x30 -> 'p' 0x70) adds 64 to the sum:
    // the 6-bit checksum still matches, the index format catches it.
    let mut flipped = good.clone();
    flipped[5] ^= 0x40;
    assert_eq!(flipped[flipped.len() - 1], good[good.len() - 1]);
    check(framed(&[&flipped]), GroupError::Format);
    check(
        framed(&[&good, &group(Mode::Historic, "PAPP", None, "00420")]),
        GroupError::MixedModes,
    );
    // Bit 6 flipped in a label digit ('0' -> 'p'), and a flipped HT ('I')
    // gluing DATE to its horodate: the checksum still matches.
    let easf = group(Mode::Standard, "EASF01", None, "000000000");
    let mut easf_flip = easf.clone();
    easf_flip[4] ^= 0x40;
    assert_eq!(easf_flip.last(), easf.last());
    check(framed(&[&easf_flip]), GroupError::SuspectLabel);
    let date = group(Mode::Standard, "DATE", Some("E260102134400"), "");
    let mut date_flip = date.clone();
    date_flip[4] ^= 0x40;
    check(framed(&[&date_flip]), GroupError::SuspectLabel);
    assert_eq!(kinds.len(), GroupError::KINDS, "{kinds:?}");
}

#[test]
fn framing_rules() {
    let a = group(Mode::Historic, "ADCO", None, "021861348497");
    let b = group(Mode::Historic, "PTEC", None, "HP..");
    // Bytes before STX and between frames are ignored; bytes between groups too.
    let mut bytes = b"garbage\nNOT A GROUP\r\x03".to_vec();
    bytes.extend_from_slice(&framed(&[&a, &b]));
    bytes.extend_from_slice(b"junk between frames");
    let mut second = framed(&[&a]);
    second.insert(1, b'\r'); // a stray CR between STX and the first LF
    bytes.extend_from_slice(&second);
    let seen = decode_all(&bytes);
    assert_eq!(
        seen,
        vec![
            Seen::Start,
            Seen::Group("ADCO".into(), "021861348497".into(), None),
            Seen::Group("PTEC".into(), "HP..".into(), None),
            Seen::End(EndReason::Etx, Some(Mode::Historic), 2, 0),
            Seen::Start,
            Seen::Group("ADCO".into(), "021861348497".into(), None),
            Seen::End(EndReason::Etx, Some(Mode::Historic), 1, 0),
        ]
    );
    // EOT interrupts; a new STX before ETX ends the frame incomplete and opens the next.
    let mut bytes = framed(&[&a]);
    bytes.pop();
    bytes.push(0x04);
    bytes.extend_from_slice(&framed(&[&a])[..framed(&[&a]).len() - 1]);
    bytes.extend_from_slice(&framed(&[&b]));
    let ends: Vec<_> = decode_all(&bytes)
        .into_iter()
        .filter_map(|s| match s {
            Seen::End(r, ..) => Some(r),
            _ => None,
        })
        .collect();
    assert_eq!(ends, [EndReason::Eot, EndReason::NewStx, EndReason::Etx]);
    // A checksum equal to SP is valid: `PTEC HP..` + SP + SP.
    assert!(b.ends_with(b"  "));
}

#[test]
fn historic_mode2_is_off_by_default_and_available_as_an_option() {
    // "mode 2" checksum: the final SP included.
    let mut content = b"ADCO 021861348497 ".to_vec();
    content.push(tic::checksum(Mode::Standard, &content));
    assert_eq!(content.last(), Some(&b','));
    let bytes = framed(&[&content]);
    assert!(matches!(
        only_rejection(&bytes),
        GroupError::Checksum { .. }
    ));
    let mut d = Decoder::with_options(tic::Options {
        historic_mode2: true,
    });
    let mut input = &bytes[..];
    let mut valid = 0;
    while !input.is_empty() {
        let (used, ev) = d.feed(input);
        input = &input[used..];
        valid += matches!(ev, Some(Event::Group(_))) as u32;
    }
    assert_eq!(valid, 1);
}

#[test]
fn standard_date_has_an_empty_value_and_dpm_a_space_season() {
    let date = group(Mode::Standard, "DATE", Some("E170915101601"), "");
    assert_eq!(date, b"DATE\tE170915101601\t\t>");
    let dpm = group(Mode::Standard, "DPM1", Some(" 200214060000"), "00");
    assert_eq!(dpm, b"DPM1\t 200214060000\t00\t\\");
    let seen = decode_all(&framed(&[&date, &dpm]));
    let Seen::Group(_, v, Some(h)) = &seen[1] else {
        panic!()
    };
    assert_eq!((v.as_str(), h.utc().map(|u| u.hour)), ("", Some(8)));
    let Seen::Group(_, _, Some(h)) = &seen[2] else {
        panic!()
    };
    assert_eq!(h.utc(), None);
}

#[test]
fn decoder_size_is_bounded() {
    assert!(
        std::mem::size_of::<Decoder>() <= 200,
        "{}",
        std::mem::size_of::<Decoder>()
    );
}
