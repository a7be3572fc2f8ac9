//! French legal time (Europe/Paris) without a time-zone database.
//!
//! Since 1996 the EU rule is fixed (Directive 2000/84/EC): summer time starts
//! on the last Sunday of March at 01:00 UTC (02:00 CET → 03:00 CEST) and ends
//! on the last Sunday of October at 01:00 UTC (03:00 CEST → 02:00 CET). The
//! meter's horodates carry the season letter `E`/`H` (tic-protocol.md §2.4),
//! which this module derives from a Unix time.
//!
//! ```
//! use meter_sim::clock;
//! // 2025-03-30 00:59:59 UTC is still winter time, one second later it is summer.
//! let switch = clock::parse_datetime("2025-03-30T03:00:00").unwrap();
//! assert!(clock::is_summer(switch) && !clock::is_summer(switch - 1));
//! assert_eq!(clock::local(switch - 1).hour, 1);
//! assert_eq!(clock::local(switch).hour, 3);
//! ```

// The calendar arithmetic is the protocol core's (one implementation, tested there).
pub use tic::{civil_from_days, days_from_civil};

/// Days in a month.
pub fn days_in_month(year: i64, month: u8) -> u8 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        _ => 0,
    }
}

/// Day of the week of a day number: 0 = Monday … 6 = Sunday (1970-01-01 was a Thursday).
pub fn weekday(days: i64) -> u8 {
    (days + 3).rem_euclid(7) as u8
}

/// Day number of the last Sunday of a month.
fn last_sunday(year: i64, month: u8) -> i64 {
    let last = days_from_civil(year, month, days_in_month(year, month));
    last - (weekday(last) as i64 + 1) % 7
}

/// Unix times (s) at which summer time starts and ends in `year`.
pub fn summer_bounds_unix_s(year: i64) -> (i64, i64) {
    (
        last_sunday(year, 3) * 86_400 + 3600,
        last_sunday(year, 10) * 86_400 + 3600,
    )
}

/// Whether French legal time is summer time (CEST, UTC+2) at this instant.
pub fn is_summer(unix_s: i64) -> bool {
    let (year, _, _) = civil_from_days(unix_s.div_euclid(86_400));
    let (start, end) = summer_bounds_unix_s(year);
    (start..end).contains(&unix_s)
}

/// Offset of French legal time from UTC at this instant: 3600 or 7200 s.
pub fn utc_offset_s(unix_s: i64) -> i64 {
    if is_summer(unix_s) {
        7200
    } else {
        3600
    }
}

/// A broken-down French local time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalTime {
    /// Full year.
    pub year: i64,
    /// 1–12.
    pub month: u8,
    /// 1–31.
    pub day: u8,
    /// 0–23.
    pub hour: u8,
    /// 0–59.
    pub minute: u8,
    /// 0–59.
    pub second: u8,
    /// 0 = Monday … 6 = Sunday.
    pub weekday: u8,
    /// Local day number (days since 1970-01-01 of the local date).
    pub day_number: i64,
    /// Seconds since local midnight (wall clock: 0–86399).
    pub second_of_day: u32,
    /// Summer time (season letter `E`).
    pub summer: bool,
}

impl LocalTime {
    /// Minutes since local midnight on the wall clock.
    pub fn minute_of_day(&self) -> u32 {
        self.second_of_day / 60
    }
}

/// French local time of a Unix time.
pub fn local(unix_s: i64) -> LocalTime {
    let summer = is_summer(unix_s);
    let local_s = unix_s + if summer { 7200 } else { 3600 };
    let day_number = local_s.div_euclid(86_400);
    let second_of_day = local_s.rem_euclid(86_400) as u32;
    let (year, month, day) = civil_from_days(day_number);
    LocalTime {
        year,
        month,
        day,
        hour: (second_of_day / 3600) as u8,
        minute: (second_of_day / 60 % 60) as u8,
        second: (second_of_day % 60) as u8,
        weekday: weekday(day_number),
        day_number,
        second_of_day,
        summer,
    }
}

/// Unix time of the local midnight that starts a local day (midnight is never
/// inside a clock change in France, which happen at 02:00/03:00).
pub fn local_midnight_unix_s(day_number: i64) -> i64 {
    let guess = day_number * 86_400 - 3600;
    if is_summer(guess - 3600) {
        day_number * 86_400 - 7200
    } else {
        guess
    }
}

/// Why a local date-time could not be turned into an instant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DateError {
    /// Not one of the accepted forms.
    Syntax(String),
    /// The fields do not form a real date or time (30 February, 25:00...).
    Impossible(String),
    /// Inside the hour skipped when summer time starts (02:00–02:59 on the last Sunday of March).
    Skipped(String),
}

