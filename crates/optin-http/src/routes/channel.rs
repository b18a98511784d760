//! Setting a business up on WhatsApp: its senders, how its webhooks are authenticated, and its
//! channel policy.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, put};
use jiff::Timestamp;
use optin_store::channel::Sender;
use optin_store::whatsapp::{self, ChannelPolicy, SenderInput, WebhookSettings, WebhookSettingsInput};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::BusinessAuth;
use crate::error::{ApiError, ProblemDetails};
use crate::extract::{Json, parse_json};
use crate::state::AppState;

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/senders", get(list_senders).post(add_sender))
        .route("/v1/webhook-settings", put(update_webhook_settings).get(get_webhook_settings))
        .route("/v1/whatsapp-policy", put(set_policy).get(get_policy))
}

#[derive(Debug, Deserialize, ToSchema)]
#[allow(dead_code)]
pub(crate) struct SenderRequest {
    #[schema(example = "106540352242922")]
    phone_number_id: String,
    #[schema(example = "15550783881")]
    display_phone_number: String,
    #[schema(example = "102290129340398")]
    waba_id: String,
    /// `cloud_api` or `360dialog`.
    #[schema(example = "cloud_api")]
    provider: String,
    /// Default: `https://graph.facebook.com` (Cloud API) or `https://waba-v2.360dialog.io`.
    base_url: Option<String>,
    /// Cloud API version, default `v23.0`.
    api_version: Option<String>,
    /// The Cloud API access token or the 360dialog API key; stored to send, never shown again.
    credential: String,
}

/// A sender, without its credential.
#[derive(Debug, Serialize, ToSchema)]
pub struct SenderView {
    phone_number_id: String,
    display_phone_number: String,
    waba_id: String,
    provider: String,
    base_url: String,
    api_version: String,
    #[schema(value_type = String, format = DateTime)]
    created_at: Timestamp,
}

impl From<&Sender> for SenderView {
    fn from(sender: &Sender) -> SenderView {
        SenderView {
            phone_number_id: sender.phone_number_id.clone(),
            display_phone_number: sender.display_phone_number.clone(),
            waba_id: sender.waba_id.clone(),
            provider: sender.provider.as_str().to_owned(),
            base_url: sender.base_url.clone(),
            api_version: sender.api_version.clone(),
            created_at: sender.created_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SenderList {
    senders: Vec<SenderView>,
}

impl SenderList {
    pub fn new(senders: &[Sender]) -> SenderList {
        SenderList { senders: senders.iter().map(SenderView::from).collect() }
    }
}

/// Registers a WhatsApp business number of this business.
#[utoipa::path(post, path = "/v1/senders", tag = "whatsapp", security(("business_key" = [])),
    request_body = SenderRequest,
    responses(
        (status = 201, body = SenderView),
        (status = 409, description = "`sender_exists`", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 422, description = "`invalid_phone_number_id`, `invalid_provider`, `invalid_base_url`, ...",
            body = ProblemDetails, content_type = "application/problem+json"),
    ))]
pub(crate) async fn add_sender(
    State(state): State<AppState>,
    BusinessAuth(business): BusinessAuth,
    Json(request): Json<SenderInput>,
) -> Result<(StatusCode, axum::Json<SenderView>), ApiError> {
    let sender = whatsapp::register_sender(state.store(), &business, &request, Timestamp::now()).await?;
    Ok((StatusCode::CREATED, axum::Json(SenderView::from(&sender))))
}

/// The business's senders.
#[utoipa::path(get, path = "/v1/senders", tag = "whatsapp", security(("business_key" = [])),
    responses((status = 200, body = SenderList)))]
