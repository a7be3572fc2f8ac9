//! Property tests of the decoder (and of the parsers it uses).
//!
//! * Round trip: random valid groups of either mode, known or unknown labels,
//!   written with [`tic::encode`], decode to exactly what was written.
//! * Robustness: arbitrary bytes never panic, and `feed` always makes progress.
//! * Chunking: the decoder's fast path (a whole group checked in place) and its
//!   slow path (bytes copied one by one) must agree, so the event sequence of a
//!   stream must not depend on how it is cut into chunks. Streams mix valid
//!   frames with the damage real lines show: noise, bit 7 set, EOT, lost CR,
//!   overlong groups, truncated frames.

use proptest::prelude::*;
use tic::labels::{self, DataFormat, LabelInfo};
use tic::{
    encode, parse_group, Decoder, Event, FrameEnd, Group, Horodate, Mode, Options, Rejection,
    Season, MAX_GROUP_LEN,
};

// ---------------------------------------------------------------------------
// Owned events, so that sequences from different runs can be compared.

#[derive(Debug, Clone, PartialEq, Eq)]
enum Owned {
    FrameStart,
    Group {
        mode: Mode,
        label: String,
        value: String,
        horodate: Option<Horodate>,
        checksum: u8,
        info: Option<&'static LabelInfo>,
    },
    Rejected(Rejection),
    FrameEnd(FrameEnd),
}

impl From<Event<'_>> for Owned {
    fn from(event: Event<'_>) -> Owned {
        match event {
            Event::FrameStart => Owned::FrameStart,
            Event::Group(g) => Owned::from_group(&g),
            Event::Rejected(r) => Owned::Rejected(r),
            Event::FrameEnd(end) => Owned::FrameEnd(*end),
        }
    }
}

impl Owned {
    fn from_group(g: &Group<'_>) -> Owned {
        Owned::Group {
            mode: g.mode,
            label: g.label.to_owned(),
            value: g.value().to_owned(),
            horodate: g.horodate,
            checksum: g.checksum,
            info: g.info,
        }
    }
}

/// Decodes `stream` cut at the given chunk lengths (cycled; the last chunk
/// takes the rest), then calls `finish` until it returns `None`.
fn decode_chunked(options: Options, stream: &[u8], chunk_lens: &[usize]) -> Vec<Owned> {
    let mut decoder = Decoder::with_options(options);
    let mut events = Vec::new();
    let mut at = 0;
    let mut lens = chunk_lens.iter().cycle();
    while at < stream.len() {
        let len = lens.next().map_or(stream.len(), |&n| n.max(1));
        let end = (at + len).min(stream.len());
        let mut chunk = &stream[at..end];
        // A step may consume nothing when it yields an event and leaves the
        // byte to the next state: at most twice in a row (an STX inside a
        // group truncates the group, then ends the frame, then opens one).
        let mut idle_steps = 0;
        while !chunk.is_empty() {
            let (used, event) = decoder.feed(chunk);
            assert!(used <= chunk.len(), "consumed more than given");
            if used == 0 {
                assert!(event.is_some(), "no progress and no event");
                idle_steps += 1;
                assert!(idle_steps <= 2, "three steps without consuming a byte");
            } else {
                idle_steps = 0;
            }
            if let Some(event) = event {
                events.push(Owned::from(event));
            }
            chunk = &chunk[used..];
        }
        at = end;
    }
    let mut finishing = 0;
    while let Some(event) = decoder.finish() {
        events.push(Owned::from(event));
        finishing += 1;
        assert!(finishing <= 2, "finish() must end in at most two events");
    }
    assert!(!decoder.in_frame());
    events
}

/// A group's content (between LF and CR) rebuilt from its decoded parts.
fn reassemble(g: &Group<'_>) -> Vec<u8> {
    let sep = g.mode.separator();
    let mut out = g.label.as_bytes().to_vec();
    out.push(sep);
    if let Some(h) = &g.horodate {
        out.extend_from_slice(&h.to_wire());
        out.push(sep);
    }
    out.extend_from_slice(g.value_bytes());
    out.push(sep);
    out.push(g.checksum);
    out
}

fn decode_whole(options: Options, stream: &[u8]) -> Vec<Owned> {
    decode_chunked(options, stream, &[])
}

// ---------------------------------------------------------------------------
// Generators.

fn mode() -> impl Strategy<Value = Mode> {
    prop_oneof![Just(Mode::Historic), Just(Mode::Standard)]
}

fn days_in_month(year: u16, month: u8) -> u8 {
    match month {
        4 | 6 | 9 | 11 => 30,
        2 if (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400) => {
            29
        }
        2 => 28,
        _ => 31,
    }
}