impl std::fmt::Display for DateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DateError::Syntax(s) => write!(
                f,
                "`{s}` is not a date: use YYYY-MM-DD, YYYY-MM-DDTHH:MM[:SS] (French local time), the same ending in Z (UTC), or @UNIX_SECONDS"
            ),
            DateError::Impossible(s) => write!(f, "`{s}` is not a real date and time"),
            DateError::Skipped(s) => write!(
                f,
                "`{s}` does not exist in French local time (skipped when summer time starts)"
            ),
        }
    }
}

impl std::error::Error for DateError {}

/// Parses `YYYY-MM-DD`, `YYYY-MM-DD[T ]HH:MM[:SS]` as French local time (the
/// repeated October hour resolves to its first, summer, occurrence), the same
/// with a trailing `Z` as UTC, or `@SECONDS` as a Unix time.
pub fn parse_datetime(text: &str) -> Result<i64, DateError> {
    let syntax = || DateError::Syntax(text.to_string());
    if let Some(unix) = text.strip_prefix('@') {
        return unix.parse().map_err(|_| syntax());
    }
    let (body, utc) = match text.strip_suffix('Z') {
        Some(b) => (b, true),
        None => (text, false),
    };
    let (date, time) = match body.split_once(['T', ' ']) {
        Some((d, t)) => (d, Some(t)),
        None => (body, None),
    };
    let num = |s: &str, len: usize| -> Result<i64, DateError> {
        if s.len() != len || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(syntax());
        }
        s.parse().map_err(|_| syntax())
    };
    let mut d = date.split('-');
    let (Some(y), Some(m), Some(dd), None) = (d.next(), d.next(), d.next(), d.next()) else {
        return Err(syntax());
    };
    let (year, month, day) = (num(y, 4)?, num(m, 2)?, num(dd, 2)?);
    let (mut hour, mut minute, mut second) = (0, 0, 0);
    if let Some(t) = time {
        let parts: Vec<&str> = t.split(':').collect();
        if !(2..=3).contains(&parts.len()) {
            return Err(syntax());
        }
        hour = num(parts[0], 2)?;
        minute = num(parts[1], 2)?;
        if parts.len() == 3 {
            second = num(parts[2], 2)?;
        }
    }
    if !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month as u8) as i64
        || hour > 23
        || minute > 59
        || second > 59
    {
        return Err(DateError::Impossible(text.to_string()));
    }
    let wall =
        days_from_civil(year, month as u8, day as u8) * 86_400 + hour * 3600 + minute * 60 + second;
    if utc {
        return Ok(wall);
    }
    // Try summer first so that the repeated hour resolves to its first occurrence.
    for offset in [7200, 3600] {
        let candidate = wall - offset;
        if utc_offset_s(candidate) == offset {
            return Ok(candidate);
        }
    }
    Err(DateError::Skipped(text.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summer_time_bounds_follow_the_eu_rule() {
        // 2024: 31 March and 27 October; 2025: 30 March and 26 October.
        let (s, e) = summer_bounds_unix_s(2024);
        assert_eq!(civil_from_days(s / 86_400), (2024, 3, 31));
        assert_eq!(civil_from_days(e / 86_400), (2024, 10, 27));
        let (s, e) = summer_bounds_unix_s(2025);
        assert_eq!(civil_from_days(s / 86_400), (2025, 3, 30));
        assert_eq!(civil_from_days(e / 86_400), (2025, 10, 26));
        assert_eq!(s % 86_400, 3600);
    }

    #[test]
    fn parses_local_utc_and_rejects_impossible() {
        assert_eq!(parse_datetime("2024-01-01").unwrap(), 1_704_063_600);
        assert_eq!(
            parse_datetime("2024-01-01T00:00:00Z").unwrap(),
            1_704_067_200
        );
        assert_eq!(parse_datetime("2024-07-01T12:00").unwrap() % 86_400, 36_000);
        assert!(matches!(
            parse_datetime("2023-02-29"),
            Err(DateError::Impossible(_))
        ));
        assert!(matches!(
            parse_datetime("2024-13-01"),
            Err(DateError::Impossible(_))
        ));
        assert!(matches!(
            parse_datetime("2024-03-31T02:30"),
            Err(DateError::Skipped(_))
        ));
        assert!(matches!(
            parse_datetime("yesterday"),
            Err(DateError::Syntax(_))
        ));
        // The repeated hour: first occurrence (summer).
        let first = parse_datetime("2024-10-27T02:30").unwrap();
        assert!(is_summer(first));
        assert!(!is_summer(first + 3600));
        assert_eq!(local(first + 3600).hour, 2);
    }

    #[test]
    fn local_midnight_is_exact_all_year() {
        let start = days_from_civil(2024, 1, 1);
        for d in start..start + 800 {
            let m = local_midnight_unix_s(d);
            let l = local(m);
            assert_eq!((l.day_number, l.second_of_day), (d, 0));
            assert_eq!(local(m - 1).day_number, d - 1);
        }
    }
}
