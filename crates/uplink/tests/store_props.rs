//! Property tests of the queue's record codec: compaction is lossless for
//! any bytes (not only well-formed TIC), and corrupted records never panic.

mod common;

use proptest::prelude::*;
use uplink::compact::{compact, expand};
use uplink::store::{decode_record, encode_record, MAX_RECORD_BYTES};
use uplink::{QueuedFrame, MAX_FRAME_BYTES};

/// Bytes biased towards TIC structure: control characters, separators,
/// digits, real groups of both modes, and high bytes.
fn tic_like() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        Just(vec![0x02]),
        Just(vec![0x03]),
        Just(vec![0x04]),
        Just(vec![0x0A]),
        Just(vec![0x0D]),
        Just(vec![0x09]),
        Just(vec![0x20]),
        Just(vec![0xFE]),
        Just(vec![0xFF]),
        (0u8..=255).prop_map(|b| vec![b]),
        ("[A-Z0-9+-]{1,9}", "[ -~]{0,20}").prop_map(|(l, v)| common::standard_group(&l, &v)),
        ("[A-Z0-9+-]{1,9}", "[!-~]{0,12}").prop_map(|(l, v)| common::historic_group(&l, &v)),
        (0u64..1000).prop_map(|n| common::standard_group("SINSTS", &format!("{n:05}"))),
        (0u64..1000).prop_map(|n| common::historic_group("PAPP", &format!("{n:05}"))),
    ];
    proptest::collection::vec(piece, 0..40).prop_map(|pieces| pieces.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

    #[test]
    fn compaction_is_lossless(frame in tic_like()) {
        let mut packed = vec![0u8; frame.len() * 2 + 4];
        let n = compact(&frame, &mut packed).unwrap();
        let mut back = vec![0u8; frame.len()];
        let m = expand(&packed[..n], &mut back);
        prop_assert_eq!(m, Some(frame.len()));
        prop_assert_eq!(&back[..], &frame[..]);
    }

    #[test]
    fn expanding_garbage_never_panics(data in proptest::collection::vec(any::<u8>(), 0..600)) {
        let mut out = vec![0u8; MAX_FRAME_BYTES];
        let _ = expand(&data, &mut out);
        let mut small = [0u8; 8];
        let _ = expand(&data, &mut small);
    }

    #[test]
    fn records_round_trip(frame in tic_like(), boot_id in any::<u64>(), seq in any::<u32>(),
                          time in proptest::option::of(1u64..)) {
        prop_assume!(!frame.is_empty() && frame.len() <= MAX_FRAME_BYTES);
        let f = QueuedFrame { boot_id, seq, device_time_unix_ms: time, bytes: &frame };
        let mut record = [0u8; MAX_RECORD_BYTES];
        let n = encode_record(&f, &mut record).unwrap();
        let mut scratch = [0u8; MAX_FRAME_BYTES];
        prop_assert_eq!(decode_record(&record[..n], &mut scratch), Some(f));
    }

    #[test]
    fn corrupted_records_never_panic(record in proptest::collection::vec(any::<u8>(), 0..700)) {
        let mut scratch = [0u8; MAX_FRAME_BYTES];
        let _ = decode_record(&record, &mut scratch);
    }
}

#[test]
fn full_frames_compact_by_a_third() {
    for three_phase in [false, true] {
        let frame = common::full_standard_frame(7, three_phase);
        let mut packed = vec![0u8; frame.len()];
        let n = compact(&frame, &mut packed).unwrap();
        assert!(n * 100 < frame.len() * 66, "{n} of {}", frame.len());
    }
}
