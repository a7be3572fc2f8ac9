//! Baud-rate / mode detection.
//!
//! A Linky leaves the factory in historic mode (1200 Bd) and may be switched
//! remotely to standard mode (9600 Bd) at any time, so the device cannot be
//! configured once for all. At the wrong rate the UART sees framing and
//! parity garbage and no group passes its checksum, while at the right rate
//! nearly every group does: checksum successes are the signal.
//!
//! The detector tries 9600 Bd first (a standard frame arrives about every
//! second, so the verdict is quick), then 1200 Bd, alternating until
//! [`DetectorConfig::lock_valid_groups`] groups pass at one rate. Once locked
//! it stays, whatever the rejected groups, until no group has passed for
//! [`DetectorConfig::relock_after_bad_ms`]: a noisy line is counted, never a
//! reason to flip; a line that has been bad for long is re-detected,
//! starting with the other rate since a mode change is the likely cause.

use crate::wire::LineMode;

/// The two line speeds of the TIC (tic-protocol.md §1.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineSpeed {
    /// Standard mode.
    Baud9600,
    /// Historic mode.
    Baud1200,
}

impl LineSpeed {
    /// Bits per second.
    pub const fn baud(self) -> u32 {
        match self {
            LineSpeed::Baud9600 => 9600,
            LineSpeed::Baud1200 => 1200,
        }
    }

    /// The mode sent at this speed by a Linky.
    pub const fn line_mode(self) -> LineMode {
        match self {
            LineSpeed::Baud9600 => LineMode::Standard,
            LineSpeed::Baud1200 => LineMode::Historic,
        }
    }

    fn other(self) -> LineSpeed {
        match self {
            LineSpeed::Baud9600 => LineSpeed::Baud1200,
            LineSpeed::Baud1200 => LineSpeed::Baud9600,
        }
    }
}

/// Detection timing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DetectorConfig {
    /// How long to listen at 9600 Bd before trying 1200 Bd. Standard frames
    /// come every 0.9–1.6 s (§1.6): 5 s sees three or more.
    pub probe_9600_ms: u64,
    /// How long to listen at 1200 Bd. Historic frames come every 1.2–2.5 s,
    /// so 8 s sees three or more.
    pub probe_1200_ms: u64,
    /// Valid groups needed at one speed to lock on it. Three makes a false
    /// lock on garbage (each random group passes with p ≈ 1/64 at best)
    /// practically impossible.
    pub lock_valid_groups: u16,
    /// Locked, a line without any valid group for this long is re-detected.
    /// 30 s: longer than the ~10 s a meter may stay silent after an EOT
    /// (§2.2), short enough to follow a remote mode change quickly.
    pub relock_after_bad_ms: u64,
}

impl Default for DetectorConfig {
    fn default() -> Self {
        DetectorConfig {
            probe_9600_ms: 5_000,
            probe_1200_ms: 8_000,
            lock_valid_groups: 3,
            relock_after_bad_ms: 30_000,
        }
    }
}

/// Where the detector is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DetectorState {
    /// Listening at `speed` since `since_ms`.
    Probing {
        /// Speed under trial.
        speed: LineSpeed,
        /// Start of the trial.
        since_ms: u64,
        /// Valid groups seen in this trial.
        valid_groups: u16,
    },
    /// Settled on `speed`.
    Locked {
        /// The speed.
        speed: LineSpeed,
        /// Last time a group passed.
        last_valid_ms: u64,
    },
}

/// The detector. Feed it group outcomes and ticks; apply the speed it
/// returns to the UART.
#[derive(Debug, Clone)]
pub struct ModeDetector {
    config: DetectorConfig,
    state: DetectorState,
    speed_changes: u32,
}

impl ModeDetector {
    /// Starts probing at 9600 Bd.
    pub fn new(config: DetectorConfig, now_ms: u64) -> Self {
        ModeDetector {
            config,
            state: DetectorState::Probing {
                speed: LineSpeed::Baud9600,
                since_ms: now_ms,
                valid_groups: 0,
            },
            speed_changes: 0,
        }
    }

    /// The speed the UART must run at.
    pub fn speed(&self) -> LineSpeed {
        match self.state {
            DetectorState::Probing { speed, .. } | DetectorState::Locked { speed, .. } => speed,
        }
    }

