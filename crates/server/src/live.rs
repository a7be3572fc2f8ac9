//! In-memory live state: the latest frame of each meter, per-device health, and the broadcast
//! channel feeding the Server-Sent Events stream. Nothing here needs to survive a restart:
//! history is in the store, and each meter's latest frame is decoded again from the raw-frame
//! archive at start (`Ingest::restore_latest`).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, RwLock};

use serde::Serialize;
use serde_json::Value;
use tokio::sync::broadcast;

/// Frames kept in the live channel for slow subscribers before they skip ahead.
pub const LIVE_CHANNEL_FRAMES: usize = 1024;
/// Most meters and devices tracked in memory (a bound against a flood of fake ids).
pub const MAX_TRACKED: usize = 100_000;

/// One decoded frame as the live stream and "latest" show it.
#[derive(Debug, Clone, Serialize)]
pub struct LiveFrame {
    /// Meter address.
    pub meter: String,
    /// Device (uplink id, `serial:…`, `import`).
    pub device: String,
    /// `historic` or `standard`.
    pub mode: Option<&'static str>,
    /// Frame time (meter time, else device time, else receive time), Unix ms.
    pub ts_ms: i64,
    /// Where `ts_ms` came from: `meter`, `device` or `receive`.
    pub time_source: &'static str,
    /// When the server received it, Unix ms (the frame time for a restored frame).
    pub receive_ms: i64,
    /// Decoded again from the raw-frame archive when the server started, not received since.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub restored: bool,
    /// Every group and the decoded status (see `frame::describe`).
    pub frame: Value,
}

fn lock_r<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|e| e.into_inner())
}
fn lock_w<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|e| e.into_inner())
}

/// Health of one device, from its batches and from what the server decoded of its frames.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DeviceHealth {
    /// Device id.
    pub device: String,
    /// Last batch or frame, Unix ms.
    pub last_seen_ms: i64,
    /// Frames stored since the server started.
    pub frames: u64,
    /// Frames skipped as retries of stored frames.
    pub duplicate_frames: u64,
    /// Frames received in the last 60 s.
    pub frames_per_minute: u64,
    /// Groups the server rejected while decoding, by kind.
    pub rejected_groups: BTreeMap<&'static str, u64>,
    /// Index readings refused as implausible (going backwards, impossible jump).
    pub implausible_values: u64,
    /// Frames without any valid group.
    pub undecodable_frames: u64,
    /// Meter clock minus device/receive time of the last standard frame, seconds.
    pub clock_drift_s: Option<f64>,
    /// Meters seen through this device.
    pub meters: Vec<String>,
    /// Device-reported telemetry of the last batch (uplink devices only).
    pub telemetry: Option<Telemetry>,
    #[serde(skip)]
    recent: VecDeque<(i64, u32)>,
}

/// What a device reports about itself with each batch.
#[derive(Debug, Clone, Serialize)]
pub struct Telemetry {
    /// Firmware version.
    pub firmware_version: String,
    /// Current boot.
    pub boot_id: u64,
    /// `unknown`, `historic`, `standard`.
    pub line_mode: &'static str,
    /// WiFi RSSI, dBm.
    pub rssi_dbm: Option<i8>,
    /// Seconds since boot.
    pub uptime_s: u32,
    /// Free heap, bytes.
    pub free_heap_bytes: u32,
    /// Frames waiting on the device.
    pub queued_frames: u32,
    /// Queue fill, 0–1.
    pub buffer_fill: f64,
    /// Cumulative device counters.
    pub counters: BTreeMap<&'static str, u32>,
}

/// What one ingest call reports to the live state.
#[derive(Debug, Default)]
pub struct IngestReport {
    /// Frames stored.
    pub frames: u64,
    /// Frames skipped as retries.
    pub duplicates: u64,
    /// Rejected groups by kind name.
    pub rejected: Vec<(&'static str, u64)>,
    /// Implausible index values refused.
    pub implausible: u64,
    /// Frames with nothing decodable.
    pub undecodable: u64,
    /// Latest drift.
    pub drift_s: Option<f64>,
    /// Meters seen.
    pub meters: Vec<String>,
    /// Frames for the live stream / latest (the newest per meter at least).
    pub live: Vec<Arc<LiveFrame>>,
}

/// Shared live state.
pub struct Live {
    latest: RwLock<HashMap<String, Arc<LiveFrame>>>,
    devices: RwLock<HashMap<String, DeviceHealth>>,
    tx: broadcast::Sender<Arc<LiveFrame>>,
}

impl Default for Live {
    fn default() -> Self {
        Live {
            latest: RwLock::default(),
            devices: RwLock::default(),
            tx: broadcast::channel(LIVE_CHANNEL_FRAMES).0,
        }
    }
}

impl Live {
    /// Whether anyone listens to the live stream (decoding every frame's groups costs).
    pub fn has_subscribers(&self) -> bool {
        self.tx.receiver_count() > 0
    }

