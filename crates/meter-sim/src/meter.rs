//! The meter: integrates the household's power into its registers and writes
//! TIC frames of both modes with the real meter's label set, order and widths.

use crate::clock::{self, LocalTime};
use crate::household::{Household, Load};
use crate::rng::Rng;
use crate::tariff::{self, Calendars, Contract, Period};
use tic::encode::encode_group;
use tic::{Horodate, Mode, Season, EOT, ETX, MAX_GROUP_LEN, STX};

/// Watt-milliseconds in one watt-hour: registers integrate in W·ms so that an
/// index is the exact integral of the (piecewise-constant) power.
pub const WMS_PER_WH: u64 = 3_600_000;

/// Load-curve integration period (CCASN/CCAIN, §5.3): 30 minutes.
const LOAD_CURVE_MS: i64 = 30 * 60_000;
/// Mean-voltage interval (UMOY, §5.3): 10 minutes.
const UMOY_MS: i64 = 10 * 60_000;
/// Overpower filter coefficient and trip level (§5.3, [54E §7]).
const FILTER_B: f64 = 0.008;
const TRIP_LEVEL: f64 = 1.69;
/// How long the household takes to re-arm the cut-off device after a trip.
const REARM_MS: i64 = 120_000;
/// Historic three-phase: short frames go on 1 minute after the overload (§4.6).
const SHORT_FRAMES_AFTER_MS: i64 = 60_000;

/// The usual MSG1 (§5.3).
const MSG1: &str = "PAS DE          MESSAGE         ";

/// Where a group lies in a frame's bytes (`start` = its LF, `end` = after its CR).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupSpan {
    /// The label.
    pub label: &'static str,
    /// Index of the LF.
    pub start: usize,
    /// One past the CR.
    pub end: usize,
}

/// What kind of frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameKind {
    /// A normal (historic: long) frame.
    Long,
    /// Historic three-phase short frame (ADIRx, ADCO, IINST1-3) during an overload (§4.6).
    Short,
    /// A historic three-phase long frame cut by EOT when short frames start (§2.2, §4.6).
    Interrupted,
}

/// The meter's settings.
#[derive(Debug, Clone)]
pub(crate) struct MeterSetup {
    pub phases: u8,
    pub producer: bool,
    pub subscribed_kva: u8,
    pub contract: Contract,
    pub address: String,
    pub prm: String,
}

/// A snapshot of the simulation's ground truth, for assertions.
#[derive(Debug, Clone, PartialEq)]
pub struct TrueState {
    /// True (UTC) time of the snapshot, Unix ms.
    pub true_time_unix_ms: i64,
    /// The meter clock (with drift), Unix s.
    pub meter_time_unix_s: i64,
    /// Net active power per phase, W (negative: injecting). It holds until the next frame.
    pub phase_active_power_w: [i32; 3],
    /// Net active power, W.
    pub active_power_w: i32,
    /// Reactive power, var.
    pub reactive_power_var: i32,
    /// Apparent power drawn (SINSTS), VA.
    pub apparent_power_drawn_va: u32,
    /// Apparent power injected (SINSTI), VA.
    pub apparent_power_injected_va: u32,
    /// RMS voltage per phase, V.
    pub voltage_v: [f64; 3],
    /// RMS current per phase, A.
    pub current_a: [f64; 3],
    /// Solar production, W.
    pub production_w: i32,
    /// Active energy drawn, W·ms (exact integral).
    pub import_wms: u64,
    /// Active energy injected, W·ms.
    pub export_wms: u64,
    /// Per supplier index, W·ms.
    pub supplier_wms: [u64; 10],
    /// Per distributor index, W·ms.
    pub distributor_wms: [u64; 4],
    /// Reactive energy per quadrant, var·ms.
    pub reactive_vms: [u64; 4],
    /// The tariff period in force.
    pub period: Period,
    /// The cut-off device is open (overpower trip).
    pub cut_off: bool,
    /// The reference power is exceeded (STGE bit 7).
    pub overload: bool,
}

