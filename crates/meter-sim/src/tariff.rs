//! Contracts and their calendars: BASE, HC/HP, Tempo, EJP.
//!
//! A contract maps the local clock to a tariff period: the supplier index that
//! counts (EASF01–10, historic BASE/HCHC/…/BBRHPJR in table order, §4.5), the
//! distributor index (EASD01–04), the historic PTEC, the standard LTARF, and
//! whether the dry contact is closed (it drives the water heater in off-peak
//! hours; STGE bit 0 and RELAIS relay 1, §5.4–5.5).
//!
//! Tempo and EJP calendars are drawn once per winter from the seed, so a
//! simulated year is reproducible. Tempo: a "Tempo day" runs from 06:00 to
//! 06:00 the next day; peak hours are 06:00–22:00; per season (1 September to
//! 31 August) 22 red days (weekdays, 1 November – 31 March), 43 white days
//! (never a Sunday), the rest blue; tomorrow's colour is announced at 10:40
//! (RTE's publication time). EJP: 22 mobile-peak days between 1 November and
//! 31 March, peak from 07:00 to 01:00 the next day, announced the day before
//! at 15:00 (standard mode's DPM1/FPM1, PPOINTE, STGE bits 28–31); historic
//! PEJP `30` from 30 minutes before the peak and during it (§4.2).

use crate::clock::{self, LocalTime};
use crate::rng::Rng;
use std::collections::HashMap;
use std::fmt;

/// A Tempo day colour (re-exported from `tic`).
pub use tic::stge::TempoColour;

/// A contract (option tarifaire).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Contract {
    /// One index, all hours.
    Base,
    /// Off-peak (heures creuses) windows, each `(start, end)` in minutes since
    /// local midnight (end may be smaller than start: the window spans midnight).
    HcHp(Vec<(u16, u16)>),
    /// Tempo: blue/white/red days, peak 06:00–22:00.
    Tempo,
    /// EJP: 22 mobile-peak days a winter.
    Ejp,
}

impl Contract {
    /// The CLI name: `base`, `hchp`, `tempo`, `ejp`.
    pub fn name(&self) -> &'static str {
        match self {
            Contract::Base => "base",
            Contract::HcHp(_) => "hchp",
            Contract::Tempo => "tempo",
            Contract::Ejp => "ejp",
        }
    }

    /// The default HC/HP contract: off-peak 22:00–06:00.
    pub fn default_hchp() -> Contract {
        Contract::HcHp(vec![(22 * 60, 6 * 60)])
    }

    /// Historic OPTARIF (§4.3). `BBR(` is the value seen on real Tempo meters.
    pub fn optarif(&self) -> &'static str {
        match self {
            Contract::Base => "BASE",
            Contract::HcHp(_) => "HC..",
            Contract::Tempo => "BBR(",
            Contract::Ejp => "EJP.",
        }
    }

    /// Historic index labels, supplier index 1, 2… in table order (§4.5).
    pub fn historic_index_labels(&self) -> &'static [&'static str] {
        match self {
            Contract::Base => &["BASE"],
            Contract::HcHp(_) => &["HCHC", "HCHP"],
            Contract::Tempo => &[
                "BBRHCJB", "BBRHPJB", "BBRHCJW", "BBRHPJW", "BBRHCJR", "BBRHPJR",
            ],
            Contract::Ejp => &["EJPHN", "EJPHPM"],
        }
    }

    /// NGTF: the supplier calendar name, 16 characters, as real meters send it.
    pub fn ngtf(&self) -> &'static str {
        match self {
            Contract::Base => "      BASE      ",
            Contract::HcHp(_) => "H PLEINE/CREUSE ",
            Contract::Tempo => "     TEMPO      ",
            Contract::Ejp => "      EJP       ",
        }
    }

    /// Number of supplier indexes the contract uses.
    pub fn index_count(&self) -> usize {
        self.historic_index_labels().len()
    }
}