    /// The state.
    pub fn state(&self) -> DetectorState {
        self.state
    }

    /// The line mode when locked, else [`LineMode::Unknown`].
    pub fn line_mode(&self) -> LineMode {
        match self.state {
            DetectorState::Locked { speed, .. } => speed.line_mode(),
            DetectorState::Probing { .. } => LineMode::Unknown,
        }
    }

    /// Speed switches made so far.
    pub fn speed_changes(&self) -> u32 {
        self.speed_changes
    }

    /// A group passed its checksum at the current speed.
    pub fn on_valid_group(&mut self, now_ms: u64) {
        match &mut self.state {
            DetectorState::Probing {
                speed,
                valid_groups,
                ..
            } => {
                *valid_groups += 1;
                if *valid_groups >= self.config.lock_valid_groups {
                    self.state = DetectorState::Locked {
                        speed: *speed,
                        last_valid_ms: now_ms,
                    };
                }
            }
            DetectorState::Locked { last_valid_ms, .. } => *last_valid_ms = now_ms,
        }
    }

    /// A group failed. Deliberately changes nothing: one bad group (or many,
    /// among good ones) is noise, counted elsewhere. Only the absence of good
    /// groups, seen by [`tick`](Self::tick), moves the detector.
    pub fn on_rejected_group(&mut self, _now_ms: u64) {}

    /// Advances time; returns the new speed when the UART must change.
    pub fn tick(&mut self, now_ms: u64) -> Option<LineSpeed> {
        let next = match self.state {
            DetectorState::Probing {
                speed, since_ms, ..
            } => {
                let window = match speed {
                    LineSpeed::Baud9600 => self.config.probe_9600_ms,
                    LineSpeed::Baud1200 => self.config.probe_1200_ms,
                };
                (now_ms.saturating_sub(since_ms) >= window).then(|| speed.other())
            }
            DetectorState::Locked {
                speed,
                last_valid_ms,
            } => (now_ms.saturating_sub(last_valid_ms) >= self.config.relock_after_bad_ms)
                .then(|| speed.other()),
        }?;
        self.state = DetectorState::Probing {
            speed: next,
            since_ms: now_ms,
            valid_groups: 0,
        };
        self.speed_changes += 1;
        Some(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locks_on_9600_when_groups_pass() {
        let mut d = ModeDetector::new(DetectorConfig::default(), 0);
        assert_eq!(d.speed(), LineSpeed::Baud9600);
        for t in 0..3 {
            assert_eq!(d.tick(t * 100), None);
            d.on_valid_group(t * 100);
        }
        assert_eq!(d.line_mode(), LineMode::Standard);
    }

    #[test]
    fn falls_back_to_1200_then_locks() {
        let mut d = ModeDetector::new(DetectorConfig::default(), 0);
        d.on_rejected_group(100);
        assert_eq!(d.tick(4_999), None);
        assert_eq!(d.tick(5_000), Some(LineSpeed::Baud1200));
        for t in 0..3 {
            d.on_valid_group(6_000 + t);
        }
        assert_eq!(d.line_mode(), LineMode::Historic);
        assert_eq!(d.speed_changes(), 1);
    }

    #[test]
    fn noisy_line_never_flips_while_some_groups_pass() {
        let mut d = ModeDetector::new(DetectorConfig::default(), 0);
        for t in 0..3 {
            d.on_valid_group(t);
        }
        // One good group in twenty for ten minutes.
        for s in 0..600u64 {
            for g in 0..20 {
                let now = 1_000 + s * 1_000 + g;
                if g == 0 && s % 20 == 0 {
                    d.on_valid_group(now);
                } else {
                    d.on_rejected_group(now);
                }
                assert_eq!(d.tick(now), None);
            }
        }
        assert_eq!(d.speed_changes(), 0);
    }

    #[test]
    fn long_bad_line_redetects_starting_with_the_other_speed() {
        let mut d = ModeDetector::new(DetectorConfig::default(), 0);
        for t in 0..3 {
            d.on_valid_group(t);
        }
        assert_eq!(d.tick(29_000), None);
        assert_eq!(d.tick(30_002), Some(LineSpeed::Baud1200));
        assert_eq!(d.line_mode(), LineMode::Unknown);
    }
}
