//! Where a group ends, what its bytes sum to and where its separators are,
//! found in one pass over its bytes (tic-protocol.md §2.3–2.5): the decoder's
//! hot loop.
//!
//! Two implementations give the same [`Scan`], byte for byte (the tests check
//! both against a one-byte-at-a-time scan):
//! * [`sse2`], on x86-64: 16 bytes per step in SSE2 registers, through the
//!   `safe_arch` crate's safe wrappers (this crate forbids `unsafe`). It is
//!   what the servers and the `teleinfo` command run.
//! * [`swar`], everywhere else (the ESP32 among them): 8 bytes per step as one
//!   `u64`, classified with word arithmetic ("SIMD within a register").
//!
//! Neither branches per byte; the autovectoriser made poor code of the
//! per-byte version. One pass gives the group's end, the checksum's sum and
//! the field separators, so the group's bytes are not read again to split it.

use crate::HT;

/// What [`scan`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Scan {
    /// Index of the first byte that cannot be inside a group; the length
    /// when there is none; a value ≥ the limit when the scan stopped there.
    pub end: usize,
    /// Sum of the bytes before `end`, exact modulo 64: all the checksum
    /// needs (it keeps the sum's low 6 bits).
    pub total: u32,
    /// Bit `i` set when byte `i` is HT (only the first [`MASK_BITS`] bytes:
    /// a `u64` shifts in one instruction, a `u128` in several).
    /// Standard mode splits its fields on HT; historic mode only needs to
    /// know there is none, and finds its one split (SP) within the label.
    pub ht: u64,
    /// The same for the next [`MASK_BITS`] bytes (bit `i` for byte 64 + `i`):
    /// the long groups (day profiles, messages) are split without searching.
    pub ht_high: u64,
}

/// How many bytes each separator mask of a [`Scan`] describes. Nearly every
/// real group is shorter than one mask, every group the decoder accepts is
/// shorter than two; longer ones are split by searching their bytes.
pub(crate) const MASK_BITS: usize = 64;

/// Whether a byte cannot be inside a group: anything but 0x20–0x7E and HT.
#[inline(always)]
fn is_outside(b: u8) -> bool {
    b.wrapping_sub(0x20) > 0x5E && b != HT
}

/// Finds the first byte of `bytes` that cannot be inside a group, sums the
/// bytes before it (modulo 64 is all that is kept exact), and maps where the
/// HT separators are. Stops looking at `limit`, rounded up to the step (8 or
/// 16 bytes): then `end` ≥ `limit`.
#[inline(always)]
pub(crate) fn scan(bytes: &[u8], limit: usize) -> Scan {
    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    {
        sse2::scan(bytes, limit)
    }
    #[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
    {
        swar::scan(bytes, limit)
    }
}

/// `bytes` split after its whole blocks of `len` bytes up to `limit` rounded
/// up to a block: the block loop then needs no limit check of its own, and
/// what is left (less than a block, or nothing when the limit came first) is
/// scanned on its own.
#[inline(always)]
fn whole_blocks(bytes: &[u8], limit: usize, len: usize) -> (&[u8], &[u8]) {
    bytes.split_at((bytes.len() / len).min(limit.div_ceil(len)) * len)
}

/// Runs `step` over `blocks` of `len` bytes, until one returns true (it found
/// the end). A step gets the mask its block's HT flags go to and their shift:
/// the blocks of the first [`MASK_BITS`] bytes fill [`Scan::ht`], the next
/// ones [`Scan::ht_high`]. Returns whether the end was found.
#[inline(always)]
fn masked_steps<B>(
    mut blocks: impl Iterator<Item = B>,
    len: usize,
    found: &mut Scan,
    mut step: impl FnMut(B, &mut u64, usize, &mut Scan) -> bool,
) -> bool {
    // The blocks of each mask in their own loop: no per-block test of which
    // mask a block goes to.
    let mut masks = [0u64; 2];
    for m in 0..masks.len() {
        for (k, block) in blocks.by_ref().take(MASK_BITS / len).enumerate() {
            if step(block, &mut masks[m], len * k, found) {
                [found.ht, found.ht_high] = masks;
                return true;
            }
        }
    }
    [found.ht, found.ht_high] = masks;
    let mut beyond = 0;
    blocks.any(|block| step(block, &mut beyond, 0, found))
}

