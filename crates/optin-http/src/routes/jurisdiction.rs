//! The business's jurisdiction policy: quiet hours, frequency caps, consent lifetimes and double
//! opt-in by the recipient's country or region, over the shipped defaults.

use axum::Router;
use axum::extract::State;
use axum::routing::put;
use jiff::Timestamp;
use optin_core::jurisdiction::SHIPPED_RULES;
use optin_store::jurisdiction::{self, JurisdictionSettings};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::BusinessAuth;
use crate::error::{ApiError, ProblemDetails};
use crate::extract::Json;
use crate::state::AppState;

pub(crate) fn router() -> Router<AppState> {
    Router::new().route("/v1/jurisdiction-policy", put(set_policy).get(get_policy))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct JurisdictionRequest {
    /// Rules in the documented TOML format (`shipped_rules` shows it), laid over the shipped
    /// defaults table by table and rule by rule. Empty: the shipped defaults alone.
    #[schema(example = "[region.US-CA]\nquiet_hours = { start = \"09:00\", end = \"20:00\" }\n")]
    rules: String,
    /// IANA zone for numbers whose zone is ambiguous (used when it is one of their candidates).
    #[schema(example = "America/Sao_Paulo")]
    default_time_zone: Option<String>,
}

/// The policy as set, and the shipped defaults it is laid over.
#[derive(Debug, Serialize, ToSchema)]
pub struct JurisdictionView {
    rules: String,
    default_time_zone: Option<String>,
    shipped_rules: &'static str,
}

impl JurisdictionView {
    pub fn new(settings: JurisdictionSettings) -> JurisdictionView {
        JurisdictionView {
            rules: settings.rules,
            default_time_zone: settings.default_time_zone,
            shipped_rules: SHIPPED_RULES,
        }
    }
}

/// Replaces the business's jurisdiction rules (checked; every error names the TOML key).
#[utoipa::path(put, path = "/v1/jurisdiction-policy", tag = "business", security(("business_key" = [])),
    request_body = JurisdictionRequest,
    responses(
        (status = 200, body = JurisdictionView),
        (status = 422, description = "`policy_syntax`, `policy_unknown_country`, `policy_unknown_region`, `policy_invalid_time`, `unknown_time_zone`, ...",
            body = ProblemDetails, content_type = "application/problem+json"),
    ))]
pub(crate) async fn set_policy(
    State(state): State<AppState>,
    BusinessAuth(business): BusinessAuth,
    Json(request): Json<JurisdictionRequest>,
) -> Result<axum::Json<JurisdictionView>, ApiError> {
    let settings = JurisdictionSettings { rules: request.rules, default_time_zone: request.default_time_zone };
    jurisdiction::set_jurisdiction_policy(state.store(), &business, &settings, Timestamp::now()).await?;
    Ok(axum::Json(JurisdictionView::new(settings)))
}

/// The business's jurisdiction rules and the shipped defaults.
#[utoipa::path(get, path = "/v1/jurisdiction-policy", tag = "business", security(("business_key" = [])),
    responses((status = 200, body = JurisdictionView)))]
pub(crate) async fn get_policy(
    State(state): State<AppState>,
    BusinessAuth(business): BusinessAuth,
) -> Result<axum::Json<JurisdictionView>, ApiError> {
    let settings = jurisdiction::jurisdiction_settings(state.store(), business.id).await?;
    Ok(axum::Json(JurisdictionView::new(settings)))
}
