//! The authenticated business's own profile.

use axum::Router;
use axum::extract::State;
use axum::routing::{get, put};
use optin_store::tenancy;
use serde::Deserialize;
use utoipa::ToSchema;

use crate::auth::BusinessAuth;
use crate::error::{ApiError, ProblemDetails};
use crate::extract::Json;
use crate::routes::businesses::BusinessView;
use crate::state::AppState;

pub(crate) fn router() -> Router<AppState> {
    Router::new().route("/v1/business", get(get_business)).route("/v1/business/brand-names", put(set_brand_names))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct BrandNamesRequest {
    /// Other names a notice may use to name the business (at most 20); replaces the current list.
    #[schema(example = json!(["Acme"]))]
    brand_names: Vec<String>,
}

/// The business the API key belongs to.
#[utoipa::path(get, path = "/v1/business", tag = "business", security(("business_key" = [])),
    responses((status = 200, body = BusinessView), (status = 401, body = ProblemDetails, content_type = "application/problem+json")))]
pub(crate) async fn get_business(BusinessAuth(business): BusinessAuth) -> axum::Json<BusinessView> {
    axum::Json(BusinessView::from(&business))
}

/// Replaces the business's brand names.
#[utoipa::path(put, path = "/v1/business/brand-names", tag = "business", security(("business_key" = [])),
    request_body = BrandNamesRequest,
    responses(
        (status = 200, description = "The updated business", body = BusinessView),
        (status = 422, description = "`too_many_brand_names`, `invalid_name`", body = ProblemDetails, content_type = "application/problem+json"),
    ))]
pub(crate) async fn set_brand_names(
    State(state): State<AppState>,
    BusinessAuth(business): BusinessAuth,
    Json(request): Json<BrandNamesRequest>,
) -> Result<axum::Json<BusinessView>, ApiError> {
    let business = tenancy::set_brand_names(state.store(), business.id, &request.brand_names).await?;
    Ok(axum::Json(BusinessView::from(&business)))
}
