//! The household behind the meter: what it draws (and produces) at each instant.
//!
//! Deterministic for a seed: every random choice comes from one [`Rng`] that
//! is advanced in simulation order. The load is the sum of
//! * a base load (standby, electronics) and a fridge cycling on and off,
//! * lighting when people are awake at home and it is dark,
//! * electric heating driven by the outdoor temperature (season, day/night,
//!   weather that persists for days), cycling under a thermostat,
//! * a water heater that reheats the tank in off-peak hours (dry contact),
//! * appliances planned each local day: cooking peaks at meal times, washing
//!   machine, dishwasher, kettle — and, rarely, everything at once: an
//!   overload above the subscribed power,
//! * for producers, solar production (sun height by season and hour, clouds).
//!
//! In three-phase, each appliance sits on one phase and heating is spread.

use crate::clock::LocalTime;
use crate::rng::Rng;
use std::f64::consts::TAU;

/// The household's parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct HouseholdConfig {
    /// Subscribed apparent power, kVA (PREF).
    pub subscribed_kva: u8,
    /// 1 or 3.
    pub phases: u8,
    /// Electric heating.
    pub electric_heating: bool,
    /// Solar peak power, kWp (0: none).
    pub solar_kwp: f64,
    /// Mean number of overload events per day (appliances that together exceed PREF).
    pub overloads_per_day: f64,
}

/// What the household draws at one instant, per phase.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Load {
    /// Net active power per phase, W (negative: injecting).
    pub active_w: [i32; 3],
    /// Reactive power per phase, var (positive: inductive).
    pub reactive_var: [i32; 3],
    /// RMS voltage per phase, V.
    pub voltage_v: [f64; 3],
    /// Solar production, W (all phases).
    pub production_w: i32,
}

#[derive(Debug, Clone, Copy)]
struct Appliance {
    start_s: u32,
    duration_s: u32,
    power_w: f64,
    /// Duty cycle period for cycling loads (hob, oven thermostat), 0 = steady.
    cycle_s: u32,
    duty: f64,
    phase: usize,
    power_factor: f64,
}

/// The household model.
#[derive(Debug, Clone)]
pub struct Household {
    cfg: HouseholdConfig,
    rng: Rng,
    base_w: f64,
    heater_w: f64,
    water_heater_w: f64,
    tank_deficit_wh: f64,
    weather_anomaly_c: f64,
    cloud: f64,
    voltage_slow: [f64; 3],
    planned_day: i64,
    day_appliances: Vec<Appliance>,
    heating_phase: [f64; 3],
    persons: u32,
}

impl Household {
    /// A household for a seed.
    pub fn new(cfg: HouseholdConfig, mut rng: Rng) -> Household {
        let pref_w = cfg.subscribed_kva as f64 * 1000.0;
        let persons = 1 + rng.below(4) as u32;
        let heater_w = if cfg.electric_heating {
            (pref_w * rng.range(0.30, 0.40)).min(12_000.0)
        } else {
            0.0
        };
        Household {
            base_w: rng.range(90.0, 220.0),
            heater_w,
            water_heater_w: if pref_w <= 3000.0 { 1200.0 } else { 2200.0 },
            tank_deficit_wh: rng.range(0.0, 3000.0),
            weather_anomaly_c: rng.normal() * 3.0,
            cloud: rng.f64(),
            voltage_slow: [rng.normal() * 2.0, rng.normal() * 2.0, rng.normal() * 2.0],
            planned_day: i64::MIN,
            day_appliances: Vec::new(),
            heating_phase: [rng.f64(), rng.f64(), rng.f64()],
            persons,
            cfg,
            rng,
        }
    }

    fn phase(&mut self) -> usize {
        if self.cfg.phases == 3 {
            self.rng.below(3) as usize
        } else {
            0
        }
    }

