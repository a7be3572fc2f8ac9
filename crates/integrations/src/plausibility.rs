//! The last validation layer before anything leaves the server: physical plausibility of
//! energy indexes (DESIGN.md "nothing wrong published"; peers.md §(c) pain point 2).
//!
//! The decoder already rejects groups with a bad checksum or format, but a 6-bit checksum
//! lets some corrupted numbers through (`324206` instead of `3242060`). An index is a
//! cumulative register: between two frames it can only grow, and by no more than the most
//! power the meter lets through (PCOUP, else PREF, in kVA) times the elapsed time. Values
//! outside that bound are **held back** (never published, counted) rather than corrected.
//!
//! Two situations need care:
//! - **No reference yet** (first frame after start): one value cannot be checked alone, so it
//!   is held until the next frame confirms it (one frame of delay, a few seconds).
//! - **A legitimate jump** (meter replaced, register reset, or the reference itself was a
//!   corrupted value that happened to be confirmed): after [`REANCHOR_AFTER`] consecutive
//!   held values that agree with each other, they become the new reference (counted as a
//!   re-anchor). A one-off corrupted value never gets there.

use std::collections::HashMap;

/// Consecutive mutually plausible held values that replace the reference.
pub const REANCHOR_AFTER: u32 = 3;
/// Limit used until a frame tells PCOUP/PREF/ISOUSC: the largest C5 (≤ 36 kVA) supply.
pub const DEFAULT_LIMIT_VA: f64 = 36_000.0;
/// Margin on the power limit (the meter trips above PCOUP only after a delay; W ≤ VA).
const MARGIN: f64 = 1.5;
/// Extra seconds of allowance for timestamp rounding (meter time has a 1 s resolution).
const SLACK_S: f64 = 5.0;
/// Most (meter, series) pairs tracked; beyond, new ones are passed through unchecked (and
/// counted) rather than growing memory without bound.
pub const MAX_TRACKED: usize = 2_000_000;

/// What to do with one index value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Publish it.
    Accept,
    /// Hold it back: first value, not yet confirmed by a second frame.
    Unconfirmed,
    /// Hold it back: it goes backwards or jumps more than physically possible.
    Implausible,
}

#[derive(Debug, Default, Clone, Copy)]
struct Track {
    accepted: Option<(i64, f64)>,
    pending: Option<(i64, f64)>,
    run: u32,
}

/// Counters of the checker.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PlausibilityCounts {
    /// Values held back as implausible.
    pub implausible: u64,
    /// Values held back waiting for confirmation.
    pub unconfirmed: u64,
    /// References replaced after a consistent run of held values.
    pub reanchored: u64,
    /// Values passed unchecked because the tracking table was full.
    pub untracked: u64,
}

/// Per (meter, series) index state.
#[derive(Debug, Default)]
pub struct Plausibility {
    tracks: HashMap<(String, String), Track>,
    limits: HashMap<String, f64>,
    /// Counters.
    pub counts: PlausibilityCounts,
}

/// Whether going from `a` to `b` is physically possible with at most `limit_va`.
fn plausible(a: (i64, f64), b: (i64, f64), limit_va: f64) -> bool {
    let dv = b.1 - a.1;
    let dt_s = (b.0 - a.0) as f64 / 1000.0;
    let max_wh = limit_va * MARGIN * (dt_s.max(0.0) + SLACK_S) / 3600.0;
    dv >= 0.0 && dv <= max_wh
}

impl Plausibility {
    /// Records the meter's power limit (VA) when a frame tells it.
    pub fn set_limit(&mut self, meter: &str, limit_va: f64) {
        if limit_va.is_finite() && limit_va > 0.0 && self.limits.get(meter) != Some(&limit_va) {
            if self.limits.len() >= MAX_TRACKED && !self.limits.contains_key(meter) {
                return;
            }
            self.limits.insert(meter.to_string(), limit_va);
        }
    }

    /// Checks one index value of `meter` at `ts_ms`.
    pub fn check(&mut self, meter: &str, series: &str, ts_ms: i64, v: f64) -> Verdict {
        self.check_release(meter, series, ts_ms, v).0
    }

