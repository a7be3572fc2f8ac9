//! The server's side of the ack semantics, as a pure function, so every
//! receiver (`teleinfo serve`, tests, tools) applies the same rules
//! (docs/uplink.md, "Semantics").

use core::ops::Range;

/// What to do with a decoded batch, given what is already durable for its
/// (device id, boot id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchPlan {
    /// Leading frames of the batch already durable (retransmissions): skip
    /// them.
    pub skip_frames: usize,
    /// Sequence numbers the device evicted before sending: record them as
    /// lost, never wait for them.
    pub lost: Option<Range<u32>>,
    /// The ack to send once the remaining frames are durable. `None` only
    /// when the boot has nothing durable and the batch has no frame.
    pub durable_through_after: Option<u32>,
}

/// Plans a batch `[first_seq, first_seq + frame_count)` against the
/// boot's `durable_through` (`None`: nothing of this boot stored yet).
///
/// Because a device always sends from its oldest held frame, a batch that
/// starts beyond `durable_through + 1` proves the frames in between are
/// gone; one that starts at or below it overlaps frames already durable.
pub fn plan_batch(durable_through: Option<u32>, first_seq: u32, frame_count: usize) -> BatchPlan {
    if frame_count == 0 {
        return BatchPlan {
            skip_frames: 0,
            lost: None,
            durable_through_after: durable_through,
        };
    }
    // decode_batch guarantees first_seq + frame_count - 1 fits in u32.
    let last = first_seq.saturating_add(frame_count as u32 - 1);
    let next_expected = durable_through.map_or(0, |d| d.saturating_add(1));
    let lost = (first_seq > next_expected).then_some(next_expected..first_seq);
    let skip_frames = match durable_through {
        Some(d) if d >= first_seq => ((d - first_seq) as usize + 1).min(frame_count),
        _ => 0,
    };
    BatchPlan {
        skip_frames,
        lost,
        durable_through_after: Some(durable_through.map_or(last, |d| d.max(last))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_batch_of_a_boot() {
        assert_eq!(
            plan_batch(None, 0, 5),
            BatchPlan {
                skip_frames: 0,
                lost: None,
                durable_through_after: Some(4)
            }
        );
    }

    #[test]
    fn retransmission_overlapping_durable_frames() {
        // 0..=9 durable; the ack was lost and the device resends 5..=14.
        assert_eq!(
            plan_batch(Some(9), 5, 10),
            BatchPlan {
                skip_frames: 5,
                lost: None,
                durable_through_after: Some(14)
            }
        );
        // Entirely old.
        assert_eq!(plan_batch(Some(9), 0, 4).skip_frames, 4);
        assert_eq!(plan_batch(Some(9), 0, 4).durable_through_after, Some(9));
    }

    #[test]
    fn gap_from_eviction() {
        assert_eq!(
            plan_batch(Some(9), 20, 3),
            BatchPlan {
                skip_frames: 0,
                lost: Some(10..20),
                durable_through_after: Some(22)
            }
        );
        // A boot first seen after the device evicted its start.
        assert_eq!(plan_batch(None, 7, 1).lost, Some(0..7));
    }

    #[test]
    fn heartbeat() {
        assert_eq!(plan_batch(Some(3), 4, 0).durable_through_after, Some(3));
        assert_eq!(plan_batch(None, 0, 0).durable_through_after, None);
    }
}
