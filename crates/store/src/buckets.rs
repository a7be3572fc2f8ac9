//! Bucket boundaries: fixed width, target point count, and local calendar periods.

use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan, ZonedDateTime};

use crate::error::{Result, StoreError};
use crate::limits::{MAX_BUCKETS, MAX_TS_MS};

const SEC: i64 = 1000;
const MIN: i64 = 60 * SEC;
const HOUR: i64 = 60 * MIN;
const DAY: i64 = 24 * HOUR;

/// "Nice" bucket widths for [`Bucketing::TargetCount`]: all multiples of each other where it
/// matters, and minute/hour multiples so that rollups can answer them.
const NICE_MS: &[i64] = &[
    1,
    2,
    5,
    10,
    20,
    50,
    100,
    200,
    500,
    SEC,
    2 * SEC,
    5 * SEC,
    10 * SEC,
    15 * SEC,
    30 * SEC,
    MIN,
    2 * MIN,
    5 * MIN,
    10 * MIN,
    15 * MIN,
    30 * MIN,
    HOUR,
    2 * HOUR,
    3 * HOUR,
    6 * HOUR,
    12 * HOUR,
    DAY,
];

/// How a range is cut into buckets.
#[derive(Debug, Clone, PartialEq)]
pub enum Bucketing {
    /// Buckets `width_ms` wide, aligned on multiples of the width since the Unix epoch (UTC),
    /// like OpenTSDB's downsampling; the first and last buckets are clipped to the range.
    Width {
        /// Bucket width in milliseconds (> 0).
        width_ms: i64,
    },
    /// At most about `points` buckets (at most `points + 1`): the smallest "nice" width
    /// (1 s, 2 s, 5 s, …, 1 min, …, 1 h, …, 1 d, then whole days) that gives no more than that.
    TargetCount {
        /// Wanted number of buckets (> 0).
        points: usize,
    },
    /// Calendar periods in a time zone: local days are 23 h or 25 h on DST changes.
    Local {
        /// Period length.
        period: Period,
        /// IANA time zone name, e.g. `Europe/Paris`.
        tz: String,
    },
}

/// A calendar period in local time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Period {
    /// Local clock hour.
    Hour,
    /// Local day (midnight to midnight).
    Day,
    /// ISO week, Monday 00:00 to Monday 00:00.
    Week,
    /// Calendar month.
    Month,
    /// Calendar year.
    Year,
}

pub(crate) fn check_range(from_ms: i64, to_ms: i64) -> Result<()> {
    if from_ms >= to_ms {
        return Err(StoreError::InvalidRange { from_ms, to_ms });
    }
    for ts_ms in [from_ms, to_ms] {
        if !(0..=MAX_TS_MS + 1).contains(&ts_ms) {
            return Err(StoreError::TimestampOutOfRange { ts_ms });
        }
    }
    Ok(())
}

fn too_many(n: u64) -> StoreError {
    StoreError::LimitExceeded {
        what: "buckets",
        got: n,
        max: MAX_BUCKETS as u64,
        hint: "use wider buckets or a shorter range",
    }
}

/// The smallest nice width giving at most `points` buckets over `span_ms`.
pub fn nice_width_ms(span_ms: i64, points: usize) -> i64 {
    let points = points.max(1) as i64;
    let need = (span_ms + points - 1) / points;
    NICE_MS
        .iter()
        .copied()
        .find(|&w| w >= need)
        .unwrap_or_else(|| (need + DAY - 1) / DAY * DAY)
}

/// Boundaries `b[0] = from_ms < b[1] < … < b[n] = to_ms` of the buckets; bucket `i` is
/// `[b[i], b[i+1])`. For [`Bucketing::Local`] the outer boundaries are widened to whole
/// periods (the period containing `from_ms` through the one containing `to_ms - 1`).
pub fn bucket_boundaries(from_ms: i64, to_ms: i64, bucketing: &Bucketing) -> Result<Vec<i64>> {
    check_range(from_ms, to_ms)?;
    match bucketing {
        Bucketing::Width { width_ms } => fixed(from_ms, to_ms, *width_ms),
        Bucketing::TargetCount { points } => {
            if *points == 0 {
                return Err(StoreError::InvalidBuckets("target point count is 0".into()));
            }
            fixed(from_ms, to_ms, nice_width_ms(to_ms - from_ms, *points))
        }
        Bucketing::Local { period, tz } => local_period_boundaries(from_ms, to_ms, *period, tz),
    }
}

fn fixed(from_ms: i64, to_ms: i64, w: i64) -> Result<Vec<i64>> {
    if w <= 0 {
        return Err(StoreError::InvalidBuckets(format!(
            "bucket width {w} ms is not positive"
        )));
    }
    let n = ((to_ms - from_ms) / w + 2) as u64;
    if n > MAX_BUCKETS as u64 + 1 {
        return Err(too_many(n));
    }
    let mut b = Vec::with_capacity(n as usize + 1);
    b.push(from_ms);
    let mut t = from_ms.div_euclid(w) * w + w;
    while t < to_ms {
        b.push(t);
        t += w;
    }
    b.push(to_ms);
    Ok(b)
}

fn time_err(e: jiff::Error) -> StoreError {
    StoreError::Time(e.to_string())
}

/// Looks a zone up in jiff's bundled tz database (so results do not depend on the host).
pub fn time_zone(name: &str) -> Result<TimeZone> {
    TimeZone::get(name).map_err(|e| StoreError::UnknownTimeZone {
        name: name.to_string(),
        reason: e.to_string(),
    })
}

