//! SMS keywords: the business's numbers and keywords (`/v1/sms-settings`), and the inbound SMS
//! webhook in the common provider format (form-encoded `From`, `To`, `Body`, `MessageSid`, signed
//! with `X-Twilio-Signature`), answered in the provider's XML (TwiML).

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{post, put};
use jiff::Timestamp;
use optin_core::sms::{SIGNATURE_HEADER, twiml};
use optin_store::sms::{self, InboundSms, SmsSettings, SmsSettingsInput};
use serde::Serialize;
use utoipa::ToSchema;

use super::webhooks::{business, unauthorized};
use crate::auth::BusinessAuth;
use crate::error::{ApiError, ProblemDetails};
use crate::extract::{Json, Path};
use crate::state::AppState;

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/sms-settings", put(set_settings).get(get_settings))
        .route("/webhooks/sms/{business_id}", post(receive))
}

/// The SMS set-up as shown back: the auth token never is.
#[derive(Debug, Serialize, ToSchema)]
pub struct SmsSettingsView {
    #[schema(value_type = Object)]
    numbers: Vec<sms::SmsNumber>,
    contact: String,
    webhook_url: Option<String>,
    auth_token_set: bool,
}

impl From<SmsSettings> for SmsSettingsView {
    fn from(settings: SmsSettings) -> SmsSettingsView {
        SmsSettingsView {
            numbers: settings.numbers,
            contact: settings.contact,
            webhook_url: settings.webhook_url,
            auth_token_set: settings.auth_token.is_some(),
        }
    }
}

/// Sets the business's SMS numbers and join keywords, the contact HELP gives, and the provider's
/// auth token and webhook URL (signatures cover both).
#[utoipa::path(put, path = "/v1/sms-settings", tag = "business", security(("business_key" = [])),
    request_body(content = Object, description = "`{numbers: [{number, notice_id, join_keywords: {KEYWORD: [categories]}}], contact, auth_token, webhook_url}`"),
    responses(
        (status = 200, body = SmsSettingsView),
        (status = 422, description = "Every problem: `invalid_sms_number`, `unknown_notice`, `invalid_keyword`, `keyword_reserved`, `unknown_category`, `invalid_contact`, `auth_token_missing`, `invalid_webhook_url`...",
            body = ProblemDetails, content_type = "application/problem+json"),
    ))]
pub(crate) async fn set_settings(
    State(state): State<AppState>,
    BusinessAuth(business): BusinessAuth,
    Json(input): Json<SmsSettingsInput>,
) -> Result<axum::Json<SmsSettingsView>, ApiError> {
    let settings = sms::set_sms_settings(state.store(), &business, input, Timestamp::now()).await?;
    Ok(axum::Json(settings.into()))
}

#[utoipa::path(get, path = "/v1/sms-settings", tag = "business", security(("business_key" = [])),
    responses((status = 200, body = SmsSettingsView)))]
pub(crate) async fn get_settings(
    State(state): State<AppState>,
    BusinessAuth(business): BusinessAuth,
) -> Result<axum::Json<SmsSettingsView>, ApiError> {
    Ok(axum::Json(sms::sms_settings(state.store(), &business).await?.into()))
}

/// An inbound SMS: checked against the provider's signature (over the configured webhook URL and
/// every form field), then acted on: a join keyword opts in, the STOP family opts out, START
/// resubscribes, HELP answers. The reply is TwiML (an empty `<Response/>` when there is none).
#[utoipa::path(post, path = "/webhooks/sms/{business_id}", tag = "webhooks",
    params(("business_id" = String, Path, format = Uuid),
        ("X-Twilio-Signature" = String, Header, description = "base64 HMAC-SHA1 of the URL and the sorted fields, keyed with the auth token")),
    request_body(content = String, content_type = "application/x-www-form-urlencoded", description = "`From`, `To`, `Body`, `MessageSid` (other fields are signed and kept out)"),
    responses(
        (status = 200, description = "TwiML", body = String, content_type = "application/xml"),
        (status = 401, description = "`signature_missing`, `signature_mismatch`, `webhook_secret_not_set`", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 404, description = "`business_not_found`, `unknown_sms_number`", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 422, description = "`invalid_sms` (not a form, a field missing), `invalid_phone`", body = ProblemDetails, content_type = "application/problem+json"),
    ))]
pub(crate) async fn receive(
    State(state): State<AppState>,
    Path(business_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let business = business(&state, &business_id).await?;
    let settings = sms::sms_settings(state.store(), &business).await?;
    let params: Vec<(String, String)> = serde_urlencoded::from_bytes(&body)
        .map_err(|_| ApiError::invalid("invalid_sms", "the body is not a form (application/x-www-form-urlencoded)"))?;
    let signature = headers.get(SIGNATURE_HEADER).map(|v| v.to_str().unwrap_or_default());
    if let Err(rejection) = sms::verify_signature(&settings, &params, signature) {
        // The body is not logged: unauthenticated, and it holds a phone number and a message.
        tracing::warn!(business = %business.id, code = rejection.code(), "SMS webhook refused");
        return Err(unauthorized(rejection.code(), rejection.detail().to_owned()));
    }
    let field = |name: &str| params.iter().find(|(key, _)| key == name).map(|(_, value)| value.clone());
    let (Some(from), Some(to), Some(body), Some(message_sid)) =
        (field("From"), field("To"), field("Body"), field("MessageSid"))
    else {
        return Err(ApiError::invalid("invalid_sms", "the form needs From, To, Body and MessageSid"));
    };
    let inbound = InboundSms { from, to, body, message_sid };
    let reply = sms::receive_sms(state.store(), &business, &settings, inbound, Timestamp::now()).await?;
    Ok(([(header::CONTENT_TYPE, "application/xml")], twiml(reply.as_deref())).into_response())
}
