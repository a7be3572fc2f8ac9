//! One group's syntax, checksum and format check (tic-protocol.md §2.3–2.6).

use crate::checksum::finish;
use crate::horodate::HORODATE_LEN;
use crate::labels::{self, DataFormat, Key, LabelInfo};
use crate::scan::{low_bytes, scan, word, Scan, HIGH, MASK_BITS, ONES};
use crate::{GroupError, Horodate, HorodateError, Mode, Season, HT, SP};

/// A group that passed every check.
///
/// The value is kept as bytes and read with [`Group::value`] (text) or
/// [`Group::value_bytes`]: the typed parsers ([`Group::number`],
/// [`Stge::parse`](crate::stge::Stge::parse), …) take the bytes, so a
/// consumer that only wants numbers never pays for a UTF-8 check.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Group<'a> {
    /// The mode told by the separator before the checksum.
    pub mode: Mode,
    /// The label, as sent.
    pub label: &'a str,
    /// The data field exactly as sent: spaces kept; empty for standard
    /// mode's DATE. Only printable ASCII (0x20–0x7E) and HT.
    value: &'a [u8],
    /// The value as a number when the label's format is digits and it has
    /// at most 19 of them (converted while they were checked); else
    /// [`NO_NUMBER`].
    digits: u64,
    /// The horodate of a standard-mode group that carries one.
    pub horodate: Option<Horodate>,
    /// The checksum character received (and verified).
    pub checksum: u8,
    /// The label's dictionary entry, `None` for a well-formed unknown label.
    pub info: Option<&'static LabelInfo>,
}

impl<'a> Group<'a> {
    /// The data field exactly as sent: spaces kept; `""` for standard mode's
    /// DATE.
    #[inline]
    pub fn value(&self) -> &'a str {
        // Every byte of a group is printable ASCII or HT (the scan rejects
        // any other byte, bit 7 included), so the value is valid UTF-8 and
        // this cannot fail; the impossible error maps to "" rather than a
        // panic, and no `unsafe` is needed (the crate forbids it).
        core::str::from_utf8(self.value).unwrap_or("")
    }

    /// The data field's bytes, as sent (ASCII): what the typed parsers take.
    #[inline]
    pub fn value_bytes(&self) -> &'a [u8] {
        self.value
    }

    /// The value as an unsigned number, for labels whose format is digits.
    ///
    /// For a known label of that format, the number was worked out when its
    /// digits were checked; other values are parsed here.
    #[inline]
    pub fn number(&self) -> Option<u64> {
        if self.digits != NO_NUMBER {
            Some(self.digits)
        } else {
            parse_digits(self.value)
        }
    }
}

// By hand, to show the value as text rather than a list of bytes.
impl core::fmt::Debug for Group<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Group")
            .field("mode", &self.mode)
            .field("label", &self.label)
            .field("value", &self.value())
            .field("horodate", &self.horodate)
            .field("checksum", &self.checksum)
            .field("info", &self.info)
            .finish()
    }
}

/// [`Group::digits`] when the value was not converted: no 19-digit number
/// reaches it.
const NO_NUMBER: u64 = u64::MAX;

/// Parses decimal digits (at most 19, so it cannot overflow).
///
/// Eight digits at a time: checked and combined as one word (the usual
/// pairwise multiply-and-add), since most TIC values are 9-digit indexes.
#[inline]
pub(crate) fn parse_digits(bytes: &[u8]) -> Option<u64> {
    if bytes.is_empty() || bytes.len() > 19 {
        return None;
    }
    let mut n = 0u64;
    let mut words = bytes.chunks_exact(8);
    for chunk in &mut words {
        let x = word(chunk);
        if !all_digits_in(x) {
            return None;
        }
        n = n * 100_000_000 + eight_digits(x);
    }
    for &b in words.remainder() {
        let d = b.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        n = n * 10 + d as u64;
    }
    Some(n)
}

/// Whether all 8 bytes of a word are ASCII digits. A byte below `0` wraps
/// when 0x30 is subtracted, one above `9` reaches bit 7 when 0x46 is added,
/// and bytes ≥ 0x80 have it already; a carry or borrow can only spread from
/// a byte that is itself flagged, so the answer is exact.
#[inline(always)]
fn all_digits_in(x: u64) -> bool {
    (x.wrapping_add(0x46 * ONES) | x.wrapping_sub(0x30 * ONES) | x) & HIGH == 0
}

