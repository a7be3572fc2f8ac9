//! Standard mode's horodate `SAAMMJJhhmmss` (tic-protocol.md §2.4).

use core::fmt;

/// The season letter of a horodate: which legal time the meter's clock is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Season {
    /// `E` (or `e` when degraded): summer time, UTC+2.
    Summer,
    /// `H` (or `h` when degraded): winter time, UTC+1.
    Winter,
    /// SP: no season (only DPM1-3/FPM1-3 use it); the UTC offset is unknown.
    None,
}

/// A meter timestamp: French legal local time plus its season letter.
///
/// ```
/// use tic::{Horodate, Season};
/// let h = Horodate::parse(b"E170915101601").unwrap();
/// assert_eq!((h.season, h.year, h.month, h.day), (Season::Summer, 2017, 9, 15));
/// assert!(!h.degraded);
/// // Summer time is UTC+2: 10:16:01 local is 08:16:01 UTC.
/// assert_eq!(h.utc().unwrap().hour, 8);
/// assert_eq!(h.to_string(), "E170915101601");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Horodate {
    /// Summer, winter or none.
    pub season: Season,
    /// Lower-case letter: the meter's clock ran past its backup autonomy and
    /// has not been resynchronised, so the time is less trustworthy.
    pub degraded: bool,
    /// 2000 + YY.
    pub year: u16,
    /// 1–12.
    pub month: u8,
    /// 1–31, checked against the month's length.
    pub day: u8,
    /// 0–23.
    pub hour: u8,
    /// 0–59.
    pub minute: u8,
    /// 0–59.
    pub second: u8,
}

/// Why a horodate was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HorodateError {
    /// Not exactly 13 characters.
    Length,
    /// The first character is not one of `E H e h` or SP.
    Season,
    /// One of the 12 date characters is not a digit.
    NotDigit,
    /// Digits that do not form a real date and time (month 13, 30 February, 24:00...).
    Impossible,
}

/// Length of a horodate on the wire.
pub const HORODATE_LEN: usize = 13;

impl Horodate {
    /// Parses the 13 wire characters.
    pub fn parse(bytes: &[u8]) -> Result<Horodate, HorodateError> {
        let bytes: &[u8; HORODATE_LEN] = bytes.try_into().map_err(|_| HorodateError::Length)?;
        let (season, degraded) = match bytes[0] {
            b'E' => (Season::Summer, false),
            b'e' => (Season::Summer, true),
            b'H' => (Season::Winter, false),
            b'h' => (Season::Winter, true),
            b' ' => (Season::None, false),
            _ => return Err(HorodateError::Season),
        };
        let mut n = [0u8; 6];
        for (i, pair) in bytes[1..].chunks_exact(2).enumerate() {
            let (a, b) = (pair[0].wrapping_sub(b'0'), pair[1].wrapping_sub(b'0'));
            if a > 9 || b > 9 {
                return Err(HorodateError::NotDigit);
            }
            n[i] = a * 10 + b;
        }
        let h = Horodate {
            season,
            degraded,
            year: 2000 + n[0] as u16,
            month: n[1],
            day: n[2],
            hour: n[3],
            minute: n[4],
            second: n[5],
        };
        if h.month == 0
            || h.month > 12
            || h.day == 0
            || h.day > days_in_month(h.year, h.month)
            || h.hour > 23
            || h.minute > 59
            || h.second > 59
        {
            return Err(HorodateError::Impossible);
        }
        Ok(h)
    }

    /// The season letter as sent on the wire.
    pub const fn season_char(&self) -> char {
        match (self.season, self.degraded) {
            (Season::Summer, false) => 'E',
            (Season::Summer, true) => 'e',
            (Season::Winter, false) => 'H',
            (Season::Winter, true) => 'h',
            (Season::None, _) => ' ',
        }
    }

    /// Offset of the meter's local time from UTC in seconds, if the season says.
    pub const fn utc_offset_s(&self) -> Option<i64> {
        match self.season {
            Season::Summer => Some(7200),
            Season::Winter => Some(3600),
            Season::None => None,
        }
    }

    /// Seconds since 1970-01-01T00:00:00 of the local wall-clock time, as if it were UTC.
    pub fn local_epoch_s(&self) -> i64 {
        days_from_civil(self.year as i64, self.month, self.day) * 86_400
            + self.hour as i64 * 3600
            + self.minute as i64 * 60
            + self.second as i64
    }

    /// Unix time (seconds) of this instant, when the season letter gives the offset.
    pub fn unix_s(&self) -> Option<i64> {
        Some(self.local_epoch_s() - self.utc_offset_s()?)
    }

    /// The same instant in UTC (season `None`), when the season letter gives the offset.
    pub fn utc(&self) -> Option<Horodate> {
        Some(Horodate::from_unix_s(
            self.unix_s()?,
            Season::None,
            self.degraded,
        ))
    }

