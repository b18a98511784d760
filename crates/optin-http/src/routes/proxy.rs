//! The send proxy: a drop-in base URL for an unmodified WhatsApp client. Every message is decided
//! exactly as `POST /v1/decisions` would decide it; an allowed one is forwarded unchanged to the
//! sender's upstream with the credential optin stores for it, and the upstream's answer comes
//! back unchanged; a refused one is answered 400 in the platform's own error shape (`graph`).
//!
//! | shape | route | the caller's optin key in |
//! |---|---|---|
//! | Cloud API | `POST /proxy/{business_id}/{version}/{phone_number_id}/messages` | `Authorization: Bearer` |
//! | 360dialog | `POST /proxy/{business_id}/messages` | `D360-API-KEY` |
//!
//! The shape is the client's; where the message goes is the sender's (`provider`, `base_url`). The
//! 360dialog shape sends from the business's 360dialog sender, or from the sender
//! `X-Optin-Phone-Number-Id` names (required when the business has several).
//!
//! An accepted message (2xx with `messages[0].id`) is remembered (`Store::record_forwarded_message`)
//! so that its status webhooks are attributed to its template and category. The body and the
//! credential are never logged.

mod graph;
mod message;
mod record;
mod sender;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use axum::routing::post;
use jiff::Timestamp;
use optin_core::business::Business;
use optin_core::ids::BusinessId;
use optin_core::phone::PhoneNumber;
use optin_core::secret::hash_secret;
use optin_store::gate::{self, GateAnswer, MessageRequest};

use self::graph::{GraphError, GraphErrorEnvelope};
use self::message::{MessageKind, SendRequest, read_send_request};
use self::record::remember;
use self::sender::{SenderChoice, choose_sender};
use crate::extract::Path;
use crate::forward::{ForwardFailure, ForwardRequest, UpstreamAnswer};
use crate::state::AppState;

/// Largest send body accepted (media go by id or link, so real bodies are a few KiB).
const BODY_LIMIT: usize = 1024 * 1024;
/// Names the sender for the 360dialog shape when the business has several.
const SENDER_HEADER: &str = "x-optin-phone-number-id";
const D360_KEY_HEADER: &str = "d360-api-key";
const MESSAGES_METRIC: &str = "optin_proxy_messages_total";

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/proxy/{business_id}/{version}/{phone_number_id}/messages", post(send_cloud_api))
        .route("/proxy/{business_id}/messages", post(send_360dialog))
}

/// One proxied request, before anything was checked.
struct ProxyCall<'a> {
    business_id: &'a str,
    key: Option<&'a str>,
    key_header: &'static str,
    choice: SenderChoice<'a>,
}

/// Sends a message through the gate, in the Cloud API's shape: point a client's Graph base URL at
/// `/proxy/{business_id}` and give it the business's optin API key as its access token.
#[utoipa::path(post, path = "/proxy/{business_id}/{version}/{phone_number_id}/messages", tag = "proxy",
    security(("business_key" = [])),
    params(
        ("business_id" = String, Path, format = Uuid),
        ("version" = String, Path, description = "The Graph API version to call, e.g. `v23.0`"),
        ("phone_number_id" = String, Path, description = "A sender of the business"),
    ),
    request_body(content = Object, description = "A Cloud API send request (`to`, `type`, ...), forwarded unchanged; up to 1 MiB"),
    responses(
        (status = 200, description = "Allowed: the upstream's answer, unchanged (its status, content type and body, whatever they are)", body = Object),
        (status = 400, description = "Refused by the gate (or an invalid request): the platform's error shape with optin's reasons", body = GraphErrorEnvelope),
        (status = 401, description = "No key, or not a key of this business (Graph code 190)", body = GraphErrorEnvelope),
        (status = 404, description = "`phone_number_id` is not a sender of this business", body = GraphErrorEnvelope),
        (status = 502, description = "The upstream could not be reached; nothing was sent", body = GraphErrorEnvelope),
        (status = 504, description = "The upstream did not answer; the message may have been sent (not retried)", body = GraphErrorEnvelope),
    ))]
