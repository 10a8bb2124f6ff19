//! The one API error type and its mapping to status codes. Handlers return `ApiError`; this is
//! the only place that chooses a status. Internal failures are logged to stderr with their
//! detail and answered with a generic message.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use policy::PolicyErrors;
use serde::Serialize;

use crate::control::{ControlError, etag};

/// Error body.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// Machine-readable code (`invalid_policy`, `forbidden`, ...).
    pub error: &'static str,
    /// Human-readable message.
    pub message: String,
    /// For `invalid_policy`: the problems with their JSON paths, the first
    /// [`MAX_PROBLEMS`] of them.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<Problem>,
    /// For `invalid_policy`: problems found beyond those listed.
    #[serde(skip_serializing_if = "is_zero")]
    pub problems_not_listed: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// Problems listed at most in an `invalid_policy` answer: a huge invalid document must not give
/// a larger answer (a 4.7 MB body once gave a 27.5 MB 422).
pub const MAX_PROBLEMS: usize = 100;

/// Characters of a problem's path or message kept (a problem may quote the value it refuses).
pub const MAX_PROBLEM_CHARS: usize = 512;

/// `s` cut to [`MAX_PROBLEM_CHARS`] characters, marked when cut.
fn clip(s: &str) -> String {
    match s.char_indices().nth(MAX_PROBLEM_CHARS) {
        Some((at, _)) => format!("{}... ({} bytes)", s.get(..at).unwrap_or(""), s.len()),
        None => s.to_owned(),
    }
}

/// One problem of a policy document.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// JSON path (`exclusions[2].address`); empty for the whole document.
    pub path: String,
    /// What is wrong.
    pub message: String,
}

/// API errors.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No client certificate, or one mapped to no role, or a bad API key.
    #[error("forbidden: {0}")]
    Forbidden(&'static str),
    /// Malformed request.
    #[error("bad request: {0}")]
    BadRequest(String),
    /// Nothing matched.
    #[error("not found: {0}")]
    NotFound(String),
    /// Conflicts with the current state (already blocked).
    #[error("conflict: {0}")]
    Conflict(String),
    /// The policy is invalid; nothing changed.
    #[error("invalid policy")]
    InvalidPolicy(PolicyErrors),
    /// `If-Match` did not match the running version.
    #[error("precondition failed: running policy version is {current}")]
    PreconditionFailed {
        /// The running version.
        current: u64,
    },
    /// The request body is larger than the route takes.
    #[error("request body larger than {limit} bytes")]
    PayloadTooLarge {
        /// The limit.
        limit: usize,
    },
    /// The request body did not arrive in time.
    #[error("request body not received within {0:?}")]
    RequestTimeout(std::time::Duration),
    /// Capacity exhausted.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// Anything else; the detail is logged, not echoed.
    #[error("internal error")]
    Internal(String),
}

impl From<ControlError> for ApiError {
    fn from(e: ControlError) -> Self {
        match e {
            ControlError::InvalidPolicy(p) => ApiError::InvalidPolicy(p),
            ControlError::VersionMismatch { current } => ApiError::PreconditionFailed { current },
            ControlError::InvalidRequest(m) => ApiError::BadRequest(m),
            ControlError::NotFound(m) => ApiError::NotFound(m),
            ControlError::AlreadyBlocked(m) => {
                ApiError::Conflict(format!("{m} is already blocked"))
            }
            ControlError::TableFull => ApiError::Unavailable("block table full".into()),
            ControlError::Stopping => ApiError::Unavailable("shutting down".into()),
            // A full disk: the change was not stored, so it was not applied; the path and the
            // cause are on /healthz and in the log.
            ControlError::Store(_) => ApiError::Unavailable(
                "the state store is failing (see /healthz); nothing was changed".into(),
            ),
        }
    }
}

impl ApiError {
    /// Status and code.
    pub fn status(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            ApiError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            ApiError::InvalidPolicy(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_policy"),
            ApiError::PreconditionFailed { .. } => {
                (StatusCode::PRECONDITION_FAILED, "version_mismatch")
            }
            ApiError::PayloadTooLarge { .. } => {
                (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large")
            }
            ApiError::RequestTimeout(_) => (StatusCode::REQUEST_TIMEOUT, "request_timeout"),
            ApiError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status();
        if let ApiError::Internal(detail) = &self {
            tracing::error!("svm api: internal error: {detail}");
        }
        let (problems, problems_not_listed) = match &self {
            ApiError::InvalidPolicy(errors) => (
                errors
                    .iter()
                    .take(MAX_PROBLEMS)
                    .map(|e| Problem {
                        path: clip(&e.path),
                        message: clip(&e.message),
                    })
                    .collect(),
                errors.len().saturating_sub(MAX_PROBLEMS),
            ),
            _ => (Vec::new(), 0),
        };
        let message = match &self {
            ApiError::InvalidPolicy(e) if e.len() > MAX_PROBLEMS => format!(
                "{} problem(s), the first {MAX_PROBLEMS} listed; nothing was applied",
                e.len()
            ),
            ApiError::InvalidPolicy(e) => format!("{} problem(s); nothing was applied", e.len()),
            other => other.to_string(),
        };
        let mut resp = (
            status,
            Json(ErrorBody {
                error: code,
                message,
                problems,
                problems_not_listed,
            }),
        )
            .into_response();
        if let ApiError::PreconditionFailed { current } = self
            && let Ok(v) = HeaderValue::from_str(&etag(current))
        {
            resp.headers_mut().insert(header::ETAG, v);
        }
        resp
    }
}
