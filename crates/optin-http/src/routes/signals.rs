//! Signals: what the platform told us about quality (message statuses, template and phone number
//! quality, account updates, marketing preferences), and things kept for a human to look at.

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use jiff::Timestamp;
use optin_core::phone::PhoneNumber;
use optin_store::channel::{Signal, SignalFilter, SignalKind};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::BusinessAuth;
use crate::error::{ApiError, ProblemDetails};
use crate::extract::Query;
use crate::state::AppState;

/// Most signals one page holds.
const MAX_PAGE: usize = 1000;

pub(crate) fn router() -> Router<AppState> {
    Router::new().route("/v1/signals", get(list_signals))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct SignalQuery {
    /// `message_status`, `template_status`, `template_quality`, `template_category`,
    /// `phone_number_quality`, `account`, `user_preference`, `possible_opt_out`, `unmatched_reply`,
    /// `unlinked_opt_out`.
    kind: Option<String>,
    /// The contact, in E.164.
    phone: Option<String>,
    /// The contact's business-scoped user id (for users known by username).
    user_id: Option<String>,
    /// A message id (`wamid...`).
    message_id: Option<String>,
    template: Option<String>,
    /// The status, event or score: `failed`, `PAUSED`, `RED`, `stop`...
    status: Option<String>,
    /// A platform error code, such as 131050.
    error_code: Option<i64>,
    /// RFC 3339; signals that occurred at or after.
    since: Option<String>,
    /// RFC 3339; signals that occurred before.
    until: Option<String>,
    /// Paging: the `next_after` of the previous page.
    after: Option<i64>,
    /// 1 to 1000, default 100.
    limit: Option<usize>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SignalView {
    id: i64,
    kind: &'static str,
    #[schema(value_type = String, format = DateTime)]
    occurred_at: Timestamp,
    #[schema(value_type = String, format = DateTime)]
    received_at: Timestamp,
    phone_number_id: Option<String>,
    phone: Option<String>,
    user_id: Option<String>,
    message_id: Option<String>,
    template_name: Option<String>,
    template_language: Option<String>,
    /// The business category the message counted against (statuses of messages the proxy
    /// forwarded: their template's linked category).
    category: Option<String>,
    status: Option<String>,
    error_codes: Vec<i64>,
    #[schema(value_type = Object)]
    detail: serde_json::Value,
}

impl From<&Signal> for SignalView {
    fn from(signal: &Signal) -> SignalView {
        let s = &signal.signal;
        SignalView {
            id: signal.id,
            kind: s.kind.as_str(),
            occurred_at: s.occurred_at,
            received_at: signal.received_at,
            phone_number_id: s.phone_number_id.clone(),
            phone: s.phone.map(|p| p.e164()),
            user_id: s.user_id.clone(),
            message_id: s.message_id.clone(),
            template_name: s.template_name.clone(),
            template_language: s.template_language.clone(),
            category: s.category.as_ref().map(ToString::to_string),
            status: s.status.clone(),
            error_codes: s.error_codes.clone(),
            detail: s.detail.clone(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SignalList {
    signals: Vec<SignalView>,
    /// Pass as `after` for the next page; absent on the last page.
    next_after: Option<i64>,
}

impl SignalList {
    pub fn new(signals: &[Signal], limit: usize) -> SignalList {
        let next_after = (signals.len() == limit).then(|| signals.last().map(|s| s.id)).flatten();
        SignalList { signals: signals.iter().map(SignalView::from).collect(), next_after }
    }
}

/// The business's signals, oldest first, filtered.
#[utoipa::path(get, path = "/v1/signals", tag = "whatsapp", security(("business_key" = [])),
    params(SignalQuery),
    responses(
        (status = 200, body = SignalList),
        (status = 422, description = "`invalid_query`, `unknown_signal_kind`, `invalid_phone`, `invalid_time`",
            body = ProblemDetails, content_type = "application/problem+json"),
    ))]
pub(crate) async fn list_signals(
    State(state): State<AppState>,
    BusinessAuth(business): BusinessAuth,
    Query(query): Query<SignalQuery>,
) -> Result<axum::Json<SignalList>, ApiError> {
    let filter = signal_filter(query)?;
    let signals = state.store().signals(business.id, &filter).await?;
    Ok(axum::Json(SignalList::new(&signals, filter.limit)))
}

fn signal_filter(query: SignalQuery) -> Result<SignalFilter, ApiError> {
    let kind = match query.kind.as_deref() {
        Some(text) => Some(SignalKind::parse(text).ok_or_else(|| {
            let kinds: Vec<&str> = SignalKind::ALL.iter().map(SignalKind::as_str).collect();
            ApiError::invalid("unknown_signal_kind", format!("kind must be one of: {}", kinds.join(", ")))
        })?),
        None => None,
    };
    let phone = match query.phone.as_deref() {
        Some(text) => Some(PhoneNumber::parse(text, None).map_err(|e| ApiError::invalid(e.code(), e.to_string()))?),
        None => None,
    };
    let limit = query.limit.unwrap_or(100);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ApiError::invalid("invalid_query", format!("limit must be 1 to {MAX_PAGE}")));
    }
    Ok(SignalFilter {
        kind,
        phone,
        user_id: query.user_id,
        message_id: query.message_id,
        template_name: query.template,
        status: query.status,
        error_code: query.error_code,
        since: parse_time(query.since.as_deref(), "since")?,
        until: parse_time(query.until.as_deref(), "until")?,
        after: query.after,
        limit,
    })
}

pub(crate) fn parse_time(text: Option<&str>, field: &str) -> Result<Option<Timestamp>, ApiError> {
    text.map(|t| {
        t.parse::<Timestamp>().map_err(|_| {
            ApiError::invalid("invalid_time", format!("{field} must be an RFC 3339 time, such as 2026-01-31T12:00:00Z"))
        })
    })
    .transpose()
}
