//! Fuzzes the streaming decoder, `parse_group` and `Horodate::parse`.
//!
//! The first 4 bytes of the input choose the options and the chunk lengths;
//! the rest is the stream. Checked on every input:
//! * nothing panics, and `feed` always makes progress;
//! * the events are the same whole, in the chosen chunks, and byte by byte
//!   (the decoder's in-place fast path against its byte-by-byte slow path);
//! * setting bit 7 on every byte changes nothing;
//! * `parse_group` on the stream agrees with the decoder on that group framed
//!   as `STX LF … CR ETX`, and an accepted group rebuilds to the same bytes;
//! * an accepted horodate writes back to the same 13 bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tic::{parse_group, Decoder, Event, FrameEnd, Group, Horodate, Mode, Options, Rejection};

#[derive(Debug, Clone, PartialEq, Eq)]
enum Owned {
    FrameStart,
    Group {
        mode: Mode,
        label: String,
        value: String,
        horodate: Option<Horodate>,
        checksum: u8,
        info: Option<&'static tic::LabelInfo>,
    },
    Rejected(Rejection),
    FrameEnd(FrameEnd),
}

impl Owned {
    fn group(g: &Group<'_>) -> Owned {
        Owned::Group {
            mode: g.mode,
            label: g.label.to_owned(),
            value: g.value().to_owned(),
            horodate: g.horodate,
            checksum: g.checksum,
            info: g.info,
        }
    }

    fn of(event: Event<'_>) -> Owned {
        match event {
            Event::FrameStart => Owned::FrameStart,
            Event::Group(g) => Owned::group(&g),
            Event::Rejected(r) => Owned::Rejected(r),
            Event::FrameEnd(end) => Owned::FrameEnd(*end),
        }
    }
}

/// Decodes `stream` in chunks of the given lengths (cycled; none = whole).
fn decode(options: Options, stream: &[u8], lens: &[usize]) -> Vec<Owned> {
    let mut decoder = Decoder::with_options(options);
    let mut events = Vec::new();
    let mut at = 0;
    let mut lens = lens.iter().cycle();
    while at < stream.len() {
        let end = lens
            .next()
            .map_or(stream.len(), |&n| (at + n.max(1)).min(stream.len()));
        let mut chunk = &stream[at..end];
        let mut stalled = 0;
        while !chunk.is_empty() {
            let (used, event) = decoder.feed(chunk);
            assert!(used <= chunk.len());
            stalled = if used == 0 { stalled + 1 } else { 0 };
            assert!(stalled <= 2 && (used > 0 || event.is_some()), "no progress");
            events.extend(event.map(Owned::of));
            chunk = &chunk[used..];
        }
        at = end;
    }
    let mut tail = 0;
    while let Some(event) = decoder.finish() {
        events.push(Owned::of(event));
        tail += 1;
        assert!(tail <= 2);
    }
    events
}

fn rebuild(g: &Group<'_>) -> Vec<u8> {
    let sep = g.mode.separator();
    let mut out = g.label.as_bytes().to_vec();
    out.push(sep);
    if let Some(h) = &g.horodate {
        out.extend_from_slice(&h.to_wire());
        out.push(sep);
    }
    out.extend_from_slice(g.value_bytes());
    out.extend_from_slice(&[sep, g.checksum]);
    out
}

fuzz_target!(|data: &[u8]| {
    let (head, stream) = data.split_at(data.len().min(4));
    let options = Options {
        historic_mode2: head.first().is_some_and(|b| b & 0x80 != 0),
    };
    let lens: Vec<usize> = head.iter().map(|&b| (b & 0x7F) as usize + 1).collect();

    let whole = decode(options, stream, &[]);
    assert_eq!(whole, decode(options, stream, &lens), "chunks {lens:?}");
    assert_eq!(whole, decode(options, stream, &[1]), "byte by byte");
    let high: Vec<u8> = stream.iter().map(|b| b | 0x80).collect();
    assert_eq!(whole, decode(options, &high, &lens), "bit 7 set");

    // parse_group against the decoder on the same group.
    let parsed = parse_group(stream, options.historic_mode2);
    if let Ok(g) = &parsed {
        assert_eq!(rebuild(g), stream);
    }
    let framing = |b: &u8| matches!(b, 0x02 | 0x03 | 0x04 | 0x0A | 0x0D) || *b >= 0x80;
    if stream.len() <= tic::MAX_GROUP_LEN - 2 && !stream.iter().any(framing) {
        let mut framed = vec![tic::STX, tic::LF];
        framed.extend_from_slice(stream);
        framed.extend_from_slice(&[tic::CR, tic::ETX]);
        let events = decode(options, &framed, &[]);
        let expected = match &parsed {
            Ok(g) => Owned::group(g),
            Err(e) => match &events[1] {
                Owned::Rejected(r) => {
                    assert_eq!(r.error, *e);
                    events[1].clone()
                }
                other => panic!("decoder accepted {other:?}, parse_group said {e:?}"),
            },
        };
        assert_eq!(events[1], expected);
    }

    if let Ok(h) = Horodate::parse(stream) {
        assert_eq!(&h.to_wire()[..], stream);
    }
});
