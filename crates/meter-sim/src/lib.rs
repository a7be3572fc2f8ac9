//! # meter-sim — a virtual Linky
//!
//! A deterministic household behind a simulated Linky meter that writes TIC
//! frames exactly as a real one does: both modes (historic 1200 Bd, standard
//! 9600 Bd), single- and three-phase (with the historic three-phase short
//! frames on overcurrent, tic-protocol.md §4.6), consumer or producer, BASE,
//! HC/HP, Tempo or EJP, with French daylight-saving time in every horodate.
//! Faults that real lines produce can be injected, each one logged with where
//! it is and what a receiver must do about it ([`faults`]).
//!
//! Same [`Config`] (seed included), same bytes.
//!
//! ```
//! use meter_sim::{Config, Simulator};
//!
//! let mut sim = Simulator::new(Config::default()).unwrap();
//! let frame = sim.next_frame();
//! assert_eq!(frame.bytes[0], 0x02); // STX
//! assert!(frame.bytes.ends_with(&[0x03])); // ETX
//!
//! // Every group decodes with the protocol core.
//! let mut decoder = tic::Decoder::new();
//! let (mut valid, mut rejected) = (0, 0);
//! let mut input = &frame.bytes[..];
//! while !input.is_empty() {
//!     let (used, event) = decoder.feed(input);
//!     match event {
//!         Some(tic::Event::Group(_)) => valid += 1,
//!         Some(tic::Event::Rejected(_)) => rejected += 1,
//!         _ => {}
//!     }
//!     input = &input[used..];
//! }
//! assert_eq!((valid, rejected), (38, 0)); // a single-phase standard consumer frame
//!
//! // The ground truth behind it.
//! let truth = sim.state();
//! assert!(truth.import_wh() > 0);
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod clock;
pub mod faults;
pub mod household;
mod meter;
pub mod output;
pub mod rng;
pub mod tariff;

pub use faults::{Expect, FaultKind, FaultRecord, FaultSpec, FaultSpecError};
pub use meter::{FrameKind, GroupSpan, TrueState, WMS_PER_WH};
pub use tariff::{Contract, Period};
pub use tic::Mode;

use faults::Injector;
use household::{Household, HouseholdConfig};
use meter::{Meter, MeterSetup};
use rng::Rng;
use std::fmt;

/// How far apart frames are in simulated time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Interval {
    /// Like the wire: the previous frame's transmission time at the mode's
    /// baud rate (10 bits per character) plus a 16.7–33.4 ms gap (§1.6).
    Wire,
    /// A fixed interval, milliseconds (accelerated history: 60 000 = one frame a minute).
    FixedMs(i64),
}

/// Subscribed powers Enedis offers, kVA.
pub const SUBSCRIBED_KVA: [u8; 9] = [3, 6, 9, 12, 15, 18, 24, 30, 36];

/// Everything that defines a simulation.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// TIC mode at start.
    pub mode: Mode,
    /// 1 or 3.
    pub phases: u8,
    /// Producer meter (standard mode only: historic mode has no producer labels, §6).
    pub producer: bool,
    /// The contract.
    pub contract: Contract,
    /// Subscribed power, kVA: one of [`SUBSCRIBED_KVA`]; at most 12 in single-phase.
    pub subscribed_kva: u8,
    /// Solar peak power, kWp (producers only).
    pub solar_kwp: f64,
    /// Electric heating.
    pub electric_heating: bool,
    /// Mean overload events per day (0–1).
    pub overloads_per_day: f64,
    /// Start, Unix s.
    pub start_unix_s: i64,
    /// Frame spacing in simulated time.
    pub interval: Interval,
    /// The seed.
    pub seed: u64,
    /// Faults to inject.
    pub faults: FaultSpec,
}

impl Default for Config {
    /// A single-phase standard-mode consumer on BASE, 9 kVA, electric heating,
    /// from 2026-01-01 00:00 French time, frames spaced like the wire, seed 1.
    fn default() -> Config {
        Config {
            mode: Mode::Standard,
            phases: 1,
            producer: false,
            contract: Contract::Base,
            subscribed_kva: 9,
            solar_kwp: 0.0,
            electric_heating: true,
            overloads_per_day: 0.1,
            start_unix_s: 1_767_222_000, // 2026-01-01T00:00:00+01:00
            interval: Interval::Wire,
            seed: 1,
            faults: FaultSpec::default(),
        }
    }
}