pub(crate) async fn send_cloud_api(
    State(state): State<AppState>,
    Path((business_id, version, phone_number_id)): Path<(String, String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let call = ProxyCall {
        business_id: &business_id,
        key: bearer_token(&headers),
        key_header: "Authorization: Bearer",
        choice: SenderChoice::Path { version: &version, phone_number_id: &phone_number_id },
    };
    answer(&state, call, &headers, body).await
}

/// Sends a message through the gate, in 360dialog's shape: point a client's base URL at
/// `/proxy/{business_id}` and give it the business's optin API key as its `D360-API-KEY`.
#[utoipa::path(post, path = "/proxy/{business_id}/messages", tag = "proxy",
    security(("d360_api_key" = [])),
    params(
        ("business_id" = String, Path, format = Uuid),
        ("X-Optin-Phone-Number-Id" = Option<String>, Header,
            description = "The sender to send from; required when the business has several 360dialog senders"),
    ),
    request_body(content = Object, description = "A Cloud API send request (`to`, `type`, ...), forwarded unchanged; up to 1 MiB"),
    responses(
        (status = 200, description = "Allowed: the upstream's answer, unchanged (its status, content type and body, whatever they are)", body = Object),
        (status = 400, description = "Refused by the gate, an invalid request, or several 360dialog senders and no `X-Optin-Phone-Number-Id`", body = GraphErrorEnvelope),
        (status = 401, description = "No key, or not a key of this business (Graph code 190)", body = GraphErrorEnvelope),
        (status = 404, description = "No 360dialog sender, or `X-Optin-Phone-Number-Id` names no sender of this business", body = GraphErrorEnvelope),
        (status = 502, description = "The upstream could not be reached; nothing was sent", body = GraphErrorEnvelope),
        (status = 504, description = "The upstream did not answer; the message may have been sent (not retried)", body = GraphErrorEnvelope),
    ))]