/// Parses an off-peak window list `HH:MM-HH:MM[,HH:MM-HH:MM…]`.
pub fn parse_offpeak(text: &str) -> Result<Vec<(u16, u16)>, String> {
    let bad = || {
        format!("--offpeak `{text}`: expected windows like 22:00-06:00 or 01:30-07:30,12:30-14:30")
    };
    let hm = |s: &str| -> Result<u16, String> {
        let (h, m) = s.split_once(':').ok_or_else(bad)?;
        let (h, m): (u16, u16) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
        if h > 23 || m > 59 || s.len() != 5 {
            return Err(bad());
        }
        Ok(h * 60 + m)
    };
    let mut windows = Vec::new();
    for part in text.split(',') {
        let (a, b) = part.split_once('-').ok_or_else(bad)?;
        let (a, b) = (hm(a)?, hm(b)?);
        if a == b {
            return Err(bad());
        }
        windows.push((a, b));
    }
    let total: u32 = windows
        .iter()
        .map(|&(a, b)| ((b as i32 - a as i32).rem_euclid(1440)) as u32)
        .sum();
    // PJOURF+1 has 11 slots (§5.6): at most 5 windows fit with the 00:00 slot.
    if windows.is_empty() || windows.len() > 5 || total >= 1440 {
        return Err(bad());
    }
    Ok(windows)
}

/// The tariff state at one instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    /// Supplier index counting now, 1–10 (NTARF, STGE bits 10–13).
    pub supplier_index: u8,
    /// Distributor index counting now, 1–4 (STGE bits 14–15).
    pub distributor_index: u8,
    /// Historic PTEC.
    pub ptec: &'static str,
    /// Standard LTARF (16 characters).
    pub ltarf: &'static str,
    /// Dry contact closed (off-peak: the water heater may run).
    pub dry_contact_closed: bool,
    /// Off-peak hours (for the household's water heater).
    pub off_peak: bool,
    /// Today's Tempo colour (the Tempo day in progress).
    pub tempo_today: Option<TempoColour>,
    /// Tomorrow's Tempo colour, once announced.
    pub tempo_tomorrow: Option<TempoColour>,
    /// EJP: a mobile peak is announced and not yet started (notice, STGE bits 28–29).
    pub peak_notice: bool,
    /// EJP: mobile peak in progress (STGE bits 30–31).
    pub peak_in_progress: bool,
    /// Historic PEJP: 30 minutes before and during the mobile peak.
    pub pejp: bool,
    /// Start and end (Unix s) of the next or current announced mobile peak.
    pub peak_window_unix_s: Option<(i64, i64)>,
}

const LTARF_BASE: &str = "      BASE      ";
const LTARF_HC: &str = " HEURE  CREUSE  ";
const LTARF_HP: &str = " HEURE  PLEINE  ";
const LTARF_HN: &str = " HEURE  NORMALE ";
const LTARF_PM: &str = " POINTE  MOBILE ";
const LTARF_TEMPO: [&str; 6] = [
    "    HC  BLEU    ",
    "    HP  BLEU    ",
    "   HC  BLANC    ",
    "   HP  BLANC    ",
    "   HC  ROUGE    ",
    "   HP  ROUGE    ",
];
const PTEC_TEMPO: [&str; 6] = ["HCJB", "HPJB", "HCJW", "HPJW", "HCJR", "HPJR"];

/// Tempo and EJP announcement times and peak hours, minutes since local midnight.
const TEMPO_PEAK_START_MIN: u32 = 6 * 60;
const TEMPO_PEAK_END_MIN: u32 = 22 * 60;
const TEMPO_ANNOUNCE_MIN: u32 = 10 * 60 + 40;
const EJP_PEAK_START_MIN: u32 = 7 * 60;
const EJP_ANNOUNCE_MIN: u32 = 15 * 60;

/// Winter calendars drawn from the seed, cached per season.
#[derive(Debug, Clone)]
pub struct Calendars {
    seed: u64,
    tempo: HashMap<i64, Vec<TempoColour>>,
    ejp: HashMap<i64, Vec<bool>>,
}

/// The season (1 September → 31 August) holding a local day: its start year
/// and the day number of its 1 September.
fn season_of(day_number: i64) -> (i64, i64) {
    let (y, m, _) = clock::civil_from_days(day_number);
    let start_year = if m >= 9 { y } else { y - 1 };
    (start_year, clock::days_from_civil(start_year, 9, 1))
}

/// How cold a day usually is, 0 (summer) … 1 (mid-January), for drawing
/// red/white/EJP days where a grid operator would put them.
fn coldness(day_number: i64) -> f64 {
    let (y, _, _) = clock::civil_from_days(day_number);
    let day_of_year = (day_number - clock::days_from_civil(y, 1, 1)) as f64;
    0.5 + 0.5 * (std::f64::consts::TAU * (day_of_year - 15.0) / 365.25).cos()
}

