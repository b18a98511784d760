//! Operator endpoints for a business's API keys: issue, list, revoke.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{delete, post};
use jiff::Timestamp;
use optin_core::ids::ApiKeyId;
use optin_store::tenancy::{self, IssuedKey};
use optin_store::{ApiKeyRecord, StoreError};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::OperatorAuth;
use crate::error::{ApiError, ProblemDetails};
use crate::extract::{Json, Path};
use crate::routes::businesses::parse_business_id;
use crate::state::AppState;

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/businesses/{business_id}/keys", post(issue_key).get(list_keys))
        .route("/v1/businesses/{business_id}/keys/{key_id}", delete(revoke_key))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct IssueKeyRequest {
    /// What the key is for, e.g. `ci` (1 to 100 characters).
    #[schema(example = "ci")]
    label: String,
}

/// A freshly issued key. The secret is shown only in this response.
#[derive(Debug, Serialize, ToSchema)]
pub struct IssuedKeyView {
    #[schema(value_type = String, format = Uuid)]
    id: Uuid,
    #[schema(example = "optin_sk_...")]
    secret: String,
    label: String,
    #[schema(value_type = String, format = DateTime)]
    created_at: Timestamp,
}

/// A key as listed: never its secret.
#[derive(Debug, Serialize, ToSchema)]
pub struct KeyView {
    #[schema(value_type = String, format = Uuid)]
    id: Uuid,
    label: String,
    #[schema(value_type = String, format = DateTime)]
    created_at: Timestamp,
    #[schema(value_type = Option<String>, format = DateTime)]
    revoked_at: Option<Timestamp>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct KeyList {
    keys: Vec<KeyView>,
}

impl From<IssuedKey> for IssuedKeyView {
    fn from(key: IssuedKey) -> IssuedKeyView {
        IssuedKeyView {
            id: key.record.id.as_uuid(),
            label: key.record.label,
            created_at: key.record.created_at,
            secret: key.secret,
        }
    }
}

impl KeyList {
    pub fn new(keys: Vec<ApiKeyRecord>) -> KeyList {
        KeyList { keys: keys.into_iter().map(KeyView::from).collect() }
    }
}

impl From<ApiKeyRecord> for KeyView {
    fn from(key: ApiKeyRecord) -> KeyView {
        KeyView { id: key.id.as_uuid(), label: key.label, created_at: key.created_at, revoked_at: key.revoked_at }
    }
}

/// Issues a new API key for a business.
#[utoipa::path(post, path = "/v1/businesses/{business_id}/keys", tag = "operator",
    security(("operator_token" = [])), params(("business_id" = String, Path, format = Uuid)),
    request_body = IssueKeyRequest,
    responses(
        (status = 201, description = "Issued; the secret is shown only now", body = IssuedKeyView),
        (status = 404, description = "`business_not_found`", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 422, description = "`invalid_label`", body = ProblemDetails, content_type = "application/problem+json"),
    ))]
pub(crate) async fn issue_key(
    State(state): State<AppState>,
    _operator: OperatorAuth,
    Path(business_id): Path<String>,
    Json(request): Json<IssueKeyRequest>,
) -> Result<(StatusCode, axum::Json<IssuedKeyView>), ApiError> {
    let business = tenancy::require_business(state.store(), parse_business_id(&business_id)?).await?;
    let label = request.label.trim();
    if label.is_empty() || label.chars().count() > 100 || label.chars().any(char::is_control) {
        return Err(ApiError::invalid("invalid_label", "label must be 1 to 100 printable characters"));
    }
    let key = tenancy::issue_key(business.id, label, Timestamp::now());
    state.store().create_api_key(&key.record).await?;
    Ok((StatusCode::CREATED, axum::Json(IssuedKeyView::from(key))))
}

/// Lists a business's keys, revoked ones included, without secrets.
#[utoipa::path(get, path = "/v1/businesses/{business_id}/keys", tag = "operator",
    security(("operator_token" = [])), params(("business_id" = String, Path, format = Uuid)),
    responses(
        (status = 200, body = KeyList),
        (status = 404, description = "`business_not_found`", body = ProblemDetails, content_type = "application/problem+json"),
    ))]
pub(crate) async fn list_keys(
    State(state): State<AppState>,
    _operator: OperatorAuth,
    Path(business_id): Path<String>,
) -> Result<axum::Json<KeyList>, ApiError> {
    let business = tenancy::require_business(state.store(), parse_business_id(&business_id)?).await?;
    let keys = state.store().list_api_keys(business.id).await?;
    Ok(axum::Json(KeyList::new(keys)))
}

/// Revokes a key: it stops authenticating at once.
#[utoipa::path(delete, path = "/v1/businesses/{business_id}/keys/{key_id}", tag = "operator",
    security(("operator_token" = [])),
    params(("business_id" = String, Path, format = Uuid), ("key_id" = String, Path, format = Uuid)),
    responses(
        (status = 204, description = "Revoked"),
        (status = 404, description = "`business_not_found`, or `key_not_found` (also for a key already revoked)",
            body = ProblemDetails, content_type = "application/problem+json"),
    ))]
pub(crate) async fn revoke_key(
    State(state): State<AppState>,
    _operator: OperatorAuth,
    Path((business_id, key_id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let business = tenancy::require_business(state.store(), parse_business_id(&business_id)?).await?;
    let key_not_found = || ApiError::not_found("key_not_found", "this business has no active key with this id");
    let key_id: ApiKeyId = key_id.parse().map_err(|_| key_not_found())?;
    match state.store().revoke_api_key(business.id, key_id, Timestamp::now()).await {
        Ok(()) => Ok(StatusCode::NO_CONTENT),
        Err(StoreError::NotFound) => Err(key_not_found()),
        Err(error) => Err(error.into()),
    }
}
