//! The business's messaging limit (unique recipients of business-initiated messages per moving
//! 24 hours): set by hand here, or followed from the platform's webhooks; and how much of it the
//! last 24 hours used.

use axum::Router;
use axum::extract::State;
use axum::routing::put;
use jiff::Timestamp;
use optin_core::limit::MessagingLimit;
use optin_store::capacity::{self, LimitSource, MessagingLimitStatus};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::auth::BusinessAuth;
use crate::error::{ApiError, ProblemDetails};
use crate::extract::Json;
use crate::state::AppState;

pub(crate) fn router() -> Router<AppState> {
    Router::new().route("/v1/messaging-limit", put(set_messaging_limit).get(get_messaging_limit))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct MessagingLimitRequest {
    /// A tier (`TIER_250`, `TIER_2K`, `TIER_10K`, `TIER_100K`, `TIER_UNLIMITED`), a number of
    /// recipients (`-1` for unlimited) or `"unlimited"`.
    #[serde(default)]
    #[schema(value_type = MessagingLimit)]
    limit: Value,
}

/// The messaging limit and its use.
#[derive(Debug, Serialize, ToSchema)]
pub struct MessagingLimitView {
    /// `null` until a limit is set (nothing is capped).
    #[schema(value_type = Option<MessagingLimit>)]
    limit: Option<MessagingLimit>,
    /// `manual` (API or CLI) or `webhook`; `null` until set.
    #[schema(example = "manual")]
    source: Option<&'static str>,
    #[schema(value_type = Option<String>, format = DateTime)]
    updated_at: Option<Timestamp>,
    /// Unique recipients of business-initiated messages in the last 24 hours.
    recipients_last_24h: u64,
}

impl MessagingLimitView {
    pub fn new(status: &MessagingLimitStatus) -> MessagingLimitView {
        MessagingLimitView {
            limit: status.setting.map(|s| s.limit),
            source: status.setting.map(|s| s.source.as_str()),
            updated_at: status.setting.map(|s| s.updated_at),
            recipients_last_24h: status.recipients_last_24h,
        }
    }
}

/// Sets the business's messaging limit by hand (a later limit from a webhook replaces it).
#[utoipa::path(put, path = "/v1/messaging-limit", tag = "whatsapp", security(("business_key" = [])),
    request_body = MessagingLimitRequest,
    responses(
        (status = 200, body = MessagingLimitView),
        (status = 422, description = "`invalid_messaging_limit`", body = ProblemDetails,
            content_type = "application/problem+json"),
    ))]
pub(crate) async fn set_messaging_limit(
    State(state): State<AppState>,
    BusinessAuth(business): BusinessAuth,
    Json(request): Json<MessagingLimitRequest>,
) -> Result<axum::Json<MessagingLimitView>, ApiError> {
    let limit = capacity::parse_messaging_limit(&request.limit)?;
    let now = Timestamp::now();
    capacity::set_messaging_limit(state.store(), business.id, limit, LimitSource::Manual, now).await?;
    let status = capacity::messaging_limit_status(state.store(), business.id, now).await?;
    Ok(axum::Json(MessagingLimitView::new(&status)))
}

/// The business's messaging limit, where it came from, and the unique recipients of
/// business-initiated messages in the last 24 hours.
#[utoipa::path(get, path = "/v1/messaging-limit", tag = "whatsapp", security(("business_key" = [])),
    responses((status = 200, body = MessagingLimitView)))]
pub(crate) async fn get_messaging_limit(
    State(state): State<AppState>,
    BusinessAuth(business): BusinessAuth,
) -> Result<axum::Json<MessagingLimitView>, ApiError> {
    let status = capacity::messaging_limit_status(state.store(), business.id, Timestamp::now()).await?;
    Ok(axum::Json(MessagingLimitView::new(&status)))
}
