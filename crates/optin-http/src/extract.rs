//! Extractors that answer bad input with our problem documents instead of axum's plain text.
//!
//! - [`Json`]: `application/json` (or `+json`) bodies up to the body limit, parsed with the field
//!   path in the error (`categories[0].name: invalid type...`).
//! - [`JsonBytes`]: the same checks without parsing, for handlers that need the exact bytes
//!   (idempotent writes fingerprint them).
//! - [`Query`] and [`Path`]: query strings and path segments.

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::{HeaderMap, StatusCode, header};
use serde::de::DeserializeOwned;

use crate::error::ApiError;
use crate::state::AppState;

/// Longest serde message echoed back in a problem's detail.
const MAX_DETAIL_CHARS: usize = 300;

/// A JSON request body, parsed into `T` (whose fields should `deny_unknown_fields`).
#[derive(Debug, Clone)]
pub struct Json<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &AppState) -> Result<Json<T>, ApiError> {
        let JsonBytes(bytes) = JsonBytes::from_request(request, state).await?;
        parse_json(&bytes).map(Json)
    }
}

/// A JSON request body, checked for its media type and size but not parsed.
#[derive(Debug, Clone)]
pub struct JsonBytes(pub Bytes);

impl FromRequest<AppState> for JsonBytes {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &AppState) -> Result<JsonBytes, ApiError> {
        require_json(request.headers())?;
        let limit = state.settings().body_limit_bytes;
        Bytes::from_request(request, state).await.map(JsonBytes).map_err(|rejection| body_error(&rejection, limit))
    }
}

/// Parses a JSON body: malformed JSON is 400 `malformed_json`; JSON of the wrong shape (missing,
/// mistyped or unknown fields) is 422 `invalid_body`, with the path of the offending field.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let deserializer = &mut serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(deserializer).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        match inner.classify() {
            serde_json::error::Category::Data => {
                let detail = if path == "." { inner.to_string() } else { format!("{path}: {inner}") };
                ApiError::invalid("invalid_body", truncate(detail))
            }
            _ => ApiError::client(StatusCode::BAD_REQUEST, "malformed_json", truncate(inner.to_string())),
        }
    })?;
    Ok(value)
}

/// Query parameters, parsed into `T`.
#[derive(Debug, Clone, FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct Query<T>(pub T);

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> ApiError {
        ApiError::invalid("invalid_query", truncate(rejection.body_text()))
    }
}

/// Path segments, parsed into `T` (usually `String`, parsed further by the handler).
#[derive(Debug, Clone, FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct Path<T>(pub T);

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> ApiError {
        ApiError::client(StatusCode::BAD_REQUEST, "invalid_path", truncate(rejection.body_text()))
    }
}

/// Refuses a body that is not declared as JSON.
pub fn require_json(headers: &HeaderMap) -> Result<(), ApiError> {
    if has_json_content_type(headers) {
        return Ok(());
    }
    Err(ApiError::client(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
        "the body must be JSON, sent with `Content-Type: application/json`",
    ))
}

/// Reads a whole body of at most `limit` bytes (for the few routes allowed larger bodies than
/// the default limit: webhook deliveries and template files).
pub async fn read_limited(body: axum::body::Body, limit: usize) -> Result<Bytes, ApiError> {
    axum::body::to_bytes(body, limit).await.map_err(|error| {
        let mut causes = std::iter::successors(std::error::Error::source(&error), |e| e.source());
        let too_large = causes.any(|cause| cause.is::<http_body_util::LengthLimitError>());
        body_problem(too_large, limit)
    })
}

fn body_error(rejection: &BytesRejection, limit: usize) -> ApiError {
    body_problem(rejection.status() == StatusCode::PAYLOAD_TOO_LARGE, limit)
}

fn body_problem(too_large: bool, limit: usize) -> ApiError {
    if too_large {
        ApiError::client(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!("the request body is larger than {limit} bytes"),
        )
    } else {
        ApiError::client(StatusCode::BAD_REQUEST, "unreadable_body", "the request body could not be read")
    }
}

/// `application/json`, or any `application/*+json`, with optional parameters.
fn has_json_content_type(headers: &HeaderMap) -> bool {
    let Some(value) = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) else { return false };
    let essence = value.split(';').next().unwrap_or_default().trim();
    let Some((kind, subtype)) = essence.split_once('/') else { return false };
    let subtype = subtype.to_ascii_lowercase();
    kind.eq_ignore_ascii_case("application") && (subtype == "json" || subtype.ends_with("+json"))
}

fn truncate(text: String) -> String {
    truncate_chars(text, MAX_DETAIL_CHARS)
}

/// `text` cut to `max` characters, with `…` when it was longer (for problem details that echo input).
pub(crate) fn truncate_chars(mut text: String, max: usize) -> String {
    if let Some((cut, _)) = text.char_indices().nth(max) {
        text.truncate(cut);
        text.push('…');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Sample {
        name: String,
        items: Vec<u32>,
    }

    fn code_of(bytes: &[u8]) -> (StatusCode, &'static str, String) {
        let error = parse_json::<Sample>(bytes).unwrap_err();
        let problem = error.problem();
        (error.status(), problem.code, problem.detail)
    }

    #[test]
    fn json_errors_are_classified() {
        assert_eq!(code_of(b"{").1, "malformed_json");
        assert_eq!(code_of(b"").1, "malformed_json");
        assert_eq!(code_of(b"{\"name\": \"a\"}").1, "invalid_body");
        let (status, code, detail) = code_of(b"{\"name\": \"a\", \"items\": [1, \"x\"]}");
        assert_eq!((status, code), (StatusCode::UNPROCESSABLE_ENTITY, "invalid_body"));
        assert!(detail.starts_with("items[1]: invalid type"), "{detail}");
        assert!(code_of(b"{\"name\": \"a\", \"items\": [], \"x\": 1}").2.contains("unknown field `x`"));
    }

    #[test]
    fn long_serde_messages_are_truncated() {
        let body = format!("{{\"name\": 1, \"items\": [], \"{}\": 1}}", "y".repeat(10_000));
        assert!(code_of(body.as_bytes()).2.chars().count() <= MAX_DETAIL_CHARS + 1);
    }

    #[test]
    fn json_media_types_are_recognised() {
        let check = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::CONTENT_TYPE, value.parse().unwrap());
            has_json_content_type(&headers)
        };
        assert!(check("application/json"));
        assert!(check("Application/JSON; charset=utf-8"));
        assert!(check("application/merge-patch+json"));
        assert!(!check("text/plain"));
        assert!(!check("application/jsonx"));
        assert!(!has_json_content_type(&HeaderMap::new()));
    }
}
