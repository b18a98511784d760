//! Scanned consent forms: uploaded as the request body (a PDF or an image, told by its content),
//! kept once under their SHA-256, and served back to the business that uploaded them.

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use jiff::Timestamp;
use optin_core::document::MAX_DOCUMENT_BYTES;
use optin_store::documents;
use serde::Serialize;
use utoipa::ToSchema;

use crate::auth::BusinessAuth;
use crate::error::{ApiError, ProblemDetails};
use crate::extract::Path;
use crate::state::AppState;

pub(crate) fn router() -> Router<AppState> {
    Router::new().route("/v1/documents", post(upload)).route("/v1/documents/{sha256}", get(download))
}

/// A kept document: name it in an opt-in's evidence as `document_sha256`.
#[derive(Debug, Serialize, ToSchema)]
pub struct DocumentView {
    #[schema(example = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08")]
    sha256: String,
    #[schema(example = "application/pdf")]
    media_type: &'static str,
    size: usize,
    /// False when the business had already uploaded the same file (it is kept once).
    new: bool,
}

/// Uploads a scanned consent form: the body is the file.
#[utoipa::path(post, path = "/v1/documents", tag = "business", security(("business_key" = [])),
    request_body(content = Vec<u8>, content_type = "application/octet-stream", description = "The file: PDF, PNG, JPEG, TIFF or WebP, up to 10 MiB (the type is told by the content, not the name or header)"),
    responses(
        (status = 201, description = "Kept", body = DocumentView),
        (status = 200, description = "Already kept: the same file", body = DocumentView),
        (status = 413, description = "`body_too_large`", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 422, description = "`document_empty`, `document_type_unsupported`", body = ProblemDetails, content_type = "application/problem+json"),
    ))]
pub(crate) async fn upload(
    State(state): State<AppState>,
    BusinessAuth(business): BusinessAuth,
    body: Body,
) -> Result<Response, ApiError> {
    let content = crate::extract::read_limited(body, MAX_DOCUMENT_BYTES).await?;
    let (checked, new) = documents::upload_document(state.store(), &business, &content, Timestamp::now()).await?;
    let status = if new { StatusCode::CREATED } else { StatusCode::OK };
    let view =
        DocumentView { sha256: checked.sha256, media_type: checked.media_type.as_str(), size: content.len(), new };
    Ok((status, axum::Json(view)).into_response())
}

/// The file as uploaded, with its media type.
#[utoipa::path(get, path = "/v1/documents/{sha256}", tag = "business", security(("business_key" = [])),
    params(("sha256" = String, Path, description = "Hex SHA-256 of the file")),
    responses(
        (status = 200, description = "The file", body = Vec<u8>, content_type = "application/octet-stream"),
        (status = 404, description = "`document_not_found`", body = ProblemDetails, content_type = "application/problem+json"),
    ))]
pub(crate) async fn download(
    State(state): State<AppState>,
    BusinessAuth(business): BusinessAuth,
    Path(sha256): Path<String>,
) -> Result<Response, ApiError> {
    let document = documents::find_document(state.store(), &business, &sha256).await?;
    let disposition = format!("attachment; filename=\"{}\"", document.sha256);
    let headers = [
        (header::CONTENT_TYPE, document.media_type.as_str().to_owned()),
        (header::CONTENT_DISPOSITION, disposition),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_owned()),
    ];
    Ok((headers, document.content).into_response())
}
