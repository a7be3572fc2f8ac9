//! One group's syntax, checksum and format check (tic-protocol.md §2.3–2.6).

use crate::checksum::{finish, sum};
use crate::horodate::HORODATE_LEN;
use crate::labels::{self, DataFormat, LabelInfo};
use crate::{GroupError, Horodate, Mode, HT, SP};

/// A group that passed every check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Group<'a> {
    /// The mode told by the separator before the checksum.
    pub mode: Mode,
    /// The label, as sent.
    pub label: &'a str,
    /// The data field exactly as sent: spaces kept; `""` for standard mode's DATE.
    pub value: &'a str,
    /// The horodate of a standard-mode group that carries one.
    pub horodate: Option<Horodate>,
    /// The checksum character received (and verified).
    pub checksum: u8,
    /// The label's dictionary entry, `None` for a well-formed unknown label.
    pub info: Option<&'static LabelInfo>,
}

impl Group<'_> {
    /// The value as an unsigned number, for labels whose format is digits.
    pub fn number(&self) -> Option<u64> {
        parse_digits(self.value.as_bytes())
    }
}

/// Parses decimal digits (at most 19, so it cannot overflow).
pub(crate) fn parse_digits(bytes: &[u8]) -> Option<u64> {
    if bytes.is_empty() || bytes.len() > 19 {
        return None;
    }
    let mut n = 0u64;
    for &b in bytes {
        let d = b.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        n = n * 10 + d as u64;
    }
    Some(n)
}

/// Checks one group given its bytes between LF and CR (exclusive), bit 7
/// already cleared.
///
/// ```
/// let g = tic::parse_group(b"SMAXSN\tE170915100926\t00000\t3", false).unwrap();
/// assert_eq!((g.label, g.value), ("SMAXSN", "00000"));
/// assert_eq!(g.horodate.unwrap().hour, 10);
/// // One bit flipped in the checksum character:
/// assert!(tic::parse_group(b"SMAXSN\tE170915100926\t00000\t2", false).is_err());
/// ```
///
/// `historic_mode2` also accepts historic groups whose checksum includes the
/// final separator, as some post-2013 non-Linky meters send (§2.5). Off by
/// default: it doubles the odds that a corrupted group passes.
pub fn parse_group(content: &[u8], historic_mode2: bool) -> Result<Group<'_>, GroupError> {
    if content
        .iter()
        .any(|&b| !((0x20..=0x7E).contains(&b) || b == HT))
    {
        return Err(GroupError::InvalidByte);
    }
    parse_clean(content, historic_mode2)
}

/// [`parse_group`] for content already known to hold only 0x20–0x7E and HT.
pub(crate) fn parse_clean(content: &[u8], historic_mode2: bool) -> Result<Group<'_>, GroupError> {
    let n = content.len();
    if n < 3 {
        return Err(GroupError::TooShort);
    }
    let found = content[n - 1];
    let body = &content[..n - 2];
    let mode = match content[n - 2] {
        SP => Mode::Historic,
        HT => Mode::Standard,
        _ => return Err(GroupError::MissingSeparator),
    };
    let body_sum = sum(body);
    let (label, horodate, value) = match mode {
        Mode::Historic => {
            let expected = finish(body_sum);
            if found != expected && !(historic_mode2 && found == finish(body_sum + SP as u32)) {
                return Err(GroupError::Checksum { expected, found });
            }
            if body.contains(&HT) {
                return Err(GroupError::InvalidByte);
            }
            let Some(split) = body.iter().position(|&b| b == SP) else {
                return Err(GroupError::FieldCount);
            };
            (&body[..split], None, &body[split + 1..])
        }
        Mode::Standard => {
            let expected = finish(body_sum + HT as u32);
            if found != expected {
                return Err(GroupError::Checksum { expected, found });
            }
            let Some(first) = body.iter().position(|&b| b == HT) else {
                return Err(GroupError::FieldCount);
            };
            let rest = &body[first + 1..];
            match rest.iter().position(|&b| b == HT) {
                None => (&body[..first], None, rest),
                Some(second) => {
                    let value = &rest[second + 1..];
                    if value.contains(&HT) {
                        return Err(GroupError::FieldCount);
                    }
                    let raw = &rest[..second];
                    if raw.len() != HORODATE_LEN {
                        return Err(GroupError::Horodate(crate::HorodateError::Length));
                    }
                    let h = Horodate::parse(raw).map_err(GroupError::Horodate)?;
                    (&body[..first], Some(h), value)
                }
            }
        }
    };
    if label.is_empty() {
        return Err(GroupError::EmptyLabel);
    }
    let info = labels::lookup(mode, label);
    if let Some(info) = info {
        if !info.format.accepts(value) {
            return Err(GroupError::Format);
        }
    }
    // Every byte is ASCII here, so these conversions cannot fail; mapping the
    // impossible error keeps the core free of panics.
    let (Ok(label), Ok(value)) = (core::str::from_utf8(label), core::str::from_utf8(value)) else {
        return Err(GroupError::InvalidByte);
    };
    Ok(Group {
        mode,
        label,
        value,
        horodate,
        checksum: found,
        info,
    })
}

impl DataFormat {
    /// Whether a value matches this format.
    pub fn accepts(&self, value: &[u8]) -> bool {
        match self {
            DataFormat::Digits => !value.is_empty() && value.iter().all(u8::is_ascii_digit),
            DataFormat::Hex => {
                !value.is_empty() && value.iter().all(|b| matches!(b, b'0'..=b'9' | b'A'..=b'F'))
            }
            DataFormat::Empty => value.is_empty(),
            DataFormat::DayProfile => crate::profile::is_well_formed(value),
            DataFormat::Text => true,
        }
    }
}