/// A word's bytes all 0x01, and all 0x80: the lanes of word arithmetic.
pub(crate) const ONES: u64 = 0x0101_0101_0101_0101;
pub(crate) const HIGH: u64 = 0x80 * ONES;
/// A mask of the low `n` bytes of a word, `n` < 8.
#[inline(always)]
pub(crate) fn low_bytes(n: usize) -> u64 {
    (1u64 << (8 * n)) - 1
}

/// The first 8 bytes of a slice as a little-endian word (0 if shorter).
#[inline(always)]
pub(crate) fn word(bytes: &[u8]) -> u64 {
    let mut w = [0u8; 8];
    if let Some(b) = bytes.get(..8) {
        w.copy_from_slice(b);
    }
    u64::from_le_bytes(w)
}

/// The portable scan: one `u64` word (8 bytes) per step.
// On x86-64 only the tests call it, to keep it checked there too.
#[cfg_attr(
    all(target_arch = "x86_64", target_feature = "sse2", not(test)),
    allow(dead_code)
)]
pub(crate) mod swar {
    use super::*;

    const LOW7: u64 = 0x7F * ONES;
    const LOW6: u64 = 0x3F * ONES;

    /// Classifies the 8 bytes of a word: bit 7 of byte `k` of the results is set
    /// when byte `k` cannot be inside a group, respectively is HT.
    ///
    /// Every step works on the low 7 bits of each byte and adds at most 0x7F to
    /// them, so no carry crosses into the next byte: each byte's answer is exact,
    /// not only the first one's.
    #[inline(always)]
    pub(super) fn classify(x: u64) -> (u64, u64) {
        // Bit 7 of `not_ht` is set for every byte but HT (the exact zero-byte
        // test of `x ^ HT`); of `printable`, for 0x20–0x7E (bit 7 ignored).
        let z = x ^ (HT as u64 * ONES);
        let not_ht = ((z & LOW7) + LOW7) | z;
        let low7 = x & LOW7;
        let printable = (low7 + 0x60 * ONES) & !(low7 + ONES);
        let outside = (x | !printable) & not_ht & HIGH;
        (outside, !not_ht & HIGH)
    }

    /// Packs bit 7 of each byte of a word into 8 bits (byte `k` → bit `k`).
    #[inline(always)]
    fn pack_flags(flags: u64) -> u8 {
        // The multiply gathers bit 7 of each byte into the top byte: byte k's bit
        // lands on bit 56 + k, and no two partial products overlap (no carries).
        ((flags & HIGH).wrapping_mul(0x0002_0408_1020_4081) >> 56) as u8
    }

    /// The sum of the 8 bytes of a word.
    #[inline(always)]
    pub(super) fn byte_sum(x: u64) -> u32 {
        const EVEN: u64 = 0x00FF_00FF_00FF_00FF;
        // Four 16-bit lanes of at most 510; the multiply adds them all into the
        // top lane (at most 2040, so no lane overflows).
        let pairs = (x & EVEN) + ((x >> 8) & EVEN);
        (pairs.wrapping_mul(0x0001_0001_0001_0001) >> 48) as u32
    }

    /// [`scan`](super::scan), a word at a time.
    #[inline(always)]
    pub(crate) fn scan(bytes: &[u8], limit: usize) -> Scan {
        let mut found = Scan::default();
        let (head, tail) = whole_blocks(bytes, limit, 8);
        // The sum, modulo 64, in eight byte lanes: each lane keeps its bytes' low
        // 6 bits (at most 63 + 63, so no lane overflows), which is all the sum
        // modulo 64 depends on. One mask and one add per word.
        let mut lanes = 0u64;
        // One word: its HT flags into `mask` at `shift`; true at the group's end.
        let mut step = |chunk: &[u8], mask: &mut u64, shift: usize, found: &mut Scan| {
            let x = word(chunk);
            let (outside, ht) = classify(x);
            *mask |= (pack_flags(ht) as u64) << shift;
            if outside != 0 {
                let at = (outside.trailing_zeros() / 8) as usize;
                lanes = (lanes & LOW6) + (x & low_bytes(at) & LOW6);
                found.total = byte_sum(lanes);
                found.end += at;
                return true;
            }
            lanes = (lanes & LOW6) + (x & LOW6);
            found.end += 8;
            false
        };
        if masked_steps(head.chunks_exact(8), 8, &mut found, &mut step) {
            return found;
        }
        found.total = byte_sum(lanes);
        if found.end >= limit {
            return found;
        }
        for &b in tail {
            if found.end >= limit || is_outside(b) {
                break;
            }
            if found.end < MASK_BITS {
                found.ht |= ((b == HT) as u64) << found.end;
            } else if found.end < 2 * MASK_BITS {
                found.ht_high |= ((b == HT) as u64) << (found.end - MASK_BITS);
            }
            found.total += b as u32;
            found.end += 1;
        }
        found
    }
}