/// The value of 8 ASCII digits, the first byte most significant.
#[inline(always)]
fn eight_digits(x: u64) -> u64 {
    eight_digits_of(x - 0x30 * ONES)
}

/// The number 8 digit values (0–9 each, the first byte most significant) make.
#[inline(always)]
fn eight_digits_of(v: u64) -> u64 {
    // Pairs, then quadruples, then the octet: no lane ever overflows.
    let v = (v * 10 + (v >> 8)) & 0x00FF_00FF_00FF_00FF;
    let v = (v * 100 + (v >> 16)) & 0x0000_FFFF_0000_FFFF;
    (v * 10_000 + (v >> 32)) & 0xFFFF_FFFF
}

/// Whether every byte of a word is a digit value 0–9 (ASCII digits with `0`
/// removed by XOR, so that no borrow crosses bytes). A byte of 10–0x7F
/// reaches bit 7 when 0x76 is added, one ≥ 0x80 has it already; a carry can
/// only leave a byte that is itself flagged.
#[inline(always)]
fn digit_values(x: u64) -> bool {
    (x.wrapping_add(0x76 * ONES) | x) & HIGH == 0
}

/// [`Horodate::parse`] of the 13 wire bytes, with the same result and the
/// same error precedence (season, then digits, then the date's reality), its
/// 12 digits checked and paired two words at a time.
#[inline]
fn parse_horodate(raw: &[u8]) -> Result<Horodate, HorodateError> {
    let (Some(&season), Some(date), Some(time)) = (raw.first(), raw.get(1..9), raw.get(9..13))
    else {
        return Err(HorodateError::Length);
    };
    if raw.len() != HORODATE_LEN {
        return Err(HorodateError::Length);
    }
    let (season, degraded) = match season {
        b'E' => (Season::Summer, false),
        b'e' => (Season::Summer, true),
        b'H' => (Season::Winter, false),
        b'h' => (Season::Winter, true),
        b' ' => (Season::None, false),
        _ => return Err(HorodateError::Season),
    };
    // YYMMDDhh in one word; mmss padded with `0` digits in the other.
    let date = word(date);
    let mut padded = [b'0'; 8];
    padded[..4].copy_from_slice(time);
    let time = u64::from_le_bytes(padded);
    if !all_digits_in(date) || !all_digits_in(time) {
        return Err(HorodateError::NotDigit);
    }
    // Each pair of digits into one byte (first digit the tens): pairs land in
    // the even bytes, as in `eight_digits`.
    let pairs = |x: u64| {
        let v = x - 0x30 * ONES;
        (v * 10 + (v >> 8)) & 0x00FF_00FF_00FF_00FF
    };
    let (d, t) = (pairs(date), pairs(time));
    let h = Horodate {
        season,
        degraded,
        year: 2000 + d as u8 as u16,
        month: (d >> 16) as u8,
        day: (d >> 32) as u8,
        hour: (d >> 48) as u8,
        minute: t as u8,
        second: (t >> 16) as u8,
    };
    if h.month == 0
        || h.month > 12
        || h.day == 0
        || h.day > crate::horodate::days_in_month(h.year, h.month)
        || h.hour > 23
        || h.minute > 59
        || h.second > 59
    {
        return Err(HorodateError::Impossible);
    }
    Ok(h)
}

/// Whether a value is one or more ASCII digits, a word at a time.
#[inline(always)]
fn is_digits(value: &[u8]) -> bool {
    let mut words = value.chunks_exact(8);
    let mut ok = !value.is_empty();
    for chunk in &mut words {
        ok &= all_digits_in(word(chunk));
    }
    ok && words.remainder().iter().all(u8::is_ascii_digit)
}

