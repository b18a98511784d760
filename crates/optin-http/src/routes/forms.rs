//! A business's hosted opt-in forms (`/v1/forms`) and its contacts' preference links
//! (`/v1/preference-links`). The pages themselves are in `crate::pages`.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use jiff::Timestamp;
use optin_store::forms::{self, Form, FormInput};
use optin_store::intake::PhoneInput;
use optin_store::preferences::{self, LinkRequest};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::BusinessAuth;
use crate::error::{ApiError, ProblemDetails};
use crate::extract::{Json, Path};
use crate::state::AppState;

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/forms", get(list))
        .route("/v1/forms/{form_id}", get(get_form).put(put_form).delete(delete_form))
        .route("/v1/preference-links", post(create_preference_link))
        .route("/v1/confirmation-links", post(create_confirmation_link))
}

/// A form as stored, with where people find it.
#[derive(Debug, Serialize, ToSchema)]
pub struct FormView {
    #[schema(value_type = Object)]
    #[serde(flatten)]
    form: Form,
    /// The page: link to it, or embed it.
    #[schema(example = "https://optin.example/f/3f0c.../newsletter")]
    url: String,
    /// An iframe for the business's site (framing works only from `allowed_origins`).
    embed_html: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FormList {
    forms: Vec<FormView>,
}

fn view(form: Form, base: &str, business: &str) -> FormView {
    let url = format!("{base}/f/{business}/{}", form.id.as_str());
    let embed_html = format!(
        "<iframe src=\"{url}\" title=\"WhatsApp sign-up\" style=\"width:100%;min-height:640px;border:0\" loading=\"lazy\"></iframe>"
    );
    FormView { form, url, embed_html }
}

/// The configured public URL; else `http://host` as the client reached us (`X-Forwarded-Proto`
/// when the server trusts it).
fn base_url(state: &AppState, headers: &HeaderMap) -> String {
    if let Some(url) = state.public_url() {
        return url.to_owned();
    }
    let host = headers.get("host").and_then(|h| h.to_str().ok()).unwrap_or("localhost");
    let https = state.settings().trust_forwarded_headers
        && headers.get("x-forwarded-proto").and_then(|h| h.to_str().ok()) == Some("https");
    format!("{}://{host}", if https { "https" } else { "http" })
}

/// Creates or replaces a form: which categories (one unticked box each), which notice (in the
/// page's language), the page language, an optional logo and accent colour, the origins allowed to
/// frame it, and the double opt-in with its WhatsApp confirmation template.
#[utoipa::path(put, path = "/v1/forms/{form_id}", tag = "forms", security(("business_key" = [])),
    params(("form_id" = String, Path, description = "1-40 characters: a-z, 0-9, - and _")),
    request_body(content = Object, description = "`{categories, notice_id, language?, labels?: {category: text}, logo_url?, accent_colour?: \"#rrggbb\", allowed_origins?: [\"https://shop.example\"], double_opt_in?, confirmation_message?: {phone_number_id, template, language}, confirm_within_hours?}`"),
    responses(
        (status = 200, body = FormView),
        (status = 422, description = "Every problem: `invalid_form_id`, `categories_missing`, `unknown_category`, `unknown_notice`, `notice_language_mismatch`, `unsupported_page_language`, `invalid_colour`, `colour_contrast_too_low`, `invalid_origin`, `invalid_logo_url`, `invalid_label`, `confirmation_message_missing`, `unknown_sender`, `unknown_template`, `confirmation_template_not_utility`, `confirmation_template_without_link`, `invalid_confirm_within_hours`",
            body = ProblemDetails, content_type = "application/problem+json"),
    ))]
pub(crate) async fn put_form(
    State(state): State<AppState>,
    BusinessAuth(business): BusinessAuth,
    Path(form_id): Path<String>,
    headers: HeaderMap,
    Json(input): Json<FormInput>,
) -> Result<axum::Json<FormView>, ApiError> {
    let form = forms::put_form(state.store(), &business, &form_id, input, Timestamp::now()).await?;
    Ok(axum::Json(view(form, &base_url(&state, &headers), &business.id.to_string())))
}

#[utoipa::path(get, path = "/v1/forms/{form_id}", tag = "forms", security(("business_key" = [])),
    responses((status = 200, body = FormView),
        (status = 404, description = "`form_not_found`", body = ProblemDetails, content_type = "application/problem+json")))]
pub(crate) async fn get_form(
    State(state): State<AppState>,
    BusinessAuth(business): BusinessAuth,
    Path(form_id): Path<String>,
    headers: HeaderMap,
) -> Result<axum::Json<FormView>, ApiError> {
    let form = forms::form(state.store(), &business, &form_id)
        .await?
        .ok_or_else(|| ApiError::not_found("form_not_found", "the business has no such form"))?;
    Ok(axum::Json(view(form, &base_url(&state, &headers), &business.id.to_string())))
}

#[utoipa::path(get, path = "/v1/forms", tag = "forms", security(("business_key" = [])),
    responses((status = 200, body = FormList)))]
