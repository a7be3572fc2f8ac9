//! Server configuration: a TOML file, overridden by environment variables, overridden by flags
//! (the CLI applies the last two layers; see `docs/server.md`).
//!
//! Every limit the server enforces lives in [`Limits`], with its default, so that an operator
//! can see and change each one in one place.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use integrations::{ForwardConfig, ForwardKind, MqttConfig};

/// Default HTTP listen address: loopback only, so a fresh install exposes nothing to the
/// network until the operator chooses to (`--listen 0.0.0.0:8080`).
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// Default OpenTSDB telnet address when `--opentsdb-telnet` is given without a port.
pub const DEFAULT_TELNET_PORT: u16 = 4242;

/// The whole configuration.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Directory holding `store.db` and `devices.json`.
    pub data_dir: PathBuf,
    /// HTTP listen address (JSON API, uplink, OpenTSDB HTTP API, metrics).
    pub listen: String,
    /// OpenTSDB telnet `put` listener; `None` = disabled.
    pub opentsdb_telnet: Option<String>,
    /// Networks allowed to write through OpenTSDB `put` without a token (telnet has no
    /// authentication at all). CIDR (`192.168.1.0/24`) or single addresses. Loopback only by
    /// default.
    pub put_allow: Vec<String>,
    /// Token allowing `/api/put` from any address (`Authorization: Bearer …`); `None` = only
    /// the allow-list and device tokens grant writes.
    pub write_token: Option<String>,
    /// Token required for every read endpoint (`Authorization: Bearer …`, or Basic auth with
    /// it as password, which Grafana's datasource settings can send); `None` = reads are open.
    pub read_token: Option<String>,
    /// Time zone of the meters' local days for energy per day/week/month.
    pub time_zone: String,
    /// Local serial ports, `DEVICE[:auto|historic|standard]`.
    pub serial: Vec<String>,
    /// Limits.
    pub limits: Limits,
    /// Energy prices for the cost figures.
    pub pricing: Pricing,
    /// MQTT with Home Assistant discovery (`[mqtt]`, docs/mqtt.md); `None` = off.
    pub mqtt: Option<MqttConfig>,
    /// Forwarders to OpenTSDB / VictoriaMetrics / InfluxDB (`[[forward]]`,
    /// docs/forwarding.md).
    pub forward: Vec<ForwardConfig>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: default_data_dir(),
            listen: DEFAULT_LISTEN.to_string(),
            opentsdb_telnet: None,
            put_allow: vec!["127.0.0.0/8".into(), "::1/128".into()],
            write_token: None,
            read_token: None,
            time_zone: "Europe/Paris".into(),
            serial: Vec::new(),
            limits: Limits::default(),
            pricing: Pricing::default(),
            mqtt: None,
            forward: Vec::new(),
        }
    }
}

/// Every bound the server enforces.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Largest request body on the wire (after which 413), bytes. VictoriaMetrics' default.
    pub max_body_bytes: usize,
    /// Largest body after gzip/deflate decoding, bytes: a compression bomb stops here.
    pub max_decoded_body_bytes: usize,
    /// Most points in one `/api/put` request.
    pub max_put_points: usize,
    /// Longest range of a query, days (100 years covers every real meter).
    pub max_query_days: i64,
    /// Most raw points one query returns (ask for buckets beyond that).
    pub max_query_points: usize,
    /// Most series one OpenTSDB query may touch.
    pub max_query_series: usize,
    /// Most buckets one query may return.
    pub max_buckets: usize,
    /// Longest telnet line, bytes.
    pub max_telnet_line: usize,
    /// Most concurrent telnet connections.
    pub max_telnet_connections: usize,
    /// Most concurrent live (SSE) streams.
    pub max_live_streams: usize,
    /// Most raw frames one frames/export request returns.
    pub max_frames_per_request: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: 32 << 20,
            max_decoded_body_bytes: 128 << 20,
            max_put_points: 1_000_000,
            max_query_days: 36_600,
            max_query_points: 2_000_000,
            max_query_series: 10_000,
            max_buckets: 100_000,
            max_telnet_line: 4096,
            max_telnet_connections: 1024,
            max_live_streams: 256,
            max_frames_per_request: 200_000,
        }
    }
}

/// Prices for cost figures: per kWh for each index series (`EASF01`, `HCHC`, …) and a fixed
/// subscription per day.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Pricing {
    /// Currency label shown in answers.
    pub currency: String,
    /// Subscription (abonnement) per local day.
    pub subscription_per_day: f64,
    /// Price per kWh by index metric name (`EASF01 = 0.1952`).
    pub per_kwh: BTreeMap<String, f64>,
}

/// A per-user data directory (XDG data dir on Linux), falling back to `./teleinfo-data`.
pub fn default_data_dir() -> PathBuf {
    directories::ProjectDirs::from("", "", "teleinfo")
        .map(|d| d.data_dir().to_path_buf())
        .unwrap_or_else(|| PathBuf::from("teleinfo-data"))
}

/// Why a configuration is not usable.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML for this schema.
    #[error("config file {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong (line and column included by the TOML parser).
        message: String,
    },
    /// A value is invalid.
    #[error("invalid setting {key}: {message}")]
    Invalid {
        /// The setting.
        key: &'static str,
        /// What is wrong and what to write instead.
        message: String,
    },
}

