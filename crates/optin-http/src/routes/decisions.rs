//! The gate: may the business send this message now? The hot path: one authentication, one
//! business read and the consent lookup, nothing else.

use axum::Router;
use axum::extract::State;
use axum::routing::post;
use jiff::Timestamp;
use optin_core::decision::{Decision, ReasonView};
use optin_core::phone::Region;
use optin_store::gate::{self, GateAnswer, MessageRequest};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::BusinessAuth;
use crate::error::{ApiError, ProblemDetails};
use crate::extract::Json;
use crate::state::AppState;

pub(crate) fn router() -> Router<AppState> {
    Router::new().route("/v1/decisions", post(decide))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct DecisionRequest {
    #[schema(example = "+14155552671")]
    phone: String,
    /// ISO 3166-1 alpha-2 hint for national numbers.
    country: Option<String>,
    /// The message's category. Give exactly one of `category`, `template` and `message_type`.
    #[schema(example = "offers")]
    category: Option<String>,
    /// A template message: allowed when the template is approved and the contact opted in to its
    /// category, also outside the service window.
    template: Option<TemplateRef>,
    /// `text` (any free-form, non-template message): allowed only inside the service window.
    #[schema(example = "text")]
    message_type: Option<String>,
    /// When the message would go out (RFC 3339), for a scheduled campaign; default now. Quiet
    /// hours and the service window are checked at that time.
    #[schema(value_type = Option<String>, format = DateTime, example = "2026-12-01T15:00:00Z")]
    at: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct TemplateRef {
    #[schema(example = "spring_sale")]
    name: String,
    /// `en_US` or `en-US`.
    #[schema(example = "en_US")]
    language: String,
}

/// The gate's answer: allowed, or every reason it is not.
#[derive(Debug, Serialize, ToSchema)]
pub struct DecisionView {
    allowed: bool,
    /// Codes: `invalid_phone`, `not_a_mobile_number`, `unknown_category`, `no_opt_in`, `opted_out`,
    /// `template_not_found`, `template_not_approved`, `template_not_linked`,
    /// `not_opted_in_to_template_category`, `outside_service_window`, `quiet_hours` (with
    /// `retry_after`).
    reasons: Vec<ReasonView>,
    /// When the contact's customer-service window closes, if it is open (template and
    /// free-form decisions).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = DateTime)]
    service_window_closes_at: Option<Timestamp>,
    /// For a template: the business category it counts against.
    #[serde(skip_serializing_if = "Option::is_none")]
    template_category: Option<String>,
}

impl From<&Decision> for DecisionView {
    fn from(decision: &Decision) -> DecisionView {
        DecisionView {
            allowed: decision.allowed(),
            reasons: decision.reasons.iter().map(ReasonView::from).collect(),
            service_window_closes_at: None,
            template_category: None,
        }
    }
}

impl From<&GateAnswer> for DecisionView {
    fn from(answer: &GateAnswer) -> DecisionView {
        DecisionView {
            service_window_closes_at: answer.service_window_closes_at,
            template_category: answer.template_category.as_ref().map(ToString::to_string),
            ..DecisionView::from(&answer.decision)
        }
    }
}

/// Decides one business-initiated message. A refusal is a 200 with reasons, not an error.
#[utoipa::path(post, path = "/v1/decisions", tag = "business", security(("business_key" = [])),
    request_body = DecisionRequest,
    responses(
        (status = 200, body = DecisionView),
        (status = 422, description = "`invalid_country`, `invalid_message`, `invalid_body`", body = ProblemDetails, content_type = "application/problem+json"),
    ))]
pub(crate) async fn decide(
    State(state): State<AppState>,
    BusinessAuth(business): BusinessAuth,
    Json(request): Json<DecisionRequest>,
) -> Result<axum::Json<DecisionView>, ApiError> {
    let region = match request.country.as_deref() {
        Some(code) => Some(Region::parse(code).map_err(|e| ApiError::invalid(e.code(), e.to_string()))?),
        None => None,
    };
    let at = match request.at.as_deref() {
        Some(text) => text.parse::<Timestamp>().map_err(|_| {
            ApiError::invalid("invalid_time", "at must be an RFC 3339 time, such as 2026-12-01T15:00:00Z")
        })?,
        None => Timestamp::now(),
    };
    let view = match (&request.category, &request.template, request.message_type.as_deref()) {
        // The hot path: a category decision needs no window or template lookup.
        (Some(category), None, None) => {
            let decision = gate::decide_send(state.store(), &business, &request.phone, region, category, at).await?;
            DecisionView::from(&decision)
        }
        (None, Some(template), None) => {
            let message = MessageRequest::Template { name: &template.name, language: &template.language };
            let answer =
                gate::decide_message_send(state.store(), &business, &request.phone, region, message, at).await?;
            DecisionView::from(&answer)
        }
        (None, None, Some("text")) => {
            let answer = gate::decide_message_send(
                state.store(),
                &business,
                &request.phone,
                region,
                MessageRequest::FreeForm,
                at,
            )
            .await?;
            DecisionView::from(&answer)
        }
        (None, None, Some(_)) => {
            return Err(ApiError::invalid("invalid_message", "message_type must be `text` (any free-form message)"));
        }
        _ => {
            return Err(ApiError::invalid(
                "invalid_message",
                "give exactly one of `category`, `template` ({name, language}) and `message_type`",
            ));
        }
    };
    state.metrics().record_decision(view.allowed);
    Ok(axum::Json(view))
}