impl TrueState {
    /// EAST: energy drawn in whole Wh.
    pub fn import_wh(&self) -> u64 {
        self.import_wms / WMS_PER_WH
    }
    /// EAIT: energy injected in whole Wh.
    pub fn export_wh(&self) -> u64 {
        self.export_wms / WMS_PER_WH
    }
}

#[derive(Debug, Clone, Copy, Default)]
struct Max {
    va: u32,
    unix_s: i64,
}

pub(crate) struct Meter {
    pub setup: MeterSetup,
    pub calendars: Calendars,
    household: Household,
    /// True time, Unix ms.
    pub t_ms: i64,
    start_ms: i64,
    pub drift_s_per_day: f64,
    pub degraded: bool,
    load: Load,
    local: LocalTime,
    pub period: Period,
    supplier_wms: [u64; 10],
    distributor_wms: [u64; 4],
    import_wms: u64,
    export_wms: u64,
    reactive_vms: [u64; 4],
    filter_y: [f64; 3],
    cut_until_ms: Option<i64>,
    overload: bool,
    max_day: i64,
    /// Index 0 = total, 1..=3 phases.
    smax_today: [Max; 4],
    smax_yesterday: [Max; 4],
    smaxin_today: Max,
    smaxin_yesterday: Max,
    cc_import_wms: u64,
    cc_export_wms: u64,
    /// Last two load-curve points: (import W, export W, end Unix s), newest first.
    cc_points: [(u32, u32, i64); 2],
    umoy_sum: [f64; 3],
    umoy_last: ([u32; 3], i64),
    short_until_ms: Option<i64>,
}

fn phases_of(load: &Load) -> [(f64, f64); 3] {
    let mut out = [(0.0, 0.0); 3];
    for (i, o) in out.iter_mut().enumerate() {
        let p = load.active_w[i] as f64;
        let q = load.reactive_var[i] as f64;
        let s = (p * p + q * q).sqrt();
        *o = (if p < 0.0 { -s } else { s }, s / load.voltage_v[i]);
    }
    out
}

impl Meter {
    pub fn new(setup: MeterSetup, household: Household, start_ms: i64, seed: u64) -> Meter {
        let mut rng = Rng::new(seed, 0x1D3);
        let mut calendars = Calendars::new(seed);
        let local = clock::local(start_ms.div_euclid(1000));
        let period = calendars.period(&setup.contract, &local);
        let total_wh = rng.range(4.0e6, 45.0e6) as u64;
        let shares: &[f64] = match setup.contract {
            Contract::Base => &[1.0],
            Contract::HcHp(_) => &[0.42, 0.58],
            Contract::Tempo => &[0.32, 0.41, 0.07, 0.09, 0.05, 0.06],
            Contract::Ejp => &[0.9, 0.1],
        };
        let mut supplier_wms = [0u64; 10];
        for (i, s) in shares.iter().enumerate() {
            supplier_wms[i] = (total_wh as f64 * s) as u64 * WMS_PER_WH;
        }
        let import_wms = supplier_wms.iter().sum();
        let mut distributor_wms = [0u64; 4];
        match setup.contract {
            Contract::HcHp(_) => distributor_wms[..2].copy_from_slice(&supplier_wms[..2]),
            _ => distributor_wms[0] = import_wms,
        }
        let export_wms = if setup.producer {
            rng.range(2.0e5, 5.0e6) as u64 * WMS_PER_WH
        } else {
            0
        };
        let reactive_vms = if setup.producer {
            [
                (total_wh / 5) * WMS_PER_WH,
                (total_wh / 60) * WMS_PER_WH,
                (total_wh / 150) * WMS_PER_WH,
                (total_wh / 20) * WMS_PER_WH,
            ]
        } else {
            [0; 4]
        };
        let pref_va = setup.subscribed_kva as f64 * 1000.0;
        let yesterday_s = clock::local_midnight_unix_s(local.day_number) - 86_400
            + rng.range(17.5 * 3600.0, 21.0 * 3600.0) as i64;
        let mut smax_yesterday = [Max::default(); 4];
        for (i, m) in smax_yesterday.iter_mut().enumerate() {
            let share = if i == 0 { 1.0 } else { 0.4 };
            *m = Max {
                va: (pref_va * rng.range(0.35, 0.7) * share) as u32,
                unix_s: yesterday_s - rng.below(3) as i64 * 617,
            };
        }
        let smaxin_yesterday = Max {
            va: if setup.producer {
                rng.range(500.0, 3000.0) as u32
            } else {
                0
            },
            unix_s: yesterday_s - 5 * 3600,
        };
        Meter {
            setup,
            calendars,
            household,
            t_ms: start_ms,
            start_ms,
            drift_s_per_day: 0.0,
            degraded: false,
            load: Load::default(),
            local,
            period,
            supplier_wms,
            distributor_wms,
            import_wms,
            export_wms,
            reactive_vms,
            filter_y: [0.0; 3],
            cut_until_ms: None,
            overload: false,
            max_day: i64::MIN,
            smax_today: [Max::default(); 4],
            smax_yesterday,
            smaxin_today: Max::default(),
            smaxin_yesterday,
            cc_import_wms: 0,
            cc_export_wms: 0,
            cc_points: [(0, 0, 0); 2],
            umoy_sum: [0.0; 3],
            umoy_last: ([230; 3], 0),
            short_until_ms: None,
        }
    }