impl Config {
    /// Reads a TOML file; missing settings keep their defaults.
    pub fn from_file(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: e.to_string(),
        })
    }

    /// Checks every setting that can be checked without binding sockets.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.listen_addr()?;
        self.telnet_addr()?;
        self.allow_list()?;
        store::time_zone(&self.time_zone).map_err(|e| ConfigError::Invalid {
            key: "time_zone",
            message: e.to_string(),
        })?;
        self.outputs()
            .validate()
            .map_err(|message| ConfigError::Invalid {
                key: "mqtt / forward",
                message,
            })?;
        for (k, v) in &self.pricing.per_kwh {
            if !v.is_finite() || *v < 0.0 {
                return Err(ConfigError::Invalid {
                    key: "pricing.per_kwh",
                    message: format!("price of {k} is {v}; use a non-negative number"),
                });
            }
        }
        Ok(())
    }

    /// The outputs (MQTT, forwarders) part of the configuration.
    pub fn outputs(&self) -> integrations::OutputsConfig {
        integrations::OutputsConfig {
            mqtt: self.mqtt.clone(),
            forward: self.forward.clone(),
        }
    }

    /// The HTTP address.
    pub fn listen_addr(&self) -> Result<SocketAddr, ConfigError> {
        self.listen.parse().map_err(|e| ConfigError::Invalid {
            key: "listen",
            message: format!(
                "{:?}: {e}; write IP:PORT such as 127.0.0.1:8080",
                self.listen
            ),
        })
    }

    /// The telnet address, if enabled; a bare host gets port 4242, a bare port the loopback.
    pub fn telnet_addr(&self) -> Result<Option<SocketAddr>, ConfigError> {
        let Some(t) = self.opentsdb_telnet.as_deref().filter(|s| !s.is_empty()) else {
            return Ok(None);
        };
        parse_addr(t, DEFAULT_TELNET_PORT)
            .map(Some)
            .ok_or_else(|| ConfigError::Invalid {
                key: "opentsdb_telnet",
                message: format!("{t:?}: write IP:PORT, IP or :PORT"),
            })
    }

    /// The parsed write allow-list.
    pub fn allow_list(&self) -> Result<Vec<Cidr>, ConfigError> {
        self.put_allow
            .iter()
            .map(|s| {
                Cidr::parse(s).ok_or_else(|| ConfigError::Invalid {
                    key: "put_allow",
                    message: format!("{s:?} is not an address or CIDR network"),
                })
            })
            .collect()
    }
}

fn parse_addr(s: &str, default_port: u16) -> Option<SocketAddr> {
    if let Ok(a) = s.parse::<SocketAddr>() {
        return Some(a);
    }
    if let Some(port) = s.strip_prefix(':') {
        return Some(SocketAddr::new(
            IpAddr::from([127, 0, 0, 1]),
            port.parse().ok()?,
        ));
    }
    s.parse::<IpAddr>()
        .ok()
        .map(|ip| SocketAddr::new(ip, default_port))
}

/// An address range `IP/prefix`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    net: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Parses `IP` or `IP/prefix`.
    pub fn parse(s: &str) -> Option<Cidr> {
        let (ip, prefix) = match s.split_once('/') {
            Some((ip, p)) => (ip.parse::<IpAddr>().ok()?, Some(p.parse::<u8>().ok()?)),
            None => (s.parse::<IpAddr>().ok()?, None),
        };
        let max = if ip.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(max);
        (prefix <= max).then_some(Cidr { net: ip, prefix })
    }

    /// Whether `ip` is inside the range (IPv4-mapped IPv6 addresses count as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        match (self.net, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = if self.prefix == 0 {
                    0
                } else {
                    u32::MAX << (32 - self.prefix)
                };
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = if self.prefix == 0 {
                    0
                } else {
                    u128::MAX << (128 - self.prefix)
                };
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr() {
        let c = Cidr::parse("127.0.0.0/8").unwrap();
        assert!(c.contains("127.1.2.3".parse().unwrap()));
        assert!(c.contains("::ffff:127.0.0.1".parse().unwrap()));
        assert!(!c.contains("10.0.0.1".parse().unwrap()));
        assert!(Cidr::parse("::1").unwrap().contains("::1".parse().unwrap()));
        assert!(Cidr::parse("1.2.3.4/33").is_none());
        assert!(Cidr::parse("0.0.0.0/0")
            .unwrap()
            .contains("8.8.8.8".parse().unwrap()));
    }

    #[test]
    fn toml_and_validation() {
        let c: Config = toml::from_str(
            "listen = \"127.0.0.1:9000\"\nopentsdb_telnet = \":4243\"\n[pricing]\nsubscription_per_day = 0.5\n[pricing.per_kwh]\nEASF01 = 0.2\n",
        )
        .unwrap();
        c.validate().unwrap();
        assert_eq!(c.telnet_addr().unwrap().unwrap().port(), 4243);
        assert!(toml::from_str::<Config>("lisen = 1").is_err());
        let bad = Config {
            time_zone: "Mars/Base".into(),
            ..Config::default()
        };
        assert!(bad.validate().is_err());
    }
}
