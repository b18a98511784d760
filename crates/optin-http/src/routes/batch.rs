//! Batch decisions: an audience as NDJSON in, one decision per line as NDJSON out, in order.
//!
//! Both bodies stream, so an audience of millions is never held on either side: the response
//! starts at once, and each chunk of about a thousand lines is read, decided with
//! `optin_store::audience` (a couple of store reads, no transaction held between chunks) and
//! handed to the connection, at most a few chunks ahead of what it has written. Three tasks do
//! it in a pipeline, so that both cores work: one reads and parses the lines of a chunk, one
//! decides chunks in order (the audience's state, such as the numbers seen, is one), one writes
//! the answers. The request body is read directly (not through the body limit), one line at a
//! time with a bounded length. A line that cannot be read is answered `invalid_line` and the
//! stream goes on; a store failure ends the response abruptly (without its last chunk), after
//! the lines already answered, so the client sees a broken stream.

mod answer;
mod common;
mod lines;
mod parse;

use std::borrow::Cow;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use optin_core::business::Business;
use optin_core::decision::ReasonView;
use optin_store::audience::{Audience, AudienceDecision, AudienceRequest};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc::{Receiver, Sender, channel};
use tracing::Instrument;
use utoipa::{IntoParams, ToSchema};

use self::answer::write_answers;
use self::lines::LineReader;
use self::parse::{Parsed, ParsedChunk};
use crate::auth::BusinessAuth;
use crate::error::{ApiError, ProblemDetails};
use crate::extract::Query;
use crate::metrics::Metrics;
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
    // Each stage holds at most `CHUNKS_AHEAD` chunks for the next, so memory stays bounded; a
    // failure travels down the pipeline in order (the answers before it are sent first), and a
    // client that goes away closes the last channel, which stops every stage in turn.
    let (parsed, to_decide) = channel(CHUNKS_AHEAD);
    let (decided, to_write) = channel(CHUNKS_AHEAD);
    let (answers, received) = channel::<Result<Bytes, std::io::Error>>(CHUNKS_AHEAD);
    let reader = LineReader::new(body.into_data_stream(), MAX_LINE_BYTES);
    let span = tracing::Span::current();
    let metrics = state.metrics().clone();
    tokio::spawn(read_chunks(reader, parsed).instrument(span.clone()));
    tokio::spawn(decide_chunks(Decider { state, business, audience }, to_decide, decided).instrument(span.clone()));
    tokio::spawn(write_chunks(metrics, to_write, answers).instrument(span));
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

/// A chunk, or the failure that ends the stream.
type Step<T> = Result<T, std::io::Error>;

/// Reads and parses the body a chunk at a time, until it ends or cannot be read.
async fn read_chunks(mut reader: LineReader, parsed: Sender<Step<ParsedChunk>>) {
    loop {
        let mut lines = Vec::with_capacity(CHUNK_LINES);
        let chunk = match reader.read_chunk(&mut lines, CHUNK_LINES).await {
            Ok(()) if lines.is_empty() => return,
            Ok(()) => Ok(ParsedChunk::parse(reader.take_text(), lines)),
            Err(error) => {
                tracing::debug!(%error, "the batch request body could not be read");
                Err(std::io::Error::other(error))
            }
        };
        let failed = chunk.is_err();
        if parsed.send(chunk).await.is_err() || failed {
            return;
        }
    }
}

/// The audience's state and what deciding it needs.
struct Decider {
    state: AppState,
    business: Business,
    audience: Audience,
}

/// Decides the chunks in order, until the body ends, a failure, or the client goes away.
async fn decide_chunks(
    mut decider: Decider,
    mut to_decide: Receiver<Step<ParsedChunk>>,
    decided: Sender<Step<(ParsedChunk, Vec<AudienceDecision>)>>,
) {
    while let Some(chunk) = to_decide.recv().await {
        let answer = match chunk {
            Ok(chunk) => decider.decide(&chunk).await.map(|decisions| (chunk, decisions)),
            Err(error) => Err(error),
        };
        let failed = answer.is_err();
        if decided.send(answer).await.is_err() || failed {
            return;
        }
    }
}

impl Decider {
    /// The decisions for the chunk's requests (its invalid lines have none).
    async fn decide(&mut self, chunk: &ParsedChunk) -> Step<Vec<AudienceDecision>> {
        let requests: Vec<AudienceRequest<'_>> =
            chunk.parsed().filter_map(|p| if let Parsed::Request(r) = p { Some(r) } else { None }).collect();
        let Decider { state, business, audience } = self;
        audience.decide_chunk(state.store(), business, &requests).await.map_err(|error| {
            let message = error.to_string();
            ApiError::from(error).log();
            std::io::Error::other(format!("the batch stopped: {message}"))
        })
    }
}

/// Writes the decided chunks' answers into the response, in order.
async fn write_chunks(
    metrics: Metrics,
    mut to_write: Receiver<Step<(ParsedChunk, Vec<AudienceDecision>)>>,
    answers: Sender<Step<Bytes>>,
) {
    while let Some(decided) = to_write.recv().await {
        let answer = decided.map(|(chunk, decisions)| {
            let (output, allowed) = write_answers(&chunk, &decisions);
            metrics.record_decisions(allowed, chunk.lines.len() as u64 - allowed);
            output
        });
        let failed = answer.is_err();
        if answers.send(answer).await.is_err() || failed {
            return;
        }
    }
}