    /// Computes the first load at the start time and back-fills the load
    /// curve and mean voltage as if that load had held before the start.
    pub fn prime(&mut self) {
        self.refresh(0.0);
        let t = self.t_ms;
        let p = self.load.active_w.iter().sum::<i32>() as i64;
        let cc_start = t.div_euclid(LOAD_CURVE_MS) * LOAD_CURVE_MS;
        let (imp, exp) = (p.max(0) as u32, (-p).max(0) as u32);
        self.cc_points = [
            (imp, exp, cc_start / 1000),
            (imp, exp, (cc_start - LOAD_CURVE_MS) / 1000),
        ];
        self.cc_import_wms = (p.max(0) * (t - cc_start)) as u64;
        self.cc_export_wms = ((-p).max(0) * (t - cc_start)) as u64;
        let u_start = t.div_euclid(UMOY_MS) * UMOY_MS;
        for i in 0..3 {
            self.umoy_sum[i] = self.load.voltage_v[i] * (t - u_start) as f64;
        }
        self.umoy_last = (
            self.load.voltage_v.map(|u| u.round() as u32),
            u_start / 1000,
        );
    }

    /// The meter's clock (true time plus drift), Unix s.
    pub fn meter_unix_s(&self) -> i64 {
        let elapsed_days = (self.t_ms - self.start_ms) as f64 / 86_400_000.0;
        (self.t_ms + (self.drift_s_per_day * elapsed_days * 1000.0) as i64).div_euclid(1000)
    }

    /// Advances the simulation by `dt_ms`.
    pub fn step(&mut self, dt_ms: i64) {
        let from = self.t_ms;
        let to = from + dt_ms.max(0);
        self.integrate(from, to);
        self.t_ms = to;
        self.refresh(dt_ms as f64 / 1000.0);
    }

