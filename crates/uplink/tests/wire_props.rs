//! Property tests of the wire format: no input makes the decoders panic,
//! and whatever the encoder writes decodes to the same values.

use proptest::prelude::*;
use uplink::wire::{header_len, FRAME_HEADER_BYTES};
use uplink::{
    decode_batch, Ack, BatchHeader, BatchWriter, Counter, LineMode, Telemetry, MAX_BATCH_BYTES,
};

fn line_mode() -> impl Strategy<Value = LineMode> {
    prop_oneof![
        Just(LineMode::Unknown),
        Just(LineMode::Historic),
        Just(LineMode::Standard)
    ]
}

prop_compose! {
    fn telemetry()(
        line_mode in line_mode(),
        rssi_dbm in any::<i8>(),
        uptime_s in any::<u32>(),
        free_heap_bytes in any::<u32>(),
        queued_frames in any::<u32>(),
        queued_bytes in any::<u32>(),
        queue_capacity_bytes in any::<u32>(),
        counters in proptest::array::uniform10(any::<u32>()),
    ) -> Telemetry {
        Telemetry { line_mode, rssi_dbm, uptime_s, free_heap_bytes, queued_frames,
                    queued_bytes, queue_capacity_bytes, counters }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(body in proptest::collection::vec(any::<u8>(), 0..4096)) {
        let _ = decode_batch(&body);
        let _ = Ack::decode(&body);
    }

    #[test]
    fn arbitrary_http_responses_never_panic(
        body in proptest::collection::vec(any::<u8>(), 0..600),
        eof in any::<bool>(),
        url in ".{0,64}",
    ) {
        let _ = uplink::http::parse_response(&body, eof);
        let mut with_head = b"HTTP/1.1 200 OK\r\nContent-Length: 26\r\n\r\n".to_vec();
        with_head.extend_from_slice(&body);
        let _ = uplink::http::parse_response(&with_head, eof);
        let _ = uplink::http::ServerUrl::parse(&url);
    }

    #[test]
    fn arbitrary_bytes_after_a_valid_preamble_never_panic(
        tail in proptest::collection::vec(any::<u8>(), 0..2048),
    ) {
        // Random bytes rarely get past the magic; start from a real one.
        let mut body = b"TICB\x01\x00".to_vec();
        body.extend_from_slice(&tail);
        let _ = decode_batch(&body);
    }

    #[test]
    fn mutated_valid_batches_never_panic(
        frames in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 1..200), 0..8),
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..6),
        cut in any::<usize>(),
    ) {
        let mut buf = vec![0u8; MAX_BATCH_BYTES];
        let header = BatchHeader {
            device_id: "dev",
            boot_id: 1,
            firmware_version: "1",
            telemetry: Telemetry::default(),
            first_seq: 0,
        };
        let mut w = BatchWriter::new(&mut buf, &header).unwrap();
        for f in &frames {
            w.push_frame(None, f).unwrap();
        }
        let mut body = w.finish().to_vec();
        for (at, value) in flips {
            let n = body.len();
            body[at % n] ^= value;
        }
        body.truncate(cut % (body.len() + 1));
        if let Ok(batch) = decode_batch(&body) {
            // A valid decode is internally consistent.
            prop_assert_eq!(batch.frames().count(), batch.frame_count());
        }
    }

    #[test]
    fn encode_decode_round_trip(
        device_id in "[0-9A-Za-z._-]{1,32}",
        firmware_version in "[ -~]{0,32}",
        boot_id in any::<u64>(),
        first_seq in 0u32..u32::MAX - 64,
        telemetry in telemetry(),
        frames in proptest::collection::vec(
            (proptest::option::of(1u64..), proptest::collection::vec(any::<u8>(), 1..600)),
            0..20,
        ),
    ) {
        let header = BatchHeader {
            device_id: &device_id,
            boot_id,
            firmware_version: &firmware_version,
            telemetry,
            first_seq,
        };
        let mut buf = vec![0u8; MAX_BATCH_BYTES];
        let mut w = BatchWriter::new(&mut buf, &header).unwrap();
        let mut written = Vec::new();
        for (time, bytes) in &frames {
            if !w.fits(bytes.len()) {
                break;
            }
            let seq = w.push_frame(*time, bytes).unwrap();
            written.push((seq, *time, bytes.clone()));
        }
        let body = w.finish().to_vec();
        let expected_len = header_len(&device_id, &firmware_version)
            + written.iter().map(|(_, _, b)| FRAME_HEADER_BYTES + b.len()).sum::<usize>();
        prop_assert_eq!(body.len(), expected_len);
        let batch = decode_batch(&body).unwrap();
        prop_assert_eq!(&batch.header, &header);
        let read: Vec<_> = batch
            .frames()
            .map(|f| (f.seq, f.device_time_unix_ms, f.bytes.to_vec()))
            .collect();
        prop_assert_eq!(read, written);
    }

    #[test]
    fn ack_round_trip(
        boot_id in any::<u64>(),
        durable in proptest::option::of(any::<u32>()),
        time in proptest::option::of(1u64..),
    ) {
        let ack = Ack { boot_id, durable_through_seq: durable, server_time_unix_ms: time };
        prop_assert_eq!(Ack::decode(&ack.encode()), Ok(ack));
    }
}

#[test]
fn counters_have_stable_wire_positions() {
    for (i, c) in Counter::ALL.iter().enumerate() {
        assert_eq!(*c as usize, i);
    }
}
