//! The TIC checksum (tic-protocol.md §2.5): `(sum of the span) & 0x3F + 0x20`.

use crate::Mode;

/// The checksum character of a group, given the bytes between LF and the
/// checksum (that is, ending with the final separator).
///
/// Historic mode ("mode 1") excludes the final separator from the sum, standard
/// mode ("mode 2") includes it. `span` must end with that separator.
///
/// ```
/// use tic::{checksum, Mode};
/// assert_eq!(checksum(Mode::Historic, b"ADCO 021861348497 "), b'L');
/// assert_eq!(checksum(Mode::Standard, b"VTIC\t02\t"), b'J');
/// ```
pub fn checksum(mode: Mode, span: &[u8]) -> u8 {
    let summed = match mode {
        Mode::Historic => &span[..span.len().saturating_sub(1)],
        Mode::Standard => span,
    };
    finish(sum(summed))
}

/// Sum of bytes, written so the compiler vectorises it (no early exits).
#[inline]
pub(crate) fn sum(bytes: &[u8]) -> u32 {
    bytes
        .iter()
        .fold(0u32, |acc, &b| acc.wrapping_add(b as u32))
}

#[inline]
pub(crate) fn finish(sum: u32) -> u8 {
    (sum & 0x3F) as u8 + 0x20
}