fn horodate() -> impl Strategy<Value = Horodate> {
    let season = prop_oneof![
        Just((Season::Summer, false)),
        Just((Season::Summer, true)),
        Just((Season::Winter, false)),
        Just((Season::Winter, true)),
        Just((Season::None, false)),
    ];
    (
        season,
        2000u16..=2099,
        1u8..=12,
        1u8..=31,
        0u8..24,
        0u8..60,
        0u8..60,
    )
        .prop_map(
            |((season, degraded), year, month, day, hour, minute, second)| Horodate {
                season,
                degraded,
                year,
                month,
                day: day.min(days_in_month(year, month)),
                hour,
                minute,
                second,
            },
        )
}

fn printable(max: usize) -> impl Strategy<Value = String> {
    proptest::collection::vec(0x20u8..=0x7E, 0..=max)
        .prop_map(|bytes| bytes.into_iter().map(char::from).collect())
}

fn from_class(class: &'static [u8], len: std::ops::RangeInclusive<usize>) -> BoxedStrategy<String> {
    proptest::collection::vec(proptest::sample::select(class), len)
        .prop_map(|bytes| bytes.into_iter().map(char::from).collect())
        .boxed()
}

const DIGITS: &[u8] = b"0123456789";
const HEX: &[u8] = b"0123456789ABCDEF";

fn day_profile() -> impl Strategy<Value = String> {
    let block = prop_oneof![
        1 => Just("NONUTILE".to_owned()),
        3 => (0u8..24, 0u8..60, from_class(HEX, 4..=4))
            .prop_map(|(h, m, action)| format!("{h:02}{m:02}{action}")),
    ];
    proptest::collection::vec(block, 1..=11).prop_map(|blocks| blocks.join(" "))
}

/// A value matching a data format.
fn value_for(format: DataFormat) -> BoxedStrategy<String> {
    match format {
        DataFormat::Digits => from_class(DIGITS, 1..=19),
        DataFormat::Hex => from_class(HEX, 1..=8),
        DataFormat::Empty => Just(String::new()).boxed(),
        DataFormat::DayProfile => day_profile().boxed(),
        DataFormat::Text => printable(40).boxed(),
    }
}

/// One valid group of `mode`: `(label, horodate, value)`.
type Spec = (String, Option<Horodate>, String);

fn known_group(mode: Mode) -> impl Strategy<Value = Spec> {
    proptest::sample::select(labels::all(mode)).prop_flat_map(move |info| {
        let h = if info.horodated {
            horodate().prop_map(Some).boxed()
        } else {
            Just(None).boxed()
        };
        (Just(info.label.to_owned()), h, value_for(info.format))
    })
}

fn unknown_group(mode: Mode) -> impl Strategy<Value = Spec> {
    // Labels use 0x21-0x7E: no separator can appear in them.
    let label = proptest::collection::vec(0x21u8..=0x7E, 1..=12)
        .prop_map(|bytes| bytes.into_iter().map(char::from).collect::<String>())
        .prop_filter("a known label, or one a bit-6 flip away", move |l| {
            labels::lookup(mode, l.as_bytes()).is_none()
                && !labels::is_corrupted_label(mode, l.as_bytes())
        });
    let h = match mode {
        Mode::Historic => Just(None).boxed(),
        Mode::Standard => proptest::option::of(horodate()).boxed(),
    };
    (label, h, printable(MAX_GROUP_LEN))
}

/// A valid group; values too long for [`MAX_GROUP_LEN`] are cut to fit.
fn group(mode: Mode) -> impl Strategy<Value = Spec> {
    prop_oneof![3 => known_group(mode), 1 => unknown_group(mode)].prop_map(
        move |(label, h, mut value)| {
            let overhead = 1 + label.len() + 1 + h.map_or(0, |_| 14) + 1 + 1 + 1;
            value.truncate(MAX_GROUP_LEN - overhead);
            (label, h, value)
        },
    )
}

fn frame(mode: Mode) -> impl Strategy<Value = Vec<Spec>> {
    proptest::collection::vec(group(mode), 1..12)
}

fn encode_frame(mode: Mode, groups: &[Spec]) -> Vec<u8> {
    let mut out = Vec::new();
    let items = groups.iter().map(|(l, h, v)| (l.as_str(), *h, v.as_str()));
    encode::write_frame(mode, items, &mut |b| out.extend_from_slice(b)).expect("valid groups");
    out
}

/// A valid frame of either mode, encoded.
fn valid_frame() -> BoxedStrategy<Vec<u8>> {
    mode()
        .prop_flat_map(|m| frame(m).prop_map(move |g| encode_frame(m, &g)))
        .boxed()
}

