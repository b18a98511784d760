//! The template registry: templates imported in the Cloud API's JSON format, kept current by
//! template webhooks, consulted by decisions.

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, put};
use jiff::Timestamp;
use optin_store::channel::StoredTemplate;
use optin_store::whatsapp::{self, TemplateImport};
use serde::Serialize;
use utoipa::ToSchema;

use crate::auth::BusinessAuth;
use crate::error::{ApiError, ProblemDetails, ProblemItem};
use crate::extract::Path;
use crate::state::AppState;

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/templates", put(import_templates).get(list_templates))
        .route("/v1/templates/{name}/{language}", get(get_template))
}

/// A template in the registry.
#[derive(Debug, Serialize, ToSchema)]
pub struct TemplateView {
    name: String,
    /// As the template API writes it (`en_US`); webhooks' `en-US` is the same language.
    language: String,
    /// `marketing`, `utility` or `authentication`.
    category: String,
    /// `APPROVED`, `PENDING`, `REJECTED`, `PAUSED`, `DISABLED`, ...: only `APPROVED` can be sent.
    status: String,
    /// `GREEN`, `YELLOW`, `RED` or `UNKNOWN`.
    quality: Option<String>,
    platform_id: Option<String>,
    /// The business category its messages count against.
    linked_category: Option<String>,
    #[schema(value_type = Object)]
    components: serde_json::Value,
    #[schema(value_type = String, format = DateTime)]
    updated_at: Timestamp,
}

impl From<&StoredTemplate> for TemplateView {
    fn from(template: &StoredTemplate) -> TemplateView {
        TemplateView {
            name: template.name.as_str().to_owned(),
            language: template.language.as_str().to_owned(),
            category: template.category.as_str().to_owned(),
            status: template.status.as_str().to_owned(),
            quality: template.quality.as_ref().map(|q| q.as_str().to_owned()),
            platform_id: template.platform_id.clone(),
            linked_category: template.linked_category.as_ref().map(ToString::to_string),
            components: serde_json::from_str(&template.components).unwrap_or(serde_json::Value::Null),
            updated_at: template.updated_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TemplateList {
    templates: Vec<TemplateView>,
}

impl TemplateList {
    pub fn new(templates: &[StoredTemplate]) -> TemplateList {
        TemplateList { templates: templates.iter().map(TemplateView::from).collect() }
    }
}

/// What an import did.
#[derive(Debug, Serialize, ToSchema)]
pub struct TemplateImportView {
    imported: Vec<ImportedTemplateView>,
    /// Templates of the file that were not imported, and why.
    problems: Vec<ProblemItem>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ImportedTemplateView {
    #[serde(flatten)]
    template: TemplateView,
    /// Lint findings, such as `marketing_template_without_opt_out`.
    warnings: Vec<ProblemItem>,
}

impl TemplateImportView {
    pub fn new(import: &TemplateImport) -> TemplateImportView {
        let imported = import
            .imported
            .iter()
            .map(|i| ImportedTemplateView {
                template: TemplateView::from(&i.template),
                warnings: i.warnings.iter().map(|w| ProblemItem { code: w.code(), detail: w.detail() }).collect(),
            })
            .collect();
        let problems = import.problems.iter().map(|p| ProblemItem { code: p.code, detail: p.detail.clone() }).collect();
        TemplateImportView { imported, problems }
    }
}

/// Imports templates (the Cloud API's `GET /<WABA_ID>/message_templates` response, an array of
/// templates, or one template), replacing those with the same name and language. A template may
/// name its business category with an extra `optin_category` field.
#[utoipa::path(put, path = "/v1/templates", tag = "whatsapp", security(("business_key" = [])),
    request_body(content = Object, description = "Templates in the Cloud API's JSON format, up to 8 MiB"),
    responses(
        (status = 200, body = TemplateImportView),
        (status = 422, description = "`invalid_json`, `invalid_template_file`, `too_many_templates`",
            body = ProblemDetails, content_type = "application/problem+json"),
    ))]
pub(crate) async fn import_templates(
    State(state): State<AppState>,
    BusinessAuth(business): BusinessAuth,
    headers: HeaderMap,
    body: Body,
) -> Result<axum::Json<TemplateImportView>, ApiError> {
    crate::extract::require_json(&headers)?;
    let limit = state.settings().large_body_limit_bytes;
    let bytes = crate::extract::read_limited(body, limit).await?;
    let import = whatsapp::import_templates(state.store(), &business, &bytes, Timestamp::now()).await?;
    Ok(axum::Json(TemplateImportView::new(&import)))
}

/// The business's templates.
#[utoipa::path(get, path = "/v1/templates", tag = "whatsapp", security(("business_key" = [])),
    responses((status = 200, body = TemplateList)))]
pub(crate) async fn list_templates(
    State(state): State<AppState>,
    BusinessAuth(business): BusinessAuth,
) -> Result<axum::Json<TemplateList>, ApiError> {
    let templates = state.store().list_templates(business.id).await?;
    Ok(axum::Json(TemplateList::new(&templates)))
}

/// One template.
#[utoipa::path(get, path = "/v1/templates/{name}/{language}", tag = "whatsapp", security(("business_key" = [])),
    params(("name" = String, Path), ("language" = String, Path, example = "en_US")),
    responses(
        (status = 200, body = TemplateView),
        (status = 404, description = "`template_not_found`", body = ProblemDetails, content_type = "application/problem+json"),
    ))]
pub(crate) async fn get_template(
    State(state): State<AppState>,
    BusinessAuth(business): BusinessAuth,
    Path((name, language)): Path<(String, String)>,
) -> Result<axum::Json<TemplateView>, ApiError> {
    let not_found =
        || ApiError::client(StatusCode::NOT_FOUND, "template_not_found", "no template with this name and language");
    let language = optin_core::template::TemplateLanguage::parse(&language).map_err(|_| not_found())?;
    let template = state.store().template(business.id, &name, language.as_str()).await?.ok_or_else(not_found)?;
    Ok(axum::Json(TemplateView::from(&template)))
}