    /// Splits [from, to) where the tariff period, load-curve or mean-voltage
    /// interval changes, so that every register gets exactly its share.
    fn integrate(&mut self, from: i64, to: i64) {
        let p_total: i64 = self.load.active_w.iter().map(|&p| p as i64).sum();
        let q_total: i64 = self.load.reactive_var.iter().map(|&q| q as i64).sum();
        let mut cur = from;
        while cur < to {
            let next_minute = (cur.div_euclid(60_000) + 1) * 60_000;
            let seg_end = next_minute.min(to);
            let dt = (seg_end - cur) as u64;
            // Energy of this segment.
            let e = p_total.unsigned_abs() * dt;
            if p_total >= 0 {
                self.import_wms += e;
                self.supplier_wms[self.period.supplier_index as usize - 1] += e;
                self.distributor_wms[self.period.distributor_index as usize - 1] += e;
                self.cc_import_wms += e;
            } else {
                self.export_wms += e;
                self.cc_export_wms += e;
            }
            let quadrant = match (p_total >= 0, q_total >= 0) {
                (true, true) => 0,
                (false, true) => 1,
                (false, false) => 2,
                (true, false) => 3,
            };
            if self.setup.producer {
                self.reactive_vms[quadrant] += q_total.unsigned_abs() * dt;
            }
            for i in 0..3 {
                self.umoy_sum[i] += self.load.voltage_v[i] * dt as f64;
            }
            cur = seg_end;
            if cur == next_minute {
                // Minute boundary: tariff changes happen on whole minutes.
                if cur.rem_euclid(LOAD_CURVE_MS) == 0 {
                    let imp = (self.cc_import_wms / LOAD_CURVE_MS as u64) as u32;
                    let exp = (self.cc_export_wms / LOAD_CURVE_MS as u64) as u32;
                    self.cc_points = [(imp, exp, self.meter_at(cur)), self.cc_points[0]];
                    self.cc_import_wms = 0;
                    self.cc_export_wms = 0;
                }
                if cur.rem_euclid(UMOY_MS) == 0 {
                    let mean = self.umoy_sum.map(|s| (s / UMOY_MS as f64).round() as u32);
                    self.umoy_last = (mean, self.meter_at(cur));
                    self.umoy_sum = [0.0; 3];
                }
                if cur < to {
                    let local = clock::local(cur.div_euclid(1000));
                    self.period = self.calendars.period(&self.setup.contract, &local);
                }
            }
        }
    }

    /// Meter clock (Unix s) at a true time.
    fn meter_at(&self, t_ms: i64) -> i64 {
        let elapsed_days = (t_ms - self.start_ms) as f64 / 86_400_000.0;
        (t_ms + (self.drift_s_per_day * elapsed_days * 1000.0) as i64).div_euclid(1000)
    }

    /// New period, load, overpower state and daily maxima at `self.t_ms`.
    fn refresh(&mut self, dt_s: f64) {
        let unix_s = self.t_ms.div_euclid(1000);
        self.local = clock::local(unix_s);
        self.period = self.calendars.period(&self.setup.contract, &self.local);
        // Overpower filter over the step that just ended, per phase (§5.3).
        let pcoup_va = self.setup.subscribed_kva as f64 * 1000.0 / self.setup.phases as f64;
        let decay = (1.0 - FILTER_B).powf(dt_s);
        let before = phases_of(&self.load);
        let mut tripped = false;
        for (i, y) in self
            .filter_y
            .iter_mut()
            .enumerate()
            .take(self.setup.phases as usize)
        {
            let x = before[i].0.abs() / pcoup_va;
            *y = x * x + (*y - x * x) * decay;
            tripped |= *y >= TRIP_LEVEL;
        }
        if tripped && self.cut_until_ms.is_none() {
            self.cut_until_ms = Some(self.t_ms + REARM_MS);
        }
        if self.cut_until_ms.is_some_and(|until| self.t_ms >= until) {
            self.cut_until_ms = None;
            self.filter_y = [0.0; 3];
        }
        let mut load = self
            .household
            .step(unix_s, dt_s, &self.local, self.period.off_peak);
        if self.cut_until_ms.is_some() {
            load.active_w = [0; 3];
            load.reactive_var = [0; 3];
        }
        self.load = load;
        let phases = phases_of(&self.load);
        let pref_phase = self.setup.subscribed_kva as f64 * 1000.0 / self.setup.phases as f64;
        self.overload = phases
            .iter()
            .take(self.setup.phases as usize)
            .any(|p| p.0 > pref_phase);
        if self.setup.phases == 3 {
            let ir = self.isousc() as f64;
            if phases.iter().any(|p| p.1 > ir) {
                self.short_until_ms = Some(self.t_ms + SHORT_FRAMES_AFTER_MS);
            }
        }
        // Daily maxima, on the meter's local day.
        let meter_s = self.meter_unix_s();
        let day = clock::local(meter_s).day_number;
        if day != self.max_day {
            if self.max_day != i64::MIN {
                self.smax_yesterday = self.smax_today;
                self.smaxin_yesterday = self.smaxin_today;
            }
            self.max_day = day;
            self.smax_today = [Max {
                va: 0,
                unix_s: meter_s,
            }; 4];
            self.smaxin_today = Max {
                va: 0,
                unix_s: clock::local_midnight_unix_s(day),
            };
        }
        let (drawn, injected) = self.total_apparent_va();
        let mut candidates = [drawn; 4];
        for i in 0..3 {
            candidates[i + 1] = phases[i].0.max(0.0).round() as u32;
        }
        for (m, v) in self.smax_today.iter_mut().zip(candidates) {
            if v > m.va {
                *m = Max {
                    va: v,
                    unix_s: meter_s,
                };
            }
        }
        if injected > self.smaxin_today.va {
            self.smaxin_today = Max {
                va: injected,
                unix_s: meter_s,
            };
        }
    }

