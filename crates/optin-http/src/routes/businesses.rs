//! Operator endpoints for businesses: create, list, add categories.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use jiff::Timestamp;
use optin_core::business::{Business, TemplateCategory};
use optin_core::ids::BusinessId;
use optin_store::tenancy::IssuedKey;
use optin_store::tenancy::{self, CategoryInput};
use optin_store::{StoreError, UseCaseError};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::OperatorAuth;
use crate::error::{ApiError, ProblemDetails};
use crate::extract::{Json, Path};
use crate::routes::keys::IssuedKeyView;
use crate::state::AppState;

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/businesses", post(create_business).get(list_businesses))
        .route("/v1/businesses/{business_id}/categories", post(add_categories))
}

/// A message category as a client describes it.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CategoryRequest {
    /// `[a-z][a-z0-9_]{0,63}`, e.g. `order_updates`.
    #[schema(example = "order_updates")]
    name: String,
    /// `marketing`, `utility` or `authentication`.
    #[schema(example = "utility")]
    template_category: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateBusinessRequest {
    /// The registered name every notice must state.
    #[schema(example = "Acme Shoes")]
    name: String,
    categories: Vec<CategoryRequest>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct AddCategoriesRequest {
    categories: Vec<CategoryRequest>,
}

/// A business (tenant) with its categories in slot order.
#[derive(Debug, Serialize, ToSchema)]
pub struct BusinessView {
    #[schema(value_type = String, format = Uuid)]
    id: Uuid,
    name: String,
    /// Other names a notice may use to name the business.
    brand_names: Vec<String>,
    categories: Vec<CategoryView>,
    #[schema(value_type = String, format = DateTime)]
    created_at: Timestamp,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CategoryView {
    name: String,
    template_category: TemplateCategory,
    /// The category's stable position in the business (0..64).
    slot: usize,
}

/// A new business and its first API key, whose secret is shown only here.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedBusinessView {
    #[serde(flatten)]
    business: BusinessView,
    api_key: IssuedKeyView,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BusinessList {
    businesses: Vec<BusinessView>,
}

impl CreatedBusinessView {
    pub fn new(business: &Business, key: IssuedKey) -> CreatedBusinessView {
        CreatedBusinessView { business: BusinessView::from(business), api_key: IssuedKeyView::from(key) }
    }
}

impl BusinessList {
    pub fn new(businesses: &[Business]) -> BusinessList {
        BusinessList { businesses: businesses.iter().map(BusinessView::from).collect() }
    }
}

impl From<&Business> for BusinessView {
    fn from(business: &Business) -> BusinessView {
        BusinessView {
            id: business.id.as_uuid(),
            name: business.name.to_string(),
            brand_names: business.brand_names.iter().map(ToString::to_string).collect(),
            categories: business
                .categories
                .iter()
                .enumerate()
                .map(|(slot, category)| CategoryView {
                    name: category.name.to_string(),
                    template_category: category.template_category,
                    slot,
                })
                .collect(),
            created_at: business.created_at,
        }
    }
}

fn category_inputs(requests: Vec<CategoryRequest>) -> Vec<CategoryInput> {
    requests.into_iter().map(|c| CategoryInput { name: c.name, template_category: c.template_category }).collect()
}

/// Parses a `{business_id}` path segment: anything that is not a UUID names no business.
pub(crate) fn parse_business_id(text: &str) -> Result<BusinessId, ApiError> {
    text.parse().map_err(|_| business_not_found())
}

pub(crate) fn business_not_found() -> ApiError {
    ApiError::not_found("business_not_found", "no business has this id")
}

/// Creates a business with its categories and a first API key.
#[utoipa::path(post, path = "/v1/businesses", tag = "operator", security(("operator_token" = [])),
    request_body = CreateBusinessRequest,
    responses(
        (status = 201, description = "Created; the key's secret is shown only now", body = CreatedBusinessView),
        (status = 422, description = "Invalid name or categories", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 401, body = ProblemDetails, content_type = "application/problem+json"),
        (status = 403, description = "A business key was used", body = ProblemDetails, content_type = "application/problem+json"),
    ))]
pub(crate) async fn create_business(
    State(state): State<AppState>,
    _operator: OperatorAuth,
    Json(request): Json<CreateBusinessRequest>,
) -> Result<(StatusCode, axum::Json<CreatedBusinessView>), ApiError> {
    let categories = category_inputs(request.categories);
    let (business, key) = tenancy::create_business(state.store(), &request.name, &categories, Timestamp::now()).await?;
    let view = CreatedBusinessView::new(&business, key);
    Ok((StatusCode::CREATED, axum::Json(view)))
}

/// Lists every business, oldest first (never their keys).
#[utoipa::path(get, path = "/v1/businesses", tag = "operator", security(("operator_token" = [])),
    responses((status = 200, body = BusinessList), (status = 401, body = ProblemDetails, content_type = "application/problem+json")))]
pub(crate) async fn list_businesses(
    State(state): State<AppState>,
    _operator: OperatorAuth,
) -> Result<axum::Json<BusinessList>, ApiError> {
    let businesses = state.store().list_businesses().await?;
    Ok(axum::Json(BusinessList::new(&businesses)))
}

/// Appends categories to a business (existing slots never move).
#[utoipa::path(post, path = "/v1/businesses/{business_id}/categories", tag = "operator",
    security(("operator_token" = [])), params(("business_id" = String, Path, format = Uuid)),
    request_body = AddCategoriesRequest,
    responses(
        (status = 200, description = "The updated business", body = BusinessView),
        (status = 404, description = "`business_not_found`", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 409, description = "`duplicate_category`", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 422, description = "`too_many_categories`, invalid names", body = ProblemDetails, content_type = "application/problem+json"),
    ))]
pub(crate) async fn add_categories(
    State(state): State<AppState>,
    _operator: OperatorAuth,
    Path(business_id): Path<String>,
    Json(request): Json<AddCategoriesRequest>,
) -> Result<axum::Json<BusinessView>, ApiError> {
    let business_id = parse_business_id(&business_id)?;
    let categories = tenancy::parse_categories(&category_inputs(request.categories)).map_err(category_error)?;
    let business = match state.store().add_categories(business_id, &categories).await {
        Err(StoreError::NotFound) => return Err(business_not_found()),
        other => other.map_err(|e| category_error(UseCaseError::from(e)))?,
    };
    Ok(axum::Json(BusinessView::from(&business)))
}

/// A repeated category conflicts with what exists (409); too many is a limit of the input (422),
/// whichever layer noticed.
fn category_error(error: impl Into<ApiError>) -> ApiError {
    match error.into() {
        ApiError::Client { problems, .. } if problems.first().is_some_and(|p| p.code == "duplicate_category") => {
            ApiError::Client { status: StatusCode::CONFLICT, problems }
        }
        ApiError::Client { problems, .. } if problems.first().is_some_and(|p| p.code == "too_many_categories") => {
            ApiError::Client { status: StatusCode::UNPROCESSABLE_ENTITY, problems }
        }
        other => other,
    }
}