/// Whether `bytes[start..]` is one or more ASCII digits, as [`is_digits`]
/// decides, and if so their number ([`NO_NUMBER`] beyond 19 digits), as
/// [`parse_digits`] gives it: checked and converted in the same words.
///
/// A value of up to 8 digits is read in the word that ends with it, the
/// bytes before it (label, separator) cleared: leading zeros. One of 9–16
/// digits is the word that ends with it (its last 8 digits) and the word that
/// starts with it, shifted to keep only its first digits.
#[inline(always)]
fn digits_value(bytes: &[u8], start: usize) -> Option<u64> {
    let value = bytes.get(start..)?;
    let n = value.len();
    let last = bytes.len().checked_sub(8).and_then(|at| bytes.get(at..));
    let result = match (n, last) {
        (0, _) => None,
        (1..=8, Some(last)) => {
            let x = (word(last) ^ (0x30 * ONES)) & !low_bytes(8 - n);
            digit_values(x).then(|| eight_digits_of(x))
        }
        (9..=16, Some(last)) => {
            let low = word(last) ^ (0x30 * ONES);
            let high = (word(value) ^ (0x30 * ONES)) << (8 * (16 - n));
            (digit_values(low) && digit_values(high))
                .then(|| eight_digits_of(high) * 100_000_000 + eight_digits_of(low))
        }
        _ => is_digits(value).then(|| parse_digits(value).unwrap_or(NO_NUMBER)),
    };
    debug_assert_eq!(result.is_some(), is_digits(value));
    debug_assert_eq!(
        result.filter(|&v| v != NO_NUMBER),
        parse_digits(value).filter(|_| result.is_some())
    );
    result
}

/// Checks one group given its bytes between LF and CR (exclusive), bit 7
/// already cleared.
///
/// ```
/// let g = tic::parse_group(b"SMAXSN\tE170915100926\t00000\t3", false).unwrap();
/// assert_eq!((g.label, g.value()), ("SMAXSN", "00000"));
/// assert_eq!(g.horodate.unwrap().hour, 10);
/// // One bit flipped in the checksum character:
/// assert!(tic::parse_group(b"SMAXSN\tE170915100926\t00000\t2", false).is_err());
/// ```
///
/// `historic_mode2` also accepts historic groups whose checksum includes the
/// final separator, as some post-2013 non-Linky meters send (§2.5). Off by
/// default: it doubles the odds that a corrupted group passes.
pub fn parse_group(content: &[u8], historic_mode2: bool) -> Result<Group<'_>, GroupError> {
    let scanned = scan(content, usize::MAX);
    if scanned.end != content.len() {
        return Err(GroupError::InvalidByte);
    }
    parse_clean(content, &scanned, historic_mode2)
}

/// The bits of the first `n` positions of a mask.
#[inline(always)]
fn first_bits(n: usize) -> u64 {
    if n >= MASK_BITS {
        u64::MAX
    } else {
        (1u64 << n) - 1
    }
}

/// Where a body's fields are: label length, horodate span, value start.
type Fields = (usize, Option<(usize, usize)>, usize);

/// A mask of a body's HT positions (bit `i` for byte `i`): one scan mask
/// (`u64`) or both (`u128`).
trait HtMask: Copy + Eq + core::ops::BitAnd<Output = Self> + core::ops::Sub<Output = Self> {
    const ZERO: Self;
    const ONE: Self;
    fn first(self) -> usize;
}

impl HtMask for u64 {
    const ZERO: u64 = 0;
    const ONE: u64 = 1;
    #[inline(always)]
    fn first(self) -> usize {
        self.trailing_zeros() as usize
    }
}

impl HtMask for u128 {
    const ZERO: u128 = 0;
    const ONE: u128 = 1;
    #[inline(always)]
    fn first(self) -> usize {
        self.trailing_zeros() as usize
    }
}

/// Splits a checked body into fields given the mask of all its HT bytes.
#[inline(always)]
fn split_by_mask<M: HtMask>(mode: Mode, body: &[u8], ht: M) -> Result<Fields, GroupError> {
    match mode {
        Mode::Historic => {
            if ht != M::ZERO {
                return Err(GroupError::InvalidByte);
            }
            historic_fields(body)
        }
        Mode::Standard => {
            if ht == M::ZERO {
                return Err(GroupError::FieldCount);
            }
            let first = ht.first();
            let rest = ht & (ht - M::ONE);
            if rest == M::ZERO {
                return Ok((first, None, first + 1));
            }
            if rest & (rest - M::ONE) != M::ZERO {
                return Err(GroupError::FieldCount);
            }
            let second = rest.first();
            Ok((first, Some((first + 1, second)), second + 1))
        }
    }
}

/// A historic body's fields (it holds no HT): label, SP, value.
#[inline(always)]
fn historic_fields(body: &[u8]) -> Result<Fields, GroupError> {
    // The label is short: a plain search ends within a few bytes.
    let Some(split) = body.iter().position(|&b| b == SP) else {
        return Err(GroupError::FieldCount);
    };
    Ok((split, None, split + 1))
}