    /// Like [`check`](Self::check), and when this value confirms a first value that was
    /// held as unconfirmed, also returns that value (time, value): it is now known good and
    /// can be forwarded (before this one, so each series stays in time order).
    pub fn check_release(
        &mut self,
        meter: &str,
        series: &str,
        ts_ms: i64,
        v: f64,
    ) -> (Verdict, Option<(i64, f64)>) {
        let limit = self.limits.get(meter).copied().unwrap_or(DEFAULT_LIMIT_VA);
        let key = (meter.to_string(), series.to_string());
        let t = match self.tracks.get_mut(&key) {
            Some(t) => t,
            None => {
                if self.tracks.len() >= MAX_TRACKED {
                    self.counts.untracked += 1;
                    return (Verdict::Accept, None);
                }
                self.tracks.entry(key).or_default()
            }
        };
        let now = (ts_ms, v);
        let mut released = None;
        let verdict = match t.accepted {
            None => match t.pending {
                Some(p) if p.0 < ts_ms && plausible(p, now, limit) => {
                    *t = Track {
                        accepted: Some(now),
                        pending: None,
                        run: 0,
                    };
                    released = Some(p);
                    Verdict::Accept
                }
                Some(p) if p.0 == ts_ms && p.1 == v => {
                    *t = Track {
                        accepted: Some(now),
                        pending: None,
                        run: 0,
                    };
                    Verdict::Accept
                }
                _ => {
                    t.pending = Some(now);
                    Verdict::Unconfirmed
                }
            },
            // Older than the reference (a replay after an outage): plausible if the reference
            // could have been reached from it; the reference stays.
            Some(a) if ts_ms < a.0 => {
                if plausible(now, a, limit) {
                    Verdict::Accept
                } else {
                    Verdict::Implausible
                }
            }
            Some(a) => {
                if plausible(a, now, limit) {
                    *t = Track {
                        accepted: Some(now),
                        pending: None,
                        run: 0,
                    };
                    Verdict::Accept
                } else {
                    t.run = match t.pending {
                        Some(p) if p.0 <= ts_ms && plausible(p, now, limit) => t.run + 1,
                        _ => 1,
                    };
                    t.pending = Some(now);
                    if t.run >= REANCHOR_AFTER {
                        *t = Track {
                            accepted: Some(now),
                            pending: None,
                            run: 0,
                        };
                        self.counts.reanchored += 1;
                        return (Verdict::Accept, None);
                    }
                    Verdict::Implausible
                }
            }
        };
        match verdict {
            Verdict::Implausible => self.counts.implausible += 1,
            Verdict::Unconfirmed => self.counts.unconfirmed += 1,
            Verdict::Accept => {}
        }
        (verdict, released)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Verdict::*;

    #[test]
    fn first_value_waits_for_confirmation() {
        let mut p = Plausibility::default();
        p.set_limit("m", 9000.0);
        assert_eq!(p.check("m", "EAST", 0, 3_242_060.0), Unconfirmed);
        assert_eq!(
            p.check_release("m", "EAST", 2000, 3_242_061.0),
            (Accept, Some((0, 3_242_060.0)))
        );
        assert_eq!(
            p.check_release("m", "EAST", 4000, 3_242_062.0),
            (Accept, None)
        );
        assert_eq!(p.counts.unconfirmed, 1);
    }

    #[test]
    fn corrupted_values_are_held_back() {
        let mut p = Plausibility::default();
        p.set_limit("m", 9000.0);
        p.check("m", "EAST", 0, 3_242_060.0);
        assert_eq!(p.check("m", "EAST", 2000, 3_242_062.0), Accept);
        // A dropped digit (GammaTroniques/TICMeter#24): backwards.
        assert_eq!(p.check("m", "EAST", 4000, 324_206.0), Implausible);
        // A spike (NicolasBernaerts/tasmota#12: +9000 kWh).
        assert_eq!(p.check("m", "EAST", 6000, 12_242_062.0), Implausible);
        // Back to normal: the reference never moved.
        assert_eq!(p.check("m", "EAST", 8000, 3_242_070.0), Accept);
        assert_eq!(p.counts.implausible, 2);
        // The bound: 9 kVA × 1.5 for an hour (+5 s) is 13.52 kWh.
        assert_eq!(
            p.check("m", "EAST", 8000 + 3_600_000, 3_242_070.0 + 13_500.0),
            Accept
        );
        assert_eq!(
            p.check(
                "m",
                "EAST",
                8000 + 7_200_000,
                3_242_070.0 + 13_500.0 + 13_600.0
            ),
            Implausible
        );
    }

    #[test]
    fn consistent_jump_reanchors() {
        let mut p = Plausibility::default();
        p.set_limit("m", 6000.0);
        p.check("m", "BASE", 0, 1_000_000.0);
        p.check("m", "BASE", 1000, 1_000_000.0);
        // New meter: index starts near zero and keeps counting.
        assert_eq!(p.check("m", "BASE", 2000, 10.0), Implausible);
        assert_eq!(p.check("m", "BASE", 3000, 11.0), Implausible);
        assert_eq!(p.check("m", "BASE", 4000, 12.0), Accept);
        assert_eq!(p.counts.reanchored, 1);
        assert_eq!(p.check("m", "BASE", 5000, 13.0), Accept);
    }

    #[test]
    fn replays_older_than_the_reference() {
        let mut p = Plausibility::default();
        p.check("m", "EAST", 10_000, 500.0);
        p.check("m", "EAST", 11_000, 501.0);
        assert_eq!(p.check("m", "EAST", 5000, 499.0), Accept);
        assert_eq!(p.check("m", "EAST", 5000, 600.0), Implausible);
        // Meters and series are independent.
        assert_eq!(p.check("n", "EAST", 5000, 1.0), Unconfirmed);
    }
}
