//! MQTT publisher with Home Assistant discovery (docs/mqtt.md).
//!
//! Topics (prefix `teleinfo` by default, `<meter>` = ADSC/ADCO):
//! - `teleinfo/status`: `online` / `offline`, retained; `offline` is the last will, so it
//!   flips by itself when the server dies or loses the broker.
//! - `teleinfo/<meter>/availability`: `online` while frames arrive, `offline` after
//!   `availability_timeout_s` without any.
//! - `teleinfo/<meter>/state`: one JSON document with every published value.
//! - `teleinfo/<meter>/<NAME>`: one topic per value (`EAST`, `SINSTS`, `NJOURF_next`,
//!   `tempo_today`, `stge/overvoltage`...), labels made topic-safe by [`topic_safe`].
//! - `homeassistant/<component>/teleinfo_<meter>/<object>/config`: discovery, retained,
//!   sent again after every (re)connection and whenever Home Assistant announces itself
//!   (`homeassistant/status` = `online`), so entities come back after any restart.
//!
//! Only what passed the decoder and the plausibility check reaches this module (the hub in
//! `lib.rs` filters); values are coalesced per meter and published at most once per
//! `publish_interval_s`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rumqttc::{AsyncClient, Event, LastWill, MqttOptions, Packet, QoS};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use tic::historic::{Demain, TariffPeriod};
use tic::stge::{CutOff, TempoColour};
use tic::{Quantity, Unit};
use tokio::sync::mpsc;

use crate::reading::{topic_safe, Reading};

/// MQTT settings (`[mqtt]` in the server's TOML file, or `--mqtt URL`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MqttConfig {
    /// `mqtt://[user:password@]host[:port]` (port 1883 by default).
    pub url: String,
    /// Client id; default `teleinfo-<random>` (two clients with one id kick each other off).
    pub client_id: Option<String>,
    /// User name (overrides the URL's).
    pub username: Option<String>,
    /// Password (overrides the URL's).
    pub password: Option<String>,
    /// First level of every state topic.
    pub topic_prefix: String,
    /// Publish Home Assistant discovery.
    pub discovery: bool,
    /// Home Assistant's discovery prefix.
    pub discovery_prefix: String,
    /// Shortest time between two publications of one meter, seconds.
    pub publish_interval_s: f64,
    /// Retain state topics, so a subscriber (Home Assistant after a restart) gets the last
    /// values at once.
    pub retain_state: bool,
    /// A meter is marked offline after this long without a frame, seconds.
    pub availability_timeout_s: u64,
    /// Most messages waiting for the broker; beyond, state updates are dropped (counted): the
    /// next interval publishes the latest values anyway.
    pub max_pending: usize,
}

impl Default for MqttConfig {
    fn default() -> Self {
        MqttConfig {
            url: "mqtt://127.0.0.1:1883".into(),
            client_id: None,
            username: None,
            password: None,
            topic_prefix: "teleinfo".into(),
            discovery: true,
            discovery_prefix: "homeassistant".into(),
            publish_interval_s: 10.0,
            retain_state: true,
            availability_timeout_s: 300,
            max_pending: 10_000,
        }
    }
}

/// Host, port and credentials of an MQTT URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerAddr {
    /// Host name or address.
    pub host: String,
    /// Port.
    pub port: u16,
    /// User and password from the URL.
    pub login: Option<(String, String)>,
}

impl MqttConfig {
    /// A config with `url` and defaults (`--mqtt URL`).
    pub fn new(url: &str) -> MqttConfig {
        MqttConfig {
            url: url.to_string(),
            ..MqttConfig::default()
        }
    }

