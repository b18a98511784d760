//! The webhook inbox: every delivery as received, with how its processing went; failed ones can
//! be replayed.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use jiff::Timestamp;
use optin_store::channel::{Delivery, DeliveryFilter, DeliveryState};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::BusinessAuth;
use crate::error::{ApiError, ProblemDetails};
use crate::extract::{Path, Query};
use crate::state::AppState;

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/inbox", get(list_deliveries))
        .route("/v1/inbox/{delivery_id}", get(get_delivery))
        .route("/v1/inbox/{delivery_id}/replay", post(replay_delivery))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct InboxQuery {
    /// `pending`, `processed` or `failed`.
    state: Option<String>,
    /// Paging backwards: deliveries with a smaller id.
    before: Option<i64>,
    /// 1 to 500, default 50.
    limit: Option<usize>,
}

/// A delivery in the inbox. `body` is shown only for one delivery, not in lists.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryView {
    id: i64,
    #[schema(value_type = String, format = DateTime)]
    received_at: Timestamp,
    /// `pending`, `processed` or `failed`.
    state: &'static str,
    attempts: u32,
    /// Why processing failed, or what it skipped.
    note: Option<String>,
    #[schema(value_type = Option<String>, format = DateTime)]
    processed_at: Option<Timestamp>,
    size_bytes: usize,
    /// The delivery as received (lossy UTF-8).
    #[serde(skip_serializing_if = "Option::is_none")]
    body: Option<String>,
}

impl DeliveryView {
    pub fn new(delivery: &Delivery, with_body: bool) -> DeliveryView {
        DeliveryView {
            id: delivery.id,
            received_at: delivery.received_at,
            state: delivery.state.as_str(),
            attempts: delivery.attempts,
            note: delivery.note.clone(),
            processed_at: delivery.processed_at,
            size_bytes: delivery.body.len(),
            body: with_body.then(|| String::from_utf8_lossy(&delivery.body).into_owned()),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryList {
    deliveries: Vec<DeliveryView>,
}

impl DeliveryList {
    pub fn new(deliveries: &[Delivery]) -> DeliveryList {
        DeliveryList { deliveries: deliveries.iter().map(|d| DeliveryView::new(d, false)).collect() }
    }
}

/// The business's webhook deliveries, newest first.
#[utoipa::path(get, path = "/v1/inbox", tag = "whatsapp", security(("business_key" = [])),
    params(InboxQuery),
    responses(
        (status = 200, body = DeliveryList),
        (status = 422, description = "`invalid_query`", body = ProblemDetails, content_type = "application/problem+json"),
    ))]
pub(crate) async fn list_deliveries(
    State(state): State<AppState>,
    BusinessAuth(business): BusinessAuth,
    Query(query): Query<InboxQuery>,
) -> Result<axum::Json<DeliveryList>, ApiError> {
    let delivery_state =
        match query.state.as_deref() {
            Some(text) => Some(DeliveryState::parse(text).ok_or_else(|| {
                ApiError::invalid("invalid_query", "state must be `pending`, `processed` or `failed`")
            })?),
            None => None,
        };
    let limit = query.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::invalid("invalid_query", "limit must be 1 to 500"));
    }
    let filter = DeliveryFilter { state: delivery_state, before: query.before, limit };
    let deliveries = state.store().list_deliveries(business.id, &filter).await?;
    Ok(axum::Json(DeliveryList::new(&deliveries)))
}

/// One delivery, with its body.
#[utoipa::path(get, path = "/v1/inbox/{delivery_id}", tag = "whatsapp", security(("business_key" = [])),
    params(("delivery_id" = i64, Path)),
    responses(
        (status = 200, body = DeliveryView),
        (status = 404, description = "`delivery_not_found`", body = ProblemDetails, content_type = "application/problem+json"),
    ))]
pub(crate) async fn get_delivery(
    State(state): State<AppState>,
    BusinessAuth(business): BusinessAuth,
    Path(delivery_id): Path<String>,
) -> Result<axum::Json<DeliveryView>, ApiError> {
    let id = delivery_id.parse().map_err(|_| not_found())?;
    let delivery = state.store().delivery(business.id, id).await?.ok_or_else(not_found)?;
    Ok(axum::Json(DeliveryView::new(&delivery, true)))
}

/// Queues a delivery to be processed again (after fixing what made it fail). Processing it
/// twice changes nothing that was already recorded.
#[utoipa::path(post, path = "/v1/inbox/{delivery_id}/replay", tag = "whatsapp", security(("business_key" = [])),
    params(("delivery_id" = i64, Path)),
    responses(
        (status = 202, body = DeliveryView),
        (status = 404, description = "`delivery_not_found`", body = ProblemDetails, content_type = "application/problem+json"),
    ))]
pub(crate) async fn replay_delivery(
    State(state): State<AppState>,
    BusinessAuth(business): BusinessAuth,
    Path(delivery_id): Path<String>,
) -> Result<(StatusCode, axum::Json<DeliveryView>), ApiError> {
    let id = delivery_id.parse().map_err(|_| not_found())?;
    state.store().requeue_delivery(business.id, id).await.map_err(|error| match error {
        optin_store::StoreError::NotFound => not_found(),
        other => other.into(),
    })?;
    state.wake_inbox();
    let delivery = state.store().delivery(business.id, id).await?.ok_or_else(not_found)?;
    Ok((StatusCode::ACCEPTED, axum::Json(DeliveryView::new(&delivery, false))))
}

fn not_found() -> ApiError {
    ApiError::not_found("delivery_not_found", "this business has no delivery with this id")
}