    /// Plans the appliances of a local day.
    fn plan_day(&mut self, t: &LocalTime) {
        self.day_appliances.clear();
        let weekend = t.weekday >= 5;
        let pref_w = self.cfg.subscribed_kva as f64 * 1000.0;
        let cap = |w: f64| w.min(pref_w * 0.6);
        let mut plan = Vec::new();
        // Cooking peaks: lunch (mostly week-ends), dinner nearly every day.
        for (centre_h, p) in [(12.3, if weekend { 0.9 } else { 0.35 }), (19.6, 0.9)] {
            if self.rng.chance(p) {
                let start = ((centre_h + self.rng.normal() * 0.5) * 3600.0) as u32;
                plan.push(Appliance {
                    start_s: start,
                    duration_s: self.rng.range(900.0, 3600.0) as u32,
                    power_w: cap(self.rng.range(1500.0, 3500.0)),
                    cycle_s: 120,
                    duty: self.rng.range(0.5, 0.9),
                    phase: self.phase(),
                    power_factor: 1.0,
                });
            }
        }
        // Washing machine / dishwasher: heating phase then motor.
        for p in [0.45, 0.6] {
            if self.rng.chance(p) {
                let start = (self.rng.range(9.0, 22.0) * 3600.0) as u32;
                let phase = self.phase();
                plan.push(Appliance {
                    start_s: start,
                    duration_s: 1200,
                    power_w: cap(2000.0),
                    cycle_s: 0,
                    duty: 1.0,
                    phase,
                    power_factor: 1.0,
                });
                plan.push(Appliance {
                    start_s: start + 1200,
                    duration_s: 3000,
                    power_w: 250.0,
                    cycle_s: 300,
                    duty: 0.6,
                    phase,
                    power_factor: 0.7,
                });
            }
        }
        // Kettle, hair dryer, vacuum: short bursts.
        for _ in 0..self.rng.below(5) {
            plan.push(Appliance {
                start_s: (self.rng.range(6.5, 23.0) * 3600.0) as u32,
                duration_s: self.rng.range(120.0, 900.0) as u32,
                power_w: cap(self.rng.range(800.0, 2200.0)),
                cycle_s: 0,
                duty: 1.0,
                phase: self.phase(),
                power_factor: 0.95,
            });
        }
        // Overload: several big appliances at once, on top of the usual load,
        // usually beyond the subscribed power (on one phase in three-phase,
        // where the check is per phase, §5.3).
        if self.rng.chance(self.cfg.overloads_per_day.min(1.0)) {
            let per_phase = pref_w / self.cfg.phases as f64;
            plan.push(Appliance {
                start_s: (self.rng.range(7.0, 21.0) * 3600.0) as u32,
                duration_s: self.rng.range(60.0, 420.0) as u32,
                power_w: per_phase * self.rng.range(0.9, 1.2),
                cycle_s: 0,
                duty: 1.0,
                phase: self.phase(),
                power_factor: 1.0,
            });
        }
        self.day_appliances = plan;
    }

    /// Occupancy-driven activity 0..1 at a local time.
    fn activity(&self, t: &LocalTime) -> f64 {
        let h = t.second_of_day as f64 / 3600.0;
        let weekend = t.weekday >= 5;
        match h {
            h if h < 6.5 => 0.05,
            h if h < 8.5 => 0.8,
            h if h < 17.5 => {
                if weekend {
                    0.6
                } else {
                    0.15
                }
            }
            h if h < 23.0 => 1.0,
            _ => 0.3,
        }
    }