    /// SINSTS and SINSTI: signed sum of per-phase apparent powers (§5.3).
    fn total_apparent_va(&self) -> (u32, u32) {
        let sum: f64 = phases_of(&self.load)
            .iter()
            .take(self.setup.phases as usize)
            .map(|p| p.0)
            .sum();
        if sum >= 0.0 {
            (sum.round() as u32, 0)
        } else {
            (0, (-sum).round() as u32)
        }
    }

    /// ISOUSC: PREF / 200 V, divided by 3 in three-phase (§4.5).
    pub fn isousc(&self) -> u32 {
        self.setup.subscribed_kva as u32 * 1000 / 200 / self.setup.phases as u32
    }

    /// Whether historic three-phase short frames are due.
    pub fn short_frames_due(&self) -> bool {
        self.short_until_ms.is_some_and(|u| self.t_ms < u)
    }

    pub fn true_state(&self) -> TrueState {
        let phases = phases_of(&self.load);
        let (drawn, injected) = self.total_apparent_va();
        TrueState {
            true_time_unix_ms: self.t_ms,
            meter_time_unix_s: self.meter_unix_s(),
            phase_active_power_w: self.load.active_w,
            active_power_w: self.load.active_w.iter().sum(),
            reactive_power_var: self.load.reactive_var.iter().sum(),
            apparent_power_drawn_va: drawn,
            apparent_power_injected_va: injected,
            voltage_v: self.load.voltage_v,
            current_a: phases.map(|p| p.1),
            production_w: self.load.production_w,
            import_wms: self.import_wms,
            export_wms: self.export_wms,
            supplier_wms: self.supplier_wms,
            distributor_wms: self.distributor_wms,
            reactive_vms: self.reactive_vms,
            period: self.period,
            cut_off: self.cut_until_ms.is_some(),
            overload: self.overload,
        }
    }

    fn horodate(&self, unix_s: i64) -> Horodate {
        let season = if clock::is_summer(unix_s) {
            Season::Summer
        } else {
            Season::Winter
        };
        Horodate::from_unix_s(unix_s, season, self.degraded)
    }

    /// STGE (§5.4).
    fn stge(&self) -> u32 {
        let p = &self.period;
        let mut v: u32 = 0;
        v |= u32::from(!p.dry_contact_closed);
        if self.cut_until_ms.is_some() {
            v |= 1 << 1; // cut-off open: overpower
        }
        if self
            .load
            .voltage_v
            .iter()
            .take(self.setup.phases as usize)
            .any(|&u| u > 253.0)
        {
            v |= 1 << 6;
        }
        v |= u32::from(self.overload) << 7;
        v |= u32::from(self.setup.producer) << 8;
        v |= u32::from(self.total_apparent_va().1 > 0) << 9;
        v |= (p.supplier_index as u32 - 1) << 10;
        v |= (p.distributor_index as u32 - 1) << 14;
        v |= u32::from(self.degraded) << 16;
        // Standard mode, Euridis with security, CPL New/Lock: 0x3A as real meters.
        v |= 0x3A << 16;
        if matches!(self.setup.contract, Contract::Tempo) {
            v |= tariff::colour_code(p.tempo_today) << 24;
            v |= tariff::colour_code(p.tempo_tomorrow) << 26;
        }
        v |= u32::from(p.peak_notice) << 28;
        v |= u32::from(p.peak_in_progress) << 30;
        v
    }

