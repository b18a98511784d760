//! The gate: may the business send this message now? The hot path: one authentication, one
//! business read and the consent lookup, nothing else.

use axum::Router;
use axum::extract::State;
use axum::routing::post;
use optin_core::decision::{Decision, ReasonView};
use optin_core::phone::Region;
use optin_store::gate;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::BusinessAuth;
use crate::error::{ApiError, ProblemDetails};
use crate::extract::Json;
use crate::state::AppState;

pub(crate) fn router() -> Router<AppState> {
    Router::new().route("/v1/decisions", post(decide))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct DecisionRequest {
    #[schema(example = "+14155552671")]
    phone: String,
    /// ISO 3166-1 alpha-2 hint for national numbers.
    country: Option<String>,
    /// The message's category.
    #[schema(example = "offers")]
    category: String,
}

/// The gate's answer: allowed, or every reason it is not.
#[derive(Debug, Serialize, ToSchema)]
pub struct DecisionView {
    allowed: bool,
    /// Codes: `invalid_phone`, `not_a_mobile_number`, `unknown_category`, `no_opt_in`, `opted_out`.
    reasons: Vec<ReasonView>,
}

impl From<&Decision> for DecisionView {
    fn from(decision: &Decision) -> DecisionView {
        DecisionView { allowed: decision.allowed(), reasons: decision.reasons.iter().map(ReasonView::from).collect() }
    }
}

/// Decides one business-initiated message. A refusal is a 200 with reasons, not an error.
#[utoipa::path(post, path = "/v1/decisions", tag = "business", security(("business_key" = [])),
    request_body = DecisionRequest,
    responses(
        (status = 200, body = DecisionView),
        (status = 422, description = "`invalid_country`, `invalid_body`", body = ProblemDetails, content_type = "application/problem+json"),
    ))]
pub(crate) async fn decide(
    State(state): State<AppState>,
    BusinessAuth(business): BusinessAuth,
    Json(request): Json<DecisionRequest>,
) -> Result<axum::Json<DecisionView>, ApiError> {
    let region = match request.country.as_deref() {
        Some(code) => Some(Region::parse(code).map_err(|e| ApiError::invalid(e.code(), e.to_string()))?),
        None => None,
    };
    let decision = gate::decide_send(state.store(), &business, &request.phone, region, &request.category).await?;
    state.metrics().record_decision(decision.allowed());
    Ok(axum::Json(DecisionView::from(&decision)))
}