    /// Parses `url`; the error says what is accepted.
    pub fn broker(&self) -> Result<BrokerAddr, String> {
        let url = self.url.as_str();
        let rest = url
            .strip_prefix("mqtt://")
            .or_else(|| url.strip_prefix("tcp://"))
            .ok_or_else(|| {
                if url.starts_with("mqtts://") || url.starts_with("ssl://") {
                    format!("--mqtt {url}: TLS is not built into this server; use mqtt:// to a local broker (bridge it to a TLS broker if needed)")
                } else {
                    format!("--mqtt {url}: expected mqtt://[USER:PASSWORD@]HOST[:PORT], e.g. mqtt://127.0.0.1:1883")
                }
            })?
            .trim_end_matches('/');
        let (login, hostport) = match rest.rsplit_once('@') {
            Some((l, h)) => {
                let (u, p) = l.split_once(':').unwrap_or((l, ""));
                (Some((u.to_string(), p.to_string())), h)
            }
            None => (None, rest),
        };
        let (host, port) = match hostport.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(']') || hostport.starts_with('[') => (
                h.trim_start_matches('[').trim_end_matches(']'),
                p.parse::<u16>()
                    .map_err(|_| format!("--mqtt {url}: bad port {p:?}"))?,
            ),
            _ => (hostport, 1883),
        };
        if host.is_empty() || host.contains('/') {
            return Err(format!(
                "--mqtt {url}: expected mqtt://[USER:PASSWORD@]HOST[:PORT]"
            ));
        }
        Ok(BrokerAddr {
            host: host.to_string(),
            port,
            login,
        })
    }

    /// Checks every setting.
    pub fn validate(&self) -> Result<(), String> {
        self.broker()?;
        if !(self.publish_interval_s.is_finite()
            && (0.05..=86_400.0).contains(&self.publish_interval_s))
        {
            return Err(format!(
                "mqtt publish_interval_s {}: use 0.05 to 86400 seconds",
                self.publish_interval_s
            ));
        }
        for (what, p) in [
            ("topic_prefix", &self.topic_prefix),
            ("discovery_prefix", &self.discovery_prefix),
        ] {
            if p.is_empty() || p.contains(['+', '#']) || p.starts_with('/') || p.ends_with('/') {
                return Err(format!(
                    "mqtt {what} {p:?}: non-empty, without + or #, no leading or trailing /"
                ));
            }
        }
        if self.max_pending < 100 {
            return Err("mqtt max_pending: at least 100".into());
        }
        Ok(())
    }
}

/// One Home Assistant entity of a meter.
#[derive(Debug, Clone, PartialEq)]
pub struct Entity {
    /// `sensor` or `binary_sensor`.
    pub component: &'static str,
    /// Topic-safe name: the topic level under the meter and the object id (lower-cased).
    pub object: String,
    /// Display name.
    pub name: String,
    /// `device_class`.
    pub device_class: Option<&'static str>,
    /// `state_class`.
    pub state_class: Option<&'static str>,
    /// `unit_of_measurement`.
    pub unit: Option<&'static str>,
    /// `value_template` (unit conversions).
    pub value_template: Option<&'static str>,
    /// `options` of an enum sensor.
    pub options: Option<&'static [&'static str]>,
    /// `entity_category` (`diagnostic`).
    pub category: Option<&'static str>,
    /// The state payload.
    pub state: String,
}

const COLOURS: &[&str] = &["blue", "white", "red", "unknown"];

fn sensor(object: String, name: String, state: String) -> Entity {
    Entity {
        component: "sensor",
        object,
        name,
        device_class: None,
        state_class: None,
        unit: None,
        value_template: None,
        options: None,
        category: None,
        state,
    }
}

fn number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 9.0e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

fn period_name(p: TariffPeriod) -> &'static str {
    match p {
        TariffPeriod::AllHours => "TH",
        TariffPeriod::OffPeak => "HC",
        TariffPeriod::Peak => "HP",
        TariffPeriod::EjpNormal => "HN",
        TariffPeriod::EjpMobilePeak => "PM",
        TariffPeriod::TempoOffPeak(TempoColour::Blue) => "HCJB",
        TariffPeriod::TempoOffPeak(TempoColour::White) => "HCJW",
        TariffPeriod::TempoOffPeak(TempoColour::Red) => "HCJR",
        TariffPeriod::TempoPeak(TempoColour::Blue) => "HPJB",
        TariffPeriod::TempoPeak(TempoColour::White) => "HPJW",
        TariffPeriod::TempoPeak(TempoColour::Red) => "HPJR",
    }
}