    /// Writes a standard-mode frame.
    pub fn standard_frame(&mut self, out: &mut Vec<u8>, spans: &mut Vec<GroupSpan>) {
        let mut w = Writer::new(Mode::Standard, out, spans);
        let three = self.setup.phases == 3;
        let producer = self.setup.producer;
        let now = self.meter_unix_s();
        let date = self.horodate(now);
        let mut n = Num::default();
        w.group("ADSC", None, &self.setup.address);
        w.group("VTIC", None, "02");
        w.group("DATE", Some(&date), "");
        w.group("NGTF", None, self.setup.contract.ngtf());
        w.group("LTARF", None, self.period.ltarf);
        w.group("EAST", None, n.fmt(self.import_wms / WMS_PER_WH, 9));
        const EASF: [&str; 10] = [
            "EASF01", "EASF02", "EASF03", "EASF04", "EASF05", "EASF06", "EASF07", "EASF08",
            "EASF09", "EASF10",
        ];
        for (label, wms) in EASF.iter().zip(self.supplier_wms) {
            w.group(label, None, n.fmt(wms / WMS_PER_WH, 9));
        }
        for (label, wms) in ["EASD01", "EASD02", "EASD03", "EASD04"]
            .iter()
            .zip(self.distributor_wms)
        {
            w.group(label, None, n.fmt(wms / WMS_PER_WH, 9));
        }
        if producer {
            w.group("EAIT", None, n.fmt(self.export_wms / WMS_PER_WH, 9));
            for (label, vms) in ["ERQ1", "ERQ2", "ERQ3", "ERQ4"]
                .iter()
                .zip(self.reactive_vms)
            {
                w.group(label, None, n.fmt(vms / WMS_PER_WH, 9));
            }
        }
        let phases = phases_of(&self.load);
        let count = if three { 3 } else { 1 };
        for (i, label) in ["IRMS1", "IRMS2", "IRMS3"].iter().enumerate().take(count) {
            w.group(label, None, n.fmt(phases[i].1.round() as u64, 3));
        }
        for (i, label) in ["URMS1", "URMS2", "URMS3"].iter().enumerate().take(count) {
            w.group(label, None, n.fmt(self.load.voltage_v[i].round() as u64, 3));
        }
        let kva = self.setup.subscribed_kva as u64;
        w.group("PREF", None, n.fmt(kva, 2));
        w.group("PCOUP", None, n.fmt(kva, 2));
        let (drawn, injected) = self.total_apparent_va();
        w.group("SINSTS", None, n.fmt(drawn as u64, 5));
        if three {
            for (i, label) in ["SINSTS1", "SINSTS2", "SINSTS3"].iter().enumerate() {
                w.group(label, None, n.fmt(phases[i].0.max(0.0).round() as u64, 5));
            }
        }
        let maxima = |w: &mut Writer, n: &mut Num, labels: [&'static str; 4], m: &[Max; 4]| {
            w.group(
                labels[0],
                Some(&self.horodate(m[0].unix_s)),
                n.fmt(m[0].va as u64, 5),
            );
            if three {
                for i in 1..4 {
                    let h = self.horodate(m[i].unix_s);
                    w.group(labels[i], Some(&h), n.fmt(m[i].va as u64, 5));
                }
            }
        };
        maxima(
            &mut w,
            &mut n,
            ["SMAXSN", "SMAXSN1", "SMAXSN2", "SMAXSN3"],
            &self.smax_today,
        );
        maxima(
            &mut w,
            &mut n,
            ["SMAXSN-1", "SMAXSN1-1", "SMAXSN2-1", "SMAXSN3-1"],
            &self.smax_yesterday,
        );
        if producer {
            w.group("SINSTI", None, n.fmt(injected as u64, 5));
            let m = self.smaxin_today;
            w.group(
                "SMAXIN",
                Some(&self.horodate(m.unix_s)),
                n.fmt(m.va as u64, 5),
            );
            let m = self.smaxin_yesterday;
            w.group(
                "SMAXIN-1",
                Some(&self.horodate(m.unix_s)),
                n.fmt(m.va as u64, 5),
            );
        }
        let [cc, cc1] = self.cc_points;
        w.group("CCASN", Some(&self.horodate(cc.2)), n.fmt(cc.0 as u64, 5));
        w.group(
            "CCASN-1",
            Some(&self.horodate(cc1.2)),
            n.fmt(cc1.0 as u64, 5),
        );
        if producer {
            w.group("CCAIN", Some(&self.horodate(cc.2)), n.fmt(cc.1 as u64, 5));
            w.group(
                "CCAIN-1",
                Some(&self.horodate(cc1.2)),
                n.fmt(cc1.1 as u64, 5),
            );
        }
        let umoy_h = self.horodate(self.umoy_last.1);
        for (i, label) in ["UMOY1", "UMOY2", "UMOY3"].iter().enumerate().take(count) {
            w.group(label, Some(&umoy_h), n.fmt(self.umoy_last.0[i] as u64, 3));
        }
        w.group("STGE", None, n.hex8(self.stge()));
        if let Some((start, end)) = self.period.peak_window_unix_s {
            // Mobile-peak bounds carry the SP season letter (§2.4).
            w.group("DPM1", Some(&no_season(start)), "00");
            w.group("FPM1", Some(&no_season(end)), "00");
        }
        w.group("MSG1", None, MSG1);
        w.group("PRM", None, &self.setup.prm);
        w.group(
            "RELAIS",
            None,
            if self.period.dry_contact_closed {
                "001"
            } else {
                "000"
            },
        );
        w.group("NTARF", None, n.fmt(self.period.supplier_index as u64, 2));
        w.group("NJOURF", None, "00");
        w.group("NJOURF+1", None, "00");
        let profile = self
            .calendars
            .next_day_profile(&self.setup.contract, &self.local);
        w.group("PJOURF+1", None, &profile);
        if self.period.peak_notice {
            if let Some((start, _)) = self.period.peak_window_unix_s {
                let day = clock::local(start).day_number;
                let peak = self.calendars.peak_profile(day);
                w.group("PPOINTE", None, &peak);
            }
        }
        w.finish();
    }

