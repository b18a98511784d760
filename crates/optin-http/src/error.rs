//! The one error type at the edge.
//!
//! Every failure, whatever its origin (an extractor, a use case, the store, a panic, a timeout),
//! leaves as an RFC 9457 `application/problem+json` body with a stable snake_case `code`. Client
//! mistakes say what was wrong; server failures are opaque: their cause travels in the response
//! extensions to the `observe` middleware, which logs it inside the request span.

use std::error::Error;
use std::fmt;
use std::sync::Arc;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use optin_store::{Problem, Rejection, RejectionKind, StoreError, UseCaseError};
use serde::Serialize;
use utoipa::ToSchema;

/// The media type of every error body.
pub const PROBLEM_JSON: &str = "application/problem+json";
/// Problem types are `https://optin.dev/problems/<code>`.
const PROBLEM_TYPE_BASE: &str = "https://optin.dev/problems/";

/// Why a request failed.
#[derive(Debug)]
pub enum ApiError {
    /// The request was refused: a client error status and every problem found (the first one is
    /// the headline).
    Client { status: StatusCode, problems: Vec<Problem> },
    /// Missing, unknown or revoked credentials: 401 with `WWW-Authenticate: Bearer`.
    Unauthorized,
    /// The request took longer than the configured timeout: 503.
    Timeout,
    /// The database did not answer: an opaque 503, cause logged.
    Unavailable(Box<dyn Error + Send + Sync>),
    /// Our own failure: an opaque 500, cause logged.
    Internal(Box<dyn Error + Send + Sync>),
}

/// An RFC 9457 problem document, as every error response carries it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ProblemDetails {
    /// `https://optin.dev/problems/<code>`.
    #[serde(rename = "type")]
    pub problem_type: String,
    /// The HTTP status's reason phrase.
    #[schema(value_type = String)]
    pub title: &'static str,
    pub status: u16,
    /// What was wrong, for a human.
    pub detail: String,
    /// Stable snake_case code, the same the CLI and decisions use.
    #[schema(value_type = String, example = "invalid_phone")]
    pub code: &'static str,
    /// Every problem, when there are several.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<ProblemItem>,
}

/// One problem among several.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ProblemItem {
    #[schema(value_type = String)]
    pub code: &'static str,
    pub detail: String,
}

impl ApiError {
    /// A client error with one problem.
    pub fn client(status: StatusCode, code: &'static str, detail: impl Into<String>) -> ApiError {
        ApiError::Client { status, problems: vec![Problem { code, detail: detail.into() }] }
    }

    /// 422: the input is well-formed but not acceptable.
    pub fn invalid(code: &'static str, detail: impl Into<String>) -> ApiError {
        ApiError::client(StatusCode::UNPROCESSABLE_ENTITY, code, detail)
    }

    /// 404: no such resource for this caller (another tenant's resources included).
    pub fn not_found(code: &'static str, detail: impl Into<String>) -> ApiError {
        ApiError::client(StatusCode::NOT_FOUND, code, detail)
    }

    /// An internal failure with a message (logged, never returned).
    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::Internal(message.into().into())
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Client { status, .. } => *status,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::Timeout | ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The problem document this error is answered with.
    pub fn problem(&self) -> ProblemDetails {
        let status = self.status();
        let (code, detail, errors): (&'static str, &str, &[Problem]) = match self {
            ApiError::Client { problems, .. } => match problems.as_slice() {
                [] => ("invalid_request", "the request was refused", &[]),
                [only] => (only.code, only.detail.as_str(), &[]),
                [first, ..] => (first.code, first.detail.as_str(), problems.as_slice()),
            },
            ApiError::Unauthorized => {
                ("unauthorized", "a valid API key is required: `Authorization: Bearer <key>`", &[])
            }
            ApiError::Timeout => ("request_timeout", "the request took too long and was abandoned", &[]),
            ApiError::Unavailable(_) => ("database_unavailable", "the database is unavailable; retry later", &[]),
            ApiError::Internal(_) => ("internal_error", "an internal error occurred; it has been logged", &[]),
        };
        ProblemDetails {
            problem_type: format!("{PROBLEM_TYPE_BASE}{code}"),
            title: status.canonical_reason().unwrap_or("Error"),
            status: status.as_u16(),
            detail: detail.to_owned(),
            code,
            errors: errors.iter().map(|p| ProblemItem { code: p.code, detail: p.detail.clone() }).collect(),
        }
    }

    /// Writes the cause of a server failure to the log, inside the current request span.
    pub(crate) fn log(&self) {
        match self {
            ApiError::Unavailable(cause) => {
                tracing::error!(cause = %ErrorChain(cause.as_ref()), "database unavailable")
            }
            ApiError::Internal(cause) => tracing::error!(cause = %ErrorChain(cause.as_ref()), "internal error"),
            ApiError::Timeout => tracing::warn!("request timed out"),
            ApiError::Client { .. } | ApiError::Unauthorized => {}
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let problem = self.problem();
        let body = serde_json::to_vec(&problem).expect("a problem document always serializes");
        let mut response = (self.status(), [(header::CONTENT_TYPE, PROBLEM_JSON)], body).into_response();
        match self {
            ApiError::Unauthorized => {
                tracing::debug!("request refused: unauthorized");
                response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            ApiError::Client { .. } => tracing::debug!(code = problem.code, "request refused"),
            server_error => {
                response.extensions_mut().insert(Arc::new(server_error));
            }
        }
        response
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let problem = self.problem();
        write!(f, "{} {}: {}", problem.status, problem.code, problem.detail)
    }
}

impl From<Rejection> for ApiError {
    fn from(rejection: Rejection) -> ApiError {
        let status = match rejection.kind {
            RejectionKind::Invalid => StatusCode::UNPROCESSABLE_ENTITY,
            RejectionKind::NotFound => StatusCode::NOT_FOUND,
            RejectionKind::Conflict => StatusCode::CONFLICT,
        };
        ApiError::Client { status, problems: rejection.problems }
    }
}

impl From<UseCaseError> for ApiError {
    fn from(error: UseCaseError) -> ApiError {
        match error {
            UseCaseError::Rejected(rejection) => rejection.into(),
            UseCaseError::Store(error) => error.into(),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> ApiError {
        match error {
            StoreError::NotFound => ApiError::not_found("not_found", "the resource does not exist"),
            StoreError::Conflict { constraint } => {
                ApiError::client(StatusCode::CONFLICT, "conflict", format!("conflicts with an existing {constraint}"))
            }
            category @ StoreError::Category(_) => UseCaseError::from(category).into(),
            StoreError::Corrupt(message) => ApiError::Internal(format!("stored data is corrupt: {message}").into()),
            StoreError::Unavailable(cause) => ApiError::Unavailable(cause),
        }
    }
}

/// An error and its sources, joined by `: `.
struct ErrorChain<'a>(&'a (dyn Error + 'static));

impl fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(cause) = source {
            write!(f, ": {cause}")?;
            source = cause.source();
        }
        Ok(())
    }
}
