//! STGE, the standard mode's 32-bit status register (tic-protocol.md §5.4).
//!
//! ```
//! use tic::stge::{Stge, TempoColour, CutOff};
//! // Three-phase Tempo frame of 2020-02-14 23:08, a white day with PM1 in progress.
//! let s = Stge::parse("463A0800").unwrap();
//! assert_eq!(s.supplier_index(), 3);
//! assert_eq!(s.tempo_today(), Some(TempoColour::White));
//! assert_eq!(s.tempo_tomorrow(), Some(TempoColour::Blue));
//! assert_eq!(s.mobile_peak_in_progress(), Some(1));
//! assert_eq!(s.cut_off(), CutOff::Closed);
//! assert!(s.standard_mode());
//! ```

/// The status register, most significant byte first on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Stge(pub u32);

/// State of the cut-off device (organe de coupure), bits 1–3.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CutOff {
    /// Closed: power flows.
    Closed,
    /// Open: overpower.
    Overpower,
    /// Open: overvoltage.
    Overvoltage,
    /// Open: load shedding (délestage).
    LoadShedding,
    /// Open: CPL or Euridis order.
    RemoteOrder,
    /// Open: overheating with current above the maximum switching current.
    OverheatingHighCurrent,
    /// Open: overheating with current below the maximum switching current.
    OverheatingLowCurrent,
    /// Value 7, not defined by the spec.
    Undefined,
}

/// A Tempo day colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TempoColour {
    /// Bleu: cheapest.
    Blue,
    /// Blanc.
    White,
    /// Rouge: most expensive.
    Red,
}

impl TempoColour {
    /// `"blue"`, `"white"` or `"red"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            TempoColour::Blue => "blue",
            TempoColour::White => "white",
            TempoColour::Red => "red",
        }
    }
}

/// Euridis output state, bits 19–20.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Euridis {
    /// `00`.
    Disabled,
    /// `01`.
    EnabledWithoutSecurity,
    /// `11`.
    EnabledWithSecurity,
    /// `10`, not defined by the spec.
    Undefined,
}

/// CPL (power-line carrier) status, bits 21–22.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CplStatus {
    /// `00` New/Unlock.
    NewUnlock,
    /// `01` New/Lock.
    NewLock,
    /// `10` Registered.
    Registered,
    /// `11`, not defined by the spec.
    Undefined,
}

impl Stge {
    /// Parses the 8 hexadecimal characters (upper case, as sent).
    pub fn parse(value: impl AsRef<[u8]>) -> Option<Stge> {
        let b = value.as_ref();
        if b.len() != 8 {
            return None;
        }
        let mut v = 0u32;
        for &c in b {
            let d = match c {
                b'0'..=b'9' => c - b'0',
                b'A'..=b'F' => c - b'A' + 10,
                _ => return None,
            };
            v = v << 4 | d as u32;
        }
        Some(Stge(v))
    }

    const fn bits(self, shift: u32, width: u32) -> u32 {
        (self.0 >> shift) & ((1 << width) - 1)
    }

    /// Bit 0: the dry contact (contact sec) is open.
    pub const fn dry_contact_open(self) -> bool {
        self.bits(0, 1) == 1
    }

    /// Bits 1–3: the cut-off device.
    pub const fn cut_off(self) -> CutOff {
        match self.bits(1, 3) {
            0 => CutOff::Closed,
            1 => CutOff::Overpower,
            2 => CutOff::Overvoltage,
            3 => CutOff::LoadShedding,
            4 => CutOff::RemoteOrder,
            5 => CutOff::OverheatingHighCurrent,
            6 => CutOff::OverheatingLowCurrent,
            _ => CutOff::Undefined,
        }
    }

    /// Bit 4: the distributor's terminal cover (cache-bornes) is open.
    pub const fn cover_open(self) -> bool {
        self.bits(4, 1) == 1
    }

    /// Bit 6: overvoltage on a phase.
    pub const fn overvoltage(self) -> bool {
        self.bits(6, 1) == 1
    }

    /// Bit 7: the reference power is being exceeded.
    pub const fn reference_power_exceeded(self) -> bool {
        self.bits(7, 1) == 1
    }

    /// Bit 8: producer operation.
    pub const fn producer(self) -> bool {
        self.bits(8, 1) == 1
    }

    /// Bit 9: active energy flows out (injection).
    pub const fn injecting(self) -> bool {
        self.bits(9, 1) == 1
    }

