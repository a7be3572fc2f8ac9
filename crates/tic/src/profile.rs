//! PJOURF+1 and PPOINTE day profiles (tic-protocol.md §5.6).
//!
//! ```
//! use tic::profile::{DayProfile, DryContact};
//! let p = DayProfile::parse(
//!     "00008002 0100C001 06008002 1230C001 15308002 NONUTILE NONUTILE NONUTILE NONUTILE NONUTILE NONUTILE",
//! ).unwrap();
//! let slots: Vec<_> = p.slots().collect();
//! assert_eq!(slots.len(), 5);
//! assert_eq!((slots[3].hour, slots[3].minute), (12, 30));
//! assert_eq!(slots[3].tariff_index(), Some(1));
//! assert_eq!(slots[3].dry_contact(), DryContact::Close);
//! ```

/// Most slots a profile holds.
pub const MAX_SLOTS: usize = 11;

/// What a slot does to the dry contact, action bits 14–15.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DryContact {
    /// `00`: unchanged.
    Unchanged,
    /// `01`: follows the Tempo dry-contact configuration (Tempo contracts).
    Tempo,
    /// `10`: open.
    Open,
    /// `11`: close.
    Close,
}

/// One used slot: from `hour:minute`, apply `action`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Slot {
    /// Start hour, 0–23.
    pub hour: u8,
    /// Start minute, 0–59.
    pub minute: u8,
    /// The 16-bit action word.
    pub action: u16,
}

impl Slot {
    /// Bits 0–3: the supplier tariff index (1–10) from this slot, `None` for no change.
    pub const fn tariff_index(&self) -> Option<u8> {
        match self.action & 0xF {
            n @ 1..=10 => Some(n as u8),
            _ => None,
        }
    }

    /// Bits 4–10: whether virtual contact `n` (1–7) is closed in this slot.
    pub const fn virtual_contact(&self, n: u8) -> Option<bool> {
        if n >= 1 && n <= 7 {
            Some(self.action >> (3 + n) & 1 == 1)
        } else {
            None
        }
    }

    /// Bits 14–15: the dry contact's action.
    pub const fn dry_contact(&self) -> DryContact {
        match self.action >> 14 {
            0 => DryContact::Unchanged,
            1 => DryContact::Tempo,
            2 => DryContact::Open,
            _ => DryContact::Close,
        }
    }
}

/// A decoded day profile: its used slots, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DayProfile {
    slots: [Option<Slot>; MAX_SLOTS],
}

impl DayProfile {
    /// Parses up to 11 blocks of 8 characters separated by single spaces;
    /// `NONUTILE` blocks are unused.
    pub fn parse(value: impl AsRef<[u8]>) -> Option<DayProfile> {
        let value = value.as_ref();
        if !has_profile_shape(value) {
            return None;
        }
        let mut slots = [None; MAX_SLOTS];
        for (slot, chunk) in slots.iter_mut().zip(value.chunks(9)) {
            *slot = block_of_chunk(chunk)?;
        }
        Some(DayProfile { slots })
    }

    /// The used slots.
    pub fn slots(&self) -> impl Iterator<Item = Slot> + '_ {
        self.slots.iter().flatten().copied()
    }
}

/// Whether a value's length and spaces are those of 1 to 11 blocks of 8
/// bytes separated by single spaces (the blocks themselves not checked).
#[inline(always)]
fn has_profile_shape(value: &[u8]) -> bool {
    let n = value.len();
    n % 9 == 8 && n < 9 * MAX_SLOTS
}

/// A chunk of 9 bytes (8 for the last): the block, then the space after it.
#[inline(always)]
fn block_of_chunk(chunk: &[u8]) -> Option<Option<Slot>> {
    let (block, space) = chunk.split_first_chunk::<8>()?;
    if space.first().is_some_and(|&b| b != b' ') {
        return None;
    }
    parse_block(block)
}

/// Whether a value is a well-formed day profile, as `DayProfile::parse`
/// decides, without building it (the decoder's format check).
#[inline(always)]
pub(crate) fn is_day_profile(value: &[u8]) -> bool {
    has_profile_shape(value) && value.chunks(9).all(|c| block_of_chunk(c).is_some())
}

/// The value of each byte as an upper-case hexadecimal digit, 0xFF if it is none.
static HEX: [u8; 256] = {
    let mut table = [0xFF; 256];
    let mut i = 0;
    while i < 10 {
        table[b'0' as usize + i] = i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 6 {
        table[b'A' as usize + i] = 10 + i as u8;
        i += 1;
    }
    table
};

/// `Some(None)` for `NONUTILE`, `Some(Some(slot))` for a used block:
/// `HHMM` (a real time) then 4 upper-case hexadecimal digits.
#[inline(always)]
fn parse_block(block: &[u8; 8]) -> Option<Option<Slot>> {
    if block == b"NONUTILE" {
        return Some(None);
    }
    let d = |i: usize| block[i].wrapping_sub(b'0');
    let (h1, h0, m1, m0) = (d(0), d(1), d(2), d(3));
    if h1 > 9 || h0 > 9 || m1 > 9 || m0 > 9 {
        return None;
    }
    let (hour, minute) = (h1 * 10 + h0, m1 * 10 + m0);
    let x = |i: usize| HEX[block[i] as usize];
    let (a3, a2, a1, a0) = (x(4), x(5), x(6), x(7));
    if hour > 23 || minute > 59 || (a3 | a2 | a1 | a0) > 0xF {
        return None;
    }
    Some(Some(Slot {
        hour,
        minute,
        action: (a3 as u16) << 12 | (a2 as u16) << 8 | (a1 as u16) << 4 | a0 as u16,
    }))
}

/// The reference parser: splits on spaces, then checks and decodes each block
/// byte by byte. [`DayProfile::parse`] must give the same result (tested).
pub(crate) fn parse_by_splitting(value: &str) -> Option<DayProfile> {
    let mut slots = [None; MAX_SLOTS];
    for (count, block) in value.as_bytes().split(|&b| b == b' ').enumerate() {
        *slots.get_mut(count)? = reference_block(block)?;
    }
    Some(DayProfile { slots })
}

/// [`parse_block`] for the reference parser.
fn reference_block(block: &[u8]) -> Option<Option<Slot>> {
    if block == b"NONUTILE" {
        return Some(None);
    }
    if block.len() != 8 {
        return None;
    }
    let hour = crate::syntax::parse_digits(&block[..2])? as u8;
    let minute = crate::syntax::parse_digits(&block[2..4])? as u8;
    if hour > 23 || minute > 59 {
        return None;
    }
    let mut action = 0u16;
    for &c in &block[4..] {
        let d = match c {
            b'0'..=b'9' => c - b'0',
            b'A'..=b'F' => c - b'A' + 10,
            _ => return None,
        };
        action = action << 4 | d as u16;
    }
    Some(Some(Slot {
        hour,
        minute,
        action,
    }))
}

/// The data format check of the dictionary: well-formed blocks, any count up to 11.
/// The reference, byte by byte.
pub(crate) fn is_well_formed(value: &[u8]) -> bool {
    core::str::from_utf8(value)
        .ok()
        .and_then(parse_by_splitting)
        .is_some()
}
