//! The built-in dashboard's pages (`/` and `/assets/…`), embedded by the `web` crate.
//!
//! Assets are compressed once at build time, so a request costs a table lookup: the gzip bytes
//! go to clients that accept gzip, the plain bytes to the others. Content-hashed assets are
//! cacheable for a year; the page itself is revalidated with its ETag on every load so a new
//! binary is picked up at once.

use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use crate::app::Shared;

/// Routes of the page and its assets (no read token: they hold no data).
pub fn routes() -> Router<Shared> {
    Router::new()
        .route("/", get(asset))
        .route("/index.html", get(asset))
        .route("/assets/{file}", get(asset))
}

fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|e| {
            let mut parts = e.split(';');
            let name = parts.next().unwrap_or("").trim();
            // `gzip;q=0` is an explicit refusal.
            let refused = parts.any(|p| p.trim().replace(' ', "") == "q=0");
            (name.eq_ignore_ascii_case("gzip") || name == "*") && !refused
        })
}

async fn asset(uri: Uri, headers: HeaderMap) -> Response {
    let path = if uri.path() == "/index.html" {
        "/"
    } else {
        uri.path()
    };
    let Some(a) = web::get(path) else {
        return (StatusCode::NOT_FOUND, "no such file; the dashboard is at /").into_response();
    };
    let cache = if a.immutable {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    let mut h = HeaderMap::new();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    h.insert(header::ETAG, HeaderValue::from_static(a.etag));
    h.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',')
                .any(|t| t.trim().trim_start_matches("W/") == a.etag || t.trim() == "*")
        });
    if fresh {
        return (StatusCode::NOT_MODIFIED, h).into_response();
    }
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(a.content_type),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if !a.immutable {
        // The page loads nothing from elsewhere: say so, so an injected script could not either.
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(
                "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'",
            ),
        );
    }
    if accepts_gzip(&headers) {
        h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        (h, a.gzip).into_response()
    } else {
        (h, a.body).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gzip_negotiation() {
        let mut h = HeaderMap::new();
        assert!(!accepts_gzip(&h));
        h.insert(
            header::ACCEPT_ENCODING,
            "gzip, deflate, br".parse().unwrap(),
        );
        assert!(accepts_gzip(&h));
        h.insert(header::ACCEPT_ENCODING, "br, gzip;q=0".parse().unwrap());
        assert!(!accepts_gzip(&h));
        h.insert(header::ACCEPT_ENCODING, "identity".parse().unwrap());
        assert!(!accepts_gzip(&h));
    }
}