    /// Bits 10–13, plus one: the supplier tariff index counting now (1–16;
    /// 1–10 are defined, and NTARF should equal it).
    pub const fn supplier_index(self) -> u8 {
        self.bits(10, 4) as u8 + 1
    }

    /// Bits 14–15, plus one: the distributor tariff index counting now (1–4).
    pub const fn distributor_index(self) -> u8 {
        self.bits(14, 2) as u8 + 1
    }

    /// Bit 16: the meter's clock is degraded (time lost).
    pub const fn clock_degraded(self) -> bool {
        self.bits(16, 1) == 1
    }

    /// Bit 17: the TIC output is in standard mode.
    pub const fn standard_mode(self) -> bool {
        self.bits(17, 1) == 1
    }

    /// Bits 19–20: Euridis output.
    pub const fn euridis(self) -> Euridis {
        match self.bits(19, 2) {
            0 => Euridis::Disabled,
            1 => Euridis::EnabledWithoutSecurity,
            3 => Euridis::EnabledWithSecurity,
            _ => Euridis::Undefined,
        }
    }

    /// Bits 21–22: CPL status.
    pub const fn cpl_status(self) -> CplStatus {
        match self.bits(21, 2) {
            0 => CplStatus::NewUnlock,
            1 => CplStatus::NewLock,
            2 => CplStatus::Registered,
            _ => CplStatus::Undefined,
        }
    }

    /// Bit 23: CPL synchronised.
    pub const fn cpl_synchronised(self) -> bool {
        self.bits(23, 1) == 1
    }

    const fn colour(code: u32) -> Option<TempoColour> {
        match code {
            1 => Some(TempoColour::Blue),
            2 => Some(TempoColour::White),
            3 => Some(TempoColour::Red),
            _ => None,
        }
    }

    /// Bits 24–25: today's colour under a historic Tempo contract (`None`: no announcement).
    pub const fn tempo_today(self) -> Option<TempoColour> {
        Self::colour(self.bits(24, 2))
    }

    /// Bits 26–27: tomorrow's colour under a historic Tempo contract.
    pub const fn tempo_tomorrow(self) -> Option<TempoColour> {
        Self::colour(self.bits(26, 2))
    }

    /// Bits 28–29: notice (préavis) of mobile peak 1, 2 or 3.
    pub const fn mobile_peak_notice(self) -> Option<u8> {
        match self.bits(28, 2) {
            0 => None,
            n => Some(n as u8),
        }
    }

    /// Bits 30–31: mobile peak 1, 2 or 3 in progress.
    pub const fn mobile_peak_in_progress(self) -> Option<u8> {
        match self.bits(30, 2) {
            0 => None,
            n => Some(n as u8),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_the_real_values_of_the_protocol_notes() {
        let s = Stge::parse("003A0001").unwrap();
        assert!(s.dry_contact_open());
        assert_eq!(s.cut_off(), CutOff::Closed);
        assert!(!s.producer());
        assert_eq!((s.supplier_index(), s.distributor_index()), (1, 1));
        assert!(s.standard_mode());
        assert_eq!(s.euridis(), Euridis::EnabledWithSecurity);
        assert_eq!(s.cpl_status(), CplStatus::NewLock);

        let s = Stge::parse("000A4411").unwrap();
        assert!(s.cover_open());
        assert_eq!((s.supplier_index(), s.distributor_index()), (2, 2));
        assert_eq!(s.euridis(), Euridis::EnabledWithoutSecurity);

        let s = Stge::parse("013A0501").unwrap();
        assert!(s.producer());
        assert_eq!(s.supplier_index(), 2);
        assert_eq!(s.tempo_today(), Some(TempoColour::Blue));

        let s = Stge::parse("002A0301").unwrap();
        assert!(s.producer() && s.injecting());
        assert_eq!(s.supplier_index(), 1);

        assert_eq!(Stge::parse("003a0001"), None);
        assert_eq!(Stge::parse("003A000"), None);
        let all = Stge(0xFFFF_FFFF);
        assert_eq!(all.cut_off(), CutOff::Undefined);
        assert_eq!(all.supplier_index(), 16);
        assert_eq!(all.mobile_peak_notice(), Some(3));
        assert_eq!(Stge(0x2 << 1).cut_off(), CutOff::Overvoltage);
    }
}
