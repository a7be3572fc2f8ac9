//! Meter addresses ADCO / ADSC and the tariff-index labels (tic-protocol.md §5.3).
//!
//! ```
//! use tic::address::MeterAddress;
//! let a = MeterAddress::parse("041776199277").unwrap();
//! assert_eq!(a.manufacturer_name(), Some("Landis+Gyr"));
//! assert_eq!(a.year, 2017);
//! assert_eq!(a.device_type, 76);
//! assert_eq!(a.phases(), Some(3));
//! ```

use crate::syntax::parse_digits;

/// An EURIDIS address `CC AA TT NNNNNN`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MeterAddress {
    /// `CC`: manufacturer code.
    pub manufacturer: u8,
    /// `AA`: year of manufacture, 2000 + AA (1900 + AA from 90 on, for old blue meters).
    pub year: u16,
    /// `TT`: device type.
    pub device_type: u8,
    /// `NNNNNN`: serial number.
    pub serial: u32,
}

impl MeterAddress {
    /// Parses 12 digits.
    pub fn parse(value: impl AsRef<[u8]>) -> Option<MeterAddress> {
        let b = value.as_ref();
        if b.len() != 12 {
            return None;
        }
        let yy = parse_digits(&b[2..4])? as u16;
        Some(MeterAddress {
            manufacturer: parse_digits(&b[0..2])? as u8,
            year: if yy >= 90 { 1900 + yy } else { 2000 + yy },
            device_type: parse_digits(&b[4..6])? as u8,
            serial: parse_digits(&b[6..12])? as u32,
        })
    }

    /// The manufacturer's name for the known codes.
    pub const fn manufacturer_name(&self) -> Option<&'static str> {
        Some(match self.manufacturer {
            1 => "Crouzet/Monetel",
            2 | 81 | 84 => "Sagemcom",
            3 => "Itron (Schlumberger/Actaris)",
            4 | 82 => "Landis+Gyr",
            5 => "Sauter/Stepper/Zellweger",
            6 | 85 => "Itron",
            11 => "Elster/Honeywell (Magnol)",
            30 => "Michaud",
            31 => "Hexing",
            83 => "Elster/Honeywell",
            _ => return None,
        })
    }

    /// The Linky meter type for the codes of [54E §2.2].
    pub const fn device_name(&self) -> Option<&'static str> {
        Some(match self.device_type {
            61 => "Linky single-phase 60 A, G3, high connection",
            62 => "Linky single-phase 90 A, G1, low connection",
            63 => "Linky three-phase 60 A, G1",
            64 => "Linky single-phase 60 A, G3, low connection",
            70 => "Linky single-phase 60 A, development G3",
            71 => "Linky three-phase 60 A, development G3",
            75 => "Linky single-phase 90 A, G3",
            76 => "Linky three-phase 60 A, G3",
            _ => return None,
        })
    }

    /// Whether the device type is one of the Linky types of [54E].
    pub const fn is_linky(&self) -> bool {
        self.device_name().is_some()
    }

    /// 1 or 3 for the Linky types.
    pub const fn phases(&self) -> Option<u8> {
        match self.device_type {
            61 | 62 | 64 | 70 | 75 => Some(1),
            63 | 71 | 76 => Some(3),
            _ => None,
        }
    }
}

/// NTARF: the supplier tariff index counting now, 1–10.
///
/// ```
/// assert_eq!(tic::address::ntarf("03"), Some(3));
/// assert_eq!(tic::address::ntarf("11"), None);
/// ```
pub fn ntarf(value: impl AsRef<[u8]>) -> Option<u8> {
    match parse_digits(value.as_ref())? {
        n @ 1..=10 => Some(n as u8),
        _ => None,
    }
}

/// LTARF / NGTF: the tariff name without its padding spaces.
pub fn tariff_name(value: &str) -> &str {
    value.trim_matches(' ')
}
