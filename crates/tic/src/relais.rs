//! RELAIS: the state of relays 1–8 as a decimal bit mask (tic-protocol.md §5.5).
//!
//! ```
//! use tic::relais::Relais;
//! let r = Relais::parse("140").unwrap(); // relays 3, 4 and 8 closed
//! assert_eq!(r.closed(3), Some(true));
//! assert_eq!(r.closed(1), Some(false));
//! assert_eq!(r.closed(9), None);
//! ```

/// Relay 1 is the real dry contact, 2–8 are virtual. Bit = 1 means **closed**
/// (the opposite polarity of STGE bit 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Relais(pub u8);

impl Relais {
    /// Parses the decimal value 0–255.
    pub fn parse(value: impl AsRef<[u8]>) -> Option<Relais> {
        let n = crate::syntax::parse_digits(value.as_ref())?;
        u8::try_from(n).ok().map(Relais)
    }

    /// Whether relay `n` (1–8) is closed; `None` for another number.
    pub const fn closed(self, n: u8) -> Option<bool> {
        if n >= 1 && n <= 8 {
            Some(self.0 >> (n - 1) & 1 == 1)
        } else {
            None
        }
    }
}
