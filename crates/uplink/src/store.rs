//! The device's frame queue: a [`FrameStore`] trait (RAM ring, NOR flash, or
//! both tiered), and the record codec every store shares.
//!
//! A record is one queued frame: `boot_id u64 | seq u32 | device time u64 |
//! encoding u8 | frame length u16 | payload`. The payload is the frame
//! compacted (encoding 2, [`crate::compact`]: checked groups of known labels
//! become a token and their data, about a third smaller), or else packed 8
//! bytes into 7 (encoding 1, TIC bytes are 7-bit), or else raw (0) —
//! whichever is smallest. That is what lets a 4 MB chip keep over an hour
//! of standard-mode frames (docs/firmware.md).

use crate::wire::MAX_FRAME_BYTES;

/// Record header: boot id, sequence number, device time, flags, frame
/// length (needed because 15 and 16 bytes both pack into 14).
pub const RECORD_HEADER_BYTES: usize = 8 + 4 + 8 + 1 + 2;
/// Largest record: header plus an unpacked maximal frame.
pub const MAX_RECORD_BYTES: usize = RECORD_HEADER_BYTES + MAX_FRAME_BYTES;

const FLAG_PACKED7: u8 = 0x01;
const FLAG_COMPACT: u8 = 0x02;

/// One queued frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueuedFrame<'a> {
    /// Boot during which the frame was received (its sequence space).
    pub boot_id: u64,
    /// Sequence number within that boot.
    pub seq: u32,
    /// Device wall-clock time at reception, if synchronised.
    pub device_time_unix_ms: Option<u64>,
    /// Raw frame bytes.
    pub bytes: &'a [u8],
}

/// Why a store operation failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreError<E> {
    /// No room for this record: the caller evicts the oldest and retries.
    Full,
    /// The frame can never be stored (empty or over [`MAX_FRAME_BYTES`]).
    TooBig,
    /// A stored record failed to decode (flash corruption).
    Corrupt,
    /// The backend (flash driver, sequential-storage) failed.
    Backend(E),
}

/// A FIFO of frames. Oldest first; only the oldest can be removed.
///
/// The methods are `async` because NOR flash drivers are; RAM stores never
/// suspend. Only single-threaded executors (embassy, `block_on`) drive them,
/// so the futures need not be `Send`.
#[allow(async_fn_in_trait)]
pub trait FrameStore {
    /// Backend error.
    type Error: core::fmt::Debug;