pub(crate) async fn list_senders(
    State(state): State<AppState>,
    BusinessAuth(business): BusinessAuth,
) -> Result<axum::Json<SenderList>, ApiError> {
    let senders = state.store().senders(business.id).await?;
    Ok(axum::Json(SenderList::new(&senders)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[allow(dead_code)]
pub(crate) struct WebhookSettingsRequest {
    /// Answered in Meta's verification handshake; `null` removes it.
    verify_token: Option<String>,
    /// Meta's app secret: `X-Hub-Signature-256` is then required on every delivery.
    app_secret: Option<String>,
    /// A header every delivery must carry (for 360dialog): `{"header": "X-Optin-Secret", "value": "..."}`.
    shared_secret: Option<SharedSecretRequest>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[allow(dead_code)]
pub(crate) struct SharedSecretRequest {
    header: String,
    value: String,
}

/// Which webhook settings are set (never their values), and where to point the webhooks.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookSettingsView {
    /// The callback path on this server: `/webhooks/whatsapp/<business id>`.
    callback_path: String,
    verify_token_set: bool,
    app_secret_set: bool,
    /// The header name of the shared secret, if one is set.
    shared_secret_header: Option<String>,
}

impl WebhookSettingsView {
    pub fn new(business: &optin_core::business::Business, settings: &WebhookSettings) -> WebhookSettingsView {
        WebhookSettingsView {
            callback_path: format!("/webhooks/whatsapp/{}", business.id),
            verify_token_set: settings.verify_token.is_some(),
            app_secret_set: settings.app_secret.is_some(),
            shared_secret_header: settings.shared_secret.as_ref().map(|s| s.header.clone()),
        }
    }
}

/// Sets the verify token, the app secret and/or the shared secret header (absent fields are
/// kept, `null` removes one).
#[utoipa::path(put, path = "/v1/webhook-settings", tag = "whatsapp", security(("business_key" = [])),
    request_body = WebhookSettingsRequest,
    responses(
        (status = 200, body = WebhookSettingsView),
        (status = 422, description = "`invalid_verify_token`, `invalid_app_secret`, `invalid_shared_secret`, ...",
            body = ProblemDetails, content_type = "application/problem+json"),
    ))]
pub(crate) async fn update_webhook_settings(
    State(state): State<AppState>,
    BusinessAuth(business): BusinessAuth,
    Json(request): Json<WebhookSettingsInput>,
) -> Result<axum::Json<WebhookSettingsView>, ApiError> {
    let settings = whatsapp::update_webhook_settings(state.store(), &business, &request, Timestamp::now()).await?;
    Ok(axum::Json(WebhookSettingsView::new(&business, &settings)))
}

/// Which webhook settings are set.
#[utoipa::path(get, path = "/v1/webhook-settings", tag = "whatsapp", security(("business_key" = [])),
    responses((status = 200, body = WebhookSettingsView)))]
pub(crate) async fn get_webhook_settings(
    State(state): State<AppState>,
    BusinessAuth(business): BusinessAuth,
) -> Result<axum::Json<WebhookSettingsView>, ApiError> {
    let settings = whatsapp::webhook_settings(state.store(), &business).await?;
    Ok(axum::Json(WebhookSettingsView::new(&business, &settings)))
}

/// Replaces the business's WhatsApp channel policy: opt-out scope, keywords, category aliases,
/// confirmations, re-subscription, the in-thread opt-in question and template category defaults.
#[utoipa::path(put, path = "/v1/whatsapp-policy", tag = "whatsapp", security(("business_key" = [])),
    request_body(content = Object, description = "The policy (see the README); every field is optional"),
    responses(
        (status = 200, body = Object, description = "The stored policy"),
        (status = 422, description = "`unknown_category`, `unknown_notice`, `invalid_keyword`, ...",
            body = ProblemDetails, content_type = "application/problem+json"),
    ))]
pub(crate) async fn set_policy(
    State(state): State<AppState>,
    BusinessAuth(business): BusinessAuth,
    crate::extract::JsonBytes(bytes): crate::extract::JsonBytes,
) -> Result<axum::Json<ChannelPolicy>, ApiError> {
    let policy: ChannelPolicy = parse_json(&bytes)?;
    whatsapp::set_channel_policy(state.store(), &business, &policy, Timestamp::now()).await?;
    Ok(axum::Json(policy))
}

/// The business's WhatsApp channel policy (the defaults if never set).
#[utoipa::path(get, path = "/v1/whatsapp-policy", tag = "whatsapp", security(("business_key" = [])),
    responses((status = 200, body = Object)))]
pub(crate) async fn get_policy(
    State(state): State<AppState>,
    BusinessAuth(business): BusinessAuth,
) -> Result<axum::Json<ChannelPolicy>, ApiError> {
    Ok(axum::Json(whatsapp::channel_policy(state.store(), &business).await?))
}
