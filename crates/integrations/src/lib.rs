//! # integrations — what `teleinfo serve` sends out
//!
//! - [`mqtt`]: MQTT with Home Assistant discovery (one HA device per meter, energy indexes
//!   ready for the Energy dashboard), availability, reconnection with backoff
//!   (`docs/mqtt.md`).
//! - [`forward`]: forwarders to OpenTSDB / VictoriaMetrics (`/api/put`) and InfluxDB (line
//!   protocol), each with a durable, bounded on-disk [`queue`] (`docs/forwarding.md`).
//! - [`plausibility`]: the last check before anything leaves: an index never goes backwards
//!   and never grows faster than the meter's cut-off power allows.
//!
//! [`Outputs`] is the one object the server holds: it checks each [`Reading`] once and hands
//! it to every configured output.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod forward;
pub mod mqtt;
pub mod plausibility;
pub mod queue;
pub mod reading;

use std::borrow::Cow;
use std::fmt::Write as _;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

pub use forward::{ForwardConfig, ForwardKind, Forwarder};
pub use mqtt::{Mqtt, MqttConfig};
pub use plausibility::{Plausibility, Verdict};
pub use reading::Reading;

/// The outputs part of the server's configuration.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OutputsConfig {
    /// MQTT publisher (`[mqtt]`); `None` = off.
    pub mqtt: Option<MqttConfig>,
    /// Forwarders (`[[forward]]`).
    pub forward: Vec<ForwardConfig>,
}

impl OutputsConfig {
    /// Checks every output's settings.
    pub fn validate(&self) -> Result<(), String> {
        if let Some(m) = &self.mqtt {
            m.validate()?;
        }
        let mut names = std::collections::HashSet::new();
        for f in &self.forward {
            f.validate()?;
            if !names.insert(f.name()) {
                return Err(format!(
                    "two forwarders are named {:?} (same kind and host): give one a `name` in [[forward]]",
                    f.name()
                ));
            }
        }
        Ok(())
    }

    /// Whether nothing is configured.
    pub fn is_empty(&self) -> bool {
        self.mqtt.is_none() && self.forward.is_empty()
    }
}

/// The running outputs.
pub struct Outputs {
    plausibility: Mutex<Plausibility>,
    mqtt: Option<Mqtt>,
    forwarders: Vec<Forwarder>,
}

