//! # web — the built-in dashboard's files, embedded
//!
//! `build.rs` compresses every file of `web/` plus uPlot at build time; this crate only hands
//! them out, so the binary serves the dashboard with no file on disk and no internet access.
//! The HTTP side (content negotiation, cache headers) is in `crates/server/src/dashboard.rs`.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

/// One embedded file.
#[derive(Debug)]
pub struct Asset {
    /// URL path (`/` for the page, `/assets/NAME.HASH.EXT` for the rest).
    pub path: &'static str,
    /// `Content-Type`.
    pub content_type: &'static str,
    /// Strong ETag, quoted.
    pub etag: &'static str,
    /// Content-hashed name: cacheable forever.
    pub immutable: bool,
    /// The bytes.
    pub body: &'static [u8],
    /// The bytes, gzipped (best compression, done once at build time).
    pub gzip: &'static [u8],
}

static ASSETS: &[Asset] = include!(concat!(env!("OUT_DIR"), "/assets.rs"));

/// Every embedded file, the page (`/`) last.
pub fn assets() -> &'static [Asset] {
    ASSETS
}

/// The file served at `path`, if any.
pub fn get(path: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|a| a.path == path)
}

/// Sum of the gzipped sizes: what a first visit downloads.
pub fn total_gzip_bytes() -> usize {
    ASSETS.iter().map(|a| a.gzip.len()).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_names_every_asset_and_fits_the_budget() {
        let page = std::str::from_utf8(get("/").expect("page").body).unwrap();
        for a in assets().iter().filter(|a| a.immutable) {
            assert!(
                page.contains(&a.path[1..]),
                "index.html does not reference {}",
                a.path
            );
            assert!(!a.gzip.is_empty() && a.gzip.len() < a.body.len());
        }
        // The budget: the whole page at most 200 KB gzipped.
        assert!(
            total_gzip_bytes() <= 200 * 1024,
            "{} bytes",
            total_gzip_bytes()
        );
    }
}
