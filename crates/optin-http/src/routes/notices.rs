//! Notices: the texts people are shown when they opt in, checked and versioned.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use jiff::Timestamp;
use optin_core::ids::NoticeId;
use optin_store::{Notice, intake};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::BusinessAuth;
use crate::error::{ApiError, ProblemDetails};
use crate::extract::{Json, Path};
use crate::state::AppState;

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/notices", get(list_notices).post(register_notice))
        .route("/v1/notices/{notice_id}", get(get_notice))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NoticeRequest {
    /// The exact text shown to the person.
    #[schema(example = "I agree to receive offers from Acme Shoes on WhatsApp. Reply STOP to opt out.")]
    text: String,
    /// A language tag such as `en` or `pt-BR`.
    #[schema(example = "en")]
    language: String,
}

/// A registered notice: immutable, with its version in the business.
#[derive(Debug, Serialize, ToSchema)]
pub struct NoticeView {
    #[schema(value_type = String, format = Uuid)]
    id: Uuid,
    version: u32,
    language: String,
    text: String,
    text_sha256: String,
    /// What a good notice has and this one lacks (it was accepted anyway).
    warnings: Vec<WarningView>,
    #[schema(value_type = String, format = DateTime)]
    created_at: Timestamp,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WarningView {
    #[schema(value_type = String, example = "notice_missing_whatsapp")]
    code: &'static str,
    #[schema(value_type = String)]
    detail: &'static str,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct NoticeList {
    notices: Vec<NoticeView>,
}

impl NoticeList {
    pub fn new(notices: Vec<Notice>) -> NoticeList {
        NoticeList { notices: notices.into_iter().map(NoticeView::from).collect() }
    }
}

impl From<Notice> for NoticeView {
    fn from(notice: Notice) -> NoticeView {
        NoticeView {
            id: notice.id.as_uuid(),
            version: notice.version,
            language: notice.language.as_str().to_owned(),
            text: notice.text.as_str().to_owned(),
            text_sha256: notice.text_sha256,
            warnings: notice.warnings.iter().map(|w| WarningView { code: w.code(), detail: w.detail() }).collect(),
            created_at: notice.created_at,
        }
    }
}

/// Checks a notice and registers it as the business's next version.
#[utoipa::path(post, path = "/v1/notices", tag = "business", security(("business_key" = [])),
    request_body = NoticeRequest,
    responses(
        (status = 201, body = NoticeView),
        (status = 422, description = "Every failing rule: `notice_missing_business_name`, `notice_missing_opt_in_statement`, ...",
            body = ProblemDetails, content_type = "application/problem+json"),
    ))]
pub(crate) async fn register_notice(
    State(state): State<AppState>,
    BusinessAuth(business): BusinessAuth,
    Json(request): Json<NoticeRequest>,
) -> Result<(StatusCode, axum::Json<NoticeView>), ApiError> {
    let notice =
        intake::register_notice(state.store(), &business, &request.text, &request.language, Timestamp::now()).await?;
    Ok((StatusCode::CREATED, axum::Json(NoticeView::from(notice))))
}

/// The business's notices, in version order.
#[utoipa::path(get, path = "/v1/notices", tag = "business", security(("business_key" = [])),
    responses((status = 200, body = NoticeList)))]
pub(crate) async fn list_notices(
    State(state): State<AppState>,
    BusinessAuth(business): BusinessAuth,
) -> Result<axum::Json<NoticeList>, ApiError> {
    let notices = state.store().list_notices(business.id).await?;
    Ok(axum::Json(NoticeList::new(notices)))
}

/// One of the business's notices.
#[utoipa::path(get, path = "/v1/notices/{notice_id}", tag = "business", security(("business_key" = [])),
    params(("notice_id" = String, Path, format = Uuid)),
    responses(
        (status = 200, body = NoticeView),
        (status = 404, description = "`notice_not_found`", body = ProblemDetails, content_type = "application/problem+json"),
    ))]
pub(crate) async fn get_notice(
    State(state): State<AppState>,
    BusinessAuth(business): BusinessAuth,
    Path(notice_id): Path<String>,
) -> Result<axum::Json<NoticeView>, ApiError> {
    let not_found = || ApiError::not_found("notice_not_found", "this business has no notice with this id");
    let notice_id: NoticeId = notice_id.parse().map_err(|_| not_found())?;
    let notice = state.store().notice(business.id, notice_id).await?.ok_or_else(not_found)?;
    Ok(axum::Json(NoticeView::from(notice)))
}