impl Outputs {
    /// Starts every configured output. Queues live in `data_dir` (`forward-<name>.db`). The
    /// MQTT publisher needs a tokio runtime: call from inside one.
    pub fn start(cfg: &OutputsConfig, data_dir: &Path) -> Result<Outputs, String> {
        cfg.validate()?;
        let mqtt = cfg.mqtt.clone().map(Mqtt::start).transpose()?;
        let forwarders = cfg
            .forward
            .iter()
            .map(|f| Forwarder::start(f.clone(), data_dir))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Outputs {
            plausibility: Mutex::new(Plausibility::default()),
            mqtt,
            forwarders,
        })
    }

    /// The forwarders.
    pub fn forwarders(&self) -> &[Forwarder] {
        &self.forwarders
    }

    /// The MQTT publisher.
    pub fn mqtt(&self) -> Option<&Mqtt> {
        self.mqtt.as_ref()
    }

    /// Plausibility counters.
    pub fn plausibility(&self) -> plausibility::PlausibilityCounts {
        self.plausibility
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .counts
    }

    /// Checks readings (in order) and hands them to every output. Blocking when forwarders
    /// are configured (their queues fsync): call from a blocking thread. Implausible or
    /// unconfirmed index values are removed from what is published and forwarded; everything
    /// else in the reading goes out. Returns the first queue error (the other outputs still
    /// got the readings; the error is counted and logged by the forwarder).
    pub fn submit(&self, readings: Vec<Reading>) -> Result<(), queue::QueueError> {
        if readings.is_empty() {
            return Ok(());
        }
        // (reading, series, publish on MQTT): released first values go to the forwarders
        // only (they are history by now).
        let mut checked: Vec<(Reading, reading::Series, bool)> = Vec::with_capacity(readings.len());
        {
            let mut p = self.plausibility.lock().unwrap_or_else(|p| p.into_inner());
            for mut r in readings {
                if let Some(l) = r.power_limit_va() {
                    p.set_limit(&r.meter, l);
                }
                let mut series = r.series();
                // One verdict per series name and reading: the alias of an index (EAST and
                // energy.import) is checked under its own name.
                let mut held: Vec<Cow<'static, str>> = Vec::new();
                let mut released: Vec<(i64, Cow<'static, str>, f64)> = Vec::new();
                series.retain(|(name, v)| {
                    if !reading::is_index_series(name) {
                        return true;
                    }
                    let (verdict, rel) = p.check_release(&r.meter, name, r.ts_ms, *v);
                    if let Some((t, x)) = rel {
                        released.push((t, name.clone(), x));
                    }
                    let ok = verdict == Verdict::Accept;
                    if !ok {
                        held.push(name.clone());
                    }
                    ok
                });
                // The labels behind held series leave `values` too (MQTT publishes those).
                r.values.retain(|(info, _)| {
                    let n = reading::series_name(info.label);
                    !reading::is_index_series(n) || !held.iter().any(|h| h == n)
                });
                released.sort_by_key(|x| x.0);
                for group in released.chunk_by(|a, b| a.0 == b.0) {
                    let pts: Vec<(Cow<'static, str>, f64)> =
                        group.iter().map(|(_, n, v)| (n.clone(), *v)).collect();
                    let pre = Reading {
                        meter: r.meter.clone(),
                        ts_ms: group[0].0,
                        points: pts.clone(),
                        ..Reading::default()
                    };
                    checked.push((pre, pts, false));
                }
                checked.push((r, series, true));
            }
        }
        let mut first_err = None;
        for f in &self.forwarders {
            let refs: Vec<(&Reading, &reading::Series)> =
                checked.iter().map(|(r, s, _)| (r, s)).collect();
            if let Err(e) = f.submit(&refs) {
                first_err.get_or_insert(e);
            }
        }
        if let Some(m) = &self.mqtt {
            for (r, _, live) in checked {
                if live {
                    m.submit(r);
                }
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    /// Prometheus text exposition of every output's counters.
    pub fn metrics(&self, out: &mut String) {
        let p = self.plausibility();
        let _ = writeln!(out, "# HELP teleinfo_outputs_index_held_total Index values held back before publishing, by reason.");
        let _ = writeln!(out, "# TYPE teleinfo_outputs_index_held_total counter");
        let _ = writeln!(
            out,
            "teleinfo_outputs_index_held_total{{reason=\"implausible\"}} {}",
            p.implausible
        );
        let _ = writeln!(
            out,
            "teleinfo_outputs_index_held_total{{reason=\"unconfirmed\"}} {}",
            p.unconfirmed
        );
        let _ = writeln!(
            out,
            "teleinfo_outputs_index_reanchored_total {}",
            p.reanchored
        );
        if let Some(m) = &self.mqtt {
            let s = m.stats();
            for (name, v) in [
                ("connected", &s.connected),
                ("connections_total", &s.connections),
                ("connection_errors_total", &s.connection_errors),
                ("published_total", &s.published),
                ("dropped_total", &s.dropped),
                ("discovery_published_total", &s.discovery_published),
                ("readings_dropped_total", &s.readings_dropped),
            ] {
                let _ = writeln!(out, "teleinfo_mqtt_{name} {}", v.load(Ordering::Relaxed));
            }
        }
        for f in &self.forwarders {
            let s = f.stats();
            let n = f.name();
            for (name, v) in [
                (
                    "sent_points_total",
                    s.sent_points.load(Ordering::Relaxed) as i64,
                ),
                (
                    "sent_batches_total",
                    s.sent_batches.load(Ordering::Relaxed) as i64,
                ),
                (
                    "failed_attempts_total",
                    s.failed_attempts.load(Ordering::Relaxed) as i64,
                ),
                (
                    "rejected_points_total",
                    s.rejected_points.load(Ordering::Relaxed) as i64,
                ),
                (
                    "dropped_points_total",
                    s.dropped_points.load(Ordering::Relaxed) as i64,
                ),
                ("queued_points", f.queue().points() as i64),
                ("queue_bytes", f.queue().bytes() as i64),
                ("queue_max_bytes", f.queue().max_bytes() as i64),
                ("last_lag_ms", s.last_lag_ms.load(Ordering::Relaxed)),
                ("up", s.up.load(Ordering::Relaxed) as i64),
            ] {
                let _ = writeln!(out, "teleinfo_forward_{name}{{forwarder=\"{n}\"}} {v}");
            }
        }
    }

    /// Stops every output: forwarders finish their request in flight (queues stay on disk),
    /// MQTT says `offline`. Does not wait for the forwarders' requests in flight. Later
    /// `submit`s still queue durably but nothing is sent.
    pub async fn close(&self) {
        for f in &self.forwarders {
            f.stop();
        }
        if let Some(m) = &self.mqtt {
            m.shutdown().await;
        }
    }

    /// [`close`](Self::close), consuming.
    pub async fn shutdown(self) {
        let Outputs {
            mqtt, forwarders, ..
        } = self;
        let joins = tokio::task::spawn_blocking(move || drop(forwarders));
        if let Some(m) = mqtt {
            m.shutdown().await;
        }
        let _ = joins.await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A backend that never answers (nothing listens on the port): the queue fills up to its
    /// bound, then new readings are refused with an error saying what to do, and counted.
    #[test]
    fn full_queue_drops_newest_and_counts() {
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let cfg = OutputsConfig {
            mqtt: None,
            forward: vec![ForwardConfig {
                max_queue_mb: 1,
                ..ForwardConfig::new(ForwardKind::Opentsdb, &format!("http://127.0.0.1:{port}"))
            }],
        };
        let out = Outputs::start(&cfg, dir.path()).unwrap();
        let series: reading::Series = (0..40)
            .map(|i| (Cow::Owned(format!("metric.number.{i}")), i as f64))
            .collect();
        let mut err = None;
        for n in 0..2000 {
            let r = Reading {
                meter: "021861348497".into(),
                ts_ms: n * 1000,
                points: series.clone(),
                ..Reading::default()
            };
            if let Err(e) = out.submit(vec![r]) {
                err = Some(e);
                break;
            }
        }
        let e = err
            .expect("a 1 MiB queue fills before 2000 readings of 40 points")
            .to_string();
        assert!(e.contains("is full") && e.contains("max_queue_mb"), "{e}");
        let f = &out.forwarders()[0];
        assert!(f.queue().bytes() <= 1 << 20);
        assert_eq!(f.stats().dropped_points.load(Ordering::Relaxed), 40);
        let mut m = String::new();
        out.metrics(&mut m);
        let name = f.name().to_string();
        assert!(
            m.contains(&format!(
                "teleinfo_forward_dropped_points_total{{forwarder=\"{name}\"}} 40"
            )),
            "{m}"
        );
        assert!(
            m.contains(&format!("teleinfo_forward_up{{forwarder=\"{name}\"}} 0")),
            "{m}"
        );
        assert!(
            m.contains("teleinfo_outputs_index_held_total{reason=\"implausible\"} 0"),
            "{m}"
        );
    }
}
