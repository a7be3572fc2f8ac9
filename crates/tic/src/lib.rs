//! # tic — the Linky *Télé-Information Client* protocol core
//!
//! `#![no_std]`, no allocator, no `unsafe`: it runs unchanged on an ESP32 and
//! on the server. It has no dependency, except on x86-64, where the scan at
//! the heart of the decoder uses SSE2 through `safe_arch`'s safe wrappers.
//!
//! * [`Decoder`] turns a byte stream (any chunking) into [`Event`]s: frame starts,
//!   checked [`Group`]s, [`Rejection`]s with their [`GroupError`], and frame ends.
//! * [`labels`] is the typed dictionary of every label of both modes.
//! * [`Horodate`] is the standard mode's `SAAMMJJhhmmss` timestamp, with UTC.
//! * [`stge`], [`relais`], [`profile`], [`historic`], [`address`] decode the
//!   structured values; [`encode`] writes groups and frames (tests, simulator).
//!
//! ```
//! use tic::{Decoder, Event};
//!
//! // One standard-mode frame: STX, two groups, ETX.
//! let bytes = b"\x02\nADSC\t041776199277\tI\r\nSINSTS\t00420\tL\r\x03";
//! let mut decoder = Decoder::new();
//! let mut input = &bytes[..];
//! let mut labels = Vec::new();
//! while !input.is_empty() {
//!     let (used, event) = decoder.feed(input);
//!     if let Some(Event::Group(group)) = event {
//!         labels.push((group.label.to_string(), group.value().to_string()));
//!     }
//!     input = &input[used..];
//! }
//! assert_eq!(labels, [("ADSC".into(), "041776199277".into()), ("SINSTS".into(), "00420".into())]);
//! ```
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod address;
mod checksum;
mod decoder;
pub mod encode;
mod error;
pub mod historic;
mod horodate;
pub mod labels;
pub mod profile;
pub mod relais;
mod scan;
pub mod stge;
mod syntax;

pub use checksum::checksum;
pub use decoder::{Decoder, EndReason, Event, FrameEnd, FrameStats, Options, Rejection};
pub use error::{ErrorCounts, GroupError};
pub use horodate::{
    civil_from_days, days_from_civil, days_in_month, Horodate, HorodateError, Season,
};
pub use labels::{DataFormat, LabelInfo, Quantity, Unit};
pub use syntax::{parse_group, Group};

/// Start of frame (§2.1).
pub const STX: u8 = 0x02;
/// End of frame.
pub const ETX: u8 = 0x03;
/// Frame interrupted: the meter stops mid-frame and restarts with a new STX.
pub const EOT: u8 = 0x04;
/// Start of group.
pub const LF: u8 = 0x0A;
/// End of group.
pub const CR: u8 = 0x0D;
/// Field separator in standard mode.
pub const HT: u8 = 0x09;
/// Field separator in historic mode.
pub const SP: u8 = 0x20;

/// The longest group the decoder accepts, LF and CR included: 128 bytes.
///
/// The longest group of either mode is `PJOURF+1`/`PPOINTE` at 111 bytes
/// (tic-protocol.md §1.6); 128 leaves room for a slightly longer unknown label
/// while keeping the decoder's buffer small. A longer group is rejected once
/// with [`GroupError::TooLong`] and the decoder waits for the next LF.
pub const MAX_GROUP_LEN: usize = 128;

/// The two TIC modes. Told apart per group by the separator before the checksum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mode {
    /// Historic mode: 1200 Bd, SP separators, checksum "mode 1".
    Historic,
    /// Standard mode (Linky only): 9600 Bd, HT separators, checksum "mode 2", horodates.
    Standard,
}

impl Mode {
    /// The field separator of this mode.
    pub const fn separator(self) -> u8 {
        match self {
            Mode::Historic => SP,
            Mode::Standard => HT,
        }
    }

    /// The line speed of this mode in baud (§1.3).
    pub const fn baud(self) -> u32 {
        match self {
            Mode::Historic => 1200,
            Mode::Standard => 9600,
        }
    }

    /// `"historic"` or `"standard"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Mode::Historic => "historic",
            Mode::Standard => "standard",
        }
    }
}