    /// Builds a horodate from a Unix time as seen in the given season
    /// (UTC+2 for summer, UTC+1 for winter, UTC itself for `None`).
    ///
    /// Years outside 2000–2099 cannot be written on the wire; callers that
    /// encode check [`Horodate::is_encodable`].
    pub fn from_unix_s(unix_s: i64, season: Season, degraded: bool) -> Horodate {
        let offset = match season {
            Season::Summer => 7200,
            Season::Winter => 3600,
            Season::None => 0,
        };
        let local = unix_s + offset;
        let days = local.div_euclid(86_400);
        let secs = local.rem_euclid(86_400);
        let (year, month, day) = civil_from_days(days);
        Horodate {
            season,
            degraded,
            year: year.clamp(0, u16::MAX as i64) as u16,
            month,
            day,
            hour: (secs / 3600) as u8,
            minute: (secs / 60 % 60) as u8,
            second: (secs % 60) as u8,
        }
    }

    /// Whether this horodate fits the wire format (years 2000–2099).
    pub const fn is_encodable(&self) -> bool {
        self.year >= 2000 && self.year <= 2099
    }

    /// The 13 wire characters (the year is taken modulo 100).
    pub fn to_wire(&self) -> [u8; HORODATE_LEN] {
        let mut out = [0u8; HORODATE_LEN];
        out[0] = self.season_char() as u8;
        let fields = [
            (self.year % 100) as u8,
            self.month,
            self.day,
            self.hour,
            self.minute,
            self.second,
        ];
        for (i, v) in fields.iter().enumerate() {
            out[1 + 2 * i] = b'0' + v / 10 % 10;
            out[2 + 2 * i] = b'0' + v % 10;
        }
        out
    }

    /// Writes `YYYY-MM-DDTHH:MM:SS` (ISO 8601 without offset).
    pub fn write_iso(&self, f: &mut impl fmt::Write) -> fmt::Result {
        write!(
            f,
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        )
    }
}

impl fmt::Display for Horodate {
    /// The wire form, e.g. `E170915101601`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.to_wire() {
            fmt::Write::write_char(f, b as char)?;
        }
        Ok(())
    }
}

/// Days in a month of the proleptic Gregorian calendar.
pub const fn days_in_month(year: u16, month: u8) -> u8 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400) => {
            29
        }
        2 => 28,
        _ => 0,
    }
}

/// Days since 1970-01-01 of a civil date (proleptic Gregorian), using the
/// era-based method: years are shifted to start in March so that the leap day
/// is the last day of the shifted year.
pub fn days_from_civil(year: i64, month: u8, day: u8) -> i64 {
    let m = month as i64;
    let y = if m <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400;
    let shifted_month = (m + 9) % 12; // March = 0
    let day_of_year = (153 * shifted_month + 2) / 5 + day as i64 - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The inverse of [`days_from_civil`].
pub fn civil_from_days(days: i64) -> (i64, u8, u8) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * shifted_month + 2) / 5 + 1) as u8;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    } as u8;
    let year = year_of_era + era * 400 + if month <= 2 { 1 } else { 0 };
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_round_trip_over_two_centuries() {
        for days in -1000..80_000 {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
    }

    #[test]
    fn rejects_impossible_dates() {
        assert_eq!(
            Horodate::parse(b"H230229120000"),
            Err(HorodateError::Impossible)
        );
        assert!(Horodate::parse(b"H240229120000").is_ok());
        assert_eq!(
            Horodate::parse(b"H241301120000"),
            Err(HorodateError::Impossible)
        );
        assert_eq!(
            Horodate::parse(b"H240100120000"),
            Err(HorodateError::Impossible)
        );
        assert_eq!(
            Horodate::parse(b"H240101240000"),
            Err(HorodateError::Impossible)
        );
        assert_eq!(
            Horodate::parse(b"H240101236000"),
            Err(HorodateError::Impossible)
        );
        assert_eq!(
            Horodate::parse(b"H240101235960"),
            Err(HorodateError::Impossible)
        );
        assert_eq!(
            Horodate::parse(b"X240101000000"),
            Err(HorodateError::Season)
        );
        assert_eq!(
            Horodate::parse(b"H24010100000a"),
            Err(HorodateError::NotDigit)
        );
        assert_eq!(Horodate::parse(b"H2401010000"), Err(HorodateError::Length));
    }

    #[test]
    fn utc_conversion_by_season() {
        let winter = Horodate::parse(b"H081225223518").unwrap();
        let u = winter.utc().unwrap();
        assert_eq!((u.day, u.hour, u.minute), (25, 21, 35));
        // Crossing midnight and a month end backwards.
        let summer = Horodate::parse(b"e240801013000").unwrap();
        assert!(summer.degraded);
        let u = summer.utc().unwrap();
        assert_eq!(
            (u.year, u.month, u.day, u.hour, u.minute),
            (2024, 7, 31, 23, 30)
        );
        // The repeated hour of the last Sunday of October: E then H are one hour apart.
        let first = Horodate::parse(b"E241027023000").unwrap();
        let second = Horodate::parse(b"H241027023000").unwrap();
        assert_eq!(second.unix_s().unwrap() - first.unix_s().unwrap(), 3600);
        assert_eq!(Horodate::parse(b" 200214060000").unwrap().utc(), None);
    }
}