    /// Writes a historic frame: long, short, or long cut by EOT after `cut_after` groups.
    pub fn historic_frame(
        &mut self,
        kind: FrameKind,
        cut_after: usize,
        out: &mut Vec<u8>,
        spans: &mut Vec<GroupSpan>,
    ) {
        let mut w = Writer::new(Mode::Historic, out, spans);
        let three = self.setup.phases == 3;
        let mut n = Num::default();
        let phases = phases_of(&self.load);
        let amps = |i: usize| (phases[i].1.round() as u64).min(999);
        let isousc = self.isousc() as u64;
        if kind == FrameKind::Short {
            for (i, label) in ["ADIR1", "ADIR2", "ADIR3"].iter().enumerate() {
                if phases[i].1 > isousc as f64 {
                    w.group(label, None, n.fmt(amps(i), 3));
                }
            }
            w.group("ADCO", None, &self.setup.address);
            for (i, label) in ["IINST1", "IINST2", "IINST3"].iter().enumerate() {
                w.group(label, None, n.fmt(amps(i), 3));
            }
            w.finish();
            return;
        }
        w.cut_after = (kind == FrameKind::Interrupted).then_some(cut_after);
        w.group("ADCO", None, &self.setup.address);
        w.group("OPTARIF", None, self.setup.contract.optarif());
        w.group("ISOUSC", None, n.fmt(isousc, 2));
        let labels = self.setup.contract.historic_index_labels();
        for (label, wms) in labels.iter().zip(self.supplier_wms) {
            w.group(label, None, n.fmt(wms / WMS_PER_WH, 9));
        }
        if matches!(self.setup.contract, Contract::Ejp) && self.period.pejp {
            w.group("PEJP", None, "30");
        }
        w.group("PTEC", None, self.period.ptec);
        if matches!(self.setup.contract, Contract::Tempo) {
            w.group("DEMAIN", None, tariff::demain(self.period.tempo_tomorrow));
        }
        let (drawn, _) = self.total_apparent_va();
        if three {
            for (i, label) in ["IINST1", "IINST2", "IINST3"].iter().enumerate() {
                w.group(label, None, n.fmt(amps(i), 3));
            }
            for label in ["IMAX1", "IMAX2", "IMAX3"] {
                w.group(label, None, "060");
            }
            // Linky: PMAX is yesterday's Smax in VA (§4.5).
            w.group(
                "PMAX",
                None,
                n.fmt(self.smax_yesterday[0].va.min(99_999) as u64, 5),
            );
        } else {
            w.group("IINST", None, n.fmt(amps(0), 3));
            if amps(0) > isousc {
                w.group("ADPS", None, n.fmt(amps(0), 3));
            }
            w.group("IMAX", None, "090");
        }
        let papp = ((drawn as u64 + 5) / 10 * 10).min(99_990);
        w.group("PAPP", None, n.fmt(papp, 5));
        w.group("HHPHC", None, "A");
        w.group("MOTDETAT", None, "000000");
        if three {
            w.group("PPOT", None, "00");
        }
        w.finish();
    }
}