/// The x86-64 scan: 16 bytes per step in an SSE2 register.
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
pub(crate) mod sse2 {
    use super::{masked_steps, whole_blocks, Scan, MASK_BITS};
    use crate::HT;
    use safe_arch::{
        add_i64_m128i, bitand_m128i, bitandnot_m128i, bitor_m128i, cmp_eq_mask_i8_m128i,
        cmp_gt_mask_i8_m128i, load_unaligned_m128i, m128i, move_mask_i8_m128i, set_splat_i8_m128i,
        sum_of_u8_abs_diff_m128i, zeroed_m128i,
    };

    /// Bytes per step.
    const STEP: usize = 16;

    /// [`scan`](super::scan), 16 bytes at a time.
    #[inline(always)]
    pub(crate) fn scan(bytes: &[u8], limit: usize) -> Scan {
        let mut found = Scan::default();
        let (head, tail) = whole_blocks(bytes, limit, STEP);
        // The bytes' sum in two u64 lanes (`psadbw` against zero sums each
        // half of a block).
        let mut sums = zeroed_m128i();
        let index = m128i::from([0u8, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15]);
        // One block: its HT flags into `mask` at `shift`; true at the group's end.
        let mut step = |block: &[u8; STEP], mask: &mut u64, shift: usize, found: &mut Scan| {
            let x = load_unaligned_m128i(block);
            let ht = cmp_eq_mask_i8_m128i(x, set_splat_i8_m128i(HT as i8));
            // 0x20–0x7E: above 0x1F as signed bytes (0x80–0xFF are negative), not 0x7F.
            let printable = bitandnot_m128i(
                cmp_eq_mask_i8_m128i(x, set_splat_i8_m128i(0x7F)),
                cmp_gt_mask_i8_m128i(x, set_splat_i8_m128i(0x1F)),
            );
            let inside = move_mask_i8_m128i(bitor_m128i(printable, ht)) as u32;
            *mask |= (move_mask_i8_m128i(ht) as u32 as u64) << shift;
            let outside = !inside & 0xFFFF;
            if outside != 0 {
                let at = outside.trailing_zeros();
                // Only the bytes before the end count.
                let before = cmp_gt_mask_i8_m128i(set_splat_i8_m128i(at as i8), index);
                let last = sum_of_u8_abs_diff_m128i(bitand_m128i(x, before), zeroed_m128i());
                found.total = lanes_total(add_i64_m128i(sums, last));
                found.end += at as usize;
                return true;
            }
            sums = add_i64_m128i(sums, sum_of_u8_abs_diff_m128i(x, zeroed_m128i()));
            found.end += STEP;
            false
        };
        let blocks = head.chunks_exact(STEP).map(as_block);
        if masked_steps(blocks, STEP, &mut found, &mut step) {
            return found;
        }
        if found.end >= limit {
            found.total = lanes_total(sums);
            return found;
        }
        // Fewer than 16 bytes left: padded with 0, a byte that cannot be in a
        // group, so the scan ends within this block.
        let mut padded = [0u8; STEP];
        padded[..tail.len()].copy_from_slice(tail);
        let (start, mut mask) = (found.end, 0);
        step(&padded, &mut mask, start % MASK_BITS, &mut found);
        if start < MASK_BITS {
            found.ht |= mask;
        } else if start < 2 * MASK_BITS {
            found.ht_high |= mask;
        }
        found
    }

    /// A 16-byte chunk as an array (`chunks_exact` gives only such chunks).
    #[inline(always)]
    fn as_block(chunk: &[u8]) -> &[u8; STEP] {
        chunk.try_into().unwrap_or(&[0; STEP])
    }

    /// The sum of the two u64 lanes.
    #[inline(always)]
    fn lanes_total(sums: m128i) -> u32 {
        let [a, b] = <[u64; 2]>::from(sums);
        a.wrapping_add(b) as u32
    }
}

#[cfg(test)]
pub(crate) mod tests {
    extern crate std;
    use super::*;
    use crate::SP;
    use std::vec::Vec;

