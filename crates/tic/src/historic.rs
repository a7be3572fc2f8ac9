//! Historic mode's enumerated values: OPTARIF, PTEC, DEMAIN, PPOT (tic-protocol.md §4.3–4.4).
//!
//! ```
//! use tic::historic::{TariffOption, TariffPeriod, Demain};
//! use tic::stge::TempoColour;
//! assert_eq!(TariffOption::parse("BBR("), Some(TariffOption::Tempo { programs: b'(' }));
//! assert_eq!(TariffPeriod::parse("HPJR"), Some(TariffPeriod::TempoPeak(TempoColour::Red)));
//! assert_eq!(Demain::parse("BLAN"), Some(Demain::Colour(TempoColour::White)));
//! ```

use crate::stge::TempoColour;

/// OPTARIF: the tariff option.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TariffOption {
    /// `BASE`.
    Base,
    /// `HC..`: off-peak / peak hours.
    HeuresCreuses,
    /// `EJP.`.
    Ejp,
    /// `BBRx`: Tempo; `x` encodes the auxiliary-contact programs.
    Tempo {
        /// The raw program character.
        programs: u8,
    },
}

impl TariffOption {
    /// Parses the 4 wire characters.
    pub fn parse(value: impl AsRef<[u8]>) -> Option<TariffOption> {
        match value.as_ref() {
            b"BASE" => Some(TariffOption::Base),
            b"HC.." => Some(TariffOption::HeuresCreuses),
            b"EJP." => Some(TariffOption::Ejp),
            [b'B', b'B', b'R', x] => Some(TariffOption::Tempo { programs: *x }),
            _ => None,
        }
    }
}

/// PTEC: the tariff period counting now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TariffPeriod {
    /// `TH..`: all hours (Base).
    AllHours,
    /// `HC..`: off-peak hours.
    OffPeak,
    /// `HP..`: peak hours.
    Peak,
    /// `HN..`: EJP normal hours.
    EjpNormal,
    /// `PM..`: EJP mobile-peak hours.
    EjpMobilePeak,
    /// `HCJB`, `HCJW`, `HCJR`: Tempo off-peak hours of a day colour.
    TempoOffPeak(TempoColour),
    /// `HPJB`, `HPJW`, `HPJR`: Tempo peak hours of a day colour.
    TempoPeak(TempoColour),
}

impl TariffPeriod {
    /// Parses the 4 wire characters.
    pub fn parse(value: impl AsRef<[u8]>) -> Option<TariffPeriod> {
        let colour = |c| match c {
            b'B' => Some(TempoColour::Blue),
            b'W' => Some(TempoColour::White),
            b'R' => Some(TempoColour::Red),
            _ => None,
        };
        match value.as_ref() {
            b"TH.." => Some(TariffPeriod::AllHours),
            b"HC.." => Some(TariffPeriod::OffPeak),
            b"HP.." => Some(TariffPeriod::Peak),
            b"HN.." => Some(TariffPeriod::EjpNormal),
            b"PM.." => Some(TariffPeriod::EjpMobilePeak),
            [b'H', b'C', b'J', c] => colour(*c).map(TariffPeriod::TempoOffPeak),
            [b'H', b'P', b'J', c] => colour(*c).map(TariffPeriod::TempoPeak),
            _ => None,
        }
    }

    /// The historic index label counting in this period (`BASE`, `HCHC`, `BBRHPJR`...).
    pub const fn index_label(self) -> &'static str {
        match self {
            TariffPeriod::AllHours => "BASE",
            TariffPeriod::OffPeak => "HCHC",
            TariffPeriod::Peak => "HCHP",
            TariffPeriod::EjpNormal => "EJPHN",
            TariffPeriod::EjpMobilePeak => "EJPHPM",
            TariffPeriod::TempoOffPeak(TempoColour::Blue) => "BBRHCJB",
            TariffPeriod::TempoPeak(TempoColour::Blue) => "BBRHPJB",
            TariffPeriod::TempoOffPeak(TempoColour::White) => "BBRHCJW",
            TariffPeriod::TempoPeak(TempoColour::White) => "BBRHPJW",
            TariffPeriod::TempoOffPeak(TempoColour::Red) => "BBRHCJR",
            TariffPeriod::TempoPeak(TempoColour::Red) => "BBRHPJR",
        }
    }
}

/// DEMAIN: tomorrow's Tempo colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Demain {
    /// `----`: not announced yet.
    Unknown,
    /// `BLEU`, `BLAN`, `ROUG`.
    Colour(TempoColour),
}

impl Demain {
    /// Parses the 4 wire characters.
    pub fn parse(value: impl AsRef<[u8]>) -> Option<Demain> {
        match value.as_ref() {
            b"----" => Some(Demain::Unknown),
            b"BLEU" => Some(Demain::Colour(TempoColour::Blue)),
            b"BLAN" => Some(Demain::Colour(TempoColour::White)),
            b"ROUG" => Some(Demain::Colour(TempoColour::Red)),
            _ => None,
        }
    }
}

/// PPOT: which phases have lost their voltage. Returns `[phase1, phase2, phase3]`
/// with `true` for a missing phase.
///
/// ```
/// assert_eq!(tic::historic::missing_phases("02"), Some([true, false, false]));
/// assert_eq!(tic::historic::missing_phases("00"), Some([false, false, false]));
/// ```
pub fn missing_phases(ppot: impl AsRef<[u8]>) -> Option<[bool; 3]> {
    let b = ppot.as_ref();
    if b.len() != 2 {
        return None;
    }
    let nibble = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    };
    let v = nibble(b[0])? << 4 | nibble(b[1])?;
    Some([v & 2 != 0, v & 4 != 0, v & 8 != 0])
}
