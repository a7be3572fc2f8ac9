//! One raw TIC frame → what the server stores and shows: meter address, meter time, numeric
//! values by label, mode-independent aliases, and a decoded description for "latest" views.
//!
//! The series naming rules live here and are documented in `docs/series.md`.

use serde_json::{json, Map, Value};
use tic::historic::{Demain, TariffPeriod};
use tic::labels::LabelInfo;
use tic::stge::{Stge, TempoColour};
use tic::{DataFormat, Decoder, ErrorCounts, Event, Horodate, Mode, Quantity, Season};

/// Most groups kept from one frame (a real frame has at most ~70).
pub const MAX_GROUPS: usize = 256;

/// One checked group, owned (kept only for "latest" and the live stream).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedGroup {
    /// Label as sent.
    pub label: String,
    /// Value as sent.
    pub value: String,
    /// Horodate of the group, wire form.
    pub horodate: Option<Horodate>,
}

/// What one raw frame holds.
#[derive(Debug, Clone, Default)]
pub struct TicFrame {
    /// Mode of the frame's groups.
    pub mode: Option<Mode>,
    /// Ended by ETX.
    pub complete: bool,
    /// Meter address (ADSC or ADCO).
    pub meter: Option<String>,
    /// Standard mode's DATE horodate.
    pub date: Option<Horodate>,
    /// Numeric values of known labels, in frame order.
    pub values: Vec<(&'static LabelInfo, f64)>,
    /// Historic PTEC.
    pub ptec: Option<TariffPeriod>,
    /// Historic DEMAIN.
    pub demain: Option<Demain>,
    /// Standard STGE.
    pub stge: Option<Stge>,
    /// Every valid group (only when asked for).
    pub groups: Vec<OwnedGroup>,
    /// Groups that passed every check.
    pub valid_groups: u32,
    /// Groups rejected, by kind.
    pub errors: ErrorCounts,
}

impl TicFrame {
    /// The meter's time of the frame in Unix ms, when DATE carries a season letter (E/H, also
    /// degraded e/h: the meter's clock is still the best source of the frame's time).
    pub fn meter_time_ms(&self) -> Option<i64> {
        let d = self.date?;
        if d.season == Season::None {
            return None;
        }
        d.unix_s().map(|s| s * 1000)
    }
}

/// Decodes the first frame of `bytes` (one STX..ETX). `keep_groups` also keeps every group
/// owned, for "latest" and the live stream.
pub fn decode(bytes: &[u8], keep_groups: bool) -> TicFrame {
    let mut f = TicFrame::default();
    let mut dec = Decoder::new();
    let mut input = bytes;
    let mut started = false;
    let mut handle = |ev: Event<'_>, f: &mut TicFrame| -> bool {
        match ev {
            Event::FrameStart => {
                if started {
                    return true;
                }
                started = true;
            }
            Event::Group(g) => {
                f.valid_groups += 1;
                if keep_groups && f.groups.len() < MAX_GROUPS {
                    f.groups.push(OwnedGroup {
                        label: g.label.to_string(),
                        value: g.value().to_string(),
                        horodate: g.horodate,
                    });
                }
                let Some(info) = g.info else { return false };
                match info.quantity {
                    Quantity::Address
                        if matches!(info.label, "ADSC" | "ADCO")
                            && f.meter.is_none()
                            && !g.value_bytes().is_empty() =>
                    {
                        f.meter = Some(g.value().to_string());
                    }
                    Quantity::DateTime => f.date = g.horodate,
                    Quantity::TariffPeriod => f.ptec = TariffPeriod::parse(g.value_bytes()),
                    Quantity::Colour => f.demain = Demain::parse(g.value_bytes()),
                    _ => {}
                }
                if info.label == "STGE" {
                    f.stge = Stge::parse(g.value_bytes());
                    if let Some(s) = f.stge {
                        f.values.push((info, f64::from(s.0)));
                    }
                } else if info.format == DataFormat::Digits
                    && !matches!(info.quantity, Quantity::Address | Quantity::Version)
                {
                    if let Some(n) = g.number() {
                        f.values.push((info, n as f64));
                    }
                }
            }
            Event::Rejected(r) => f.errors.add(&r.error),
            Event::FrameEnd(end) => {
                f.mode = end.stats.mode;
                f.complete = end.complete;
                return true;
            }
        }
        false
    };
    while !input.is_empty() {
        let (used, ev) = dec.feed(input);
        input = &input[used..];
        if let Some(ev) = ev {
            if handle(ev, &mut f) {
                return f;
            }
        }
        if used == 0 && ev.is_none() {
            break;
        }
    }
    while let Some(ev) = dec.finish() {
        if handle(ev, &mut f) {
            break;
        }
    }
    f
}