/// The entities of one reading with their states. Pure: what Home Assistant will see.
pub fn entities(r: &Reading) -> Vec<Entity> {
    let mut out = Vec::with_capacity(r.values.len() + 12);
    for &(info, v) in &r.values {
        if matches!(
            info.quantity,
            Quantity::Address | Quantity::Version | Quantity::DateTime | Quantity::BitField
        ) {
            continue;
        }
        let short = info
            .meaning
            .split(" (")
            .next()
            .unwrap_or(info.meaning)
            .trim_end_matches('.');
        let mut e = sensor(
            topic_safe(info.label),
            format!("{} {short}", info.label),
            number(v),
        );
        match (info.unit, info.quantity) {
            (Unit::Wh, _) => {
                (e.device_class, e.state_class, e.unit) =
                    (Some("energy"), Some("total_increasing"), Some("Wh"));
            }
            (Unit::VArh, _) => {
                (e.device_class, e.state_class, e.unit) = (
                    Some("reactive_energy"),
                    Some("total_increasing"),
                    Some("varh"),
                );
            }
            (Unit::VA, _) => {
                (e.device_class, e.state_class, e.unit) =
                    (Some("apparent_power"), Some("measurement"), Some("VA"));
            }
            // PREF/PCOUP: settings in kVA, shown in VA (the unit every HA version accepts
            // for apparent power).
            (Unit::KVA, _) => {
                (e.device_class, e.unit, e.category) =
                    (Some("apparent_power"), Some("VA"), Some("diagnostic"));
                e.value_template = Some("{{ (value | float(0) * 1000) | round(0) }}");
            }
            (Unit::W, _) => {
                (e.device_class, e.state_class, e.unit) =
                    (Some("power"), Some("measurement"), Some("W"))
            }
            (Unit::A, _) => {
                (e.device_class, e.state_class, e.unit) =
                    (Some("current"), Some("measurement"), Some("A"));
            }
            (Unit::V, _) => {
                (e.device_class, e.state_class, e.unit) =
                    (Some("voltage"), Some("measurement"), Some("V"));
            }
            (Unit::Minute, _) => (e.device_class, e.unit) = (Some("duration"), Some("min")),
            (Unit::Decalitre, _) => {
                (e.device_class, e.state_class, e.unit) =
                    (Some("gas"), Some("total_increasing"), Some("m³"));
                e.value_template = Some("{{ value | float(0) / 100 }}");
            }
            (Unit::None, _) => {}
        }
        out.push(e);
    }
    let text = |object: &str, name: &str, state: String| sensor(object.into(), name.into(), state);
    if let Some(p) = r.ptec {
        out.push(text(
            "tariff_period",
            "Tariff period",
            period_name(p).into(),
        ));
    } else if let Some(t) = &r.tariff_name {
        out.push(text("tariff_period", "Tariff period", t.clone()));
    }
    let colour = |object: &str, name: &str, c: Option<TempoColour>| {
        let mut e = text(
            object,
            name,
            c.map_or("unknown", TempoColour::as_str).into(),
        );
        (e.device_class, e.options) = (Some("enum"), Some(COLOURS));
        e
    };
    let today = match r.ptec {
        Some(TariffPeriod::TempoOffPeak(c) | TariffPeriod::TempoPeak(c)) => Some(c),
        _ => r.stge.and_then(|s| s.tempo_today()),
    };
    // Tempo entities only for Tempo contracts (today's colour known), else they would sit at
    // "unknown" forever on every other contract.
    if today.is_some() {
        out.push(colour("tempo_today", "Tempo colour today", today));
        let tomorrow = match r.demain {
            Some(Demain::Colour(c)) => Some(c),
            Some(Demain::Unknown) => None,
            None => r.stge.and_then(|s| s.tempo_tomorrow()),
        };
        out.push(colour("tempo_tomorrow", "Tempo colour tomorrow", tomorrow));
    }
    if let Some(s) = r.stge {
        let flags: [(&str, &str, Option<&'static str>, bool, bool); 8] = [
            (
                "cut_off",
                "Supply cut off",
                Some("problem"),
                s.cut_off() != CutOff::Closed,
                false,
            ),
            (
                "cover_open",
                "Terminal cover open",
                Some("tamper"),
                s.cover_open(),
                false,
            ),
            (
                "overvoltage",
                "Overvoltage",
                Some("problem"),
                s.overvoltage(),
                false,
            ),
            (
                "reference_power_exceeded",
                "Reference power exceeded",
                Some("problem"),
                s.reference_power_exceeded(),
                false,
            ),
            (
                "injecting",
                "Injecting",
                Some("power"),
                s.injecting(),
                false,
            ),
            (
                "dry_contact_open",
                "Dry contact open",
                Some("opening"),
                s.dry_contact_open(),
                false,
            ),
            (
                "clock_degraded",
                "Meter clock degraded",
                Some("problem"),
                s.clock_degraded(),
                true,
            ),
            (
                "mobile_peak",
                "Mobile peak in progress",
                None,
                s.mobile_peak_in_progress().is_some(),
                false,
            ),
        ];
        for (object, name, class, on, diag) in flags {
            let mut e = sensor(
                format!("stge_{object}"),
                name.into(),
                if on { "ON" } else { "OFF" }.into(),
            );
            e.component = "binary_sensor";
            e.device_class = class;
            e.category = diag.then_some("diagnostic");
            out.push(e);
        }
    }
    out
}

/// Counters of the publisher (exported on `/metrics`).
#[derive(Debug, Default)]
pub struct MqttStats {
    /// 1 while connected.
    pub connected: AtomicU64,
    /// Successful (re)connections.
    pub connections: AtomicU64,
    /// Connection errors (each followed by a backoff and a new attempt).
    pub connection_errors: AtomicU64,
    /// Messages handed to the client.
    pub published: AtomicU64,
    /// Messages dropped because too many were waiting for the broker.
    pub dropped: AtomicU64,
    /// Discovery configs published.
    pub discovery_published: AtomicU64,
    /// Readings dropped because the publisher's inbox was full.
    pub readings_dropped: AtomicU64,
}

/// Handle of the running publisher.
pub struct Mqtt {
    tx: mpsc::Sender<Reading>,
    stats: Arc<MqttStats>,
    stop: tokio::sync::watch::Sender<bool>,
    tasks: std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

enum Ev {
    Connected,
    Disconnected,
    HaOnline,
}

struct MeterOut {
    entities: BTreeMap<String, Entity>,
    doc: Map<String, Value>,
    dirty: bool,
    announced: HashSet<String>,
    last_seen: Instant,
    online: bool,
    device: Value,
}

impl Mqtt {
    /// Starts the publisher on the current tokio runtime. Fails only on bad settings; an
    /// unreachable broker is retried forever with backoff (1 s to 30 s).
    pub fn start(cfg: MqttConfig) -> Result<Mqtt, String> {
        cfg.validate()?;
        let b = cfg.broker()?;
        let client_id = cfg.client_id.clone().unwrap_or_else(|| {
            let n = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos());
            format!("teleinfo-{:x}", (n as u64) ^ u64::from(std::process::id()))
        });
        let mut opts = MqttOptions::new(client_id, b.host.clone(), b.port);
        opts.set_keep_alive(Duration::from_secs(30));
        opts.set_clean_session(true);
        // Discovery configs are ~1 KiB; nothing we publish comes near 256 KiB.
        opts.set_max_packet_size(256 << 10, 256 << 10);
        let status = format!("{}/status", cfg.topic_prefix);
        opts.set_last_will(LastWill::new(&status, "offline", QoS::AtLeastOnce, true));
        let login = match (&cfg.username, &cfg.password) {
            (Some(u), p) => Some((u.clone(), p.clone().unwrap_or_default())),
            (None, _) => b.login.clone(),
        };
        if let Some((u, p)) = login {
            opts.set_credentials(u, p);
        }
        let (client, mut eventloop) = AsyncClient::new(opts, cfg.max_pending);
        let stats = Arc::new(MqttStats::default());
        let (tx, rx) = mpsc::channel::<Reading>(4096);
        let (ev_tx, ev_rx) = mpsc::channel::<Ev>(64);
        let (stop, stop_rx) = tokio::sync::watch::channel(false);
        let ha_status = format!("{}/status", cfg.discovery_prefix);
        let st = stats.clone();
        let mut stop1 = stop_rx.clone();
        let broker = format!("{}:{}", b.host, b.port);
        let net = tokio::spawn(async move {
            let mut backoff = Duration::from_secs(1);
            let mut last_err = String::new();
            loop {
                let ev = tokio::select! {
                    _ = stop1.changed() => break,
                    ev = eventloop.poll() => ev,
                };
                match ev {
                    Ok(Event::Incoming(Packet::ConnAck(_))) => {
                        backoff = Duration::from_secs(1);
                        st.connected.store(1, Ordering::Relaxed);
                        st.connections.fetch_add(1, Ordering::Relaxed);
                        tracing::info!("mqtt: connected to {broker}");
                        last_err.clear();
                        let _ = ev_tx.send(Ev::Connected).await;
                    }
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        if p.topic == ha_status && p.payload.as_ref() == b"online" {
                            let _ = ev_tx.send(Ev::HaOnline).await;
                        }
                    }
                    Ok(_) => {}
                    Err(e) => {
                        if st.connected.swap(0, Ordering::Relaxed) == 1 {
                            let _ = ev_tx.send(Ev::Disconnected).await;
                        }
                        st.connection_errors.fetch_add(1, Ordering::Relaxed);
                        let msg = e.to_string();
                        if msg != last_err {
                            tracing::warn!(
                                "mqtt: broker {broker}: {msg}; retrying (backoff up to 30 s), states are kept and sent on reconnection"
                            );
                            last_err = msg;
                        }
                        tokio::select! {
                            _ = stop1.changed() => break,
                            _ = tokio::time::sleep(backoff) => {}
                        }
                        backoff = (backoff * 2).min(Duration::from_secs(30));
                    }
                }
            }
        });
        let publisher = Publisher {
            cfg,
            client,
            stats: stats.clone(),
            meters: HashMap::new(),
            connected: false,
            status,
        };
        let main = tokio::spawn(publisher.run(rx, ev_rx, stop_rx));
        Ok(Mqtt {
            tx,
            stats,
            stop,
            tasks: std::sync::Mutex::new(vec![net, main]),
        })
    }

    /// Hands a reading over (never blocks: when the inbox is full the reading is dropped and
    /// counted; the next one carries the same registers).
    pub fn submit(&self, r: Reading) {
        if self.tx.try_send(r).is_err() {
            self.stats.readings_dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Counters.
    pub fn stats(&self) -> &Arc<MqttStats> {
        &self.stats
    }

    /// Publishes `offline`, disconnects and stops the tasks (bounded: 2 s).
    pub async fn shutdown(&self) {
        let _ = self.stop.send(true);
        let tasks = std::mem::take(&mut *self.tasks.lock().unwrap_or_else(|p| p.into_inner()));
        for t in tasks {
            let _ = tokio::time::timeout(Duration::from_secs(2), t).await;
        }
    }
}

struct Publisher {
    cfg: MqttConfig,
    client: AsyncClient,
    stats: Arc<MqttStats>,
    meters: HashMap<String, MeterOut>,
    connected: bool,
    status: String,
}

fn device_info(meter: &str) -> Value {
    let addr = tic::address::MeterAddress::parse(meter);
    json!({
        "identifiers": [format!("teleinfo_{}", topic_safe(meter))],
        "name": format!("Linky {meter}"),
        "manufacturer": addr.and_then(|a| a.manufacturer_name()).unwrap_or("Enedis"),
        "model": addr.and_then(|a| a.device_name()).unwrap_or("Linky"),
        "serial_number": meter,
    })
}

impl Publisher {
    fn publish(&self, topic: String, qos: QoS, retain: bool, payload: Vec<u8>) -> bool {
        match self.client.try_publish(topic, qos, retain, payload) {
            Ok(()) => {
                self.stats.published.fetch_add(1, Ordering::Relaxed);
                true
            }
            Err(_) => {
                self.stats.dropped.fetch_add(1, Ordering::Relaxed);
                false
            }
        }
    }

    fn meter_topic(&self, meter: &str) -> String {
        format!("{}/{}", self.cfg.topic_prefix, topic_safe(meter))
    }

    fn discovery(&self, meter: &str, m: &MeterOut, e: &Entity) -> (String, Vec<u8>) {
        let node = format!("teleinfo_{}", topic_safe(meter));
        let obj = e.object.to_ascii_lowercase();
        let base = self.meter_topic(meter);
        let state_topic = if e.component == "binary_sensor" {
            format!("{base}/stge/{}", e.object.trim_start_matches("stge_"))
        } else {
            format!("{base}/{}", e.object)
        };
        let mut c = json!({
            "name": e.name,
            "has_entity_name": true,
            "unique_id": format!("{node}_{obj}"),
            "state_topic": state_topic,
            "availability": [
                {"topic": self.status},
                {"topic": format!("{base}/availability")},
            ],
            "availability_mode": "all",
            "device": m.device,
            "origin": {"name": "teleinfo", "sw_version": env!("CARGO_PKG_VERSION")},
        });
        let o = c.as_object_mut().expect("object");
        let mut put = |k: &str, v: Option<Value>| {
            if let Some(v) = v {
                o.insert(k.into(), v);
            }
        };
        put("device_class", e.device_class.map(Value::from));
        put("state_class", e.state_class.map(Value::from));
        put("unit_of_measurement", e.unit.map(Value::from));
        put("value_template", e.value_template.map(Value::from));
        put("options", e.options.map(|o| json!(o)));
        put("entity_category", e.category.map(Value::from));
        if e.component == "binary_sensor" {
            put("payload_on", Some("ON".into()));
            put("payload_off", Some("OFF".into()));
        }
        let topic = format!(
            "{}/{}/{node}/{obj}/config",
            self.cfg.discovery_prefix, e.component
        );
        (topic, c.to_string().into_bytes())
    }

    fn on_reading(&mut self, r: Reading) {
        let ents = entities(&r);
        let m = self
            .meters
            .entry(r.meter.clone())
            .or_insert_with(|| MeterOut {
                entities: BTreeMap::new(),
                doc: Map::new(),
                dirty: true,
                announced: HashSet::new(),
                last_seen: Instant::now(),
                online: false,
                device: device_info(&r.meter),
            });
        m.doc.insert("ts_ms".into(), r.ts_ms.into());
        for e in ents {
            let v = match e.state.parse::<f64>() {
                Ok(n) if e.component == "sensor" => json!(n),
                _ if e.component == "binary_sensor" => json!(e.state == "ON"),
                _ => json!(e.state),
            };
            m.doc.insert(e.object.clone(), v);
            m.entities.insert(e.object.clone(), e);
        }
        m.dirty = true;
        m.last_seen = Instant::now();
    }

    fn flush(&mut self) {
        if !self.connected {
            return;
        }
        let timeout = Duration::from_secs(self.cfg.availability_timeout_s);
        let meters: Vec<String> = self.meters.keys().cloned().collect();
        for meter in meters {
            let Some(m) = self.meters.get(&meter) else {
                continue;
            };
            let base = self.meter_topic(&meter);
            let fresh = m.last_seen.elapsed() < timeout;
            let mut online = m.online;
            if fresh != m.online
                && self.publish(
                    format!("{base}/availability"),
                    QoS::AtLeastOnce,
                    true,
                    if fresh { "online" } else { "offline" }.into(),
                )
            {
                online = fresh;
            }
            let mut announced = Vec::new();
            if m.dirty && self.cfg.discovery {
                for e in m.entities.values() {
                    if !m.announced.contains(&e.object) {
                        let (t, p) = self.discovery(&meter, m, e);
                        if self.publish(t, QoS::AtLeastOnce, true, p) {
                            self.stats
                                .discovery_published
                                .fetch_add(1, Ordering::Relaxed);
                            announced.push(e.object.clone());
                        }
                    }
                }
            }
            let mut sent = true;
            if m.dirty {
                let retain = self.cfg.retain_state;
                for e in m.entities.values() {
                    let t = if e.component == "binary_sensor" {
                        format!("{base}/stge/{}", e.object.trim_start_matches("stge_"))
                    } else {
                        format!("{base}/{}", e.object)
                    };
                    sent &= self.publish(t, QoS::AtMostOnce, retain, e.state.clone().into_bytes());
                }
                let doc = Value::Object(m.doc.clone()).to_string();
                sent &= self.publish(
                    format!("{base}/state"),
                    QoS::AtMostOnce,
                    retain,
                    doc.into_bytes(),
                );
            }
            let m = self.meters.get_mut(&meter).expect("present");
            m.online = online;
            m.announced.extend(announced);
            if sent {
                m.dirty = false;
            }
        }
    }

    fn on_connected(&mut self) {
        self.connected = true;
        self.publish(
            self.status.clone(),
            QoS::AtLeastOnce,
            true,
            b"online".to_vec(),
        );
        if self.cfg.discovery {
            let t = format!("{}/status", self.cfg.discovery_prefix);
            if self.client.try_subscribe(t, QoS::AtLeastOnce).is_err() {
                self.stats.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.reannounce();
    }

    /// Everything again: a broker without persistence lost the retained messages, and Home
    /// Assistant after its restart needs discovery before states.
    fn reannounce(&mut self) {
        for m in self.meters.values_mut() {
            m.announced.clear();
            m.online = false;
            m.dirty = true;
        }
        self.flush();
    }

    async fn run(
        mut self,
        mut rx: mpsc::Receiver<Reading>,
        mut ev: mpsc::Receiver<Ev>,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) {
        let mut tick = tokio::time::interval(Duration::from_secs_f64(self.cfg.publish_interval_s));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stop.changed() => break,
                r = rx.recv() => match r {
                    Some(r) => self.on_reading(r),
                    None => break,
                },
                e = ev.recv() => match e {
                    Some(Ev::Connected) => self.on_connected(),
                    Some(Ev::Disconnected) => self.connected = false,
                    Some(Ev::HaOnline) => self.reannounce(),
                    None => break,
                },
                _ = tick.tick() => self.flush(),
            }
        }
        if self.connected {
            // A clean stop: say so now rather than when the broker notices the lost socket.
            let _ = self.client.try_publish(
                self.status.clone(),
                QoS::AtLeastOnce,
                true,
                b"offline".to_vec(),
            );
            let _ = self.client.try_disconnect();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let b = MqttConfig::new("mqtt://u:p@broker.lan:1884")
            .broker()
            .unwrap();
        assert_eq!(
            b,
            BrokerAddr {
                host: "broker.lan".into(),
                port: 1884,
                login: Some(("u".into(), "p".into()))
            }
        );
        assert_eq!(
            MqttConfig::new("mqtt://127.0.0.1").broker().unwrap().port,
            1883
        );
        assert!(MqttConfig::new("mqtts://h")
            .broker()
            .unwrap_err()
            .contains("TLS"));
        assert!(MqttConfig::new("h:1883")
            .broker()
            .unwrap_err()
            .contains("mqtt://"));
        assert!(MqttConfig::new("mqtt://h:x")
            .broker()
            .unwrap_err()
            .contains("port"));
        let bad = MqttConfig {
            topic_prefix: "a/+".into(),
            ..MqttConfig::default()
        };
        assert!(bad.validate().is_err());
        assert!(MqttConfig::default().validate().is_ok());
    }

    #[test]
    fn entity_classes() {
        use tic::labels::lookup;
        use tic::Mode::{Historic, Standard};
        let l = |m, s: &str| lookup(m, s.as_bytes()).unwrap();
        let r = Reading {
            meter: "021861348497".into(),
            values: vec![
                (l(Standard, "EAST"), 1234.0),
                (l(Standard, "SINSTS"), 870.0),
                (l(Standard, "PCOUP"), 9.0),
                (l(Standard, "ERQ1"), 5.0),
                (l(Standard, "NJOURF+1"), 2.0),
                (l(Standard, "SMAXSN-1"), 3000.0),
                (l(Standard, "URMS1"), 231.0),
            ],
            stge: tic::stge::Stge::parse("463A0800"),
            tariff_name: Some("BLEU HC".into()),
            ..Reading::default()
        };
        let e = entities(&r);
        let get = |o: &str| {
            e.iter()
                .find(|x| x.object == o)
                .unwrap_or_else(|| panic!("{o} in {e:#?}"))
        };
        let east = get("EAST");
        assert_eq!(
            (east.device_class, east.state_class, east.unit),
            (Some("energy"), Some("total_increasing"), Some("Wh"))
        );
        assert_eq!(east.state, "1234");
        let s = get("SINSTS");
        assert_eq!(
            (s.device_class, s.state_class, s.unit),
            (Some("apparent_power"), Some("measurement"), Some("VA"))
        );
        assert_eq!(get("PCOUP").unit, Some("VA"));
        assert_eq!(get("ERQ1").unit, Some("varh"));
        assert_eq!(get("NJOURF_next").state, "2");
        assert_eq!(get("SMAXSN_prev").device_class, Some("apparent_power"));
        assert_eq!(get("URMS1").device_class, Some("voltage"));
        assert_eq!(get("tariff_period").state, "BLEU HC");
        assert_eq!(get("tempo_today").state, "white");
        assert_eq!(get("tempo_tomorrow").state, "blue");
        assert_eq!(get("tempo_today").options, Some(COLOURS));
        assert_eq!(get("stge_mobile_peak").state, "ON");
        assert_eq!(get("stge_cut_off").state, "OFF");
        assert_eq!(get("stge_cut_off").component, "binary_sensor");
        for x in &e {
            assert!(
                x.object
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_'),
                "{}",
                x.object
            );
        }
        // Historic: PTEC gives the period and today's colour; PAPP is apparent power.
        let h = Reading {
            meter: "031762120162".into(),
            values: vec![
                (l(Historic, "BBRHPJR"), 10.0),
                (l(Historic, "PAPP"), 750.0),
                (l(Historic, "PMAX"), 5000.0),
            ],
            ptec: TariffPeriod::parse("HPJR"),
            demain: Demain::parse("----"),
            ..Reading::default()
        };
        let e = entities(&h);
        let get = |o: &str| e.iter().find(|x| x.object == o).unwrap();
        assert_eq!(get("tariff_period").state, "HPJR");
        assert_eq!(get("tempo_today").state, "red");
        assert_eq!(get("tempo_tomorrow").state, "unknown");
        assert_eq!(get("PMAX").device_class, Some("power"));
        assert_eq!(get("PMAX").unit, Some("W"));
        // No Tempo entities on other contracts.
        let base = Reading {
            meter: "x".into(),
            ptec: TariffPeriod::parse("TH.."),
            ..Reading::default()
        };
        assert!(!entities(&base)
            .iter()
            .any(|x| x.object.starts_with("tempo")));
    }
}