    /// A receiver of every live frame.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<LiveFrame>> {
        self.tx.subscribe()
    }

    /// The latest frame of a meter.
    pub fn latest(&self, meter: &str) -> Option<Arc<LiveFrame>> {
        lock_r(&self.latest).get(meter).cloned()
    }

    /// The latest frame of every meter.
    pub fn all_latest(&self) -> Vec<Arc<LiveFrame>> {
        let mut v: Vec<_> = lock_r(&self.latest).values().cloned().collect();
        v.sort_by(|a, b| a.meter.cmp(&b.meter));
        v
    }

    /// Records a batch's telemetry.
    pub fn telemetry(&self, device: &str, now_ms: i64, t: Telemetry) {
        let mut d = lock_w(&self.devices);
        if d.len() >= MAX_TRACKED && !d.contains_key(device) {
            return;
        }
        let h = d.entry(device.to_string()).or_insert_with(|| DeviceHealth {
            device: device.into(),
            ..Default::default()
        });
        h.last_seen_ms = now_ms;
        h.telemetry = Some(t);
    }

    /// Records what an ingest stored.
    pub fn record(&self, device: &str, now_ms: i64, r: IngestReport) {
        {
            let mut d = lock_w(&self.devices);
            if d.len() < MAX_TRACKED || d.contains_key(device) {
                let h = d.entry(device.to_string()).or_insert_with(|| DeviceHealth {
                    device: device.into(),
                    ..Default::default()
                });
                h.last_seen_ms = now_ms;
                h.frames += r.frames;
                h.duplicate_frames += r.duplicates;
                h.implausible_values += r.implausible;
                h.undecodable_frames += r.undecodable;
                for (k, n) in &r.rejected {
                    *h.rejected_groups.entry(k).or_default() += n;
                }
                if r.drift_s.is_some() {
                    h.clock_drift_s = r.drift_s;
                }
                for m in &r.meters {
                    if !h.meters.contains(m) && h.meters.len() < 16 {
                        h.meters.push(m.clone());
                    }
                }
                // Per-second counts over the last minute.
                let sec = now_ms / 1000;
                match h.recent.back_mut() {
                    Some((s, n)) if *s == sec => *n = n.saturating_add(r.frames as u32),
                    _ => h.recent.push_back((sec, r.frames as u32)),
                }
                while h.recent.front().is_some_and(|(s, _)| *s <= sec - 60) {
                    h.recent.pop_front();
                }
            }
        }
        for f in r.live {
            self.keep_latest(f.clone(), true);
            // No receiver is not an error: nobody is watching.
            let _ = self.tx.send(f);
        }
    }

    /// Sets a meter's latest frame from the archive (at start): kept only if no newer frame
    /// arrived meanwhile, and not sent to the live stream (it is not news).
    pub fn restore(&self, f: Arc<LiveFrame>) {
        self.keep_latest(f, false);
    }

    /// Makes `f` its meter's latest frame unless the one there is newer (or as new, when
    /// `replace_equal` is false), within the bound on tracked meters.
    fn keep_latest(&self, f: Arc<LiveFrame>, replace_equal: bool) {
        let mut l = lock_w(&self.latest);
        let newer = l
            .get(&f.meter)
            .is_none_or(|old| old.ts_ms < f.ts_ms || (replace_equal && old.ts_ms == f.ts_ms));
        if newer && (l.len() < MAX_TRACKED || l.contains_key(&f.meter)) {
            l.insert(f.meter.clone(), f);
        }
    }

    /// Health of every device, with the per-minute rate brought up to date.
    pub fn devices(&self, now_ms: i64) -> Vec<DeviceHealth> {
        let d = lock_r(&self.devices);
        let sec = now_ms / 1000;
        let mut v: Vec<DeviceHealth> = d
            .values()
            .map(|h| {
                let mut h = h.clone();
                h.frames_per_minute = h
                    .recent
                    .iter()
                    .filter(|(s, _)| *s > sec - 60)
                    .map(|(_, n)| u64::from(*n))
                    .sum();
                h
            })
            .collect();
        v.sort_by(|a, b| a.device.cmp(&b.device));
        v
    }
}
