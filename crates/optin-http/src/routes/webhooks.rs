//! The WhatsApp webhook endpoint, one URL per business: Meta's verification handshake (`GET`)
//! and deliveries (`POST`).
//!
//! A delivery is authenticated on its raw bytes, before anything parses it, then written to the
//! inbox as received; only then is it answered 200. Processing happens afterwards (see
//! `optin_whatsapp::inbox`), so the answer is fast whatever the delivery holds.

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use jiff::Timestamp;
use optin_core::business::Business;
use optin_core::ids::BusinessId;
use optin_core::whatsapp::signature::{secrets_match, verify_hub_signature};
use optin_store::whatsapp::{self, WebhookSettings};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::error::{ApiError, ProblemDetails};
use crate::extract::{Path, Query};
use crate::state::AppState;

const SIGNATURE_HEADER: &str = "x-hub-signature-256";

pub(crate) fn router() -> Router<AppState> {
    Router::new().route("/webhooks/whatsapp/{business_id}", get(verify).post(receive))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct Handshake {
    #[serde(rename = "hub.mode")]
    #[param(rename = "hub.mode", example = "subscribe")]
    mode: Option<String>,
    #[serde(rename = "hub.verify_token")]
    #[param(rename = "hub.verify_token")]
    verify_token: Option<String>,
    #[serde(rename = "hub.challenge")]
    #[param(rename = "hub.challenge", example = "1158201444")]
    challenge: Option<String>,
}

/// Meta's verification handshake: answers `hub.challenge` when `hub.verify_token` is the
/// business's verify token.
#[utoipa::path(get, path = "/webhooks/whatsapp/{business_id}", tag = "webhooks",
    params(("business_id" = String, Path, format = Uuid), Handshake),
    responses(
        (status = 200, description = "The challenge, as plain text", body = String, content_type = "text/plain"),
        (status = 403, description = "`verify_token_mismatch`, `verify_token_not_set`", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 404, description = "`business_not_found`", body = ProblemDetails, content_type = "application/problem+json"),
    ))]
pub(crate) async fn verify(
    State(state): State<AppState>,
    Path(business_id): Path<String>,
    Query(handshake): Query<Handshake>,
) -> Result<Response, ApiError> {
    let business = business(&state, &business_id).await?;
    let settings = whatsapp::webhook_settings(state.store(), &business).await?;
    if handshake.mode.as_deref() != Some("subscribe") {
        return Err(ApiError::invalid("invalid_handshake", "hub.mode must be `subscribe`"));
    }
    let Some(expected) = settings.verify_token else {
        return Err(forbidden("verify_token_not_set", "set a verify_token with PUT /v1/webhook-settings first"));
    };
    let given = handshake.verify_token.unwrap_or_default();
    if !secrets_match(&expected, &given) {
        tracing::warn!(business = %business.id, "webhook handshake with a wrong verify token");
        return Err(forbidden("verify_token_mismatch", "hub.verify_token is not this business's verify token"));
    }
    let challenge = handshake.challenge.unwrap_or_default();
    if challenge.is_empty() || challenge.len() > 256 || !challenge.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ApiError::invalid("invalid_handshake", "hub.challenge must be 1 to 256 printable characters"));
    }
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], challenge).into_response())
}

/// The answer to an accepted delivery.
#[derive(Debug, Serialize, ToSchema)]
pub struct Received {
    /// The delivery's id in the inbox (`GET /v1/inbox/{id}`).
    delivery_id: i64,
}

/// Receives a webhook delivery: authenticated (`X-Hub-Signature-256` when an app secret is set,
/// the shared secret header when one is set), stored durably as received, answered 200; processed
/// right after.
#[utoipa::path(post, path = "/webhooks/whatsapp/{business_id}", tag = "webhooks",
    params(("business_id" = String, Path, format = Uuid)),
    request_body(content = Object, description = "A Cloud API webhook delivery (`object`, `entry[].changes[]`), up to 8 MiB"),
    responses(
        (status = 200, body = Received),
        (status = 401, description = "`signature_missing`, `signature_mismatch`, `signature_malformed`, `shared_secret_missing`, `shared_secret_mismatch`, `webhook_secret_not_set`",
            body = ProblemDetails, content_type = "application/problem+json"),
        (status = 404, description = "`business_not_found`", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 413, description = "`body_too_large`", body = ProblemDetails, content_type = "application/problem+json"),
    ))]
pub(crate) async fn receive(
    State(state): State<AppState>,
    Path(business_id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<axum::Json<Received>, ApiError> {
    let business = business(&state, &business_id).await?;
    let settings = whatsapp::webhook_settings(state.store(), &business).await?;
    let limit = state.settings().large_body_limit_bytes;
    let bytes = crate::extract::read_limited(body, limit).await?;
    if let Err(error) = authenticate(&settings, &headers, &bytes) {
        // The body is not logged: an unauthenticated body is not trusted, and may hold personal data.
        tracing::warn!(business = %business.id, code = error.problem().code, "webhook delivery refused");
        return Err(error);
    }
    let delivery_id = state.store().insert_delivery(business.id, Timestamp::now(), &bytes).await?;
    state.wake_inbox();
    Ok(axum::Json(Received { delivery_id }))
}

pub(crate) async fn business(state: &AppState, id: &str) -> Result<Business, ApiError> {
    let not_found = || ApiError::not_found("business_not_found", "no business has this id");
    let id: BusinessId = id.parse().map_err(|_| not_found())?;
    state.store().business(id).await?.ok_or_else(not_found)
}

/// Checks every secret the business configured; with none configured, nothing is accepted.
fn authenticate(settings: &WebhookSettings, headers: &HeaderMap, body: &[u8]) -> Result<(), ApiError> {
    if settings.app_secret.is_none() && settings.shared_secret.is_none() {
        return Err(unauthorized(
            "webhook_secret_not_set",
            "set an app_secret or a shared_secret with PUT /v1/webhook-settings before sending deliveries",
        ));
    }
    if let Some(secret) = &settings.app_secret {
        let signature = headers.get(SIGNATURE_HEADER).map(|v| v.to_str().unwrap_or_default());
        verify_hub_signature(secret.as_bytes(), signature, body)
            .map_err(|error| unauthorized(error.code(), format!("X-Hub-Signature-256: {error}")))?;
    }
    if let Some(shared) = &settings.shared_secret {
        let Some(given) = headers.get(shared.header.as_str()) else {
            return Err(unauthorized("shared_secret_missing", format!("the `{}` header is required", shared.header)));
        };
        if !secrets_match(&shared.value, given.to_str().unwrap_or_default()) {
            return Err(unauthorized("shared_secret_mismatch", format!("the `{}` header is wrong", shared.header)));
        }
    }
    Ok(())
}

pub(crate) fn unauthorized(code: &'static str, detail: impl Into<String>) -> ApiError {
    ApiError::client(StatusCode::UNAUTHORIZED, code, detail)
}

fn forbidden(code: &'static str, detail: impl Into<String>) -> ApiError {
    ApiError::client(StatusCode::FORBIDDEN, code, detail)
}