/// Draws `count` days among `candidates` with weights, without replacement.
fn draw(rng: &mut Rng, candidates: &[(usize, f64)], count: usize) -> Vec<usize> {
    let mut pool: Vec<(usize, f64)> = candidates.to_vec();
    let mut picked = Vec::with_capacity(count);
    while picked.len() < count && !pool.is_empty() {
        let total: f64 = pool.iter().map(|c| c.1).sum();
        let mut x = rng.f64() * total;
        let mut at = pool.len() - 1;
        for (i, c) in pool.iter().enumerate() {
            if x < c.1 {
                at = i;
                break;
            }
            x -= c.1;
        }
        picked.push(pool.swap_remove(at).0);
    }
    picked
}

impl Calendars {
    /// Calendars for a seed.
    pub fn new(seed: u64) -> Calendars {
        Calendars {
            seed,
            tempo: HashMap::new(),
            ejp: HashMap::new(),
        }
    }

    /// The Tempo colour of a Tempo day (identified by its local date, the day
    /// that starts at 06:00).
    pub fn tempo_colour(&mut self, day_number: i64) -> TempoColour {
        let (year, first) = season_of(day_number);
        let seed = self.seed;
        let days = self.tempo.entry(year).or_insert_with(|| {
            let len = (clock::days_from_civil(year + 1, 9, 1) - first) as usize;
            let mut rng = Rng::new(seed, 0x7E_4D0 + year as u64);
            let mut colours = vec![TempoColour::Blue; len];
            let nov1 = (clock::days_from_civil(year, 11, 1) - first) as usize;
            let apr1 = (clock::days_from_civil(year + 1, 4, 1) - first) as usize;
            let reds: Vec<(usize, f64)> = (nov1..apr1)
                .filter(|&i| clock::weekday(first + i as i64) < 5)
                .map(|i| (i, coldness(first + i as i64).powi(3) + 0.01))
                .collect();
            for i in draw(&mut rng, &reds, 22) {
                colours[i] = TempoColour::Red;
            }
            let whites: Vec<(usize, f64)> = (0..len)
                .filter(|&i| {
                    clock::weekday(first + i as i64) != 6 && colours[i] == TempoColour::Blue
                })
                .map(|i| (i, coldness(first + i as i64).powi(2) + 0.02))
                .collect();
            for i in draw(&mut rng, &whites, 43) {
                colours[i] = TempoColour::White;
            }
            colours
        });
        days[(day_number - first) as usize]
    }

    /// Whether a local day is an EJP mobile-peak day.
    pub fn ejp_day(&mut self, day_number: i64) -> bool {
        let (year, first) = season_of(day_number);
        let seed = self.seed;
        let days = self.ejp.entry(year).or_insert_with(|| {
            let len = (clock::days_from_civil(year + 1, 9, 1) - first) as usize;
            let mut rng = Rng::new(seed, 0xE_1B0 + year as u64);
            let mut peak = vec![false; len];
            let nov1 = (clock::days_from_civil(year, 11, 1) - first) as usize;
            let apr1 = (clock::days_from_civil(year + 1, 4, 1) - first) as usize;
            let candidates: Vec<(usize, f64)> = (nov1..apr1)
                .map(|i| (i, coldness(first + i as i64).powi(3) + 0.01))
                .collect();
            for i in draw(&mut rng, &candidates, 22) {
                peak[i] = true;
            }
            peak
        });
        days[(day_number - first) as usize]
    }

