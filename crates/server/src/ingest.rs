//! Raw TIC frames → one durable store batch (shared by the uplink, serial ports and import).
//!
//! Each frame is archived raw (so history can be re-decoded) and its decoded values become
//! points of series named after their labels, tagged with the meter address, plus the
//! mode-independent aliases of `frame::for_each_point`. Timestamps follow DESIGN.md's "the
//! meter is the clock": standard mode uses the meter's DATE converted to UTC with its season
//! letter; otherwise the device's SNTP time; otherwise the receive time.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use store::{SeriesId, SeriesKey, Source, Store, WriteBatch, WriteReceipt};
use tic::{GroupError, Mode, Quantity};

use crate::frame::{self, TicFrame};
use crate::live::{IngestReport, Live, LiveFrame};

/// Largest increase of an energy index accepted per second: 100 kW (the largest C5 meter is
/// 36 kVA per phase), plus a fixed 1 kWh of slack for clock jitter.
const MAX_INDEX_WH_PER_S: f64 = 100_000.0 / 3600.0;
const INDEX_SLACK_WH: f64 = 1000.0;
/// Most meters whose index state is tracked for plausibility checks.
const MAX_PLAUSIBILITY_METERS: usize = 100_000;

/// One raw frame to ingest.
#[derive(Debug, Clone, Copy)]
pub struct InFrame<'a> {
    /// Device sequence number (strictly increasing within the batch).
    pub seq: u64,
    /// STX..ETX bytes.
    pub bytes: &'a [u8],
    /// Device wall clock at reception, if synchronised.
    pub device_time_ms: Option<i64>,
    /// Server receive time (or the capture's receive time for imports).
    pub receive_ms: i64,
}

type SeriesCache = HashMap<String, HashMap<&'static str, SeriesId>>;

/// The ingest pipeline.
pub struct Ingest {
    store: Arc<Store>,
    live: Arc<Live>,
    ids: Mutex<SeriesCache>,
    /// Last (ts, value) of each index series, for plausibility checks.
    last_index: Mutex<HashMap<SeriesId, (i64, f64)>>,
    /// MQTT and forwarders (crates/integrations), when configured.
    outputs: std::sync::OnceLock<Arc<integrations::Outputs>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

struct Decoded {
    f: TicFrame,
    meter: String,
    ts_ms: i64,
    time_source: &'static str,
    drift_s: Option<f64>,
}

impl Ingest {
    /// A pipeline writing into `store` and reporting to `live`.
    pub fn new(store: Arc<Store>, live: Arc<Live>) -> Ingest {
        Ingest {
            store,
            live,
            ids: Mutex::default(),
            last_index: Mutex::default(),
            outputs: Default::default(),
        }
    }

    /// Sends every ingested frame to `outputs` from now on (once; later calls are ignored).
    pub fn set_outputs(&self, outputs: Arc<integrations::Outputs>) {
        let _ = self.outputs.set(outputs);
    }

    /// The outputs, if any.
    pub fn outputs(&self) -> Option<&Arc<integrations::Outputs>> {
        self.outputs.get()
    }

    /// The store.
    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// The live state.
    pub fn live(&self) -> &Arc<Live> {
        &self.live
    }

