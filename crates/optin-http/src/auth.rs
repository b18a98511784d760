//! Authentication as extractors: a handler that takes [`BusinessAuth`] or [`OperatorAuth`] cannot
//! run for an unauthenticated request.
//!
//! Secrets are never stored or compared in clear: the presented token is hashed with
//! `optin_core::secret::hash_secret` and looked up (business keys) or compared in constant time
//! (the operator token).

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use optin_core::business::Business;
use optin_core::secret::hash_secret;

use crate::error::ApiError;
use crate::state::AppState;

/// The business whose API key authenticated the request. Everything the handler does is
/// scoped to it.
#[derive(Debug, Clone)]
pub struct BusinessAuth(pub Business);

impl FromRequestParts<AppState> for BusinessAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<BusinessAuth, ApiError> {
        let token = bearer_token(parts).ok_or(ApiError::Unauthorized)?;
        let store = state.store();
        let business_id = store.authenticate(&hash_secret(token)).await?.ok_or(ApiError::Unauthorized)?;
        let business = store.business(business_id).await?.ok_or(ApiError::Unauthorized)?;
        tracing::Span::current().record("business", tracing::field::display(business.id));
        Ok(BusinessAuth(business))
    }
}

/// Proof that the request carries the operator token.
#[derive(Debug, Clone, Copy)]
pub struct OperatorAuth;

impl FromRequestParts<AppState> for OperatorAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<OperatorAuth, ApiError> {
        let token = bearer_token(parts).ok_or(ApiError::Unauthorized)?;
        let presented = hash_secret(token);
        let expected = state.store().operator_token_hash().await?;
        if expected.is_some_and(|expected| constant_time_eq(expected.as_bytes(), presented.as_bytes())) {
            return Ok(OperatorAuth);
        }
        if state.store().authenticate(&presented).await?.is_some() {
            return Err(ApiError::client(
                StatusCode::FORBIDDEN,
                "operator_only",
                "this endpoint needs the operator token, not a business API key",
            ));
        }
        Err(ApiError::Unauthorized)
    }
}

/// The token of an `Authorization: Bearer <token>` header.
fn bearer_token(parts: &Parts) -> Option<&str> {
    let value = parts.headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// Compares two hashes without an early exit, so timing does not tell how much matched.
fn constant_time_eq(left: &[u8], right: &[u8]) -> bool {
    if left.len() != right.len() {
        return false;
    }
    let difference = left.iter().zip(right).fold(0u8, |difference, (l, r)| difference | (l ^ r));
    std::hint::black_box(difference) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts_with(authorization: Option<&str>) -> Parts {
        let mut builder = axum::http::Request::builder();
        if let Some(value) = authorization {
            builder = builder.header(header::AUTHORIZATION, value);
        }
        builder.body(()).unwrap().into_parts().0
    }

    #[test]
    fn bearer_tokens_are_read_from_the_authorization_header() {
        assert_eq!(bearer_token(&parts_with(Some("Bearer abc"))), Some("abc"));
        assert_eq!(bearer_token(&parts_with(Some("bearer  abc "))), Some("abc"));
        assert_eq!(bearer_token(&parts_with(Some("Basic abc"))), None);
        assert_eq!(bearer_token(&parts_with(Some("Bearer "))), None);
        assert_eq!(bearer_token(&parts_with(Some("Bearer"))), None);
        assert_eq!(bearer_token(&parts_with(None)), None);
    }

    #[test]
    fn hashes_compare_equal_only_when_identical() {
        assert!(constant_time_eq(b"abcd", b"abcd"));
        assert!(!constant_time_eq(b"abcd", b"abce"));
        assert!(!constant_time_eq(b"abcd", b"abc"));
    }
}
