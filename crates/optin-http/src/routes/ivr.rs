//! Phone (IVR) opt-ins: the endpoint an IVR platform calls at the end of its consent step.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::post;
use jiff::Timestamp;
use optin_store::intake::{self, IvrOptInInput, PhoneInput};
use serde::Deserialize;
use utoipa::ToSchema;

use super::consent::RecordedView;
use crate::auth::BusinessAuth;
use crate::error::{ApiError, ProblemDetails};
use crate::extract::JsonBytes;
use crate::idempotency::{IdempotencyKey, IdempotentWrite};
use crate::state::AppState;

const IVR_OPT_INS: &str = "/v1/ivr/opt-ins";

pub(crate) fn router() -> Router<AppState> {
    Router::new().route(IVR_OPT_INS, post(record_ivr_opt_in))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct IvrOptInRequest {
    /// The caller's number (caller ID), any format.
    #[schema(example = "+14155552671")]
    caller: String,
    country: Option<String>,
    #[schema(example = "CA1234567890abcdef")]
    call_id: String,
    /// The DTMF keys pressed at the consent prompt.
    #[schema(example = "1")]
    key_pressed: String,
    /// The key the script asks for to agree (default `1`); any other key records nothing.
    agree_key: Option<String>,
    /// The script the caller heard: a registered notice.
    #[schema(format = Uuid)]
    notice_id: String,
    #[schema(example = json!(["offers"]))]
    categories: Vec<String>,
    /// Where the platform keeps the recording of the consent step.
    recording_ref: Option<String>,
    /// The number the caller dialled.
    called_number: Option<String>,
    /// When the caller pressed the key (RFC 3339; default now).
    #[serde(default)]
    #[schema(value_type = Option<String>, format = DateTime)]
    collected_at: Option<Timestamp>,
}

/// Records an opt-in collected by phone (method `ivr`) when the caller pressed the agree key.
#[utoipa::path(post, path = "/v1/ivr/opt-ins", tag = "business", security(("business_key" = [])),
    params(("Idempotency-Key" = Option<String>, Header, description = "1 to 200 visible ASCII characters (the call id is a good one)")),
    request_body = IvrOptInRequest,
    responses(
        (status = 201, body = RecordedView),
        (status = 409, description = "`idempotency_key_reused`", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 422, description = "`ivr_not_agreed` (another key was pressed), `invalid_key_pressed`, `invalid_agree_key`, and every opt-in problem (`invalid_phone`, `unknown_notice`, `unknown_category`...)",
            body = ProblemDetails, content_type = "application/problem+json"),
    ))]
pub(crate) async fn record_ivr_opt_in(
    State(state): State<AppState>,
    BusinessAuth(business): BusinessAuth,
    key: IdempotencyKey,
    JsonBytes(body): JsonBytes,
) -> Result<Response, ApiError> {
    let write =
        IdempotentWrite { state: &state, business: business.id, key, route: IVR_OPT_INS, success: StatusCode::CREATED };
    let (store, business) = (state.store(), &business);
    write
        .run(body, |request: IvrOptInRequest| async move {
            let input = IvrOptInInput {
                caller: PhoneInput { phone: request.caller, country: request.country },
                call_id: request.call_id,
                key_pressed: request.key_pressed,
                agree_key: request.agree_key,
                notice_id: request.notice_id,
                categories: request.categories,
                recording_ref: request.recording_ref,
                called_number: request.called_number,
                collected_at: request.collected_at,
            };
            let recorded = intake::record_ivr_opt_in(store, business, input, Timestamp::now()).await?;
            Ok(RecordedView::new(recorded))
        })
        .await
}
