//! Bulk import of existing opt-ins: a CSV file in (streamed), one NDJSON line per rejected row
//! out, then a summary line.
//!
//! The handler reads the body only up to the end of the header row: an unusable header is a 422
//! problem (`empty_file`, `invalid_header`, `missing_column`, `duplicate_column`) before anything
//! is streamed. Then the response starts, and a task of its own reads the rest of the body a
//! chunk of rows at a time through `optin_store::import` (one transaction per chunk), writing a
//! line per rejected row as it goes and `{"summary": ...}` at the end. The body limit does not
//! apply (a row is bounded instead, at 64 KiB), nor does the request timeout once the response
//! has started. If the database or the connection fails mid-way, the response ends abruptly
//! without its summary; the chunks already recorded stay, and a rerun of the same file records
//! only the rest (rows are imported once by content).

use axum::Router;
use axum::body::{Body, BodyDataStream, Bytes};
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use futures::StreamExt;
use optin_core::business::Business;
use optin_store::Rejection;
use optin_store::import::{
    CHUNK_ROWS, CsvRows, ImportHeader, ImportOptions, ImportSummary, Importer, NextRow, RawRow, RowRejection,
    empty_file,
};
use serde::{Deserialize, Serialize};
use tracing::Instrument;
use utoipa::{IntoParams, ToSchema};

use crate::auth::BusinessAuth;
use crate::error::{ApiError, ProblemDetails};
use crate::extract::Query;
use crate::state::AppState;

const NDJSON: &str = "application/x-ndjson";
/// Chunks of answer lines produced ahead of what the connection has written.
const CHUNKS_AHEAD: usize = 2;

pub(crate) fn router() -> Router<AppState> {
    Router::new().route("/v1/imports", post(import_opt_ins))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct ImportQuery {
    /// `true`: check every row and answer what would happen; record nothing.
    dry_run: Option<bool>,
    /// Recorded in every imported opt-in's evidence (`batch_id`); default a new UUID.
    batch_id: Option<String>,
}

/// A rejected row (one line of the response).
#[derive(Debug, Serialize, ToSchema)]
pub struct ImportRejectionView {
    /// The row's number in the file (1: the first row after the header).
    pub row: u64,
    /// E.164 when the number was valid, else as given; absent when unreadable.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    /// Every reason, as the API's codes (`invalid_phone`, `unknown_category`, `evidence_missing`, ...).
    pub codes: Vec<&'static str>,
    /// The reasons in words, joined by `; `.
    pub detail: String,
}

/// What an import did; with `dry_run`, what it would do.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ImportSummaryView {
    pub batch_id: String,
    pub dry_run: bool,
    /// Rows read (the header excluded).
    pub rows: u64,
    /// Rows recorded (dry run: that would be).
    pub imported: u64,
    /// Rows whose content was imported before (or earlier in this file): nothing recorded.
    pub already_imported: u64,
    pub rejected: u64,
    /// Rejected rows per reason code.
    #[schema(value_type = std::collections::BTreeMap<String, u64>)]
    pub reasons: std::collections::BTreeMap<&'static str, u64>,
    /// Notice texts registered (dry run: that would be).
    pub notices_registered: u64,
}

impl From<ImportSummary> for ImportSummaryView {
    fn from(summary: ImportSummary) -> Self {
        ImportSummaryView {
            batch_id: summary.batch_id,
            dry_run: summary.dry_run,
            rows: summary.rows,
            imported: summary.imported,
            already_imported: summary.already_imported,
            rejected: summary.rejected,
            reasons: summary.reasons,
            notices_registered: summary.notices_registered,
        }
    }
}

/// The last line of the response.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ImportSummaryLine {
    summary: ImportSummaryView,
}

/// Imports opt-ins collected elsewhere from a CSV file.
#[utoipa::path(post, path = "/v1/imports", tag = "business", security(("business_key" = [])),
    params(ImportQuery),
    request_body(content = String, content_type = "text/csv",
        description = "A CSV file with a header row: `phone`, `country`?, `categories` (`;` or `|` between names), \
            `method` (the original one), `collected_at` (RFC 3339), `notice_id` or `notice_text` + \
            `notice_language`, and any other columns as evidence. Streamed; the body limit does not apply; \
            rows up to 64 KiB."),
    responses(
        (status = 200, description = "One line per rejected row, as rows are read, then `{\"summary\": {...}}`",
            body = ImportRejectionView, content_type = "application/x-ndjson"),
        (status = 401, description = "`unauthorized`", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 422, description = "`empty_file`, `invalid_header`, `missing_column`, `duplicate_column`, \
            `invalid_batch_id`, `invalid_query`", body = ProblemDetails, content_type = "application/problem+json"),
    ))]