fn no_season(unix_s: i64) -> Horodate {
    let l = clock::local(unix_s);
    Horodate {
        season: Season::None,
        degraded: false,
        year: l.year as u16,
        month: l.month,
        day: l.day,
        hour: l.hour,
        minute: l.minute,
        second: l.second,
    }
}

/// Fixed-width decimal and hex formatting without allocation.
#[derive(Default)]
struct Num {
    buf: [u8; 20],
}

impl Num {
    /// `value` zero-padded to `width` digits (values too wide are capped at all nines).
    fn fmt(&mut self, value: u64, width: usize) -> &str {
        let cap = 10u64.saturating_pow(width as u32).saturating_sub(1);
        let mut v = value.min(cap);
        for i in (0..width).rev() {
            self.buf[i] = b'0' + (v % 10) as u8;
            v /= 10;
        }
        std::str::from_utf8(&self.buf[..width]).unwrap_or("0")
    }

    fn hex8(&mut self, value: u32) -> &str {
        for i in 0..8 {
            let d = (value >> (28 - 4 * i)) & 0xF;
            self.buf[i] = b"0123456789ABCDEF"[d as usize];
        }
        std::str::from_utf8(&self.buf[..8]).unwrap_or("00000000")
    }
}

struct Writer<'a> {
    mode: Mode,
    out: &'a mut Vec<u8>,
    spans: &'a mut Vec<GroupSpan>,
    buf: [u8; MAX_GROUP_LEN],
    cut_after: Option<usize>,
    groups: usize,
    stopped: bool,
}

impl<'a> Writer<'a> {
    fn new(mode: Mode, out: &'a mut Vec<u8>, spans: &'a mut Vec<GroupSpan>) -> Writer<'a> {
        out.push(STX);
        Writer {
            mode,
            out,
            spans,
            buf: [0; MAX_GROUP_LEN],
            cut_after: None,
            groups: 0,
            stopped: false,
        }
    }

    fn group(&mut self, label: &'static str, horodate: Option<&Horodate>, value: &str) {
        if self.stopped {
            return;
        }
        let n = encode_group(self.mode, label, horodate, value, &mut self.buf)
            .unwrap_or_else(|e| panic!("simulator bug: cannot encode {label} {value:?}: {e}"));
        let start = self.out.len();
        self.out.extend_from_slice(&self.buf[..n]);
        self.spans.push(GroupSpan {
            label,
            start,
            end: start + n,
        });
        self.groups += 1;
        if self.cut_after == Some(self.groups) {
            // §2.2: the meter stops after the current group and sends EOT.
            self.out.push(EOT);
            self.stopped = true;
        }
    }

    fn finish(self) {
        if !self.stopped {
            self.out.push(ETX);
        }
    }
}
