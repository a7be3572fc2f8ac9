//! Writes groups and frames, byte-exact for both modes (tests, simulator).
//!
//! ```
//! use tic::{encode, Horodate, Mode};
//! let mut out = Vec::new();
//! let h = Horodate::parse(b"E170915100926").unwrap();
//! encode::write_group(Mode::Standard, "SMAXSN", Some(&h), "00000", &mut |b| out.extend_from_slice(b)).unwrap();
//! assert_eq!(out, b"\nSMAXSN\tE170915100926\t00000\t3\r");
//! ```

use crate::checksum::checksum;
use crate::{Horodate, Mode, CR, ETX, LF, MAX_GROUP_LEN, STX};
use core::fmt;

/// Why a group could not be encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EncodeError {
    /// The label is empty.
    EmptyLabel,
    /// The label has a byte outside 0x21–0x7E (no separators, no controls).
    LabelByte,
    /// The value has a byte outside 0x20–0x7E.
    ValueByte,
    /// Historic mode has no horodates.
    HorodateInHistoric,
    /// The horodate's year is outside 2000–2099.
    HorodateYear,
    /// The group would exceed [`MAX_GROUP_LEN`].
    TooLong,
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            EncodeError::EmptyLabel => "empty label",
            EncodeError::LabelByte => "label byte outside 0x21-0x7E",
            EncodeError::ValueByte => "value byte outside 0x20-0x7E",
            EncodeError::HorodateInHistoric => "historic mode has no horodates",
            EncodeError::HorodateYear => "horodate year outside 2000-2099",
            EncodeError::TooLong => "group longer than MAX_GROUP_LEN",
        })
    }
}

/// Writes one group `LF label sep [horodate sep] value sep checksum CR` to
/// `out` in a single call, and returns its length.
pub fn write_group(
    mode: Mode,
    label: &str,
    horodate: Option<&Horodate>,
    value: &str,
    out: &mut impl FnMut(&[u8]),
) -> Result<usize, EncodeError> {
    let mut buf = [0u8; MAX_GROUP_LEN];
    let n = encode_group(mode, label, horodate, value, &mut buf)?;
    out(&buf[..n]);
    Ok(n)
}

/// Encodes one group into `buf` and returns its length.
pub fn encode_group(
    mode: Mode,
    label: &str,
    horodate: Option<&Horodate>,
    value: &str,
    buf: &mut [u8; MAX_GROUP_LEN],
) -> Result<usize, EncodeError> {
    if label.is_empty() {
        return Err(EncodeError::EmptyLabel);
    }
    if !label.bytes().all(|b| (0x21..=0x7E).contains(&b)) {
        return Err(EncodeError::LabelByte);
    }
    if !value.bytes().all(|b| (0x20..=0x7E).contains(&b)) {
        return Err(EncodeError::ValueByte);
    }
    let wire = match (mode, horodate) {
        (Mode::Historic, Some(_)) => return Err(EncodeError::HorodateInHistoric),
        (_, Some(h)) if !h.is_encodable() => return Err(EncodeError::HorodateYear),
        (_, Some(h)) => Some(h.to_wire()),
        (_, None) => None,
    };
    let sep = mode.separator();
    let len = 1 + label.len() + 1 + wire.map_or(0, |w| w.len() + 1) + value.len() + 1 + 1 + 1;
    if len > MAX_GROUP_LEN {
        return Err(EncodeError::TooLong);
    }
    let mut at = 0;
    let mut put = |bytes: &[u8]| {
        buf[at..at + bytes.len()].copy_from_slice(bytes);
        at += bytes.len();
    };
    put(&[LF]);
    put(label.as_bytes());
    put(&[sep]);
    if let Some(w) = &wire {
        put(w);
        put(&[sep]);
    }
    put(value.as_bytes());
    put(&[sep]);
    let ck = checksum(mode, &buf[1..at]);
    buf[at] = ck;
    buf[at + 1] = CR;
    Ok(at + 2)
}

/// Writes a whole frame: STX, the groups, ETX. Returns its length.
///
/// On an error, what was already written stays written: build frames from
/// values already checked, or write into a scratch buffer.
///
/// ```
/// use tic::{encode, Mode};
/// let mut out = Vec::new();
/// let groups = [("ADCO", None, "021861348497"), ("PTEC", None, "HP..")];
/// encode::write_frame(Mode::Historic, groups, &mut |b| out.extend_from_slice(b)).unwrap();
/// assert_eq!(out, b"\x02\nADCO 021861348497 L\r\nPTEC HP..  \r\x03");
/// ```
pub fn write_frame<'g>(
    mode: Mode,
    groups: impl IntoIterator<Item = (&'g str, Option<Horodate>, &'g str)>,
    out: &mut impl FnMut(&[u8]),
) -> Result<usize, EncodeError> {
    let mut buf = [0u8; MAX_GROUP_LEN];
    out(&[STX]);
    let mut total = 1;
    for (label, horodate, value) in groups {
        let n = encode_group(mode, label, horodate.as_ref(), value, &mut buf)?;
        out(&buf[..n]);
        total += n;
    }
    out(&[ETX]);
    Ok(total + 1)
}