    /// The tariff period at a local time.
    pub fn period(&mut self, contract: &Contract, t: &LocalTime) -> Period {
        let minute = t.minute_of_day();
        let mut p = Period {
            supplier_index: 1,
            distributor_index: 1,
            ptec: "TH..",
            ltarf: LTARF_BASE,
            dry_contact_closed: false,
            off_peak: false,
            tempo_today: None,
            tempo_tomorrow: None,
            peak_notice: false,
            peak_in_progress: false,
            pejp: false,
            peak_window_unix_s: None,
        };
        match contract {
            Contract::Base => {
                // No off-peak relay; a water heater's own timer runs it at night.
                p.off_peak = !(6 * 60..22 * 60).contains(&minute);
            }
            Contract::HcHp(windows) => {
                let hc = in_windows(windows, minute);
                p.supplier_index = if hc { 1 } else { 2 };
                p.distributor_index = p.supplier_index;
                p.ptec = if hc { "HC.." } else { "HP.." };
                p.ltarf = if hc { LTARF_HC } else { LTARF_HP };
                p.dry_contact_closed = hc;
                p.off_peak = hc;
            }
            Contract::Tempo => {
                // The Tempo day in progress started at 06:00 (today or yesterday).
                let tempo_day = if minute < TEMPO_PEAK_START_MIN {
                    t.day_number - 1
                } else {
                    t.day_number
                };
                let today = self.tempo_colour(tempo_day);
                let peak = (TEMPO_PEAK_START_MIN..TEMPO_PEAK_END_MIN).contains(&minute);
                let slot = colour_rank(today) * 2 + usize::from(peak);
                p.supplier_index = slot as u8 + 1;
                p.ptec = PTEC_TEMPO[slot];
                p.ltarf = LTARF_TEMPO[slot];
                p.dry_contact_closed = !peak;
                p.off_peak = !peak;
                p.tempo_today = Some(today);
                // Tomorrow is known from the announcement until the day ends at 06:00.
                if !(TEMPO_PEAK_START_MIN..TEMPO_ANNOUNCE_MIN).contains(&minute) {
                    p.tempo_tomorrow = Some(self.tempo_colour(tempo_day + 1));
                }
            }
            Contract::Ejp => {
                // Peak: 07:00 on a peak day to 01:00 the next day.
                let in_peak = (minute >= EJP_PEAK_START_MIN && self.ejp_day(t.day_number))
                    || (minute < 60 && self.ejp_day(t.day_number - 1));
                p.supplier_index = if in_peak { 2 } else { 1 };
                p.ptec = if in_peak { "PM.." } else { "HN.." };
                p.ltarf = if in_peak { LTARF_PM } else { LTARF_HN };
                p.off_peak = !in_peak && !(7 * 60..23 * 60).contains(&minute);
                p.peak_in_progress = in_peak;
                let today_peak = self.ejp_day(t.day_number);
                let tomorrow_peak = self.ejp_day(t.day_number + 1);
                let notice_today = today_peak && minute < EJP_PEAK_START_MIN;
                let notice_tomorrow = tomorrow_peak && minute >= EJP_ANNOUNCE_MIN;
                p.peak_notice = notice_today || notice_tomorrow;
                p.pejp = in_peak || (today_peak && (6 * 60 + 30..7 * 60).contains(&minute));
                let window_day = if in_peak && minute < 60 {
                    Some(t.day_number - 1)
                } else if in_peak || notice_today {
                    Some(t.day_number)
                } else if notice_tomorrow {
                    Some(t.day_number + 1)
                } else {
                    None
                };
                p.peak_window_unix_s = window_day.map(|d| {
                    (
                        clock::local_midnight_unix_s(d) + 7 * 3600,
                        clock::local_midnight_unix_s(d + 1) + 3600,
                    )
                });
            }
        }
        p
    }

    /// PJOURF+1: the profile of the next calendar day (§5.6), 11 blocks.
    pub fn next_day_profile(&mut self, contract: &Contract, t: &LocalTime) -> String {
        let mut blocks: Vec<String> = Vec::new();
        match contract {
            Contract::Base => blocks.push("00008001".into()),
            Contract::HcHp(windows) => {
                // Slot 00:00 with the period in force at midnight, then each change.
                let mut changes: Vec<(u16, bool)> = Vec::new();
                for &(a, b) in windows {
                    changes.push((a, true));
                    changes.push((b, false));
                }
                changes.sort();
                let at_midnight = in_windows(windows, 0);
                blocks.push(hc_block(0, at_midnight));
                for (m, hc) in changes {
                    if m != 0 {
                        blocks.push(hc_block(m, hc));
                    }
                }
            }
            Contract::Tempo => {
                // Tomorrow's Tempo day colour once announced, else blue (as real
                // meters send before the announcement).
                let tempo_day = if t.minute_of_day() < TEMPO_PEAK_START_MIN {
                    t.day_number
                } else {
                    t.day_number + 1
                };
                let announced =
                    !(TEMPO_PEAK_START_MIN..TEMPO_ANNOUNCE_MIN).contains(&t.minute_of_day());
                let colour = if announced {
                    self.tempo_colour(tempo_day)
                } else {
                    TempoColour::Blue
                };
                blocks.extend(tempo_blocks(colour));
            }
            Contract::Ejp => blocks.extend(self.ejp_blocks(t.day_number + 1)),
        }
        pad_profile(blocks)
    }

    /// PPOINTE: the profile of the next announced mobile-peak day.
    pub fn peak_profile(&mut self, day_number: i64) -> String {
        pad_profile(self.ejp_blocks(day_number))
    }