/// Splits a checked body of at most one mask using the HT mask of its scan.
#[inline(always)]
fn split_masked(mode: Mode, body: &[u8], scanned: &Scan) -> Result<Fields, GroupError> {
    // body.len() ≤ 64 here (and ≥ 1 in a group): the mask of its first
    // bits without a test for 64.
    let ht = scanned.ht & (2u64 << body.len().saturating_sub(1)).wrapping_sub(1);
    split_by_mask(mode, body, ht)
}

/// [`split_masked`] for bodies longer than one mask but within two.
// Not inlined, and given the masks by value: the scan's result then stays in
// registers in the decoder's hot loop.
#[inline(never)]
fn split_wide(mode: Mode, body: &[u8], low: u64, high: u64) -> Result<Fields, GroupError> {
    let high = high & first_bits(body.len() - MASK_BITS);
    split_by_mask(mode, body, (high as u128) << MASK_BITS | low as u128)
}

/// Splits a checked body into fields: with the masks of its scan when they
/// cover it, else by searching its bytes.
#[inline(always)]
fn split(mode: Mode, body: &[u8], scanned: &Scan) -> Result<Fields, GroupError> {
    if body.len() <= MASK_BITS {
        split_masked(mode, body, scanned)
    } else if body.len() <= 2 * MASK_BITS {
        split_wide(mode, body, scanned.ht, scanned.ht_high)
    } else {
        split_scalar(mode, body)
    }
}

/// [`split_masked`] for bodies longer than the masks, by searching the bytes.
#[cold]
fn split_scalar(mode: Mode, body: &[u8]) -> Result<Fields, GroupError> {
    match mode {
        Mode::Historic => {
            if body.contains(&HT) {
                return Err(GroupError::InvalidByte);
            }
            historic_fields(body)
        }
        Mode::Standard => {
            let Some(first) = body.iter().position(|&b| b == HT) else {
                return Err(GroupError::FieldCount);
            };
            let rest = &body[first + 1..];
            match rest.iter().position(|&b| b == HT) {
                None => Ok((first, None, first + 1)),
                Some(second) => {
                    let second = first + 1 + second;
                    if body[second + 1..].contains(&HT) {
                        return Err(GroupError::FieldCount);
                    }
                    Ok((first, Some((first + 1, second)), second + 1))
                }
            }
        }
    }
}

/// [`parse_group`] for content already known to hold only 0x20–0x7E and HT,
/// given its [`scan`](crate::scan::scan).
// Always inlined: the decoder's fast path is its main caller, and returning
// the large `Result` through memory cost more than the check itself.
#[inline(always)]
pub(crate) fn parse_clean<'a>(
    content: &'a [u8],
    scanned: &Scan,
    historic_mode2: bool,
) -> Result<Group<'a>, GroupError> {
    let n = content.len();
    if n < 3 {
        return Err(GroupError::TooShort);
    }
    let found = content[n - 1];
    let separator = content[n - 2];
    let body = &content[..n - 2];
    // The body is the content less its last two bytes: subtracting them from
    // the total gives the body's sum without reading the body again. The
    // total is exact only modulo 64, so this may wrap, and so may the
    // additions below: all wrapping, which keeps the low 6 bits right.
    let body_sum = scanned.total.wrapping_sub(found as u32 + separator as u32);
    let mode = match separator {
        SP => Mode::Historic,
        HT => Mode::Standard,
        _ => return Err(GroupError::MissingSeparator),
    };
    let expected = match mode {
        Mode::Historic => finish(body_sum),
        Mode::Standard => finish(body_sum.wrapping_add(HT as u32)),
    };
    if found != expected
        && !(mode == Mode::Historic
            && historic_mode2
            && found == finish(body_sum.wrapping_add(SP as u32)))
    {
        return Err(GroupError::Checksum { expected, found });
    }
    let (label_len, horodate_span, value_start) = split(mode, body, scanned)?;
    let horodate = match horodate_span {
        None => None,
        Some((start, end)) => {
            let raw = &body[start..end];
            if raw.len() != HORODATE_LEN {
                return Err(GroupError::Horodate(crate::HorodateError::Length));
            }
            let parsed = parse_horodate(raw);
            // `Horodate::parse` is the reference.
            debug_assert_eq!(parsed, Horodate::parse(raw));
            Some(parsed.map_err(GroupError::Horodate)?)
        }
    };
    let value = &body[value_start..];
    if label_len == 0 {
        return Err(GroupError::EmptyLabel);
    }
    // The content holds no 0 byte, as `pack_prefix` requires; given the
    // whole content (the body and two more bytes), a short group's label is
    // more often packed from one word.
    let info = Key::pack_prefix(content, label_len).and_then(|key| labels::lookup_key(mode, key));
    // Every byte is ASCII here, so this conversion cannot fail; mapping the
    // impossible error keeps the core free of panics. A known label is the
    // dictionary's own string (equal bytes), which spares its UTF-8 check.
    // The value stays bytes: `Group::value` converts it when asked.
    let mut digits = NO_NUMBER;
    let label = match info {
        Some(info) => {
            let ok = match info.format {
                DataFormat::Digits => match digits_value(body, value_start) {
                    Some(number) => {
                        digits = number;
                        true
                    }
                    None => false,
                },
                format => format.accepts(value),
            };
            if !ok {
                return Err(GroupError::Format);
            }
            info.label
        }
        None => {
            let raw = &body[..label_len];
            if labels::is_corrupted_label(mode, raw) {
                return Err(GroupError::SuspectLabel);
            }
            match core::str::from_utf8(raw) {
                Ok(label) => label,
                Err(_) => return Err(GroupError::InvalidByte),
            }
        }
    };
    Ok(Group {
        mode,
        label,
        value,
        digits,
        horodate,
        checksum: found,
        info,
    })
}