    /// A small deterministic generator, so that failures reproduce.
    pub(crate) struct Lcg(pub(crate) u64);

    impl Lcg {
        pub(crate) fn next(&mut self) -> u8 {
            self.0 = self
                .0
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (self.0 >> 56) as u8
        }

        /// Bytes biased towards the classes the scan tells apart.
        fn byte(&mut self) -> u8 {
            match self.next() % 8 {
                0 => HT,
                1 => SP,
                2 => self.next(),
                3 => [0x00, 0x0A, 0x0D, 0x1F, 0x7E, 0x7F, 0x80, 0x89, 0xA0, 0xFF]
                    [self.next() as usize % 10],
                _ => b'0' + self.next() % 43,
            }
        }
    }

    /// The scan, one byte at a time.
    fn naive_scan(bytes: &[u8], limit: usize) -> (usize, u32, u128) {
        let (mut end, mut total, mut ht) = (0, 0u32, 0u128);
        for &b in bytes {
            if end >= limit || is_outside(b) {
                break;
            }
            if end < 2 * MASK_BITS && b == HT {
                ht |= 1 << end;
            }
            total += b as u32;
            end += 1;
        }
        (end, total, ht)
    }

    #[test]
    fn word_classification_is_exact_for_every_byte_at_every_position() {
        for b in 0..=255u8 {
            for k in 0..8 {
                for filler in [b'A', HT, 0x00, 0xFF, 0x7F, b' '] {
                    let mut bytes = [filler; 8];
                    bytes[k] = b;
                    let (outside, ht) = swar::classify(u64::from_le_bytes(bytes));
                    for (i, &x) in bytes.iter().enumerate() {
                        assert_eq!(
                            outside >> (8 * i + 7) & 1 == 1,
                            is_outside(x),
                            "{b:#x} at {k}"
                        );
                        assert_eq!(ht >> (8 * i + 7) & 1 == 1, x == HT, "{b:#x} at {k}");
                    }
                    assert_eq!(
                        swar::byte_sum(u64::from_le_bytes(bytes)),
                        bytes.iter().map(|&x| x as u32).sum::<u32>()
                    );
                }
            }
        }
    }

    type ScanFn = fn(&[u8], usize) -> Scan;

    /// Both scans, so that the portable one is checked on x86-64 too.
    const SCANS: [(&str, ScanFn); 2] = [
        ("scan", |b, l| scan(b, l)),
        ("swar", |b, l| swar::scan(b, l)),
    ];

    /// Checks one scan against the byte-by-byte scan.
    fn check(name: &str, scan: ScanFn, bytes: &[u8], limit: usize) {
        let s = scan(bytes, limit);
        let (end, total, ht) = naive_scan(bytes, limit);
        if end < limit {
            assert_eq!((s.end, s.total % 64), (end, total % 64), "{name} {bytes:?}");
            let mask = (s.ht_high as u128) << MASK_BITS | s.ht as u128;
            let below_end = match end {
                0 => 0,
                1..128 => u128::MAX >> (128 - end),
                _ => u128::MAX,
            };
            assert_eq!(mask & below_end, ht, "{name} {bytes:?}");
        } else {
            // Stopped at the limit: only "not within the limit" matters.
            assert!(s.end >= limit, "{name} {bytes:?}");
        }
    }

    #[test]
    fn every_byte_value_at_every_position_is_classified_exactly() {
        for (name, scan) in SCANS {
            for b in 0..=255u8 {
                for k in 0..40 {
                    let mut bytes = [b'A'; 40];
                    bytes[k] = b;
                    bytes[(k + 7) % 40] = HT;
                    check(name, scan, &bytes, usize::MAX);
                    check(name, scan, &bytes[..k + 1], usize::MAX);
                }
            }
        }
    }

    #[test]
    fn scan_matches_the_byte_by_byte_scan() {
        let mut rng = Lcg(1);
        for _ in 0..20_000 {
            let len = rng.next() as usize % 200;
            // Mostly group bytes, so that scans run long.
            let clean = rng.next().is_multiple_of(2);
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    let b = rng.byte();
                    if clean && is_outside(b) {
                        b'Z'
                    } else {
                        b
                    }
                })
                .collect();
            for (name, scan) in SCANS {
                for limit in [usize::MAX, 127, 5] {
                    check(name, scan, &bytes, limit);
                }
            }
        }
    }
}