    /// Appends a frame at the newest end.
    async fn push(&mut self, frame: &QueuedFrame<'_>) -> Result<(), StoreError<Self::Error>>;

    /// Calls `visit` with frames from the oldest on, until it returns
    /// `false` or the store is exhausted.
    async fn visit_oldest(
        &mut self,
        visit: &mut dyn FnMut(&QueuedFrame<'_>) -> bool,
    ) -> Result<(), StoreError<Self::Error>>;

    /// Removes the oldest frame; `false` if the store was empty.
    async fn pop_oldest(&mut self) -> Result<bool, StoreError<Self::Error>>;

    /// Frames held.
    fn frames(&self) -> usize;

    /// Bytes used (records, plus backend overhead where known).
    fn used_bytes(&self) -> usize;

    /// Total capacity in bytes.
    fn capacity_bytes(&self) -> usize;
}

/// A store lent by reference (the firmware keeps its big stores in statics).
impl<S: FrameStore + ?Sized> FrameStore for &mut S {
    type Error = S::Error;

    async fn push(&mut self, frame: &QueuedFrame<'_>) -> Result<(), StoreError<Self::Error>> {
        (**self).push(frame).await
    }

    async fn visit_oldest(
        &mut self,
        visit: &mut dyn FnMut(&QueuedFrame<'_>) -> bool,
    ) -> Result<(), StoreError<Self::Error>> {
        (**self).visit_oldest(visit).await
    }

    async fn pop_oldest(&mut self) -> Result<bool, StoreError<Self::Error>> {
        (**self).pop_oldest().await
    }

    fn frames(&self) -> usize {
        (**self).frames()
    }

    fn used_bytes(&self) -> usize {
        (**self).used_bytes()
    }

    fn capacity_bytes(&self) -> usize {
        (**self).capacity_bytes()
    }
}

/// Encodes a record into `out`; returns its length. The payload is the
/// smallest of: the frame compacted ([`crate::compact`]), 7-bit packed, or
/// raw.
pub fn encode_record(frame: &QueuedFrame<'_>, out: &mut [u8]) -> Option<usize> {
    if frame.bytes.is_empty() || frame.bytes.len() > MAX_FRAME_BYTES {
        return None;
    }
    let raw_len = frame.bytes.len();
    let header = out.get_mut(..RECORD_HEADER_BYTES)?;
    header[..8].copy_from_slice(&frame.boot_id.to_le_bytes());
    header[8..12].copy_from_slice(&frame.seq.to_le_bytes());
    header[12..20].copy_from_slice(&frame.device_time_unix_ms.unwrap_or(0).to_le_bytes());
    header[21..23].copy_from_slice(&(raw_len as u16).to_le_bytes());
    let packable = frame.bytes.iter().all(|&b| b < 0x80);
    let packed = if packable {
        packed_len(raw_len)
    } else {
        raw_len
    };
    let payload = out.get_mut(RECORD_HEADER_BYTES..)?;
    // Compact into at most `packed - 1` bytes: only worth it if smaller.
    let budget = packed.saturating_sub(1).min(payload.len());
    let (flag, len) = match crate::compact::compact(frame.bytes, &mut payload[..budget]) {
        Some(n) => (FLAG_COMPACT, n),
        None if packable => {
            pack7(frame.bytes, payload.get_mut(..packed)?);
            (FLAG_PACKED7, packed)
        }
        None => {
            payload.get_mut(..raw_len)?.copy_from_slice(frame.bytes);
            (0, raw_len)
        }
    };
    out[20] = flag;
    Some(RECORD_HEADER_BYTES + len)
}

/// Decodes a record, unpacking into `scratch` when needed.
pub fn decode_record<'a>(record: &'a [u8], scratch: &'a mut [u8]) -> Option<QueuedFrame<'a>> {
    if record.len() <= RECORD_HEADER_BYTES {
        return None;
    }
    let boot_id = u64::from_le_bytes(record[..8].try_into().ok()?);
    let seq = u32::from_le_bytes(record[8..12].try_into().ok()?);
    let time = u64::from_le_bytes(record[12..20].try_into().ok()?);
    let len = usize::from(u16::from_le_bytes([record[21], record[22]]));
    let payload = &record[RECORD_HEADER_BYTES..];
    let bytes: &[u8] = match record[20] {
        0 if payload.len() == len && len <= MAX_FRAME_BYTES => payload,
        FLAG_PACKED7 => {
            let n = unpack7(payload, len, scratch)?;
            &scratch[..n]
        }
        FLAG_COMPACT => {
            let n = crate::compact::expand(payload, scratch.get_mut(..len.min(MAX_FRAME_BYTES))?)?;
            if n != len || n == 0 {
                return None;
            }
            &scratch[..n]
        }
        _ => return None,
    };
    Some(QueuedFrame {
        boot_id,
        seq,
        device_time_unix_ms: (time != 0).then_some(time),
        bytes,
    })
}

/// Size of `n` 7-bit bytes packed.
pub fn packed_len(n: usize) -> usize {
    (n * 7).div_ceil(8)
}

/// Packs 7-bit bytes into a continuous bit stream, LSB first.
fn pack7(input: &[u8], out: &mut [u8]) {
    let mut acc: u32 = 0;
    let mut bits = 0;
    let mut at = 0;
    for &b in input {
        acc |= u32::from(b & 0x7F) << bits;
        bits += 7;
        while bits >= 8 {
            out[at] = acc as u8;
            at += 1;
            acc >>= 8;
            bits -= 8;
        }
    }
    if bits > 0 {
        out[at] = acc as u8;
    }
}

/// Inverse of [`pack7`] for `n` bytes.
fn unpack7(input: &[u8], n: usize, out: &mut [u8]) -> Option<usize> {
    if n == 0 || n > MAX_FRAME_BYTES || packed_len(n) != input.len() {
        return None;
    }
    let out = out.get_mut(..n)?;
    let mut acc: u32 = 0;
    let mut bits = 0;
    let mut at = 0;
    for &b in input {
        acc |= u32::from(b) << bits;
        bits += 8;
        while bits >= 7 && at < n {
            out[at] = (acc & 0x7F) as u8;
            at += 1;
            acc >>= 7;
            bits -= 7;
        }
    }
    Some(n)
}

/// Copies `out.len()` bytes of a ring starting at `start` (taken modulo the
/// ring length), wrapping around the end.
fn read_ring(ring: &[u8], start: usize, out: &mut [u8]) {
    let start = start % ring.len();
    let first = out.len().min(ring.len() - start);
    out[..first].copy_from_slice(&ring[start..start + first]);
    let rest = out.len() - first;
    out[first..].copy_from_slice(&ring[..rest]);
}

/// Copies `bytes` into a ring at `start` (modulo the ring length), wrapping.
fn write_ring(ring: &mut [u8], start: usize, bytes: &[u8]) {
    let start = start % ring.len();
    let first = bytes.len().min(ring.len() - start);
    ring[start..start + first].copy_from_slice(&bytes[..first]);
    ring[..bytes.len() - first].copy_from_slice(&bytes[first..]);
}

/// A RAM ring of records: `len u16 | record` entries in a fixed byte array.
/// No allocation; capacity is `N` bytes including the 2-byte length prefixes.
#[derive(Debug)]
pub struct RamStore<const N: usize> {
    ring: [u8; N],
    head: usize,
    used: usize,
    frames: usize,
    scratch: [u8; MAX_RECORD_BYTES],
    unpacked: [u8; MAX_FRAME_BYTES],
}

impl<const N: usize> Default for RamStore<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> RamStore<N> {
    /// An empty ring.
    pub const fn new() -> Self {
        RamStore {
            ring: [0; N],
            head: 0,
            used: 0,
            frames: 0,
            scratch: [0; MAX_RECORD_BYTES],
            unpacked: [0; MAX_FRAME_BYTES],
        }
    }

    fn len_at(&self, offset: usize) -> usize {
        let mut len = [0u8; 2];
        read_ring(&self.ring, self.head + offset, &mut len);
        usize::from(u16::from_le_bytes(len))
    }

    /// Synchronous push (RAM never waits).
    pub fn push_now(
        &mut self,
        frame: &QueuedFrame<'_>,
    ) -> Result<(), StoreError<core::convert::Infallible>> {
        let len = encode_record(frame, &mut self.scratch).ok_or(StoreError::TooBig)?;
        if 2 + len > N {
            return Err(StoreError::TooBig);
        }
        if self.used + 2 + len > N {
            return Err(StoreError::Full);
        }
        let tail = self.head + self.used;
        write_ring(&mut self.ring, tail, &(len as u16).to_le_bytes());
        write_ring(&mut self.ring, tail + 2, &self.scratch[..len]);
        self.used += 2 + len;
        self.frames += 1;
        Ok(())
    }

    /// Synchronous pop.
    pub fn pop_now(&mut self) -> bool {
        if self.frames == 0 {
            return false;
        }
        let len = self.len_at(0);
        self.head = (self.head + 2 + len) % N;
        self.used -= 2 + len;
        self.frames -= 1;
        if self.frames == 0 {
            self.head = 0;
        }
        true
    }

    /// Synchronous visit.
    pub fn visit_now(
        &mut self,
        visit: &mut dyn FnMut(&QueuedFrame<'_>) -> bool,
    ) -> Result<(), StoreError<core::convert::Infallible>> {
        let mut offset = 0;
        for _ in 0..self.frames {
            let len = self.len_at(offset);
            read_ring(&self.ring, self.head + offset + 2, &mut self.scratch[..len]);
            let keep_going = match decode_record(&self.scratch[..len], &mut self.unpacked) {
                Some(frame) => visit(&frame),
                None => return Err(StoreError::Corrupt),
            };
            if !keep_going {
                break;
            }
            offset += 2 + len;
        }
        Ok(())
    }
}

impl<const N: usize> FrameStore for RamStore<N> {
    type Error = core::convert::Infallible;

    async fn push(&mut self, frame: &QueuedFrame<'_>) -> Result<(), StoreError<Self::Error>> {
        self.push_now(frame)
    }

    async fn visit_oldest(
        &mut self,
        visit: &mut dyn FnMut(&QueuedFrame<'_>) -> bool,
    ) -> Result<(), StoreError<Self::Error>> {
        self.visit_now(visit)
    }

    async fn pop_oldest(&mut self) -> Result<bool, StoreError<Self::Error>> {
        Ok(self.pop_now())
    }

    fn frames(&self) -> usize {
        self.frames
    }

    fn used_bytes(&self) -> usize {
        self.used
    }

    fn capacity_bytes(&self) -> usize {
        N
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use embassy_futures::block_on;

    fn frame(seq: u32, bytes: &[u8]) -> QueuedFrame<'_> {
        QueuedFrame {
            boot_id: 9,
            seq,
            device_time_unix_ms: if seq.is_multiple_of(2) {
                Some(1000 + u64::from(seq))
            } else {
                None
            },
            bytes,
        }
    }

    #[test]
    fn pack_round_trip() {
        for n in 1..40 {
            let input: Vec<u8> = (0..n).map(|i| (i * 37 % 128) as u8).collect();
            let mut packed = vec![0u8; packed_len(n)];
            pack7(&input, &mut packed);
            let mut out = vec![0u8; MAX_FRAME_BYTES];
            assert_eq!(unpack7(&packed, n, &mut out), Some(n), "n={n}");
            assert_eq!(&out[..n], &input[..]);
        }
    }

    #[test]
    fn record_round_trip_packed_and_raw() {
        let mut buf = [0u8; MAX_RECORD_BYTES];
        let mut scratch = [0u8; MAX_FRAME_BYTES];
        for bytes in [&b"\x02\nADCO 0123 X\r\x03"[..], &[0x82, 0xFF, 0x03][..]] {
            let f = frame(4, bytes);
            let n = encode_record(&f, &mut buf).unwrap();
            assert_eq!(decode_record(&buf[..n], &mut scratch), Some(f));
        }
    }

    #[test]
    fn ring_fifo_wraps_and_reports_full() {
        let mut store = RamStore::<200>::new();
        let mut next = 0u32;
        let mut oldest = 0u32;
        for round in 0..50 {
            let payload = vec![b'a' + (round % 26) as u8; 10 + round % 30];
            match store.push_now(&frame(next, &payload)) {
                Ok(()) => next += 1,
                Err(StoreError::Full) => {
                    assert!(store.pop_now());
                    oldest += 1;
                }
                Err(e) => panic!("{e:?}"),
            }
            let mut seen = Vec::new();
            block_on(store.visit_oldest(&mut |f| {
                seen.push(f.seq);
                true
            }))
            .unwrap();
            assert_eq!(seen, (oldest..next).collect::<Vec<_>>());
        }
        assert!(store.used_bytes() <= 200);
    }
}