/// A piece of a stream: valid frames and the damage seen on real lines.
fn segment() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        6 => valid_frame(),
        // Line noise: any bytes, biased towards the framing bytes.
        2 => proptest::collection::vec(
            prop_oneof![4 => any::<u8>(), 1 => proptest::sample::select(&[2u8, 3, 4, 9, 10, 13, 32][..])],
            0..64,
        ),
        // A frame with bit 7 set on some bytes (8N1 capture of a 7E1 line).
        1 => (valid_frame(), any::<u64>()).prop_map(|(mut f, seed)| {
            for (i, b) in f.iter_mut().enumerate() {
                if (seed >> (i % 64)) & 1 == 1 {
                    *b |= 0x80;
                }
            }
            f
        }),
        // A frame interrupted by EOT (the meter resumes with a new frame).
        1 => (valid_frame(), any::<prop::sample::Index>()).prop_map(|(mut f, at)| {
            let at = at.index(f.len());
            f.truncate(at);
            f.push(tic::EOT);
            f
        }),
        // A frame cut anywhere (a new STX follows, or the input ends).
        1 => (valid_frame(), any::<prop::sample::Index>()).prop_map(|(mut f, at)| {
            f.truncate(at.index(f.len()));
            f
        }),
        // A lost or damaged CR: dropped, or received as FF.
        1 => (valid_frame(), any::<prop::sample::Index>(), any::<bool>()).prop_map(|(mut f, at, ff)| {
            let crs: Vec<usize> = (0..f.len()).filter(|&i| f[i] == tic::CR).collect();
            let i = crs[at.index(crs.len())];
            if ff {
                f[i] = 0x0C;
            } else {
                f.remove(i);
            }
            f
        }),
        // One corrupted byte anywhere (a flipped bit).
        1 => (valid_frame(), any::<prop::sample::Index>(), 0u8..8).prop_map(|(mut f, at, bit)| {
            let i = at.index(f.len());
            f[i] ^= 1 << bit;
            f
        }),
        // An overlong group, around the limit.
        1 => (valid_frame(), MAX_GROUP_LEN - 6..MAX_GROUP_LEN + 40, proptest::option::of(0x20u8..=0x7E))
            .prop_map(|(mut f, len, fill)| {
                let mut group = vec![tic::LF];
                group.extend((0..len).map(|i| fill.unwrap_or(b'A' + (i % 26) as u8)));
                group.push(tic::CR);
                let at = f.len() - 1; // before ETX
                f.splice(at..at, group);
                f
            }),
    ]
}

fn stream() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(segment(), 1..8).prop_map(|s| s.concat())
}

fn options() -> impl Strategy<Value = Options> {
    any::<bool>().prop_map(|historic_mode2| Options { historic_mode2 })
}

