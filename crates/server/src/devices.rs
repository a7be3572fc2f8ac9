//! Device tokens: `teleinfo device add NAME` creates one, the server checks it on each uplink.
//!
//! Only the SHA-256 of each token is stored (in `devices.json` in the data directory), so a
//! copy of the data directory does not leak credentials. Tokens carry 256 random bits, so a
//! plain hash (no salt, no stretching) is enough: there is nothing to brute-force.
//!
//! The file is small and rewritten atomically (temporary file + rename). The server re-reads
//! it when its modification time changes, so `device add`/`revoke` take effect on a running
//! server without a restart.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Prefix of every device token, so that one is recognisable in a config file or a log.
pub const TOKEN_PREFIX: &str = "tid_";

/// One registered device.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct DeviceRecord {
    /// SHA-256 of the token, hex.
    pub token_sha256: String,
    /// Creation time, Unix ms.
    pub created_ms: i64,
    /// Revocation time, Unix ms; a revoked device is refused.
    pub revoked_ms: Option<i64>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct DevicesFile {
    devices: BTreeMap<String, DeviceRecord>,
}

/// Why a device operation failed.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    /// Bad name.
    #[error("invalid device name {0:?}: use 1-32 characters of A-Z a-z 0-9 . _ - (the id the device sends)")]
    InvalidName(String),
    /// Name taken.
    #[error("device {0:?} already exists; revoke it first or choose another name")]
    Exists(String),
    /// No such device.
    #[error("no device named {0:?}; see `teleinfo device list`")]
    Unknown(String),
    /// File trouble.
    #[error("devices file {path}: {message}")]
    File {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
}

/// The device registry backed by `devices.json`.
pub struct Devices {
    path: PathBuf,
    cache: Mutex<(Option<(SystemTime, u64)>, DevicesFile)>,
}

/// SHA-256 hex of a token.
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

impl Devices {
    /// The registry in `data_dir` (the file is created on the first `add`).
    pub fn open(data_dir: &Path) -> Devices {
        Devices {
            path: data_dir.join("devices.json"),
            cache: Mutex::new((None, DevicesFile::default())),
        }
    }

    fn err(&self, message: impl Into<String>) -> DeviceError {
        DeviceError::File {
            path: self.path.clone(),
            message: message.into(),
        }
    }

    fn load(&self) -> Result<DevicesFile, DeviceError> {
        match std::fs::read(&self.path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| self.err(e.to_string())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(DevicesFile::default()),
            Err(e) => Err(self.err(e.to_string())),
        }
    }

    fn save(&self, f: &DevicesFile) -> Result<(), DeviceError> {
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| self.err(e.to_string()))?;
        }
        let tmp = self.path.with_extension("json.tmp");
        let text = serde_json::to_vec_pretty(f).map_err(|e| self.err(e.to_string()))?;
        std::fs::write(&tmp, text).map_err(|e| self.err(e.to_string()))?;
        std::fs::rename(&tmp, &self.path).map_err(|e| self.err(e.to_string()))
    }

    /// Registers a device and returns its new token (shown once, never stored in clear).
    pub fn add(&self, name: &str) -> Result<String, DeviceError> {
        if !uplink::wire::valid_device_id(name) {
            return Err(DeviceError::InvalidName(name.to_string()));
        }
        let mut f = self.load()?;
        if f.devices.get(name).is_some_and(|d| d.revoked_ms.is_none()) {
            return Err(DeviceError::Exists(name.to_string()));
        }
        let mut raw = [0u8; 32];
        getrandom::fill(&mut raw).map_err(|e| self.err(format!("no randomness: {e}")))?;
        let token = format!("{TOKEN_PREFIX}{}", hex::encode(raw));
        f.devices.insert(
            name.to_string(),
            DeviceRecord {
                token_sha256: hash_token(&token),
                created_ms: now_ms(),
                revoked_ms: None,
            },
        );
        self.save(&f)?;
        Ok(token)
    }

    /// Revokes a device: its token stops working at once (the server re-reads the file).
    pub fn revoke(&self, name: &str) -> Result<(), DeviceError> {
        let mut f = self.load()?;
        let d = f
            .devices
            .get_mut(name)
            .ok_or_else(|| DeviceError::Unknown(name.to_string()))?;
        if d.revoked_ms.is_none() {
            d.revoked_ms = Some(now_ms());
        }
        self.save(&f)
    }

    /// Every device.
    pub fn list(&self) -> Result<Vec<(String, DeviceRecord)>, DeviceError> {
        Ok(self.load()?.devices.into_iter().collect())
    }

    /// The name of the active device whose token this is.
    pub fn authenticate(&self, token: &str) -> Option<String> {
        let hash = hash_token(token);
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        // Size too: two writes within the file system's timestamp granularity still differ.
        let mtime = std::fs::metadata(&self.path)
            .and_then(|m| Ok((m.modified()?, m.len())))
            .ok();
        if mtime != cache.0 || mtime.is_none() {
            match self.load() {
                Ok(f) => *cache = (mtime, f),
                Err(e) => tracing::warn!("{e}; keeping the previously loaded devices"),
            }
        }
        cache
            .1
            .devices
            .iter()
            .find(|(_, d)| d.revoked_ms.is_none() && constant_time_eq(&d.token_sha256, &hash))
            .map(|(n, _)| n.clone())
    }
}

/// Comparison whose time does not depend on where the strings differ.
fn constant_time_eq(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_auth_revoke() {
        let dir = tempfile::tempdir().unwrap();
        let d = Devices::open(dir.path());
        let t = d.add("linky-01").unwrap();
        assert!(t.starts_with(TOKEN_PREFIX));
        assert_eq!(d.authenticate(&t).as_deref(), Some("linky-01"));
        assert_eq!(d.authenticate("tid_nope"), None);
        assert!(matches!(d.add("linky-01"), Err(DeviceError::Exists(_))));
        assert!(matches!(
            d.add("bad name"),
            Err(DeviceError::InvalidName(_))
        ));
        let text = std::fs::read_to_string(dir.path().join("devices.json")).unwrap();
        assert!(!text.contains(&t), "the clear token must not be stored");
        d.revoke("linky-01").unwrap();
        assert_eq!(d.authenticate(&t), None);
        assert!(matches!(d.revoke("x"), Err(DeviceError::Unknown(_))));
        let t2 = d.add("linky-01").unwrap();
        assert_eq!(d.authenticate(&t2).as_deref(), Some("linky-01"));
    }
}