impl DataFormat {
    /// Whether a value matches this format.
    #[inline(always)]
    pub fn accepts(&self, value: &[u8]) -> bool {
        match self {
            DataFormat::Digits => is_digits(value),
            DataFormat::Hex => {
                !value.is_empty() && value.iter().all(|b| matches!(b, b'0'..=b'9' | b'A'..=b'F'))
            }
            DataFormat::Empty => value.is_empty(),
            DataFormat::DayProfile => {
                let ok = crate::profile::is_day_profile(value);
                // The profile module's own check is the reference.
                debug_assert_eq!(ok, crate::profile::is_well_formed(value));
                ok
            }
            DataFormat::Text => true,
        }
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use crate::scan::tests::Lcg;
    use std::vec::Vec;

    #[test]
    fn a_checksum_below_the_scans_truncated_sum_does_not_overflow() {
        // Read as one word, '@' adds 0 to the scan's total (exact only
        // modulo 64): the total, 9, is less than the last two bytes' 73.
        assert_eq!(
            parse_group(b"@@@@@@\t@", false),
            Err(GroupError::Checksum {
                expected: b')',
                found: b'@'
            })
        );
        // Historic mode, the "mode 2" sum tried too.
        assert_eq!(
            parse_group(b"@@@ @@ A", true),
            Err(GroupError::Checksum {
                expected: b'@',
                found: b'A'
            })
        );
    }

    #[test]
    fn masked_split_matches_scalar_split() {
        let mut rng = Lcg(2);
        for _ in 0..100_000 {
            // Within one mask, within two, beyond.
            let len = match rng.next() % 4 {
                0 | 1 => rng.next() as usize % (MASK_BITS + 1),
                2 => rng.next() as usize % (2 * MASK_BITS + 1),
                _ => rng.next() as usize % (3 * MASK_BITS),
            };
            let body: Vec<u8> = (0..len)
                // Fewer separators in long bodies, so that some split.
                .map(
                    |_| match rng.next() % if len > MASK_BITS { 48 } else { 6 } {
                        0 => HT,
                        1 => SP,
                        _ => b'A' + rng.next() % 26,
                    },
                )
                .collect();
            let s = scan(&body, usize::MAX);
            for mode in [Mode::Historic, Mode::Standard] {
                assert_eq!(
                    split(mode, &body, &s),
                    split_scalar(mode, &body),
                    "{mode:?} {body:?}"
                );
            }
        }
    }

    #[test]
    fn digits_match_the_byte_by_byte_definitions() {
        let mut rng = Lcg(3);
        for _ in 0..100_000 {
            let len = rng.next() as usize % 24;
            let bytes: Vec<u8> = (0..len)
                .map(|_| match rng.next() % 16 {
                    0 => rng.next(),
                    1 => [b'/', b':', 0x00, 0x7F, 0x80, 0xB0, 0xFF][rng.next() as usize % 7],
                    _ => b'0' + rng.next() % 10,
                })
                .collect();
            let digits = !bytes.is_empty() && bytes.iter().all(u8::is_ascii_digit);
            assert_eq!(is_digits(&bytes), digits, "{bytes:?}");
            // The same value after a label and separator of any length.
            let mut line = b"LABEL1\t"[..rng.next() as usize % 8].to_vec();
            let start = line.len();
            line.extend_from_slice(&bytes);
            let expected_number = (digits && bytes.len() <= 19)
                .then(|| bytes.iter().fold(0u64, |n, &b| n * 10 + (b - b'0') as u64));
            let number = digits_value(&line, start);
            assert_eq!(number.is_some(), digits, "{line:?}");
            assert_eq!(
                number.filter(|&n| n != NO_NUMBER),
                expected_number,
                "{line:?}"
            );
            let expected = (digits && bytes.len() <= 19)
                .then(|| bytes.iter().fold(0u64, |n, &b| n * 10 + (b - b'0') as u64));
            assert_eq!(parse_digits(&bytes), expected, "{bytes:?}");
        }
        assert_eq!(
            parse_digits(b"9999999999999999999"),
            Some(9_999_999_999_999_999_999)
        );
        assert_eq!(parse_digits(b"00000000000000000000"), None);
    }

    #[test]
    fn day_profile_check_matches_the_profile_parser() {
        let mut rng = Lcg(4);
        let pieces: [&[u8]; 12] = [
            b"NONUTILE",
            b"00004001",
            b"23594001",
            b"24004001",
            b"06604001",
            b"0600C00F",
            b"0600c001",
            b"060040",
            b"NONUTIL",
            b" ",
            b"  ",
            b"0600400G",
        ];
        for _ in 0..100_000 {
            let mut value = Vec::new();
            for i in 0..rng.next() % 14 {
                if i > 0 && !rng.next().is_multiple_of(8) {
                    value.push(SP);
                }
                value.extend_from_slice(pieces[rng.next() as usize % pieces.len()]);
                if rng.next().is_multiple_of(32) {
                    value.push(rng.next());
                }
            }
            // The split-based parser is the reference.
            let expected = core::str::from_utf8(&value)
                .ok()
                .and_then(crate::profile::parse_by_splitting);
            let parsed = core::str::from_utf8(&value)
                .ok()
                .and_then(crate::profile::DayProfile::parse);
            assert_eq!(parsed, expected, "{:?}", value);
            assert_eq!(
                crate::profile::is_day_profile(&value),
                expected.is_some(),
                "{:?}",
                value
            );
        }
    }

    #[test]
    fn horodate_parse_matches_the_reference() {
        let mut rng = Lcg(5);
        let mut checked = [0usize; 2];
        for _ in 0..200_000 {
            let len = if rng.next().is_multiple_of(16) {
                rng.next() as usize % 16
            } else {
                13
            };
            let raw: Vec<u8> = (0..len)
                .map(|i| match (i, rng.next() % 32) {
                    (0, 0..=27) => b"EeHh X"[rng.next() as usize % 6],
                    (1..=12, 0..=28) => {
                        // Plausible dates, so that most are real.
                        let tens: &[u8] = match i {
                            3 | 7 => b"01",
                            5 => b"0123",
                            9 | 11 => b"012345",
                            _ => b"0123456789",
                        };
                        if i % 2 == 1 {
                            tens[rng.next() as usize % tens.len()]
                        } else {
                            b'0' + rng.next() % 10
                        }
                    }
                    _ => rng.next(),
                })
                .collect();
            let ours = parse_horodate(&raw);
            checked[ours.is_ok() as usize] += 1;
            assert_eq!(ours, Horodate::parse(&raw), "{:?}", raw);
        }
        // Both outcomes were exercised.
        assert!(checked[0] > 10_000 && checked[1] > 10_000, "{checked:?}");
    }

    #[test]
    fn long_groups_split_beyond_the_first_mask() {
        // Values long enough that the body passes one mask, then two, with an
        // HT beyond the first mask.
        for filler in [70, 140] {
            let mut content = b"LABEL\t".to_vec();
            content.extend(core::iter::repeat_n(b'x', filler));
            content.push(HT);
            content.extend_from_slice(b"v\t");
            let sum = content.iter().map(|&b| b as u32).sum::<u32>();
            content.push(finish(sum));
            assert_eq!(
                parse_group(&content, false),
                Err(GroupError::Horodate(crate::HorodateError::Length))
            );
        }
    }
}
