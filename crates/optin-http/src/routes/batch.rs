//! Batch decisions: an audience as NDJSON in, one decision per line as NDJSON out, in order.
//!
//! Both bodies stream, so an audience of millions is never held on either side: the response
//! starts at once, and each chunk of about a thousand lines is read, decided with
//! `optin_store::audience` (a couple of store reads, no transaction held between chunks) and
//! handed to the connection, at most a few chunks ahead of what it has written. The request body is read directly (not through the body
//! limit), one line at a time with a bounded length. A line that cannot be read is answered
//! `invalid_line` and the stream goes on; a store failure ends the response abruptly (without
//! its last chunk), after the lines already answered, so the client sees a broken stream.

mod answer;
mod lines;

use std::borrow::Cow;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use optin_core::business::Business;
use optin_core::decision::ReasonView;
use optin_core::phone::Region;
use optin_store::audience::{Audience, AudienceMessage, AudienceRequest};
use serde::{Deserialize, Serialize};
use tracing::Instrument;
use utoipa::{IntoParams, ToSchema};

use self::answer::write_answers;
use self::lines::{Line, LineReader};
use crate::auth::BusinessAuth;
use crate::error::{ApiError, ProblemDetails};
use crate::extract::Query;
use crate::state::AppState;

/// Lines decided together: one or two store reads each.
const CHUNK_LINES: usize = 1_000;
/// Chunks of answers decided ahead of what the connection has written.
const CHUNKS_AHEAD: usize = 4;
/// Longest line read; a longer one is answered `invalid_line`.
const MAX_LINE_BYTES: usize = 4 * 1024;
/// Longest text of a line's problem echoed back.
const MAX_DETAIL_CHARS: usize = 200;
const NDJSON: &str = "application/x-ndjson";

pub(crate) fn router() -> Router<AppState> {
    Router::new().route("/v1/decisions/batch", post(decide_batch))
}

/// One line of the request: a number and the message of the campaign (exactly one of `category`
/// and `template`).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct BatchLine<'a> {
    /// Any common format.
    #[serde(borrow)]
    #[schema(value_type = String, example = "+14155552671")]
    phone: Cow<'a, str>,
    /// ISO 3166-1 alpha-2 hint for national numbers.
    #[serde(borrow, default)]
    #[schema(value_type = Option<String>, example = "US")]
    country: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    #[schema(value_type = Option<String>, example = "offers")]
    category: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    template: Option<BatchTemplate<'a>>,
    /// Refused: batches are for business-initiated messages (a category or a template).
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    message_type: Option<serde::de::IgnoredAny>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct BatchTemplate<'a> {
    #[serde(borrow)]
    #[schema(value_type = String, example = "spring_sale")]
    name: Cow<'a, str>,
    #[serde(borrow)]
    #[schema(value_type = String, example = "en_US")]
    language: Cow<'a, str>,
}

/// One line of the response, for the input line `line`. (Documents the shape; lines are written
/// by `Answer`, which a test holds to it.)
#[derive(Debug, Serialize, ToSchema)]
#[cfg_attr(not(test), allow(dead_code))]
pub(crate) struct BatchDecisionView {
    /// The input line this answers (from 1; blank lines are skipped but counted).
    line: u64,
    /// E.164 when the number is valid, else as given; absent for an unreadable line.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "+14155552671")]
    phone: Option<String>,
    allowed: bool,
    /// The codes of `POST /v1/decisions`, plus `duplicate` (the number came earlier for the same
    /// message), `tier_cap_reached` (with `reserve=true`), `invalid_country` and `invalid_line`
    /// (not JSON, or not of this shape).
    reasons: Vec<ReasonView>,
}

/// Decides an audience: a stream of NDJSON lines in, one NDJSON decision per line out.
#[utoipa::path(post, path = "/v1/decisions/batch", tag = "business", security(("business_key" = [])),
    params(BatchQuery),
    request_body(content = BatchLine, content_type = "application/x-ndjson",
        description = "One JSON object per line, any number of lines (the body limit does not apply; lines up to 4 KiB)"),
    responses(
        (status = 200, description = "One JSON object per non-blank input line, in order, streamed as decided",
            body = BatchDecisionView, content_type = "application/x-ndjson"),
        (status = 401, description = "`unauthorized`", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 422, description = "`invalid_query`, `invalid_time`", body = ProblemDetails, content_type = "application/problem+json"),
    ))]