pub(crate) async fn send_360dialog(
    State(state): State<AppState>,
    Path(business_id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let call = ProxyCall {
        business_id: &business_id,
        key: header_text(&headers, D360_KEY_HEADER),
        key_header: "D360-API-KEY",
        choice: SenderChoice::Dialog360 { phone_number_id: header_text(&headers, SENDER_HEADER) },
    };
    answer(&state, call, &headers, body).await
}

async fn answer(state: &AppState, call: ProxyCall<'_>, headers: &HeaderMap, body: Body) -> Response {
    match proxy(state, call, body).await {
        Ok(response) => response,
        Err(error) => {
            let outcome = if error.status() == StatusCode::BAD_REQUEST { "refused" } else { "failed" };
            metrics::counter!(MESSAGES_METRIC, "outcome" => outcome).increment(1);
            tracing::debug!(status = error.status().as_u16(), code = error.first_reason(), "proxied message not sent");
            error.into_response(header_text(headers, "x-request-id").unwrap_or_default())
        }
    }
}

/// Authenticates, decides, forwards when allowed and remembers what the upstream accepted.
async fn proxy(state: &AppState, call: ProxyCall<'_>, body: Body) -> Result<Response, GraphError> {
    let business = authenticate(state, &call).await?;
    let (sender, api_version) = choose_sender(state, &business, &call.choice).await?;
    let body = crate::extract::read_limited(body, BODY_LIMIT).await.map_err(|error| match error.status() {
        StatusCode::PAYLOAD_TOO_LARGE => GraphError::too_large(BODY_LIMIT),
        _ => GraphError::invalid("unreadable_body", "the request body could not be read".to_owned()),
    })?;
    let request = read_send_request(&body).map_err(|detail| GraphError::invalid("invalid_message", detail))?;
    let decided = decide(state, &business, &request).await?;
    let forwarder = state.forwarder().ok_or_else(GraphError::no_forwarder)?;
    let forward = ForwardRequest { sender: &sender, api_version: &api_version, body: &body };
    let upstream = forwarder.forward(forward).await.map_err(forward_error)?;
    let accepted = (200..300).contains(&upstream.status);
    let outcome = if accepted { "forwarded" } else { "upstream_error" };
    metrics::counter!(MESSAGES_METRIC, "outcome" => outcome).increment(1);
    if accepted {
        remember(state, &business, &sender, &request, &decided, &upstream).await;
    }
    Ok(upstream_response(upstream))
}

/// The business the path names, if the key is one of its keys.
async fn authenticate(state: &AppState, call: &ProxyCall<'_>) -> Result<Business, GraphError> {
    let unauthorized = || GraphError::unauthorized(call.key_header);
    let business_id: BusinessId = call.business_id.parse().map_err(|_| unauthorized())?;
    let key = call.key.ok_or_else(unauthorized)?;
    let store = state.store();
    let owner = store.authenticate(&hash_secret(key)).await.map_err(GraphError::store)?;
    if owner != Some(business_id) {
        return Err(unauthorized());
    }
    let business = store.business(business_id).await.map_err(GraphError::store)?.ok_or_else(unauthorized)?;
    tracing::Span::current().record("business", tracing::field::display(business.id));
    Ok(business)
}

/// Decides as `POST /v1/decisions` does; `Err` is the refusal.
async fn decide(state: &AppState, business: &Business, request: &SendRequest) -> Result<GateAnswer, GraphError> {
    let message = match &request.kind {
        MessageKind::Template { name, language } => MessageRequest::Template { name, language },
        MessageKind::FreeForm => MessageRequest::FreeForm,
    };
    let mut answer = gate::decide_message_send(state.store(), business, &request.to, None, message, Timestamp::now())
        .await
        .map_err(GraphError::store)?;
    // A template outside the service window starts a business-initiated conversation: it takes a
    // place under the messaging limit (unique recipients per rolling 24 hours), or is refused.
    let business_initiated =
        matches!(request.kind, MessageKind::Template { .. }) && answer.service_window_closes_at.is_none();
    if let (true, true, Some(phone)) = (answer.decision.allowed(), business_initiated, answer.phone)
        && !take_place(state, business, phone).await?
    {
        answer.decision.reasons.push(optin_core::decision::Reason::TierCapReached);
    }
    state.metrics().record_decision(answer.decision.allowed());
    if !answer.decision.allowed() {
        return Err(GraphError::refused(&answer.decision));
    }
    Ok(answer)
}

/// Whether the recipient gets (or already has) a place under the business's messaging limit.
async fn take_place(state: &AppState, business: &Business, phone: PhoneNumber) -> Result<bool, GraphError> {
    let placed = optin_store::capacity::reserve_capacity(state.store(), business.id, &[phone], Timestamp::now())
        .await
        .map_err(|error| match error {
            optin_store::UseCaseError::Store(error) => GraphError::store(error),
            optin_store::UseCaseError::Rejected(rejection) => {
                GraphError::invalid("invalid_recipient", rejection.detail().to_owned())
            }
        })?;
    Ok(placed == [true])
}

fn forward_error(failure: ForwardFailure) -> GraphError {
    match failure {
        ForwardFailure::Unusable(reason) => GraphError::not_sent("upstream_unusable", &reason),
        ForwardFailure::Unreachable(reason) => GraphError::not_sent("upstream_unreachable", &reason),
        ForwardFailure::NoAnswer(reason) => GraphError::no_answer(&reason),
    }
}

/// The upstream's answer as the client's: status, content type and body unchanged.
fn upstream_response(upstream: UpstreamAnswer) -> Response {
    let status = StatusCode::from_u16(upstream.status).unwrap_or(StatusCode::BAD_GATEWAY);
    let mut response = Response::new(Body::from(upstream.body));
    *response.status_mut() = status;
    if let Some(content_type) = upstream.content_type.and_then(|value| HeaderValue::from_str(&value).ok()) {
        response.headers_mut().insert(header::CONTENT_TYPE, content_type);
    }
    response
}

/// The token of `Authorization: Bearer <token>`.
fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let (scheme, token) = header_text(headers, header::AUTHORIZATION.as_str())?.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

fn header_text<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name)?.to_str().ok().map(str::trim).filter(|text| !text.is_empty())
}