    /// Advances the model by `dt_s` to `unix_s` and returns the load there.
    /// `off_peak` allows the water heater (the contract's dry contact).
    pub fn step(&mut self, unix_s: i64, dt_s: f64, t: &LocalTime, off_peak: bool) -> Load {
        if t.day_number != self.planned_day {
            self.planned_day = t.day_number;
            self.plan_day(t);
        }
        let dt = dt_s.max(0.0);
        // Weather: slowly varying anomaly (~3 days) and cloud cover (~3 h), AR(1).
        let a = (-dt / (3.0 * 86_400.0)).exp();
        self.weather_anomaly_c =
            self.weather_anomaly_c * a + 3.0 * (1.0 - a * a).sqrt() * self.rng.normal();
        let a = (-dt / 10_800.0).exp();
        self.cloud = (self.cloud * a
            + (1.0 - a) * self.rng.f64()
            + 0.1 * (1.0 - a * a).sqrt() * self.rng.normal())
        .clamp(0.0, 1.0);

        let day_of_year = (t.day_number - crate::clock::days_from_civil(t.year, 1, 1)) as f64;
        let h = t.second_of_day as f64 / 3600.0;
        let seasonal = 11.5 - 7.5 * (TAU * (day_of_year - 20.0) / 365.25).cos();
        let daily = -4.0 * (TAU * (h - 3.0) / 24.0).cos();
        let outdoor_c = seasonal + daily + self.weather_anomaly_c;

        let activity = self.activity(t);
        let sun = sun_height(unix_s, day_of_year);
        let mut p = [0.0f64; 3];
        let mut q = [0.0f64; 3];
        let mut add = |phase: usize, w: f64, pf: f64| {
            p[phase] += w;
            q[phase] += w * (1.0 / (pf * pf) - 1.0).max(0.0).sqrt();
        };
        let spread = |i: usize| if self.cfg.phases == 3 { i } else { 0 };

        // Base load and fridge (compressor: ~40 % duty, 30-minute cycle).
        let fridge_on = (unix_s as f64 / 1800.0 + self.heating_phase[0]).fract() < 0.4;
        let base = self.base_w * (1.0 + 0.05 * self.rng.normal());
        add(spread(0), base * 0.5, 0.9);
        add(spread(1), base * 0.3, 0.9);
        add(spread(2), base * 0.2, 0.9);
        if fridge_on {
            add(spread(1), 110.0, 0.75);
        }
        // Lighting: activity when the sun is low.
        if sun < 0.1 {
            add(
                spread(2),
                60.0 + 250.0 * activity * self.persons as f64 / 2.0,
                0.95,
            );
        }
        // Electric heating: the thermostat's duty follows the heat demand; each
        // phase's heater cycles over 20 minutes with its own offset.
        if self.heater_w > 0.0 {
            // Heat demand by degree-days: nothing above 15 °C outside (the
            // house's own gains cover the rest), full power near −5 °C.
            let threshold_c = if activity > 0.1 { 15.0 } else { 13.0 };
            let duty = ((threshold_c - outdoor_c) / 20.0).clamp(0.0, 1.0);
            let n = self.cfg.phases as usize;
            for i in 0..n {
                let on = (unix_s as f64 / 1200.0 + self.heating_phase[i]).fract() < duty;
                if on {
                    add(i, self.heater_w / n as f64, 1.0);
                }
            }
        }
        // Water heater: showers deplete the tank, it reheats when allowed.
        let draw_wh_per_h = match h {
            h if (6.5..8.5).contains(&h) => 700.0,
            h if (19.0..22.0).contains(&h) => 500.0,
            _ => 20.0,
        } * self.persons as f64
            / 2.0;
        self.tank_deficit_wh = (self.tank_deficit_wh + draw_wh_per_h * dt / 3600.0).min(9000.0);
        if off_peak && self.tank_deficit_wh > 0.0 {
            add(0, self.water_heater_w, 1.0);
            self.tank_deficit_wh -= self.water_heater_w * dt / 3600.0;
        }
        // Planned appliances.
        let sod = t.second_of_day;
        for a in &self.day_appliances {
            if sod >= a.start_s && sod < a.start_s + a.duration_s {
                let on = a.cycle_s == 0
                    || ((sod - a.start_s) % a.cycle_s) as f64 / (a.cycle_s as f64) < a.duty;
                if on {
                    let w = a.power_w;
                    let pf = a.power_factor;
                    p[a.phase] += w;
                    q[a.phase] += w * (1.0 / (pf * pf) - 1.0).max(0.0).sqrt();
                }
            }
        }
        // Solar: clear-sky output grows with the sun's height; clouds cut it.
        let mut production = 0.0;
        if self.cfg.solar_kwp > 0.0 && sun > 0.0 {
            production =
                self.cfg.solar_kwp * 1000.0 * 0.85 * sun.powf(1.2) * (1.0 - 0.8 * self.cloud);
            if self.cfg.phases == 3 && self.cfg.solar_kwp > 6.0 {
                for v in &mut p {
                    *v -= production / 3.0;
                }
            } else {
                p[0] -= production;
            }
        }
        // Voltage: slow drift, noise, drop under load, rise when injecting.
        let mut load = Load {
            production_w: production.round() as i32,
            ..Load::default()
        };
        let a = (-dt / 3600.0).exp();
        for i in 0..3 {
            self.voltage_slow[i] =
                self.voltage_slow[i] * a + 2.5 * (1.0 - a * a).sqrt() * self.rng.normal();
            let current = p[i] / 230.0;
            let u = 231.0 + self.voltage_slow[i] + 0.6 * self.rng.normal() - 0.12 * current;
            load.voltage_v[i] = u.clamp(200.0, 260.0);
            load.active_w[i] = p[i].round() as i32;
            load.reactive_var[i] = q[i].round() as i32;
        }
        if self.cfg.phases == 1 {
            load.active_w[1] = 0;
            load.active_w[2] = 0;
            load.reactive_var[1] = 0;
            load.reactive_var[2] = 0;
        }
        load
    }
}

/// Sine of the sun's elevation at latitude 46.5° N, longitude 2.5° E (France).
pub fn sun_height(unix_s: i64, day_of_year: f64) -> f64 {
    let lat = 46.5f64.to_radians();
    let declination = -23.44f64.to_radians() * (TAU * (day_of_year + 10.0) / 365.0).cos();
    let solar_h = (unix_s.rem_euclid(86_400) as f64 / 3600.0) + 2.5 / 15.0;
    let hour_angle = (solar_h - 12.0) * TAU / 24.0;
    lat.sin() * declination.sin() + lat.cos() * declination.cos() * hour_angle.cos()
}
