//! `Idempotency-Key` for writes: the same key with the same body replays the first answer, the
//! same key with another body is refused, a new key is processed and its answer saved.
//!
//! Client errors (4xx) are saved like successes, so a retried bad request gets the same answer;
//! server errors are not, so a retry after a failure is processed again.

use std::future::Future;

use axum::body::Bytes;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use jiff::Timestamp;
use optin_core::ids::BusinessId;
use optin_store::SavedResponse;
use serde::Serialize;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};

use crate::error::{ApiError, PROBLEM_JSON};
use crate::extract::parse_json;
use crate::state::AppState;

const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");
const REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");
const MAX_KEY_LENGTH: usize = 200;

/// The request's `Idempotency-Key`, if it sent one: 1 to 200 visible ASCII characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey(Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for IdempotencyKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<IdempotencyKey, ApiError> {
        let Some(value) = parts.headers.get(IDEMPOTENCY_KEY) else { return Ok(IdempotencyKey(None)) };
        let bytes = value.as_bytes();
        if bytes.is_empty() || bytes.len() > MAX_KEY_LENGTH || !bytes.iter().all(u8::is_ascii_graphic) {
            return Err(ApiError::client(
                StatusCode::BAD_REQUEST,
                "invalid_idempotency_key",
                "Idempotency-Key must be 1 to 200 visible ASCII characters",
            ));
        }
        Ok(IdempotencyKey(Some(String::from_utf8_lossy(bytes).into_owned())))
    }
}

/// One idempotent write: parses `body` into `T`, runs `handle`, answers `success` with its
/// result, honouring the request's idempotency key.
pub(crate) struct IdempotentWrite<'a> {
    pub state: &'a AppState,
    pub business: BusinessId,
    pub key: IdempotencyKey,
    /// Part of the fingerprint, so one key cannot be reused across endpoints.
    pub route: &'static str,
    pub success: StatusCode,
}

impl IdempotentWrite<'_> {
    pub(crate) async fn run<T, R, F, Fut>(self, body: Bytes, handle: F) -> Result<Response, ApiError>
    where
        T: DeserializeOwned,
        R: Serialize,
        F: FnOnce(T) -> Fut,
        Fut: Future<Output = Result<R, ApiError>>,
    {
        let Some(key) = self.key.0 else {
            let result = handle(parse_json(&body)?).await?;
            return Ok((self.success, axum::Json(result)).into_response());
        };
        let store = self.state.store();
        let fingerprint = fingerprint(self.route, &body);
        if let Some(saved) = store.saved_response(self.business, &key).await? {
            if saved.request_fingerprint != fingerprint {
                return Err(ApiError::client(
                    StatusCode::CONFLICT,
                    "idempotency_key_reused",
                    "this Idempotency-Key was used with a different request",
                ));
            }
            return Ok(saved_to_response(&saved, true));
        }
        let outcome = match parse_json::<T>(&body) {
            Ok(request) => handle(request).await,
            Err(error) => Err(error),
        };
        let (status, body) = match outcome {
            Ok(result) => (self.success, serde_json::to_string(&result).map_err(|e| ApiError::Internal(e.into()))?),
            Err(error) if error.status().is_server_error() => return Err(error),
            Err(error) => (error.status(), serde_json::to_string(&error.problem()).expect("problems serialize")),
        };
        let saved = SavedResponse {
            request_fingerprint: fingerprint,
            status: status.as_u16(),
            body,
            created_at: Timestamp::now(),
        };
        if let Err(error) = store.save_response(self.business, &key, &saved).await {
            // The write itself succeeded: answer it, and let a retry be processed again.
            tracing::error!(cause = %error, "could not save an idempotent response");
        }
        Ok(saved_to_response(&saved, false))
    }
}

fn fingerprint(route: &str, body: &[u8]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(route.as_bytes());
    hasher.update(b"\n");
    hasher.update(body);
    hex::encode(hasher.finalize())
}

fn saved_to_response(saved: &SavedResponse, replayed: bool) -> Response {
    let status = StatusCode::from_u16(saved.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let content_type = if status.is_success() { "application/json" } else { PROBLEM_JSON };
    let mut response = (status, [(header::CONTENT_TYPE, content_type)], saved.body.clone()).into_response();
    if replayed {
        response.headers_mut().insert(REPLAYED, HeaderValue::from_static("true"));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn key_from(value: &[u8]) -> Result<IdempotencyKey, ApiError> {
        let request = axum::http::Request::builder()
            .header(IDEMPOTENCY_KEY, HeaderValue::from_bytes(value).unwrap())
            .body(())
            .unwrap();
        IdempotencyKey::from_request_parts(&mut request.into_parts().0, &()).await
    }

    #[tokio::test]
    async fn keys_are_visible_ascii_of_bounded_length() {
        assert_eq!(key_from(b"order-42/retry#1").await.unwrap(), IdempotencyKey(Some("order-42/retry#1".into())));
        assert!(key_from("x".repeat(200).as_bytes()).await.is_ok());
        for bad in [&b""[..], b"has space", b"tab\there", &[0xC3, 0xA9], "x".repeat(201).as_bytes()] {
            let error = key_from(bad).await.unwrap_err();
            assert_eq!(error.problem().code, "invalid_idempotency_key");
        }
    }

    #[test]
    fn fingerprints_depend_on_the_route_and_the_body() {
        assert_eq!(fingerprint("/a", b"{}"), fingerprint("/a", b"{}"));
        assert_ne!(fingerprint("/a", b"{}"), fingerprint("/b", b"{}"));
        assert_ne!(fingerprint("/a", b"{}"), fingerprint("/a", b"{ }"));
    }
}
