//! Capture: opt-ins, confirmations of double opt-ins and opt-outs, recorded in the ledger. All
//! accept an `Idempotency-Key`.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::post;
use jiff::Timestamp;
use optin_core::consent::{CategoryOutcome, OptOutSource};
use optin_store::Recorded;
use optin_store::intake::{self, ConfirmationInput, ConsentTerms, OptInInput, OptOutInput, PhoneInput};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::BusinessAuth;
use crate::error::{ApiError, ProblemDetails};
use crate::extract::JsonBytes;
use crate::idempotency::{IdempotencyKey, IdempotentWrite};
use crate::state::AppState;

const OPT_INS: &str = "/v1/opt-ins";
const OPT_OUTS: &str = "/v1/opt-outs";
const CONFIRMATIONS: &str = "/v1/confirmations";

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route(OPT_INS, post(record_opt_in))
        .route(OPT_OUTS, post(record_opt_out))
        .route(CONFIRMATIONS, post(record_confirmation))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct OptInRequest {
    /// Any common format; national formats need `country`.
    #[schema(example = "(415) 555-2671")]
    phone: String,
    /// ISO 3166-1 alpha-2 hint for national numbers.
    #[schema(example = "US")]
    country: Option<String>,
    #[schema(example = json!(["offers"]))]
    categories: Vec<String>,
    /// `sms`, `web_form`, `ivr`, `paper`, `in_person`, `messaging_channel`, `whatsapp_thread`,
    /// `import` or `api`.
    #[schema(example = "web_form")]
    method: String,
    /// The registered notice the person was shown.
    #[schema(format = Uuid)]
    notice_id: String,
    /// When the person gave consent (RFC 3339; default: now; never in the future).
    #[serde(default)]
    #[schema(value_type = Option<String>, format = DateTime)]
    collected_at: Option<Timestamp>,
    /// Method-specific proof, e.g. `page_url` and `ip` for `web_form`.
    #[serde(default)]
    #[schema(value_type = Object, example = json!({"page_url": "https://acme.example/join", "ip": "203.0.113.9"}))]
    evidence: Map<String, Value>,
    /// What the consent rests on: `express` (default), `implied_purchase` or `implied_inquiry`.
    /// Implied consent lapses where the jurisdiction rules give it a lifetime (Canada: 2 years
    /// after a purchase, 6 months after an inquiry); decisions then answer `consent_expired`.
    #[schema(example = "express")]
    basis: Option<String>,
    /// For implied consent: when the purchase or inquiry happened (default: `collected_at`).
    #[serde(default)]
    #[schema(value_type = Option<String>, format = DateTime)]
    basis_at: Option<Timestamp>,
    /// `true`: the opt-in stays `pending_confirmation` until `POST /v1/confirmations` (double
    /// opt-in). Where the jurisdiction rules expect a double opt-in (Germany, by default), opt-ins
    /// are pending anyway unless they came from the number itself (`sms`, `whatsapp_thread`).
    #[serde(default)]
    double_opt_in: bool,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ConfirmationRequest {
    #[schema(example = "+4915112345678")]
    phone: String,
    country: Option<String>,
    /// The categories the person confirmed; absent: every category waiting for confirmation.
    categories: Option<Vec<String>>,
    /// How the person confirmed: `whatsapp_thread` (a reply), `sms`, `web_form` (a link)...
    #[schema(example = "whatsapp_thread")]
    method: String,
    /// Proof of the confirmation (the reply's message id, the link's IP and user agent...).
    #[serde(default)]
    #[schema(value_type = Object, example = json!({"message_id": "wamid.HBgL..."}))]
    evidence: Map<String, Value>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct OptOutRequest {
    #[schema(example = "+14155552671")]
    phone: String,
    country: Option<String>,
    /// The categories to opt out of; absent means all of them.
    categories: Option<Vec<String>>,
    source: OptOutSource,
    /// Who recorded the opt-out (an agent, a system).
    #[schema(example = "agent 7")]
    recorded_by: String,
    #[serde(default)]
    #[schema(value_type = Object)]
    evidence: Map<String, Value>,
}

/// What recording a consent event did.
#[derive(Debug, Serialize, ToSchema)]
pub struct RecordedView {
    #[schema(value_type = String, format = Uuid)]
    event_id: Uuid,
    /// The event's position in the business's ledger.
    chain_index: u64,
    /// E.164.
    #[schema(example = "+14155552671")]
    phone: String,
    categories: Vec<OutcomeView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OutcomeView {
    category: String,
    outcome: CategoryOutcome,
}

impl RecordedView {
    pub fn new(recorded: Recorded) -> RecordedView {
        RecordedView {
            event_id: recorded.event_id.as_uuid(),
            chain_index: recorded.chain_index,
            phone: recorded.phone.e164(),
            categories: recorded
                .outcomes
                .into_iter()
                .map(|(category, outcome)| OutcomeView { category: category.to_string(), outcome })
                .collect(),
        }
    }
}

/// Records an opt-in after checking the phone, categories, method, evidence and notice.
#[utoipa::path(post, path = "/v1/opt-ins", tag = "business", security(("business_key" = [])),
    params(("Idempotency-Key" = Option<String>, Header, description = "1 to 200 visible ASCII characters")),
    request_body = OptInRequest,
    responses(
        (status = 201, body = RecordedView),
        (status = 409, description = "`idempotency_key_reused`", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 422, description = "Every problem: `invalid_phone`, `unknown_category`, `unknown_method`, `evidence_missing`, `unknown_notice`, `collected_at_in_future`, `unknown_basis`, `basis_at_after_collection`...",
            body = ProblemDetails, content_type = "application/problem+json"),
    ))]
pub(crate) async fn record_opt_in(
    State(state): State<AppState>,
    BusinessAuth(business): BusinessAuth,
    key: IdempotencyKey,
    JsonBytes(body): JsonBytes,
) -> Result<Response, ApiError> {
    let write =
        IdempotentWrite { state: &state, business: business.id, key, route: OPT_INS, success: StatusCode::CREATED };
    let (store, business) = (state.store(), &business);
    write
        .run(body, |request: OptInRequest| async move {
            let phone = PhoneInput { phone: request.phone, country: request.country };
            let input = OptInInput {
                phone,
                categories: request.categories,
                method: request.method,
                notice_id: request.notice_id,
                collected_at: request.collected_at,
                evidence: request.evidence,
                terms: ConsentTerms {
                    basis: request.basis,
                    basis_at: request.basis_at,
                    double_opt_in: request.double_opt_in,
                },
            };
            let recorded = intake::record_opt_in(store, business, input, Timestamp::now()).await?;
            Ok(RecordedView::new(recorded))
        })
        .await
}

/// Records an opt-out; decisions see it as soon as this returns.
#[utoipa::path(post, path = "/v1/opt-outs", tag = "business", security(("business_key" = [])),
    params(("Idempotency-Key" = Option<String>, Header, description = "1 to 200 visible ASCII characters")),
    request_body = OptOutRequest,
    responses(
        (status = 201, body = RecordedView),
        (status = 409, description = "`idempotency_key_reused`", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 422, description = "`invalid_phone`, `unknown_category`, `invalid_recorded_by`...",
            body = ProblemDetails, content_type = "application/problem+json"),
    ))]
