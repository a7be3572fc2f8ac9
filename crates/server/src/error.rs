//! The one error shape of every HTTP endpoint.
//!
//! `{"error":{"code":400,"message":"what was wrong and what to do","details":"…"}}` — the
//! shape OpenTSDB uses, so Grafana's OpenTSDB datasource shows our messages, and the JSON API
//! uses the same so that clients need one error parser.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// An HTTP error with a message saying what was wrong and what to do.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// Status code.
    pub status: StatusCode,
    /// One sentence for humans.
    pub message: String,
    /// Optional extra detail.
    pub details: Option<String>,
}

impl ApiError {
    /// An error with a status and message.
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
            details: None,
        }
    }
    /// 400.
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }
    /// 401.
    pub fn unauthorized(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, message)
    }
    /// 403.
    pub fn forbidden(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, message)
    }
    /// 404.
    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, message)
    }
    /// 413.
    pub fn too_large(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, message)
    }
    /// 500 for a server-side failure; the message says the request may be retried.
    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, message)
    }
    /// 503: storage failed; nothing was acknowledged, retry later.
    pub fn unavailable(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, message)
    }
    /// Adds details.
    pub fn with_details(mut self, details: impl Into<String>) -> ApiError {
        self.details = Some(details.into());
        self
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.status.as_u16(), self.message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = json!({"code": self.status.as_u16(), "message": self.message});
        if let Some(d) = self.details {
            body["details"] = d.into();
        }
        let mut resp = (self.status, axum::Json(json!({ "error": body }))).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer realm=\"teleinfo\""),
            );
        }
        resp
    }
}

/// Maps a store error: caller mistakes are 400, limits 413/400, everything else 503 (the store
/// acknowledged nothing, so a retry is safe).
impl From<store::StoreError> for ApiError {
    fn from(e: store::StoreError) -> ApiError {
        use store::StoreError as E;
        match &e {
            E::InvalidName { .. }
            | E::InvalidTags(_)
            | E::NonFiniteValue { .. }
            | E::TimestampOutOfRange { .. }
            | E::InvalidRange { .. }
            | E::InvalidBuckets(_)
            | E::InvalidBatch(_)
            | E::UnknownTimeZone { .. }
            | E::UnknownSeries(_)
            | E::LimitExceeded { .. } => ApiError::bad_request(e.to_string()),
            _ => ApiError::unavailable(format!(
                "storage failed, nothing was stored; retry later: {e}"
            )),
        }
    }
}

/// Result alias for handlers.
pub type ApiResult<T> = Result<T, ApiError>;
