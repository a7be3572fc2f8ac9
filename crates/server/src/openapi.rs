//! The OpenAPI description served at `/api/v1/openapi.json`.

use axum::http::header;
use axum::response::IntoResponse;

/// The document (kept as a file so that it reads like the spec it is).
pub const OPENAPI_JSON: &str = include_str!("openapi.json");

/// `GET /api/v1/openapi.json`.
pub async fn openapi() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI_JSON)
}

#[cfg(test)]
mod tests {
    #[test]
    fn is_valid_json_with_paths() {
        let v: serde_json::Value = serde_json::from_str(super::OPENAPI_JSON).unwrap();
        assert_eq!(v["openapi"], "3.1.0");
        assert!(v["paths"]["/api/v1/uplink"].is_object());
        assert!(v["paths"]["/api/query"].is_object());
    }
}
