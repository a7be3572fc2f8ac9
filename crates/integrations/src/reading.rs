//! What the outputs receive: one decoded, checked frame of one meter.
//!
//! The server builds a [`Reading`] from what it has already decoded and stored (so the
//! forwarders send exactly the series the embedded store holds, aliases included); tools and
//! tests without the server use [`Reading::decode`] on raw frame bytes.

use std::borrow::Cow;

use tic::historic::{Demain, TariffPeriod};
use tic::labels::LabelInfo;
use tic::stge::Stge;
use tic::{DataFormat, Decoder, Event, Mode, Quantity, Season};

/// Series of a reading: (name, value).
pub type Series = Vec<(Cow<'static, str>, f64)>;

/// One checked frame of one meter.
#[derive(Debug, Clone, Default)]
pub struct Reading {
    /// Meter address (ADSC / ADCO), the `meter` tag of every series.
    pub meter: String,
    /// Time of the frame, Unix milliseconds (the meter's clock when it has one).
    pub ts_ms: i64,
    /// TIC mode of the frame.
    pub mode: Option<Mode>,
    /// Numeric values of known labels, from groups that passed every decoder check.
    pub values: Vec<(&'static LabelInfo, f64)>,
    /// Historic PTEC.
    pub ptec: Option<TariffPeriod>,
    /// Historic DEMAIN.
    pub demain: Option<Demain>,
    /// Standard STGE.
    pub stge: Option<Stge>,
    /// Standard LTARF (supplier tariff label), trimmed.
    pub tariff_name: Option<String>,
    /// Series for the forwarders (metric name, value). Empty: derived from `values` with
    /// [`series_name`].
    pub points: Vec<(Cow<'static, str>, f64)>,
}

impl Reading {
    /// Decodes the first frame (STX..ETX) of `bytes`. The time is the meter's DATE when it
    /// carries a season letter, else `fallback_ts_ms`. `None` when no group names a meter.
    pub fn decode(bytes: &[u8], fallback_ts_ms: i64) -> Option<Reading> {
        let mut r = Reading {
            ts_ms: fallback_ts_ms,
            ..Reading::default()
        };
        let mut dec = Decoder::new();
        let mut input = bytes;
        let mut started = false;
        let mut done = false;
        let mut handle = |ev: Event<'_>, r: &mut Reading| -> bool {
            match ev {
                Event::FrameStart => {
                    if started {
                        return true;
                    }
                    started = true;
                }
                Event::Group(g) => {
                    let Some(info) = g.info else { return false };
                    match info.quantity {
                        Quantity::Address
                            if matches!(info.label, "ADSC" | "ADCO") && r.meter.is_empty() =>
                        {
                            r.meter = g.value().to_string();
                        }
                        Quantity::DateTime => {
                            if let Some(h) = g.horodate.filter(|h| h.season != Season::None) {
                                if let Some(s) = h.unix_s() {
                                    r.ts_ms = s * 1000;
                                }
                            }
                        }
                        Quantity::TariffPeriod => r.ptec = TariffPeriod::parse(g.value_bytes()),
                        Quantity::Colour => r.demain = Demain::parse(g.value_bytes()),
                        Quantity::TariffName if info.label == "LTARF" => {
                            r.tariff_name = Some(tic::address::tariff_name(g.value()).to_string())
                        }
                        _ => {}
                    }
                    r.mode = Some(info.mode);
                    if info.label == "STGE" {
                        r.stge = Stge::parse(g.value_bytes());
                    } else if info.format == DataFormat::Digits
                        && !matches!(info.quantity, Quantity::Address | Quantity::Version)
                    {
                        if let Some(n) = g.number() {
                            r.values.push((info, n as f64));
                        }
                    }
                }
                Event::Rejected(_) => {}
                Event::FrameEnd(_) => return true,
            }
            false
        };
        while !input.is_empty() && !done {
            let (used, ev) = dec.feed(input);
            input = &input[used..];
            if let Some(ev) = ev {
                done = handle(ev, &mut r);
            }
            if used == 0 && !done {
                break;
            }
        }
        if !done {
            while let Some(ev) = dec.finish() {
                if handle(ev, &mut r) {
                    break;
                }
            }
        }
        (!r.meter.is_empty()).then_some(r)
    }

    /// The series of this reading: `points` when the caller gave them, else one per value.
    pub fn series(&self) -> Vec<(Cow<'static, str>, f64)> {
        if !self.points.is_empty() {
            return self.points.clone();
        }
        self.values
            .iter()
            .map(|&(i, v)| (Cow::Borrowed(series_name(i.label)), v))
            .collect()
    }

    /// The value of a label, if the frame had it.
    pub fn value(&self, label: &str) -> Option<f64> {
        self.values
            .iter()
            .find(|(i, _)| i.label == label)
            .map(|&(_, v)| v)
    }

    /// Largest apparent power the meter lets through, VA: PCOUP, else PREF (standard, kVA),
    /// else ISOUSC × 230 V (historic, A; × 3 when the frame shows three phases).
    pub fn power_limit_va(&self) -> Option<f64> {
        if let Some(k) = self
            .value("PCOUP")
            .or_else(|| self.value("PREF"))
            .filter(|&k| k > 0.0)
        {
            return Some(k * 1000.0);
        }
        let three = self.value("IINST2").is_some() || self.value("IMAX2").is_some();
        self.value("ISOUSC")
            .filter(|&a| a > 0.0)
            .map(|a| a * 230.0 * if three { 3.0 } else { 1.0 })
    }
}

/// The series name of a label, as the server's store names it: the label itself, except `+`
/// (not allowed in OpenTSDB names) which becomes `.next` (`NJOURF+1` → `NJOURF.next`).
pub fn series_name(label: &'static str) -> &'static str {
    match label {
        "NJOURF+1" => "NJOURF.next",
        "PJOURF+1" => "PJOURF.next",
        l => l,
    }
}

/// Whether a series carries a cumulative energy register (checked for plausibility).
pub fn is_index_series(name: &str) -> bool {
    if matches!(name, "energy.import" | "energy.export") {
        return true;
    }
    [Mode::Standard, Mode::Historic].into_iter().any(|m| {
        tic::labels::lookup(m, name.as_bytes()).is_some_and(|i| {
            matches!(
                i.quantity,
                Quantity::EnergyIndex | Quantity::ReactiveEnergyIndex
            )
        })
    })
}

/// A label or meter address made safe for an MQTT topic level and a Home Assistant object
/// id (`[A-Za-z0-9_]`): `+1` → `_next` and `-1` → `_prev` (NJOURF+1, SMAXSN-1: the TIC's
/// "next day" and "previous day"), any other `+` → `_plus`, anything else outside the safe
/// set → `_`. `+` and `#` are MQTT wildcards and may not appear in a topic one publishes to.
pub fn topic_safe(label: &str) -> String {
    let mut out = String::with_capacity(label.len() + 4);
    let b = label.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let c = b[i] as char;
        let next_is_1_at_end = b.get(i + 1) == Some(&b'1') && i + 2 == b.len();
        match c {
            '+' if next_is_1_at_end => {
                out.push_str("_next");
                i += 2;
                continue;
            }
            '-' if next_is_1_at_end => {
                out.push_str("_prev");
                i += 2;
                continue;
            }
            '+' => out.push_str("_plus"),
            c if c.is_ascii_alphanumeric() || c == '_' => out.push(c),
            _ => out.push('_'),
        }
        i += 1;
    }
    if out.is_empty() {
        out.push('_');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_safe_names() {
        assert_eq!(topic_safe("NJOURF+1"), "NJOURF_next");
        assert_eq!(topic_safe("PJOURF+1"), "PJOURF_next");
        assert_eq!(topic_safe("SMAXSN-1"), "SMAXSN_prev");
        assert_eq!(topic_safe("SMAXSN2-1"), "SMAXSN2_prev");
        assert_eq!(topic_safe("A+B"), "A_plusB");
        assert_eq!(topic_safe("a/b#c d"), "a_b_c_d");
        assert_eq!(topic_safe("EAST"), "EAST");
        assert_eq!(topic_safe(""), "_");
    }

    #[test]
    fn index_series() {
        assert!(is_index_series("EAST"));
        assert!(is_index_series("BBRHPJR"));
        assert!(is_index_series("ERQ1"));
        assert!(is_index_series("energy.import"));
        assert!(!is_index_series("SINSTS"));
        assert!(!is_index_series("power.apparent"));
    }

    #[test]
    fn decodes_simulated_frames() {
        let mut sim = meter_sim_free_frame();
        let r = Reading::decode(&sim.remove(0), 5).expect("a meter");
        assert_eq!(r.meter, "041776199277");
        assert_eq!(r.ts_ms, 1_764_000_000_000);
        assert_eq!(r.value("EAST"), Some(5_000_000.0));
        assert_eq!(r.power_limit_va(), Some(12_000.0));
        assert_eq!(r.tariff_name.as_deref(), Some("HEURE PLEINE"));
        assert!(r.stge.is_some());
        assert!(r
            .series()
            .iter()
            .any(|(n, v)| n == "SINSTS" && *v == 1234.0));
        assert!(Reading::decode(b"\x02garbage\x03", 0).is_none());
    }

    fn meter_sim_free_frame() -> Vec<Vec<u8>> {
        use tic::{Horodate, Mode};
        let mut out = vec![tic::STX];
        let h = Horodate::from_unix_s(1_764_000_000, Season::Winter, false);
        let mut w = |label: &str, hd: Option<&Horodate>, value: &str| {
            tic::encode::write_group(Mode::Standard, label, hd, value, &mut |b| {
                out.extend_from_slice(b)
            })
            .unwrap();
        };
        w("ADSC", None, "041776199277");
        w("DATE", Some(&h), "");
        w("LTARF", None, "  HEURE PLEINE  ");
        w("EAST", None, "005000000");
        w("SINSTS", None, "01234");
        w("PREF", None, "09");
        w("PCOUP", None, "12");
        w("STGE", None, "003A0001");
        out.push(tic::ETX);
        vec![out]
    }
}