/// A configuration the meter cannot have. The message names the option and
/// the accepted values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    /// Checks the combination.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let err = |m: String| Err(ConfigError(m));
        if self.phases != 1 && self.phases != 3 {
            return err(format!(
                "--phases {}: accepted values are 1 and 3",
                self.phases
            ));
        }
        if !SUBSCRIBED_KVA.contains(&self.subscribed_kva) {
            return err(format!(
                "--kva {}: accepted values are {SUBSCRIBED_KVA:?}",
                self.subscribed_kva
            ));
        }
        if self.phases == 1 && self.subscribed_kva > 12 {
            return err(format!(
                "--kva {} needs --phases 3: single-phase supplies go up to 12 kVA",
                self.subscribed_kva
            ));
        }
        if self.phases == 3 && self.subscribed_kva < 6 {
            return err(format!(
                "--kva {} with --phases 3: three-phase supplies start at 6 kVA",
                self.subscribed_kva
            ));
        }
        if self.producer && self.mode == Mode::Historic {
            return err("--producer needs --mode standard: historic mode has no producer labels (tic-protocol.md §6)".into());
        }
        if self.producer && self.faults.switch_frame.is_some() {
            return err("--faults switch=N cannot be used with --producer: historic mode has no producer labels".into());
        }
        if !(0.0..=100.0).contains(&self.solar_kwp) || !self.solar_kwp.is_finite() {
            return err(format!(
                "--solar-kwp {}: accepted values are 0 to 100",
                self.solar_kwp
            ));
        }
        if self.solar_kwp > 0.0 && !self.producer {
            return err("--solar-kwp needs --producer".into());
        }
        if let Interval::FixedMs(ms) = self.interval {
            if !(1..=86_400_000).contains(&ms) {
                return err("--interval: accepted values are 0.001 to 86400 seconds".into());
            }
        }
        if !(0.0..=1.0).contains(&self.overloads_per_day) {
            return err("overloads_per_day: accepted values are 0 to 1".into());
        }
        // Horodates hold years 2000–2099 (§2.4); leave a year of margin.
        let first = clock::parse_datetime("2000-01-02T00:00:00Z").unwrap_or(0);
        let last = clock::parse_datetime("2098-12-31T00:00:00Z").unwrap_or(i64::MAX);
        if !(first..=last).contains(&self.start_unix_s) {
            return err(
                "--start: horodates hold years 2000 to 2099; pick a start between 2000 and 2098"
                    .into(),
            );
        }
        Ok(())
    }
}

/// One frame as it leaves the meter.
#[derive(Debug, Clone, PartialEq)]
pub struct Frame {
    /// 0-based frame number.
    pub number: u64,
    /// Mode of this frame.
    pub mode: Mode,
    /// Long, short or interrupted.
    pub kind: FrameKind,
    /// The bytes on the wire, faults included (`STX … ETX`).
    pub bytes: Vec<u8>,
    /// Offset of `bytes[0]` in the output stream.
    pub offset: u64,
    /// True (UTC) time at which the frame's values hold, Unix ms.
    pub true_time_unix_ms: i64,
    /// The meter's clock (DATE), Unix s; differs from true time with drift.
    pub meter_time_unix_s: i64,
    /// Silence after the frame on the wire, µs (16 700–33 400, §1.6).
    pub gap_after_us: u32,
    /// Faults injected into this frame (ground truth).
    pub faults: Vec<FaultRecord>,
}

impl Frame {
    /// Line speed of this frame's mode.
    pub fn baud(&self) -> u32 {
        self.mode.baud()
    }

    /// Transmission time of the bytes, µs (10 bits per 7E1 character).
    pub fn wire_duration_us(&self) -> u64 {
        self.bytes.len() as u64 * 10 * 1_000_000 / self.baud() as u64
    }
}

