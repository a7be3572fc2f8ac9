//! Series identity: an OpenTSDB-style metric name plus tags.

use std::collections::BTreeMap;
use std::fmt;

use crate::error::{Result, StoreError};
use crate::limits::{MAX_NAME_BYTES, MAX_TAGS};

/// Compact numeric handle of a series inside one store (stable for the life of the file).
///
/// The hot write path works with ids so that a 50-value frame does not hash 50 strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SeriesId(pub u32);

impl fmt::Display for SeriesId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A series name: metric (e.g. `SINSTS`) and tags (e.g. `meter=041776199277`).
///
/// Names follow OpenTSDB's rules (letters incl. Unicode, digits, `-_./`) plus `+`, because
/// TIC labels such as `NJOURF+1` and `PJOURF+1` contain it (an OpenTSDB front end accepts
/// them too: only `=`, `,`, spaces and control characters are refused here). Tags are kept
/// sorted, which makes the textual form canonical.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SeriesKey {
    metric: String,
    tags: BTreeMap<String, String>,
}

fn check_name(name: &str) -> Result<()> {
    let bad = |reason| {
        Err(StoreError::InvalidName {
            name: name.chars().take(64).collect(),
            reason,
        })
    };
    if name.is_empty() {
        return bad("empty");
    }
    if name.len() > MAX_NAME_BYTES {
        return bad("too long");
    }
    if !name
        .chars()
        .all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.' | '/' | '+'))
    {
        return bad("forbidden character");
    }
    Ok(())
}

impl SeriesKey {
    /// A series key with the given metric and tags; validates every name.
    pub fn new<I, K, V>(metric: &str, tags: I) -> Result<SeriesKey>
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        check_name(metric)?;
        let mut map = BTreeMap::new();
        for (k, v) in tags {
            let (k, v) = (k.into(), v.into());
            check_name(&k)?;
            check_name(&v)?;
            if map.contains_key(&k) {
                return Err(StoreError::InvalidTags(format!("duplicate tag key {k:?}")));
            }
            map.insert(k, v);
            if map.len() > MAX_TAGS {
                return Err(StoreError::InvalidTags(format!(
                    "more than {MAX_TAGS} tags; fold information into fewer tags"
                )));
            }
        }
        Ok(SeriesKey {
            metric: metric.to_string(),
            tags: map,
        })
    }

    /// The metric name.
    pub fn metric(&self) -> &str {
        &self.metric
    }

    /// The tags, sorted by key.
    pub fn tags(&self) -> &BTreeMap<String, String> {
        &self.tags
    }

    /// The value of one tag.
    pub fn tag(&self, key: &str) -> Option<&str> {
        self.tags.get(key).map(String::as_str)
    }

    /// Canonical tag string `k1=v1,k2=v2` (sorted); unambiguous because `=` and `,` are not
    /// allowed in names.
    pub(crate) fn tags_text(&self) -> String {
        let mut s = String::new();
        for (i, (k, v)) in self.tags.iter().enumerate() {
            if i > 0 {
                s.push(',');
            }
            s.push_str(k);
            s.push('=');
            s.push_str(v);
        }
        s
    }

    /// Parses what [`tags_text`](Self::tags_text) produced (used when loading the catalogue).
    pub(crate) fn from_stored(metric: &str, tags_text: &str) -> Result<SeriesKey> {
        let mut tags = Vec::new();
        if !tags_text.is_empty() {
            for kv in tags_text.split(',') {
                let (k, v) = kv
                    .split_once('=')
                    .ok_or_else(|| StoreError::Corrupt(format!("stored tags {tags_text:?}")))?;
                tags.push((k, v));
            }
        }
        SeriesKey::new(metric, tags)
    }
}

impl fmt::Display for SeriesKey {
    /// OpenTSDB notation: `SINSTS{meter=041776199277}`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{{{}}}", self.metric, self.tags_text())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_and_roundtrip() {
        let k = SeriesKey::new("SINSTS", [("meter", "041776199277"), ("a", "b")]).unwrap();
        assert_eq!(k.to_string(), "SINSTS{a=b,meter=041776199277}");
        let back = SeriesKey::from_stored(k.metric(), &k.tags_text()).unwrap();
        assert_eq!(back, k);
        let nt = SeriesKey::new("x", Vec::<(String, String)>::new()).unwrap();
        assert_eq!(SeriesKey::from_stored("x", "").unwrap(), nt);
    }

    #[test]
    fn rejects_bad_names() {
        assert!(SeriesKey::new("", [("a", "b")]).is_err());
        assert!(SeriesKey::new("a b", [("a", "b")]).is_err());
        assert!(SeriesKey::new("m", [("a=", "b")]).is_err());
        assert!(SeriesKey::new("m", [("a", "b,c")]).is_err());
        assert!(SeriesKey::new("m", [("a", "b"), ("a", "c")]).is_err());
        let many: Vec<_> = (0..9).map(|i| (format!("k{i}"), "v".to_string())).collect();
        assert!(SeriesKey::new("m", many).is_err());
        assert!(SeriesKey::new(&"x".repeat(256), [("a", "b")]).is_err());
        assert!(SeriesKey::new("température.é", [("a", "b")]).is_ok());
        assert!(SeriesKey::new("NJOURF+1", [("meter", "041776199277")]).is_ok());
    }
}