    /// Decodes, stores durably and publishes `frames` from `source`. Blocking (fsync): call
    /// from a blocking thread. Frames at or below the durable high-water mark of the source
    /// are skipped before decoding (they are retries).
    pub fn ingest(
        &self,
        source: Source,
        frames: &[InFrame<'_>],
        now_ms: i64,
    ) -> store::Result<WriteReceipt> {
        let high = self
            .store
            .uplink_high_water(&source.device_id, source.boot_id);
        let fresh: Vec<&InFrame<'_>> = frames
            .iter()
            .filter(|f| high.is_none_or(|h| f.seq > h))
            .collect();
        let mut report = IngestReport {
            duplicates: (frames.len() - fresh.len()) as u64,
            ..Default::default()
        };
        if fresh.is_empty() {
            self.live.record(&source.device_id, now_ms, report);
            return Ok(WriteReceipt {
                frames_duplicate: frames.len(),
                highest_durable_seq: high,
                ..WriteReceipt::default()
            });
        }
        let want_groups = self.live.has_subscribers();
        let last_idx = fresh.len() - 1;
        let mut decoded = Vec::with_capacity(fresh.len());
        let mut last_meter: Option<String> = None;
        for (i, inf) in fresh.iter().enumerate() {
            // Groups are kept for the live stream, and for the last frame ("latest").
            let f = frame::decode(inf.bytes, want_groups || i == last_idx);
            if f.valid_groups == 0 {
                report.undecodable += 1;
            }
            for (k, n) in f.errors.iter() {
                if n > 0 {
                    report.rejected.push((k, u64::from(n)));
                }
            }
            let meter = f
                .meter
                .clone()
                .or_else(|| last_meter.clone())
                .unwrap_or_else(|| source.device_id.clone());
            last_meter = Some(meter.clone());
            let meter_ms = f.meter_time_ms();
            let fallback = inf.device_time_ms.unwrap_or(inf.receive_ms);
            let (ts_ms, time_source) = match (meter_ms, inf.device_time_ms) {
                (Some(m), _) if (0..=store::limits::MAX_TS_MS).contains(&m) => (m, "meter"),
                (_, Some(d)) => (d, "device"),
                _ => (inf.receive_ms, "receive"),
            };
            let drift_s = meter_ms.map(|m| (m - fallback) as f64 / 1000.0);
            if drift_s.is_some() {
                report.drift_s = drift_s;
            }
            decoded.push(Decoded {
                f,
                meter,
                ts_ms,
                time_source,
                drift_s,
            });
        }
        // Resolve every series id first (creating new series is a durable write of its own).
        let mut need: Vec<(String, &'static str)> = Vec::new();
        {
            let ids = lock(&self.ids);
            for d in &decoded {
                let known = ids.get(&d.meter);
                let mut check = |m: &'static str| {
                    if !known.is_some_and(|k| k.contains_key(m))
                        && !need.iter().any(|(a, b)| a == &d.meter && *b == m)
                    {
                        need.push((d.meter.clone(), m));
                    }
                };
                frame::for_each_point(&d.f, &mut |m, _| check(m));
                if d.drift_s.is_some() {
                    check("clock.drift_s");
                }
            }
        }
        if !need.is_empty() {
            let mut keys = Vec::with_capacity(need.len());
            let mut ok = Vec::with_capacity(need.len());
            for (meter, m) in &need {
                // A meter address that is not a valid tag value (it always is for real
                // meters) is stored under nothing rather than failing the whole batch.
                if let Ok(k) = SeriesKey::new(m, [("meter", meter.as_str())]) {
                    keys.push(k);
                    ok.push((meter.clone(), *m));
                }
            }
            let got = self.store.series_ids(&keys)?;
            let mut ids = lock(&self.ids);
            for ((meter, m), id) in ok.into_iter().zip(got) {
                ids.entry(meter).or_default().insert(m, id);
            }
        }

        let mut batch = WriteBatch::from_source(source.clone());
        let ids = lock(&self.ids);
        let mut last_index = lock(&self.last_index);
        for (inf, d) in fresh.iter().zip(&decoded) {
            batch.add_frame(inf.seq, d.ts_ms, inf.bytes)?;
            let Some(mids) = ids.get(&d.meter) else {
                continue;
            };
            let mut err = None;
            let mut implausible = 0;
            let is_index = |m: &str| {
                tic::labels::lookup(d.f.mode.unwrap_or(Mode::Standard), m.as_bytes())
                    .is_some_and(|i| i.quantity == Quantity::EnergyIndex)
                    || m == "energy.import"
            };
            frame::for_each_point(&d.f, &mut |m, v| {
                let Some(&sid) = mids.get(m) else { return };
                if is_index(m) {
                    if let Some(&(lt, lv)) = last_index.get(&sid) {
                        if d.ts_ms > lt {
                            let dt = (d.ts_ms - lt) as f64 / 1000.0;
                            if v < lv || v - lv > MAX_INDEX_WH_PER_S * dt + INDEX_SLACK_WH {
                                implausible += 1;
                                return;
                            }
                        }
                    }
                    if last_index.len() < MAX_PLAUSIBILITY_METERS * 16
                        && last_index.get(&sid).is_none_or(|&(lt, _)| d.ts_ms >= lt)
                    {
                        last_index.insert(sid, (d.ts_ms, v));
                    }
                }
                if let Err(e) = batch.add_point(sid, d.ts_ms, v) {
                    err.get_or_insert(e);
                }
            });
            if let (Some(drift), Some(&sid)) = (d.drift_s, mids.get("clock.drift_s")) {
                batch.add_point(sid, d.ts_ms, drift)?;
            }
            if let Some(e) = err {
                return Err(e);
            }
            report.implausible += implausible;
        }
        drop(last_index);
        drop(ids);
        if let Some(out) = self.outputs.get() {
            // Queued (fsynced) before the store write, hence before the device's ack: a crash
            // in between forwards these frames twice, never zero times (docs/forwarding.md).
            // A full queue is counted and logged by the forwarder; the store still takes all.
            let _ = out.submit(
                decoded
                    .iter()
                    .filter(|d| d.f.valid_groups > 0)
                    .map(reading)
                    .collect(),
            );
        }
        let receipt = self.store.write(batch)?;
        report.frames = receipt.frames_written as u64;
        report.duplicates += receipt.frames_duplicate as u64;
        for (i, (inf, d)) in fresh.iter().zip(decoded).enumerate() {
            if !report.meters.contains(&d.meter) {
                report.meters.push(d.meter.clone());
            }
            if d.f.valid_groups == 0 || (!want_groups && i != last_idx) {
                continue;
            }
            report.live.push(Arc::new(LiveFrame {
                meter: d.meter,
                device: source.device_id.clone(),
                mode: d.f.mode.map(Mode::as_str),
                ts_ms: d.ts_ms,
                time_source: d.time_source,
                receive_ms: inf.receive_ms,
                restored: false,
                frame: frame::describe(&d.f),
            }));
        }
        self.live.record(&source.device_id, now_ms, report);
        Ok(receipt)
    }

    /// Brings back the "latest" view of every meter after a restart: the newest archived raw
    /// frame of each device is decoded again, as it was when it arrived (so the latest reading
    /// shows every decoded field at once, not only once the next frame comes). A frame that
    /// arrived meanwhile is newer and wins. Returns the number of frames restored; a device
    /// whose archive cannot be read is skipped (it is logged, and its next frame fills the gap).
    pub fn restore_latest(&self) -> usize {
        let mut restored = 0;
        for device in self.store.sources() {
            let raw = match self.store.last_raw_frame(&device) {
                Ok(Some(r)) => r,
                Ok(None) => continue,
                Err(e) => {
                    tracing::warn!("latest frame of device {device} not restored: {e}");
                    continue;
                }
            };
            let f = frame::decode(&raw.bytes, true);
            if f.valid_groups == 0 {
                continue;
            }
            let meter = f.meter.clone().unwrap_or_else(|| device.clone());
            // The archive keeps the frame's time, not where it came from: meter time when the
            // frame's own DATE gives the same instant, else the device's or receive time.
            let time_source = if f.meter_time_ms() == Some(raw.ts_ms) {
                "meter"
            } else {
                "device"
            };
            self.live.restore(Arc::new(LiveFrame {
                meter,
                device,
                mode: f.mode.map(Mode::as_str),
                ts_ms: raw.ts_ms,
                time_source,
                receive_ms: raw.ts_ms,
                restored: true,
                frame: frame::describe(&f),
            }));
            restored += 1;
        }
        restored
    }
}

/// What the outputs get from one decoded frame: the same series as the store.
fn reading(d: &Decoded) -> integrations::Reading {
    let mut points = Vec::new();
    frame::for_each_point(&d.f, &mut |m, v| {
        points.push((std::borrow::Cow::Borrowed(m), v))
    });
    if let Some(dr) = d.drift_s {
        points.push((std::borrow::Cow::Borrowed("clock.drift_s"), dr));
    }
    integrations::Reading {
        meter: d.meter.clone(),
        ts_ms: d.ts_ms,
        mode: d.f.mode,
        values: d.f.values.clone(),
        ptec: d.f.ptec,
        demain: d.f.demain,
        stge: d.f.stge,
        tariff_name: d
            .f
            .groups
            .iter()
            .find(|g| g.label == "LTARF")
            .map(|g| g.value.trim().to_string()),
        points,
    }
}

/// Names of the group error kinds (for metrics with zeroes).
pub fn error_kinds() -> &'static [&'static str] {
    &GroupError::KIND_NAMES
}
