//! Why a group was rejected, and per-kind counters.

use crate::HorodateError;
use core::fmt;

/// Why a group was rejected. Each variant is one layer of the validation
/// (tic-protocol.md §2.6): framing, characters, syntax, checksum, data format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupError {
    /// The group never reached its CR: cut by LF, STX, ETX, EOT or the end of input.
    Truncated,
    /// Longer than [`MAX_GROUP_LEN`](crate::MAX_GROUP_LEN); the decoder skipped to the next LF.
    TooLong,
    /// A byte other than 0x20–0x7E (or HT in standard mode) inside the group.
    InvalidByte,
    /// Too short to hold a label, a separator and a checksum.
    TooShort,
    /// The byte before the checksum is neither SP (historic) nor HT (standard).
    MissingSeparator,
    /// Historic: no SP between label and value. Standard: not 2 or 3 HT-separated fields.
    FieldCount,
    /// The label is empty.
    EmptyLabel,
    /// The checksum character does not match the group.
    Checksum {
        /// What the group's bytes sum to.
        expected: u8,
        /// What was received.
        found: u8,
    },
    /// The horodate is not a season letter and 12 digits forming a real date.
    Horodate(HorodateError),
    /// The value does not match its label's data format (e.g. a non-digit in an
    /// index): catches the corruptions a 6-bit checksum lets through.
    Format,
    /// The group's mode (by its separator) differs from the rest of its frame.
    MixedModes,
    /// An unknown label one bit-6 flip (or a flipped separator) away from a
    /// known label: a corruption the 6-bit checksum cannot see
    /// ([`is_corrupted_label`](crate::labels::is_corrupted_label)).
    SuspectLabel,
}

impl GroupError {
    /// Number of distinct kinds, for counting.
    pub const KINDS: usize = 12;

    /// The names of the kinds, in [`GroupError::kind`] order.
    pub const KIND_NAMES: [&'static str; Self::KINDS] = [
        "truncated",
        "too_long",
        "invalid_byte",
        "too_short",
        "missing_separator",
        "field_count",
        "empty_label",
        "checksum",
        "horodate",
        "format",
        "mixed_modes",
        "suspect_label",
    ];

    /// Index of this error's kind in [`GroupError::KIND_NAMES`].
    pub const fn kind(&self) -> usize {
        match self {
            GroupError::Truncated => 0,
            GroupError::TooLong => 1,
            GroupError::InvalidByte => 2,
            GroupError::TooShort => 3,
            GroupError::MissingSeparator => 4,
            GroupError::FieldCount => 5,
            GroupError::EmptyLabel => 6,
            GroupError::Checksum { .. } => 7,
            GroupError::Horodate(_) => 8,
            GroupError::Format => 9,
            GroupError::MixedModes => 10,
            GroupError::SuspectLabel => 11,
        }
    }

    /// A short machine-friendly name of the kind (`"checksum"`, `"format"`...).
    pub const fn kind_name(&self) -> &'static str {
        Self::KIND_NAMES[self.kind()]
    }
}

impl fmt::Display for GroupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GroupError::Truncated => f.write_str("group cut before its CR"),
            GroupError::TooLong => write!(f, "group longer than {} bytes", crate::MAX_GROUP_LEN),
            GroupError::InvalidByte => f.write_str("control or non-ASCII byte inside the group"),
            GroupError::TooShort => {
                f.write_str("group too short for label, separator and checksum")
            }
            GroupError::MissingSeparator => {
                f.write_str("no SP or HT separator before the checksum")
            }
            GroupError::FieldCount => f.write_str("wrong number of fields"),
            GroupError::EmptyLabel => f.write_str("empty label"),
            GroupError::Checksum { expected, found } => write!(
                f,
                "checksum mismatch: expected {:?}, received {:?}",
                *expected as char, *found as char
            ),
            GroupError::Horodate(e) => write!(f, "invalid horodate ({e:?})"),
            GroupError::Format => f.write_str("value does not match its label's format"),
            GroupError::MixedModes => f.write_str("group mode differs from its frame's"),
            GroupError::SuspectLabel => {
                f.write_str("unknown label one bit-6 flip away from a known one (corrupted)")
            }
        }
    }
}

/// Rejected groups counted by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ErrorCounts {
    counts: [u32; GroupError::KINDS],
}

impl ErrorCounts {
    /// All zeros.
    pub const fn new() -> ErrorCounts {
        ErrorCounts {
            counts: [0; GroupError::KINDS],
        }
    }

    /// Counts one more error of this kind (saturating).
    pub fn add(&mut self, error: &GroupError) {
        let c = &mut self.counts[error.kind()];
        *c = c.saturating_add(1);
    }

    /// Adds another set of counts.
    pub fn merge(&mut self, other: &ErrorCounts) {
        for (a, b) in self.counts.iter_mut().zip(other.counts) {
            *a = a.saturating_add(b);
        }
    }

    /// Count for one kind, by [`GroupError::kind`] index.
    pub fn get(&self, kind: usize) -> u32 {
        self.counts.get(kind).copied().unwrap_or(0)
    }

    /// Total of all kinds.
    pub fn total(&self) -> u32 {
        self.counts.iter().fold(0u32, |a, &b| a.saturating_add(b))
    }

    /// `(kind name, count)` for every kind, zeros included.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, u32)> + '_ {
        GroupError::KIND_NAMES
            .iter()
            .copied()
            .zip(self.counts.iter().copied())
    }
}