/// The simulator: an endless iterator of [`Frame`]s.
///
/// ```
/// use meter_sim::{Config, Contract, Interval, Mode, Simulator};
/// let config = Config {
///     mode: Mode::Historic,
///     phases: 3,
///     subscribed_kva: 12,
///     contract: Contract::Tempo,
///     interval: Interval::FixedMs(60_000),
///     ..Config::default()
/// };
/// let frames: Vec<_> = Simulator::new(config).unwrap().take(3).collect();
/// assert_eq!(frames[2].true_time_unix_ms - frames[0].true_time_unix_ms, 120_000);
/// assert!(frames[0].bytes.windows(8).any(|w| w == b"OPTARIF "));
/// ```
pub struct Simulator {
    config: Config,
    meter: Meter,
    mode: Mode,
    injector: Option<Injector>,
    frame_no: u64,
    offset: u64,
    timing_rng: Rng,
    last_len: usize,
    last_gap_us: u32,
    in_short_cycle: bool,
    short_count: u32,
    spans: Vec<meter::GroupSpan>,
    clean: Vec<u8>,
}

/// Historic three-phase overload cycles: 20 short frames, then one long (§4.6).
const SHORT_FRAMES_PER_CYCLE: u32 = 20;

/// The meter serial: manufacturer 04 (Landis+Gyr), year, Linky type (§5.3).
fn address(rng: &mut Rng, phases: u8) -> String {
    let kind = if phases == 3 { 76 } else { 75 };
    format!(
        "04{:02}{kind}{:06}",
        17 + rng.below(8),
        rng.below(1_000_000)
    )
}