pub(crate) async fn decide_batch(
    State(state): State<AppState>,
    BusinessAuth(business): BusinessAuth,
    Query(query): Query<BatchQuery>,
    body: Body,
) -> Result<Response, ApiError> {
    let mut audience = Audience::new();
    if let Some(at) = crate::routes::signals::parse_time(query.at.as_deref(), "at")? {
        audience = audience.sent_at(at);
    }
    if query.reserve.unwrap_or(false) {
        audience = audience.reserving_capacity();
    }
    let batch = Batch {
        state,
        business,
        reader: LineReader::new(body.into_data_stream(), MAX_LINE_BYTES),
        lines: Vec::with_capacity(CHUNK_LINES),
        audience,
    };
    // The chunks are decided on a task of their own, inside the handler's span, a couple of chunks
    // ahead of the connection: while the connection task writes one chunk's answers and reads the
    // next lines, the next chunk is being decided (on another core). The bounded channel keeps at
    // most `CHUNKS_AHEAD` chunks of answers in memory; a client that goes away closes it, which
    // stops the task.
    let (answers, received) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(CHUNKS_AHEAD);
    tokio::spawn(batch.answer_all(answers).instrument(tracing::Span::current()));
    let chunks = futures::stream::unfold(received, |mut received| async move {
        received.recv().await.map(|answer| (answer, received))
    });
    Ok(([(header::CONTENT_TYPE, NDJSON)], Body::from_stream(chunks)).into_response())
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct BatchQuery {
    /// When the campaign goes out (RFC 3339); default now. Quiet hours are checked at that time.
    at: Option<String>,
    /// `true`: every allowed recipient takes a place under the business's messaging limit
    /// (unique recipients per rolling 24 hours); once full, the rest are `tier_cap_reached`.
    reserve: Option<bool>,
}

struct Batch {
    state: AppState,
    business: Business,
    reader: LineReader,
    lines: Vec<Line>,
    audience: Audience,
}

/// What a line asks, or why it cannot be decided.
pub(super) enum Parsed<'a> {
    Request(AudienceRequest<'a>),
    Invalid { phone: Option<&'a str>, code: &'static str, detail: String },
}

impl Batch {
    /// Answers chunk after chunk into `answers` until the body ends, a store failure (sent as the
    /// last item, which breaks the response) or the client goes away.
    async fn answer_all(mut self, answers: tokio::sync::mpsc::Sender<Result<Bytes, std::io::Error>>) {
        loop {
            let answer = match self.answer_chunk().await {
                Ok(Some(bytes)) => Ok(bytes),
                Ok(None) => return,
                Err(error) => Err(error),
            };
            let failed = answer.is_err();
            if answers.send(answer).await.is_err() || failed {
                return;
            }
        }
    }

    /// Reads, decides and writes the next chunk; `None` at the end of the body.
    async fn answer_chunk(&mut self) -> Result<Option<Bytes>, std::io::Error> {
        let Batch { state, business, reader, lines, audience } = self;
        reader.read_chunk(lines, CHUNK_LINES).await.map_err(|error| {
            tracing::debug!(%error, "the batch request body could not be read");
            std::io::Error::other(error)
        })?;
        if lines.is_empty() {
            return Ok(None);
        }
        let text = reader.text();
        let bodies: Vec<Result<BatchLine<'_>, Cow<'static, str>>> =
            lines.iter().map(|line| parse_line(text, line)).collect();
        let parsed: Vec<Parsed<'_>> = bodies.iter().map(to_request).collect();
        let requests: Vec<AudienceRequest<'_>> =
            parsed.iter().filter_map(|p| if let Parsed::Request(r) = p { Some(*r) } else { None }).collect();
        let decisions = audience.decide_chunk(state.store(), business, &requests).await.map_err(|error| {
            let message = error.to_string();
            ApiError::from(error).log();
            std::io::Error::other(format!("the batch stopped: {message}"))
        })?;
        let (output, allowed) = write_answers(lines, &parsed, &decisions);
        state.metrics().record_decisions(allowed, lines.len() as u64 - allowed);
        Ok(Some(output))
    }
}

fn parse_line<'t>(text: &'t [u8], line: &Line) -> Result<BatchLine<'t>, Cow<'static, str>> {
    let Some(range) = line.text.clone() else {
        return Err(format!("the line is longer than {MAX_LINE_BYTES} bytes").into());
    };
    serde_json::from_slice(&text[range]).map_err(|error| truncate(error.to_string()).into())
}

fn to_request<'a>(body: &'a Result<BatchLine<'a>, Cow<'static, str>>) -> Parsed<'a> {
    let invalid = |phone, code, detail: &str| Parsed::Invalid { phone, code, detail: detail.to_owned() };
    let line = match body {
        Ok(line) => line,
        Err(detail) => return invalid(None, "invalid_line", detail),
    };
    let phone = Some(line.phone.as_ref());
    let message = match (&line.category, &line.template, &line.message_type) {
        (Some(category), None, None) => AudienceMessage::Category(category),
        (None, Some(template), None) => {
            AudienceMessage::Template { name: &template.name, language: &template.language }
        }
        (_, _, Some(_)) => {
            return invalid(
                phone,
                "invalid_line",
                "message_type is not accepted: batches are for business-initiated messages (a category or a template)",
            );
        }
        _ => return invalid(phone, "invalid_line", "give exactly one of `category` and `template` ({name, language})"),
    };
    let region = match line.country.as_deref().map(Region::parse).transpose() {
        Ok(region) => region,
        Err(error) => return Parsed::Invalid { phone, code: error.code(), detail: error.to_string() },
    };
    Parsed::Request(AudienceRequest { phone: &line.phone, region, message })
}

fn truncate(mut text: String) -> String {
    if let Some((cut, _)) = text.char_indices().nth(MAX_DETAIL_CHARS) {
        text.truncate(cut);
        text.push('…');
    }
    text
}