    fn ejp_blocks(&mut self, day_number: i64) -> Vec<String> {
        let mut blocks = Vec::new();
        let after_peak = self.ejp_day(day_number - 1);
        blocks.push(if after_peak { "00008002" } else { "00008001" }.to_string());
        if after_peak {
            blocks.push("01008001".into());
        }
        if self.ejp_day(day_number) {
            blocks.push("07008002".into());
        }
        blocks
    }
}

fn in_windows(windows: &[(u16, u16)], minute: u32) -> bool {
    windows.iter().any(|&(a, b)| {
        let (a, b) = (a as u32, b as u32);
        if a < b {
            (a..b).contains(&minute)
        } else {
            minute >= a || minute < b
        }
    })
}

/// Action word: bits 14–15 `11` close / `10` open the dry contact, bits 0–3 the index.
fn hc_block(minute: u16, hc: bool) -> String {
    let action = if hc { "C001" } else { "8002" };
    format!("{:02}{:02}{action}", minute / 60, minute % 60)
}

fn colour_rank(c: TempoColour) -> usize {
    match c {
        TempoColour::Blue => 0,
        TempoColour::White => 1,
        TempoColour::Red => 2,
    }
}

/// Tempo profile: dry contact under the Tempo configuration (`01`, action 0x4000).
fn tempo_blocks(c: TempoColour) -> Vec<String> {
    let hc = colour_rank(c) * 2 + 1;
    vec![
        format!("0000400{hc}"),
        format!("0600400{}", hc + 1),
        format!("2200400{hc}"),
    ]
}

fn pad_profile(mut blocks: Vec<String>) -> String {
    blocks.truncate(11);
    while blocks.len() < 11 {
        blocks.push("NONUTILE".into());
    }
    blocks.join(" ")
}

/// Historic DEMAIN (§4.3).
pub fn demain(tomorrow: Option<TempoColour>) -> &'static str {
    match tomorrow {
        None => "----",
        Some(TempoColour::Blue) => "BLEU",
        Some(TempoColour::White) => "BLAN",
        Some(TempoColour::Red) => "ROUG",
    }
}

/// STGE colour code (bits 24–27): 1 blue, 2 white, 3 red.
pub fn colour_code(c: Option<TempoColour>) -> u32 {
    match c {
        None => 0,
        Some(TempoColour::Blue) => 1,
        Some(TempoColour::White) => 2,
        Some(TempoColour::Red) => 3,
    }
}

impl fmt::Display for Contract {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tempo_season_has_the_regulated_day_counts() {
        let mut c = Calendars::new(42);
        let first = clock::days_from_civil(2025, 9, 1);
        let last = clock::days_from_civil(2026, 9, 1);
        let (mut red, mut white) = (0, 0);
        for d in first..last {
            match c.tempo_colour(d) {
                TempoColour::Red => {
                    red += 1;
                    assert!(clock::weekday(d) < 5);
                    let (_, m, _) = clock::civil_from_days(d);
                    assert!(!(4..=10).contains(&m));
                }
                TempoColour::White => {
                    white += 1;
                    assert_ne!(clock::weekday(d), 6);
                }
                TempoColour::Blue => {}
            }
        }
        assert_eq!((red, white), (22, 43));
        let ejp = (first..last).filter(|&d| c.ejp_day(d)).count();
        assert_eq!(ejp, 22);
    }

    #[test]
    fn offpeak_parsing() {
        assert_eq!(parse_offpeak("22:00-06:00").unwrap(), vec![(1320, 360)]);
        assert_eq!(parse_offpeak("01:30-07:30,12:30-14:30").unwrap().len(), 2);
        assert!(parse_offpeak("25:00-06:00").is_err());
        assert!(parse_offpeak("22:00").is_err());
        assert!(parse_offpeak("06:00-06:00").is_err());
    }

    #[test]
    fn hchp_profile_is_well_formed() {
        let mut c = Calendars::new(1);
        let t = clock::local(clock::parse_datetime("2025-01-10T12:00").unwrap());
        let contract = Contract::HcHp(parse_offpeak("01:30-07:30,12:30-14:30").unwrap());
        let p = c.next_day_profile(&contract, &t);
        assert_eq!(p.len(), 98);
        assert!(p.starts_with("00008002 0130C001 07308002 1230C001 14308002 NONUTILE"));
        assert!(tic::profile::DayProfile::parse(&p).is_some());
    }
}