pub(crate) async fn list(
    State(state): State<AppState>,
    BusinessAuth(business): BusinessAuth,
    headers: HeaderMap,
) -> Result<axum::Json<FormList>, ApiError> {
    let base = base_url(&state, &headers);
    let id = business.id.to_string();
    let forms = forms::forms(state.store(), &business).await?.into_values().map(|f| view(f, &base, &id)).collect();
    Ok(axum::Json(FormList { forms }))
}

/// Removes a form: its page answers "not available" from then on. Recorded opt-ins stay.
#[utoipa::path(delete, path = "/v1/forms/{form_id}", tag = "forms", security(("business_key" = [])),
    responses((status = 204, description = "Removed"),
        (status = 404, description = "`form_not_found`", body = ProblemDetails, content_type = "application/problem+json")))]
pub(crate) async fn delete_form(
    State(state): State<AppState>,
    BusinessAuth(business): BusinessAuth,
    Path(form_id): Path<String>,
) -> Result<Response, ApiError> {
    if forms::delete_form(state.store(), &business, &form_id, Timestamp::now()).await? {
        Ok(StatusCode::NO_CONTENT.into_response())
    } else {
        Err(ApiError::not_found("form_not_found", "the business has no such form"))
    }
}

/// A preference link as a client asks for it.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PreferenceLinkRequest {
    #[schema(example = "+4915112345678")]
    phone: String,
    country: Option<String>,
    /// 1 to 2160 (90 days); default 720 (30 days).
    expires_in_hours: Option<u32>,
    /// The notice shown for turning a category on; default: the latest registered.
    notice_id: Option<String>,
    /// en, de, es, fr or pt; default: the notice's language.
    language: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PreferenceLinkView {
    /// Send this to the contact (a template's URL button can take the token as its suffix).
    url: String,
    token: String,
    phone: String,
    #[schema(value_type = String, format = DateTime)]
    expires_at: Timestamp,
}

/// A signed, expiring link to the contact's preference page.
#[utoipa::path(post, path = "/v1/preference-links", tag = "forms", security(("business_key" = [])),
    request_body = PreferenceLinkRequest,
    responses((status = 201, body = PreferenceLinkView),
        (status = 422, description = "`invalid_phone`, `invalid_country`, `invalid_expires_in_hours`, `unknown_notice`, `unsupported_page_language`",
            body = ProblemDetails, content_type = "application/problem+json")))]
pub(crate) async fn create_preference_link(
    State(state): State<AppState>,
    BusinessAuth(business): BusinessAuth,
    headers: HeaderMap,
    Json(request): Json<PreferenceLinkRequest>,
) -> Result<Response, ApiError> {
    let request = LinkRequest {
        phone: PhoneInput { phone: request.phone, country: request.country },
        expires_in_hours: request.expires_in_hours,
        notice_id: request.notice_id,
        language: request.language,
    };
    let link = preferences::create_link(state.store(), &business, request, Timestamp::now()).await?;
    let view = PreferenceLinkView {
        url: format!("{}/p/{}", base_url(&state, &headers), link.token),
        token: link.token,
        phone: link.phone.e164(),
        expires_at: link.expires_at,
    };
    Ok((StatusCode::CREATED, axum::Json(view)).into_response())
}

/// A confirmation link as a client asks for it.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfirmationLinkRequest {
    #[schema(example = "+4915112345678")]
    phone: String,
    country: Option<String>,
    /// The pending categories it confirms; default: every pending one.
    categories: Option<Vec<String>>,
    /// 1 to 720; default 48. The opt-in's own confirmation deadline still applies.
    expires_in_hours: Option<u32>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ConfirmationLinkView {
    /// Send this to the contact; opening it and pressing Confirm confirms.
    url: String,
    token: String,
    phone: String,
    categories: Vec<String>,
    #[schema(value_type = String, format = DateTime)]
    expires_at: Timestamp,
}

/// A link that confirms a contact's pending opt-ins, for a business that delivers it itself (a
/// hosted form in a double opt-in country without a WhatsApp confirmation message, say).
#[utoipa::path(post, path = "/v1/confirmation-links", tag = "forms", security(("business_key" = [])),
    request_body = ConfirmationLinkRequest,
    responses((status = 201, body = ConfirmationLinkView),
        (status = 409, description = "`nothing_to_confirm`, `confirmation_expired`", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 422, description = "`invalid_phone`, `unknown_category`, `invalid_expires_in_hours`",
            body = ProblemDetails, content_type = "application/problem+json")))]
pub(crate) async fn create_confirmation_link(
    State(state): State<AppState>,
    BusinessAuth(business): BusinessAuth,
    headers: HeaderMap,
    Json(request): Json<ConfirmationLinkRequest>,
) -> Result<Response, ApiError> {
    let phone = PhoneInput { phone: request.phone, country: request.country };
    let (phone, categories, link) = forms::confirmation_link(
        state.store(),
        &business,
        phone,
        request.categories,
        request.expires_in_hours,
        Timestamp::now(),
    )
    .await?;
    let view = ConfirmationLinkView {
        url: format!("{}/c/{}", base_url(&state, &headers), link.token),
        token: link.token,
        phone: phone.e164(),
        categories: categories.iter().map(|c| c.as_str().to_owned()).collect(),
        expires_at: link.expires_at,
    };
    Ok((StatusCode::CREATED, axum::Json(view)).into_response())
}