pub(crate) async fn import_opt_ins(
    State(state): State<AppState>,
    BusinessAuth(business): BusinessAuth,
    Query(query): Query<ImportQuery>,
    body: Body,
) -> Result<Response, ApiError> {
    let batch_id = query.batch_id.unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    if batch_id.trim().is_empty() || batch_id.chars().count() > 200 {
        return Err(Rejection::invalid("invalid_batch_id", "batch_id must be 1 to 200 characters").into());
    }
    let mut input = BodyRows { body: body.into_data_stream(), rows: CsvRows::new() };
    let mut header = RawRow::default();
    if !input.next_row(&mut header).await.map_err(|_| body_unreadable())? {
        return Err(empty_file().into());
    }
    let header = ImportHeader::parse(&header)?;
    let options = ImportOptions { batch_id, dry_run: query.dry_run.unwrap_or(false) };
    let (lines, received) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(CHUNKS_AHEAD);
    let run = ImportRun { state, business, header, options, input };
    tokio::spawn(run.answer(lines).instrument(tracing::Span::current()));
    let chunks =
        futures::stream::unfold(
            received,
            |mut received| async move { received.recv().await.map(|line| (line, received)) },
        );
    Ok(([(header::CONTENT_TYPE, NDJSON)], Body::from_stream(chunks)).into_response())
}

fn body_unreadable() -> ApiError {
    Rejection::invalid("unreadable_body", "the request body could not be read").into()
}

/// The request body as CSV rows.
struct BodyRows {
    body: BodyDataStream,
    rows: CsvRows,
}

impl BodyRows {
    async fn next_row(&mut self, row: &mut RawRow) -> Result<bool, axum::Error> {
        loop {
            match self.rows.next_row(row) {
                NextRow::Row => return Ok(true),
                NextRow::End => return Ok(false),
                NextRow::NeedInput => match self.body.next().await {
                    Some(frame) => self.rows.feed(&frame?),
                    None => self.rows.finish(),
                },
            }
        }
    }

    async fn read_chunk(&mut self, rows: &mut [RawRow]) -> Result<usize, axum::Error> {
        for (count, row) in rows.iter_mut().enumerate() {
            if !self.next_row(row).await? {
                return Ok(count);
            }
        }
        Ok(rows.len())
    }
}

struct ImportRun {
    state: AppState,
    business: Business,
    header: ImportHeader,
    options: ImportOptions,
    input: BodyRows,
}

impl ImportRun {
    /// Imports chunk after chunk, sending the answer lines; a failure is sent last (it breaks the
    /// response), and a client that went away stops the import after the chunk in progress.
    async fn answer(self, lines: tokio::sync::mpsc::Sender<Result<Bytes, std::io::Error>>) {
        let ImportRun { state, business, header, options, mut input } = self;
        let mut importer = Importer::new(state.store(), business, header, options, jiff::Timestamp::now());
        let mut rows = vec![RawRow::default(); CHUNK_ROWS];
        loop {
            let count = match input.read_chunk(&mut rows).await {
                Ok(count) => count,
                Err(error) => {
                    tracing::debug!(%error, "the import request body could not be read");
                    let _ = lines.send(Err(std::io::Error::other(error))).await;
                    return;
                }
            };
            if count == 0 {
                break;
            }
            let answer = importer.import_chunk(&rows[..count]).await.map(|rejections| rejection_lines(&rejections));
            if !send(&lines, answer).await {
                return;
            }
        }
        let summary = importer.finish().await.map(|summary| {
            let line = ImportSummaryLine { summary: summary.into() };
            let mut text = serde_json::to_vec(&line).expect("the summary serializes");
            text.push(b'\n');
            Bytes::from(text)
        });
        send(&lines, summary).await;
    }
}

/// Sends an answer (or the failure that ends the response); false when the import must stop.
async fn send(
    lines: &tokio::sync::mpsc::Sender<Result<Bytes, std::io::Error>>,
    answer: Result<Bytes, optin_store::UseCaseError>,
) -> bool {
    let answer = answer.map_err(|error| {
        let message = error.to_string();
        ApiError::from(error).log();
        std::io::Error::other(format!("the import stopped: {message}"))
    });
    let failed = answer.is_err();
    lines.send(answer).await.is_ok() && !failed
}

fn rejection_lines(rejections: &[RowRejection]) -> Bytes {
    let mut text = Vec::with_capacity(rejections.len() * 128);
    for rejection in rejections {
        let details: Vec<&str> = rejection.problems.iter().map(|p| p.detail.as_str()).collect();
        let view = ImportRejectionView {
            row: rejection.row,
            phone: rejection.phone.clone(),
            codes: rejection.problems.iter().map(|p| p.code).collect(),
            detail: details.join("; "),
        };
        serde_json::to_writer(&mut text, &view).expect("a rejection serializes");
        text.push(b'\n');
    }
    Bytes::from(text)
}