/// The metric name of a label: the label itself, except `+` (not allowed in OpenTSDB names)
/// which becomes `.next` (`NJOURF+1` → `NJOURF.next`).
pub fn metric_name(label: &'static str) -> &'static str {
    match label {
        "NJOURF+1" => "NJOURF.next",
        "PJOURF+1" => "PJOURF.next",
        l => l,
    }
}

/// Historic index number counting in a tariff period (the position of its index in the
/// frame: BASE/HCHC/EJPHN/BBRHCJB = 1, HCHP/EJPHPM/BBRHPJB = 2, BBRHCJW = 3, …).
pub fn historic_index_number(p: TariffPeriod) -> u8 {
    match p {
        TariffPeriod::AllHours | TariffPeriod::OffPeak | TariffPeriod::EjpNormal => 1,
        TariffPeriod::Peak | TariffPeriod::EjpMobilePeak => 2,
        TariffPeriod::TempoOffPeak(TempoColour::Blue) => 1,
        TariffPeriod::TempoPeak(TempoColour::Blue) => 2,
        TariffPeriod::TempoOffPeak(TempoColour::White) => 3,
        TariffPeriod::TempoPeak(TempoColour::White) => 4,
        TariffPeriod::TempoOffPeak(TempoColour::Red) => 5,
        TariffPeriod::TempoPeak(TempoColour::Red) => 6,
    }
}

fn colour_code(c: TempoColour) -> f64 {
    match c {
        TempoColour::Blue => 1.0,
        TempoColour::White => 2.0,
        TempoColour::Red => 3.0,
    }
}

/// Every mode-independent alias, for documentation and `/api/suggest`.
pub const ALIASES: &[(&str, &str)] = &[
    (
        "power.apparent",
        "apparent power drawn, VA: SINSTS (standard), PAPP (historic)",
    ),
    ("power.apparent.l1", "apparent power, phase 1, VA: SINSTS1"),
    ("power.apparent.l2", "apparent power, phase 2, VA: SINSTS2"),
    ("power.apparent.l3", "apparent power, phase 3, VA: SINSTS3"),
    ("power.injected", "apparent power injected, VA: SINSTI"),
    (
        "power.max.today",
        "maximum apparent power today, VA: SMAXSN",
    ),
    (
        "energy.import",
        "total active energy drawn, Wh: EAST (standard), sum of the tariff indexes (historic)",
    ),
    ("energy.export", "total active energy injected, Wh: EAIT"),
    (
        "current.l1",
        "RMS current phase 1, A: IRMS1 (standard), IINST or IINST1 (historic)",
    ),
    ("current.l2", "RMS current phase 2, A: IRMS2, IINST2"),
    ("current.l3", "RMS current phase 3, A: IRMS3, IINST3"),
    ("voltage.l1", "RMS voltage phase 1, V: URMS1"),
    ("voltage.l2", "RMS voltage phase 2, V: URMS2"),
    ("voltage.l3", "RMS voltage phase 3, V: URMS3"),
    (
        "tariff.index",
        "tariff index counting now, 1-10: NTARF (standard), from PTEC (historic)",
    ),
    (
        "tempo.today",
        "Tempo colour today, 1 blue 2 white 3 red: STGE (standard), PTEC (historic)",
    ),
    (
        "tempo.tomorrow",
        "Tempo colour tomorrow, 0 unknown 1 blue 2 white 3 red: STGE, DEMAIN",
    ),
    (
        "clock.drift_s",
        "meter clock minus device (SNTP) or receive time, seconds (standard mode)",
    ),
];

/// Calls `out(metric, value)` for every numeric label and every alias of the frame.
pub fn for_each_point(f: &TicFrame, out: &mut impl FnMut(&'static str, f64)) {
    let mut hist_energy = 0.0;
    let mut hist_has_energy = false;
    for &(info, v) in &f.values {
        out(metric_name(info.label), v);
        let alias = match info.label {
            "SINSTS" | "PAPP" => Some("power.apparent"),
            "SINSTS1" => Some("power.apparent.l1"),
            "SINSTS2" => Some("power.apparent.l2"),
            "SINSTS3" => Some("power.apparent.l3"),
            "SINSTI" => Some("power.injected"),
            "SMAXSN" => Some("power.max.today"),
            "EAST" => Some("energy.import"),
            "EAIT" => Some("energy.export"),
            "IRMS1" | "IINST" | "IINST1" => Some("current.l1"),
            "IRMS2" | "IINST2" => Some("current.l2"),
            "IRMS3" | "IINST3" => Some("current.l3"),
            "URMS1" => Some("voltage.l1"),
            "URMS2" => Some("voltage.l2"),
            "URMS3" => Some("voltage.l3"),
            "NTARF" => Some("tariff.index"),
            _ => None,
        };
        if let Some(a) = alias {
            out(a, v);
        }
        if info.mode == Mode::Historic && info.quantity == Quantity::EnergyIndex {
            hist_energy += v;
            hist_has_energy = true;
        }
    }
    if hist_has_energy {
        out("energy.import", hist_energy);
    }
    if let Some(p) = f.ptec {
        out("tariff.index", f64::from(historic_index_number(p)));
        match p {
            TariffPeriod::TempoOffPeak(c) | TariffPeriod::TempoPeak(c) => {
                out("tempo.today", colour_code(c))
            }
            _ => {}
        }
    }
    if let Some(d) = f.demain {
        out(
            "tempo.tomorrow",
            match d {
                Demain::Unknown => 0.0,
                Demain::Colour(c) => colour_code(c),
            },
        );
    }
    if let Some(s) = f.stge {
        if let Some(c) = s.tempo_today() {
            out("tempo.today", colour_code(c));
        }
        out(
            "tempo.tomorrow",
            s.tempo_tomorrow().map_or(0.0, colour_code),
        );
    }
}

/// A JSON description of everything decoded in a frame: every group, plus STGE flags, Tempo
/// colours, relays, tariff period, messages and the meter address fields.
pub fn describe(f: &TicFrame) -> Value {
    let mut fields = Map::new();
    for g in &f.groups {
        let mut v = Map::new();
        v.insert("value".into(), g.value.clone().into());
        if let Some(info) =
            tic::labels::lookup(f.mode.unwrap_or(Mode::Standard), g.label.as_bytes())
        {
            if info.format == DataFormat::Digits {
                if let Ok(n) = g.value.parse::<u64>() {
                    v.insert("number".into(), n.into());
                }
            }
            if !info.unit.symbol().is_empty() {
                v.insert("unit".into(), info.unit.symbol().into());
            }
        }
        if let Some(h) = g.horodate {
            v.insert("horodate".into(), h.to_string().into());
            if let Some(s) = h.unix_s() {
                v.insert("horodate_unix_s".into(), s.into());
            }
        }
        fields.insert(g.label.clone(), Value::Object(v));
    }
    let mut d = Map::new();
    let text = |l: &str| {
        f.groups
            .iter()
            .find(|g| g.label == l)
            .map(|g| g.value.trim().to_string())
    };
    if let Some(s) = f.stge {
        d.insert(
            "stge".into(),
            json!({
                "raw": format!("{:08X}", s.0),
                "dry_contact_open": s.dry_contact_open(),
                "cut_off": format!("{:?}", s.cut_off()),
                "cover_open": s.cover_open(),
                "overvoltage": s.overvoltage(),
                "reference_power_exceeded": s.reference_power_exceeded(),
                "producer": s.producer(),
                "injecting": s.injecting(),
                "supplier_index": s.supplier_index(),
                "distributor_index": s.distributor_index(),
                "clock_degraded": s.clock_degraded(),
                "standard_mode": s.standard_mode(),
                "euridis": format!("{:?}", s.euridis()),
                "cpl_status": format!("{:?}", s.cpl_status()),
                "cpl_synchronised": s.cpl_synchronised(),
                "tempo_today": s.tempo_today().map(|c| c.as_str()),
                "tempo_tomorrow": s.tempo_tomorrow().map(|c| c.as_str()),
                "mobile_peak_notice": s.mobile_peak_notice(),
                "mobile_peak_in_progress": s.mobile_peak_in_progress(),
            }),
        );
        d.insert(
            "tempo_today".into(),
            json!(s.tempo_today().map(|c| c.as_str())),
        );
        d.insert(
            "tempo_tomorrow".into(),
            json!(s.tempo_tomorrow().map(|c| c.as_str())),
        );
        d.insert("tariff_index".into(), json!(s.supplier_index()));
    }
    if let Some(p) = f.ptec {
        d.insert("tariff_period".into(), json!(format!("{p:?}")));
        d.insert("tariff_index".into(), json!(historic_index_number(p)));
        d.insert("tariff_index_label".into(), json!(p.index_label()));
        if let TariffPeriod::TempoOffPeak(c) | TariffPeriod::TempoPeak(c) = p {
            d.insert("tempo_today".into(), json!(c.as_str()));
        }
    }
    if let Some(dm) = f.demain {
        d.insert(
            "tempo_tomorrow".into(),
            json!(match dm {
                Demain::Unknown => None,
                Demain::Colour(c) => Some(c.as_str()),
            }),
        );
    }
    if let Some(l) = text("LTARF") {
        d.insert("tariff_period".into(), json!(l));
    }
    if let Some(n) = text("NTARF").and_then(|v| tic::address::ntarf(&v)) {
        d.insert("tariff_index".into(), json!(n));
    }
    if let Some(r) = text("RELAIS").and_then(|v| tic::relais::Relais::parse(&v)) {
        let relays: Vec<bool> = (1..=8).map(|n| r.closed(n).unwrap_or(false)).collect();
        d.insert("relays_closed".into(), json!(relays));
    }
    let msgs: Map<String, Value> = ["MSG1", "MSG2"]
        .iter()
        .filter_map(|l| {
            text(l)
                .filter(|m| !m.is_empty())
                .map(|m| (l.to_string(), Value::from(m)))
        })
        .collect();
    if !msgs.is_empty() {
        d.insert("messages".into(), Value::Object(msgs));
    }
    if let Some(a) = f
        .meter
        .as_deref()
        .and_then(tic::address::MeterAddress::parse)
    {
        d.insert(
            "meter_address".into(),
            json!({
                "manufacturer": a.manufacturer,
                "manufacturer_name": a.manufacturer_name(),
                "year": a.year,
                "device_type": a.device_type,
                "device_name": a.device_name(),
                "phases": a.phases(),
            }),
        );
    }
    if let Some(h) = f.date {
        d.insert("meter_clock_degraded".into(), json!(h.degraded));
    }
    json!({ "fields": fields, "decoded": d })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A standard-mode frame for tests.
    pub fn standard_frame(meter: &str, unix_s: i64, sinsts: u32, east: u64) -> Vec<u8> {
        let mut out = vec![tic::STX];
        let h = Horodate::from_unix_s(unix_s, Season::Winter, false);
        let mut w = |label: &str, hd: Option<&Horodate>, value: &str| {
            tic::encode::write_group(Mode::Standard, label, hd, value, &mut |b| {
                out.extend_from_slice(b)
            })
            .unwrap();
        };
        w("ADSC", None, meter);
        w("DATE", Some(&h), "");
        w("EAST", None, &format!("{east:09}"));
        w("EASF01", None, &format!("{east:09}"));
        w("SINSTS", None, &format!("{sinsts:05}"));
        w("NTARF", None, "01");
        w("STGE", None, "003A0001");
        w("RELAIS", None, "001");
        w("MSG1", None, "PAS DE          MESSAGE         ");
        out.push(tic::ETX);
        out
    }

    #[test]
    fn decodes_standard() {
        let raw = standard_frame("041776199277", 1_764_000_000, 1234, 5_000_000);
        let f = decode(&raw, true);
        assert_eq!(f.mode, Some(Mode::Standard));
        assert!(f.complete);
        assert_eq!(f.meter.as_deref(), Some("041776199277"));
        assert_eq!(f.meter_time_ms(), Some(1_764_000_000_000));
        let mut pts = Vec::new();
        for_each_point(&f, &mut |m, v| pts.push((m, v)));
        assert!(pts.contains(&("SINSTS", 1234.0)));
        assert!(pts.contains(&("power.apparent", 1234.0)));
        assert!(pts.contains(&("energy.import", 5_000_000.0)));
        assert!(pts.contains(&("tariff.index", 1.0)));
        let d = describe(&f);
        assert_eq!(d["decoded"]["relays_closed"][0], true);
        assert_eq!(d["fields"]["SINSTS"]["number"], 1234);
    }

    #[test]
    fn decodes_historic_and_garbage() {
        let mut raw = vec![tic::STX];
        for (l, v) in [
            ("ADCO", "031762120162"),
            ("OPTARIF", "HC.."),
            ("HCHC", "001234567"),
            ("HCHP", "000000100"),
            ("PTEC", "HP.."),
            ("PAPP", "00750"),
        ] {
            tic::encode::write_group(Mode::Historic, l, None, v, &mut |b| {
                raw.extend_from_slice(b)
            })
            .unwrap();
        }
        raw.push(tic::ETX);
        let f = decode(&raw, false);
        assert_eq!(f.mode, Some(Mode::Historic));
        let mut pts = Vec::new();
        for_each_point(&f, &mut |m, v| pts.push((m, v)));
        assert!(pts.contains(&("energy.import", 1_234_667.0)));
        assert!(pts.contains(&("tariff.index", 2.0)));
        assert!(pts.contains(&("power.apparent", 750.0)));
        let g = decode(b"\x02\nGARBAGE here\r\x03", false);
        assert!(g.values.is_empty());
        assert!(g.errors.total() > 0);
        let e = decode(b"", false);
        assert!(!e.complete);
    }
}