pub(crate) async fn record_opt_out(
    State(state): State<AppState>,
    BusinessAuth(business): BusinessAuth,
    key: IdempotencyKey,
    JsonBytes(body): JsonBytes,
) -> Result<Response, ApiError> {
    let write =
        IdempotentWrite { state: &state, business: business.id, key, route: OPT_OUTS, success: StatusCode::CREATED };
    let (store, business) = (state.store(), &business);
    write
        .run(body, |request: OptOutRequest| async move {
            let phone = PhoneInput { phone: request.phone, country: request.country };
            let input = OptOutInput {
                phone,
                categories: request.categories,
                source: request.source,
                recorded_by: request.recorded_by,
                evidence: request.evidence,
            };
            let recorded = intake::record_opt_out(store, business, input, Timestamp::now()).await?;
            Ok(RecordedView::new(recorded))
        })
        .await
}

/// Records that the person confirmed their pending opt-ins (the second step of a double opt-in):
/// from now on they are consent.
#[utoipa::path(post, path = "/v1/confirmations", tag = "business", security(("business_key" = [])),
    params(("Idempotency-Key" = Option<String>, Header, description = "1 to 200 visible ASCII characters")),
    request_body = ConfirmationRequest,
    responses(
        (status = 201, body = RecordedView),
        (status = 409, description = "`nothing_to_confirm` (no category waits for this contact's confirmation), `idempotency_key_reused`",
            body = ProblemDetails, content_type = "application/problem+json"),
        (status = 422, description = "`invalid_phone`, `unknown_category`, `unknown_method`, `evidence_too_large`...",
            body = ProblemDetails, content_type = "application/problem+json"),
    ))]
pub(crate) async fn record_confirmation(
    State(state): State<AppState>,
    BusinessAuth(business): BusinessAuth,
    key: IdempotencyKey,
    JsonBytes(body): JsonBytes,
) -> Result<Response, ApiError> {
    let write = IdempotentWrite {
        state: &state,
        business: business.id,
        key,
        route: CONFIRMATIONS,
        success: StatusCode::CREATED,
    };
    let (store, business) = (state.store(), &business);
    write
        .run(body, |request: ConfirmationRequest| async move {
            let input = ConfirmationInput {
                phone: PhoneInput { phone: request.phone, country: request.country },
                categories: request.categories,
                method: request.method,
                evidence: request.evidence,
            };
            let recorded = intake::record_confirmation(store, business, input, Timestamp::now()).await?;
            Ok(RecordedView::new(recorded))
        })
        .await
}