impl Simulator {
    /// A simulator for a configuration.
    pub fn new(config: Config) -> Result<Simulator, ConfigError> {
        config.validate()?;
        let mut rng = Rng::new(config.seed, 0xAD5);
        let setup = MeterSetup {
            phases: config.phases,
            producer: config.producer,
            subscribed_kva: config.subscribed_kva,
            contract: config.contract.clone(),
            address: address(&mut rng, config.phases),
            prm: format!("{:014}", rng.below(100_000_000_000_000)),
        };
        let household = Household::new(
            HouseholdConfig {
                subscribed_kva: config.subscribed_kva,
                phases: config.phases,
                electric_heating: config.electric_heating,
                solar_kwp: if config.producer {
                    config.solar_kwp
                } else {
                    0.0
                },
                overloads_per_day: config.overloads_per_day,
            },
            Rng::new(config.seed, 0x40_05E),
        );
        let mut meter = Meter::new(setup, household, config.start_unix_s * 1000, config.seed);
        meter.drift_s_per_day = config.faults.drift_s_per_day;
        meter.prime();
        let injector = config
            .faults
            .touches_bytes()
            .then(|| Injector::new(config.faults.clone(), config.seed));
        Ok(Simulator {
            mode: config.mode,
            meter,
            injector,
            frame_no: 0,
            offset: 0,
            timing_rng: Rng::new(config.seed, 0x71_3E),
            last_len: 0,
            last_gap_us: 0,
            in_short_cycle: false,
            short_count: 0,
            spans: Vec::with_capacity(80),
            clean: Vec::with_capacity(2048),
            config,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The mode frames are sent in now.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// The meter address (ADSC/ADCO).
    pub fn address(&self) -> &str {
        &self.meter.setup.address
    }

    /// The ground truth at the last frame: powers, voltages, exact energies.
    pub fn state(&self) -> TrueState {
        self.meter.true_state()
    }

    /// Number of the next frame.
    pub fn frames_sent(&self) -> u64 {
        self.frame_no
    }

    /// Bytes written so far.
    pub fn bytes_sent(&self) -> u64 {
        self.offset
    }

    /// Produces the next frame.
    pub fn next_frame(&mut self) -> Frame {
        let mut frame = Frame {
            number: 0,
            mode: self.mode,
            kind: FrameKind::Long,
            bytes: Vec::new(),
            offset: 0,
            true_time_unix_ms: 0,
            meter_time_unix_s: 0,
            gap_after_us: 0,
            faults: Vec::new(),
        };
        self.next_into(&mut frame);
        frame
    }

    /// Produces the next frame into `frame`, reusing its buffers (the fast path
    /// for long accelerated runs).
    pub fn next_into(&mut self, frame: &mut Frame) {
        let n = self.frame_no;
        if n > 0 {
            let dt_ms = match self.config.interval {
                Interval::FixedMs(ms) => ms,
                Interval::Wire => {
                    let bits_us = self.last_len as u64 * 10 * 1_000_000 / self.mode.baud() as u64;
                    ((bits_us + self.last_gap_us as u64 + 500) / 1000) as i64
                }
            };
            self.meter.step(dt_ms);
        }
        frame.faults.clear();
        let faults = &self.config.faults;
        if faults.switch_frame == Some(n) {
            self.mode = match self.mode {
                Mode::Historic => Mode::Standard,
                Mode::Standard => Mode::Historic,
            };
            frame
                .faults
                .push(self.stream_record(FaultKind::ModeSwitch { to: self.mode }));
        }
        if faults.degraded_frame == Some(n) {
            self.meter.degraded = true;
            frame
                .faults
                .push(self.stream_record(FaultKind::DegradedClock));
        }
        if n == 0 && faults.drift_s_per_day != 0.0 {
            frame.faults.push(self.stream_record(FaultKind::ClockDrift {
                s_per_day: faults.drift_s_per_day,
            }));
        }
        if n == 0 && faults.capture_8n1 {
            frame.faults.push(self.stream_record(FaultKind::Capture8n1));
        }

        self.clean.clear();
        self.spans.clear();
        let kind = match self.mode {
            Mode::Standard => {
                self.meter.standard_frame(&mut self.clean, &mut self.spans);
                FrameKind::Long
            }
            Mode::Historic => {
                let kind = if self.config.phases == 3 && self.meter.short_frames_due() {
                    if !self.in_short_cycle {
                        self.in_short_cycle = true;
                        self.short_count = 0;
                        FrameKind::Interrupted
                    } else if self.short_count < SHORT_FRAMES_PER_CYCLE {
                        self.short_count += 1;
                        FrameKind::Short
                    } else {
                        self.short_count = 0;
                        FrameKind::Long
                    }
                } else {
                    self.in_short_cycle = false;
                    FrameKind::Long
                };
                let cut_after = 1 + self.timing_rng.below(12) as usize;
                self.meter
                    .historic_frame(kind, cut_after, &mut self.clean, &mut self.spans);
                kind
            }
        };
        self.last_len = self.clean.len();
        // §1.6: 16.7 to 33.4 ms of silence between frames.
        self.last_gap_us = 16_700 + self.timing_rng.below(16_701) as u32;

        frame.bytes.clear();
        match &mut self.injector {
            Some(injector) => {
                let (bytes, records) = injector.apply(n, self.offset, &self.clean, &self.spans);
                frame.bytes.extend_from_slice(&bytes);
                frame.faults.extend(records);
            }
            None => frame.bytes.extend_from_slice(&self.clean),
        }
        frame.number = n;
        frame.mode = self.mode;
        frame.kind = kind;
        frame.offset = self.offset;
        frame.true_time_unix_ms = self.meter.t_ms;
        frame.meter_time_unix_s = self.meter.meter_unix_s();
        frame.gap_after_us = self.last_gap_us;
        self.offset += frame.bytes.len() as u64;
        self.frame_no += 1;
    }

    /// The clean (fault-free) bytes of the last frame and its group spans.
    pub fn last_clean_frame(&self) -> (&[u8], &[GroupSpan]) {
        (&self.clean, &self.spans)
    }

    fn stream_record(&self, kind: FaultKind) -> FaultRecord {
        FaultRecord {
            offset: self.offset,
            frame: self.frame_no,
            label: None,
            group_index: None,
            kind,
            expect: Expect::Decodes,
        }
    }
}

impl Iterator for Simulator {
    type Item = Frame;

    /// Never ends: bound it with `take`.
    fn next(&mut self) -> Option<Frame> {
        Some(self.next_frame())
    }
}