fn period_start(z: &ZonedDateTime, p: Period) -> Result<ZonedDateTime> {
    Ok(match p {
        Period::Hour => z
            .with()
            .minute(0)
            .second(0)
            .subsec_nanosecond(0)
            .build()
            .map_err(time_err)?,
        Period::Day => z.start_of_day().map_err(time_err)?,
        Period::Week => {
            let back = i64::from(z.weekday().to_monday_zero_offset());
            z.start_of_day()
                .map_err(time_err)?
                .checked_sub(back.days())
                .map_err(time_err)?
                .start_of_day()
                .map_err(time_err)?
        }
        Period::Month => z
            .first_of_month()
            .map_err(time_err)?
            .start_of_day()
            .map_err(time_err)?,
        Period::Year => z
            .first_of_year()
            .map_err(time_err)?
            .start_of_day()
            .map_err(time_err)?,
    })
}

fn next_period(z: &ZonedDateTime, p: Period) -> Result<ZonedDateTime> {
    let n = match p {
        Period::Hour => return z.checked_add(1.hour()).map_err(time_err),
        Period::Day => z.checked_add(1.day()),
        Period::Week => z.checked_add(1.week()),
        Period::Month => z.checked_add(1.month()),
        Period::Year => z.checked_add(1.year()),
    }
    .map_err(time_err)?;
    period_start(&n, p)
}

/// Starts of the local periods covering `[from_ms, to_ms)`, plus the end of the last one.
///
/// Days in Europe/Paris are 23 h on the last Sunday of March and 25 h on the last Sunday of
/// October; energy per day computed over these boundaries is correct on those days.
pub fn local_period_boundaries(
    from_ms: i64,
    to_ms: i64,
    period: Period,
    tz: &str,
) -> Result<Vec<i64>> {
    check_range(from_ms, to_ms)?;
    let zone = time_zone(tz)?;
    let start = Timestamp::from_millisecond(from_ms)
        .map_err(time_err)?
        .to_zoned_datetime(zone);
    let mut z = period_start(&start, period)?;
    let mut b = vec![z.timestamp().as_millisecond()];
    while *b.last().unwrap_or(&to_ms) < to_ms {
        z = next_period(&z, period)?;
        let t = z.timestamp().as_millisecond();
        if t <= *b.last().unwrap_or(&i64::MIN) {
            return Err(StoreError::Time(format!(
                "period boundaries do not advance at {t}"
            )));
        }
        b.push(t);
        if b.len() > MAX_BUCKETS + 1 {
            return Err(too_many(b.len() as u64));
        }
    }
    Ok(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(s: &str) -> i64 {
        s.parse::<Timestamp>().unwrap().as_millisecond()
    }

    #[test]
    fn paris_dst_days() {
        // 2026-03-29 is 23 h, 2026-10-25 is 25 h in Paris.
        let b = local_period_boundaries(
            ms("2026-03-28T12:00:00Z"),
            ms("2026-03-30T12:00:00Z"),
            Period::Day,
            "Europe/Paris",
        )
        .unwrap();
        assert_eq!(b[0], ms("2026-03-27T23:00:00Z"));
        assert_eq!(b[1], ms("2026-03-28T23:00:00Z"));
        assert_eq!(b[2], ms("2026-03-29T22:00:00Z"));
        assert_eq!(b[2] - b[1], 23 * HOUR);
        assert_eq!(*b.last().unwrap(), ms("2026-03-30T22:00:00Z"));
        let b = local_period_boundaries(
            ms("2026-10-25T00:00:00Z"),
            ms("2026-10-25T12:00:00Z"),
            Period::Day,
            "Europe/Paris",
        )
        .unwrap();
        assert_eq!(
            b,
            vec![ms("2026-10-24T22:00:00Z"), ms("2026-10-25T23:00:00Z")]
        );
    }

    #[test]
    fn weeks_months_years() {
        let from = ms("2026-01-15T00:00:00Z");
        let to = ms("2026-12-31T00:00:00Z");
        let m = local_period_boundaries(from, to, Period::Month, "Europe/Paris").unwrap();
        assert_eq!(m.len(), 13);
        assert_eq!(m[0], ms("2025-12-31T23:00:00Z"));
        assert_eq!(m[3], ms("2026-03-31T22:00:00Z"));
        let y = local_period_boundaries(from, to, Period::Year, "Europe/Paris").unwrap();
        assert_eq!(
            y,
            vec![ms("2025-12-31T23:00:00Z"), ms("2026-12-31T23:00:00Z")]
        );
        let w = local_period_boundaries(from, from + 1, Period::Week, "Europe/Paris").unwrap();
        // 2026-01-15 is a Thursday; the week starts Monday 12th.
        assert_eq!(
            w,
            vec![ms("2026-01-11T23:00:00Z"), ms("2026-01-18T23:00:00Z")]
        );
        assert!(local_period_boundaries(from, to, Period::Day, "Mars/Olympus").is_err());
    }

    #[test]
    fn fixed_and_target() {
        assert_eq!(fixed(5, 25, 10).unwrap(), vec![5, 10, 20, 25]);
        assert_eq!(fixed(10, 20, 10).unwrap(), vec![10, 20]);
        assert!(fixed(0, 10, 0).is_err());
        let year = 365 * DAY;
        assert_eq!(nice_width_ms(year, 1000), 12 * HOUR);
        let b = bucket_boundaries(0, year, &Bucketing::TargetCount { points: 1000 }).unwrap();
        assert!(b.len() <= 1002);
        assert!(bucket_boundaries(0, year, &Bucketing::Width { width_ms: 1 }).is_err());
        assert!(bucket_boundaries(10, 10, &Bucketing::Width { width_ms: 1 }).is_err());
    }
}