// ---------------------------------------------------------------------------
// Properties.

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// encode → decode gives back every group, in order, in one complete frame.
    #[test]
    fn round_trip((mode, groups) in mode().prop_flat_map(|m| (Just(m), frame(m))), options in options()) {
        let bytes = encode_frame(mode, &groups);
        let events = decode_whole(options, &bytes);
        prop_assert_eq!(events.len(), groups.len() + 2);
        prop_assert_eq!(&events[0], &Owned::FrameStart);
        for ((label, h, value), event) in groups.iter().zip(&events[1..]) {
            let Owned::Group { mode: m, label: l, value: v, horodate, checksum, info } = event else {
                return Err(TestCaseError::fail(format!("{label:?}/{value:?} rejected: {event:?}")));
            };
            prop_assert_eq!(*m, mode);
            prop_assert_eq!(l, label);
            prop_assert_eq!(v, value);
            prop_assert_eq!(horodate, h);
            prop_assert_eq!(*info, labels::lookup(mode, label.as_bytes()));
            // The checksum is the group's byte before CR.
            let mut one = [0u8; MAX_GROUP_LEN];
            let n = encode::encode_group(mode, label, h.as_ref(), value, &mut one).unwrap();
            prop_assert_eq!(*checksum, one[n - 2]);
            // parse_group on the same content agrees with the decoder.
            let g = parse_group(&one[1..n - 1], options.historic_mode2).unwrap();
            prop_assert_eq!(&Owned::from_group(&g), event);
            // Typed access works on the formats that promise it.
            if let Some(info) = info {
                match info.format {
                    DataFormat::Digits => prop_assert!(g.number().is_some()),
                    DataFormat::Hex if info.label == "STGE" && value.len() == 8 => {
                        prop_assert!(tic::stge::Stge::parse(value).is_some())
                    }
                    DataFormat::DayProfile => prop_assert!(tic::profile::DayProfile::parse(value).is_some()),
                    _ => {}
                }
            }
        }
        let Owned::FrameEnd(end) = &events[groups.len() + 1] else {
            return Err(TestCaseError::fail("no frame end"));
        };
        prop_assert!(end.complete);
        prop_assert_eq!(end.stats.mode, Some(mode));
        prop_assert_eq!(end.stats.valid_groups as usize, groups.len());
        prop_assert_eq!(end.stats.rejected, 0);
    }

    /// Flipping one bit of a group's content never yields a *different* valid
    /// group silently: it is rejected, or (1 in 64 for the checksum, and the
    /// format checks) it decodes to a group whose re-encoding is the damaged
    /// bytes — i.e. the decoder never invents data.
    #[test]
    fn damaged_groups_decode_to_what_was_received(
        (mode, spec) in mode().prop_flat_map(|m| (Just(m), group(m))),
        at in any::<prop::sample::Index>(),
        bit in 0u8..7,
    ) {
        let (label, h, value) = &spec;
        let mut buf = [0u8; MAX_GROUP_LEN];
        let n = encode::encode_group(mode, label, h.as_ref(), value, &mut buf).unwrap();
        let content = &mut buf[1..n - 1];
        let i = at.index(content.len());
        content[i] ^= 1 << bit;
        if let Ok(g) = parse_group(content, false) {
            prop_assert_eq!(reassemble(&g), content.to_vec());
        }
    }

    /// Arbitrary bytes, cut anywhere, never panic and always make progress.
    #[test]
    fn arbitrary_bytes_never_panic(
        bytes in proptest::collection::vec(any::<u8>(), 0..4096),
        cuts in proptest::collection::vec(1usize..300, 1..8),
        options in options(),
    ) {
        decode_chunked(options, &bytes, &cuts);
        let _ = parse_group(&bytes[..bytes.len().min(200)], options.historic_mode2);
        let _ = Horodate::parse(&bytes[..bytes.len().min(13)]);
    }

    /// Chunking never changes the events: whole buffer vs random chunk
    /// lengths vs one byte at a time (the slow path only).
    #[test]
    fn chunking_never_changes_the_events(
        stream in stream(),
        cuts in proptest::collection::vec(1usize..200, 1..10),
        options in options(),
    ) {
        let whole = decode_whole(options, &stream);
        let chunked = decode_chunked(options, &stream, &cuts);
        prop_assert_eq!(&whole, &chunked);
        let bytewise = decode_chunked(options, &stream, &[1]);
        prop_assert_eq!(&whole, &bytewise);
    }

    /// The same property on streams that are mostly noise around framing bytes.
    #[test]
    fn chunking_never_changes_the_events_on_noise(
        bytes in proptest::collection::vec(
            prop_oneof![
                3 => 0x20u8..=0x7E,
                1 => proptest::sample::select(&[2u8, 3, 4, 9, 10, 13, 0x0C, 0x8A, 0x8D, 0x82, 0xA0][..]),
                1 => any::<u8>(),
            ],
            0..2048,
        ),
        cuts in proptest::collection::vec(1usize..200, 1..10),
    ) {
        let whole = decode_whole(Options::default(), &bytes);
        prop_assert_eq!(&whole, &decode_chunked(Options::default(), &bytes, &cuts));
        prop_assert_eq!(&whole, &decode_chunked(Options::default(), &bytes, &[1]));
    }

    /// Bit 7 is ignored: setting it on every byte changes nothing.
    #[test]
    fn bit_7_is_ignored(stream in stream(), cuts in proptest::collection::vec(1usize..200, 1..10)) {
        let clear: Vec<u8> = stream.iter().map(|b| b & 0x7F).collect();
        let set: Vec<u8> = stream.iter().map(|b| b | 0x80).collect();
        let expected = decode_whole(Options::default(), &clear);
        prop_assert_eq!(&expected, &decode_chunked(Options::default(), &set, &cuts));
    }
}

// ---------------------------------------------------------------------------
// The real captures, when the shared test data is present.

fn real_captures() -> Vec<(String, Vec<u8>)> {
    let dir = std::env::var_os("TIC_TESTDATA").map_or_else(
        || std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/testdata/real"),
        std::path::PathBuf::from,
    );
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut files: Vec<_> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "bin" || x == "txt"))
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect();
    files.sort();
    files
}

#[test]
fn real_captures_decode_the_same_in_any_chunking() {
    for (name, bytes) in real_captures() {
        let whole = decode_whole(Options::default(), &bytes);
        for cuts in [&[1usize][..], &[2], &[3, 7, 64], &[127, 128, 129], &[1000]] {
            assert_eq!(
                whole,
                decode_chunked(Options::default(), &bytes, cuts),
                "{name} {cuts:?}"
            );
        }
    }
}
