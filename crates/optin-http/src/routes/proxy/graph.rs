//! The proxy's errors in the platform's own synchronous error shape (whatsapp-platform.md §2), so
//! that a WhatsApp client library raises them as ordinary API errors:
//!
//! ```json
//! {"error": {"message": "(#131047) Re-engagement message", "type": "OAuthException", "code": 131047,
//!   "error_data": {"messaging_product": "whatsapp", "details": "optin: outside_service_window: ..."},
//!   "optin_reasons": [{"code": "outside_service_window", "detail": "..."}], "fbtrace_id": "<request id>"}}
//! ```
//!
//! A refusal's `code` is the Graph code closest to its first reason ([`refusal_code`]); every
//! reason is in `optin_reasons` and, as `code: detail`, in `details`.

use std::sync::Arc;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use optin_core::decision::{Decision, Reason, ReasonView};
use optin_core::template::TemplateStatus;
use optin_store::StoreError;
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::ApiError;

/// Graph's generic "invalid parameter".
const INVALID_PARAMETER: i64 = 100;
const INVALID_TOKEN: i64 = 190;
const SOMETHING_WENT_WRONG: i64 = 131_000;
const SERVICE_UNAVAILABLE: i64 = 131_016;

/// An error answer of the proxy.
#[derive(Debug)]
pub(crate) struct GraphError {
    status: StatusCode,
    code: i64,
    title: &'static str,
    reasons: Vec<ReasonView>,
    /// A server failure to log (through the `observe` middleware, as for every route).
    cause: Option<ApiError>,
}

/// `{"error": {...}}`, as the platform answers a refused send.
#[derive(Debug, Serialize, ToSchema)]
pub struct GraphErrorEnvelope {
    error: GraphErrorBody,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct GraphErrorBody {
    /// `(#<code>) <title>`.
    #[schema(example = "(#131047) Re-engagement message")]
    message: String,
    /// Always `OAuthException`, as the platform's.
    #[serde(rename = "type")]
    error_type: &'static str,
    /// The Graph error code: 131047 (`outside_service_window`), 131050 (`opted_out`), 132001
    /// (`template_not_found`, template not approved), 132015 (template paused), 132016
    /// (template disabled), 100 (any other reason, and invalid requests), 190 (wrong key).
    #[schema(example = 131_047)]
    code: i64,
    error_data: GraphErrorData,
    /// optin's machine-readable reasons, as `POST /v1/decisions` gives them.
    optin_reasons: Vec<ReasonView>,
    /// The request id (`x-request-id`).
    fbtrace_id: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct GraphErrorData {
    messaging_product: &'static str,
    /// `optin: <code>: <detail>; ...` for every reason.
    details: String,
}

impl GraphError {
    fn new(status: StatusCode, code: i64, title: &'static str, reason: &'static str, detail: String) -> GraphError {
        GraphError {
            status,
            code,
            title,
            reasons: vec![ReasonView { code: reason, detail, retry_after: None }],
            cause: None,
        }
    }

    /// 400: the gate refused the message.
    pub(crate) fn refused(decision: &Decision) -> GraphError {
        let (code, title) = decision.reasons.first().map_or((INVALID_PARAMETER, "Refused"), refusal_code);
        let reasons = decision.reasons.iter().map(ReasonView::from).collect();
        GraphError { status: StatusCode::BAD_REQUEST, code, title, reasons, cause: None }
    }

    /// 400: the body is not a send request optin can decide.
    pub(crate) fn invalid(reason: &'static str, detail: String) -> GraphError {
        GraphError::new(StatusCode::BAD_REQUEST, INVALID_PARAMETER, "Invalid parameter", reason, detail)
    }

    /// 401: no key, an unknown or revoked key, or another business's key.
    pub(crate) fn unauthorized(header: &str) -> GraphError {
        let detail = format!("`{header}` must hold an API key of the business the path names");
        GraphError::new(StatusCode::UNAUTHORIZED, INVALID_TOKEN, "Invalid OAuth access token", "unauthorized", detail)
    }

    /// 404: the path names no sender of the business.
    pub(crate) fn unknown_sender(detail: String) -> GraphError {
        let title = "Unsupported post request";
        GraphError::new(StatusCode::NOT_FOUND, INVALID_PARAMETER, title, "unknown_sender", detail)
    }

    pub(crate) fn too_large(limit: usize) -> GraphError {
        let detail = format!("the request body is larger than {limit} bytes");
        GraphError::new(StatusCode::PAYLOAD_TOO_LARGE, INVALID_PARAMETER, "Invalid parameter", "body_too_large", detail)
    }

    /// 502: nothing was sent (the upstream could not be reached).
    pub(crate) fn not_sent(reason: &'static str, detail: &str) -> GraphError {
        let detail = format!("{detail}; the message was not sent");
        GraphError::new(StatusCode::BAD_GATEWAY, SERVICE_UNAVAILABLE, "Service unavailable", reason, detail)
    }

    /// 504: the message may have been sent, but the upstream did not answer.
    pub(crate) fn no_answer(detail: &str) -> GraphError {
        let detail =
            format!("{detail}; the message may have been sent: check its status webhooks before sending it again");
        let title = "Something went wrong";
        GraphError::new(StatusCode::GATEWAY_TIMEOUT, SOMETHING_WENT_WRONG, title, "upstream_no_answer", detail)
    }

    /// 503: the proxy cannot forward (no forwarder is configured).
    pub(crate) fn no_forwarder() -> GraphError {
        let detail = "this optin server has no upstream client".to_owned();
        let title = "Service unavailable";
        GraphError::new(StatusCode::SERVICE_UNAVAILABLE, SERVICE_UNAVAILABLE, title, "proxy_unavailable", detail)
    }

    /// 503 or 500 for a store failure; the cause is logged, never shown.
    pub(crate) fn store(error: StoreError) -> GraphError {
        let cause = ApiError::from(error);
        let (status, code, title) = match cause.status() {
            StatusCode::SERVICE_UNAVAILABLE => {
                (StatusCode::SERVICE_UNAVAILABLE, SERVICE_UNAVAILABLE, "Service unavailable")
            }
            _ => (StatusCode::INTERNAL_SERVER_ERROR, SOMETHING_WENT_WRONG, "Something went wrong"),
        };
        let detail = "optin's database failed; nothing was sent".to_owned();
        GraphError { cause: Some(cause), ..GraphError::new(status, code, title, "internal_error", detail) }
    }

    pub(crate) fn status(&self) -> StatusCode {
        self.status
    }

    pub(crate) fn first_reason(&self) -> &'static str {
        self.reasons.first().map_or("refused", |reason| reason.code)
    }

    /// The response, with `fbtrace_id` set to the request id.
    pub(crate) fn into_response(self, request_id: &str) -> Response {
        let details = self.reasons.iter().map(|r| format!("{}: {}", r.code, r.detail)).collect::<Vec<_>>();
        let envelope = GraphErrorEnvelope {
            error: GraphErrorBody {
                message: format!("(#{}) {}", self.code, self.title),
                error_type: "OAuthException",
                code: self.code,
                error_data: GraphErrorData {
                    messaging_product: "whatsapp",
                    details: format!("optin: {}", details.join("; ")),
                },
                optin_reasons: self.reasons,
                fbtrace_id: request_id.to_owned(),
            },
        };
        let mut response = (self.status, axum::Json(envelope)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Some(cause) = self.cause {
            response.extensions_mut().insert(Arc::new(cause));
        }
        response
    }
}

/// The Graph code and title closest to a refusal reason.
fn refusal_code(reason: &Reason) -> (i64, &'static str) {
    match reason {
        Reason::OutsideServiceWindow => (131_047, "Re-engagement message"),
        Reason::OptedOut => (131_050, "The recipient has chosen to stop receiving these messages from your business"),
        Reason::TemplateNotFound => (132_001, "Template name does not exist in the translation"),
        Reason::TemplateNotApproved(TemplateStatus::Paused) => (132_015, "Template is paused"),
        Reason::TemplateNotApproved(TemplateStatus::Disabled) => (132_016, "Template is disabled"),
        Reason::TemplateNotApproved(_) => (132_001, "Template is not approved in this language"),
        Reason::NoOptIn
        | Reason::NotOptedInToTemplateCategory(_)
        | Reason::OptInPendingConfirmation
        | Reason::ConsentExpired => (INVALID_PARAMETER, "The recipient has not opted in to these messages"),
        // The platform's own per-user limit on marketing messages.
        Reason::FrequencyCap { .. } => {
            (131_049, "This message was not delivered to maintain healthy ecosystem engagement")
        }
        // The platform's own limit on messages from the number: the closest code.
        Reason::TierCapReached => (131_048, "Spam rate limit hit"),
        _ => (INVALID_PARAMETER, "Invalid parameter"),
    }
}

#[cfg(test)]
mod tests {
    use optin_core::business::CategoryName;

    use super::*;

    #[test]
    fn refusals_take_the_graph_code_of_their_first_reason() {
        let cases = [
            (Reason::OutsideServiceWindow, 131_047),
            (Reason::OptedOut, 131_050),
            (Reason::TemplateNotFound, 132_001),
            (Reason::TemplateNotApproved(TemplateStatus::Pending), 132_001),
            (Reason::TemplateNotApproved(TemplateStatus::Paused), 132_015),
            (Reason::FrequencyCap { max: 3, retry_after: None }, 131_049),
            (Reason::OptInPendingConfirmation, INVALID_PARAMETER),
            (Reason::TemplateNotApproved(TemplateStatus::Disabled), 132_016),
            (Reason::NoOptIn, 100),
            (Reason::NotOptedInToTemplateCategory(CategoryName::parse("offers").unwrap()), 100),
            (Reason::TemplateNotLinked, 100),
        ];
        for (reason, expected) in cases {
            assert_eq!(refusal_code(&reason).0, expected, "{reason:?}");
        }
    }

    #[tokio::test]
    async fn a_refusal_names_every_reason_in_the_platform_shape() {
        let decision = Decision { reasons: vec![Reason::OptedOut, Reason::OutsideServiceWindow] };
        let response = GraphError::refused(&decision).into_response("abc-1");
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        let body = axum::body::to_bytes(response.into_body(), 1 << 16).await.unwrap();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let error = &body["error"];
        assert_eq!(error["code"], 131_050);
        assert!(error["message"].as_str().unwrap().starts_with("(#131050) "));
        assert_eq!(error["type"], "OAuthException");
        assert_eq!(error["fbtrace_id"], "abc-1");
        assert_eq!(error["error_data"]["messaging_product"], "whatsapp");
        let details = error["error_data"]["details"].as_str().unwrap();
        assert!(details.starts_with("optin: opted_out: ") && details.contains("; outside_service_window: "));
        let codes: Vec<&str> =
            error["optin_reasons"].as_array().unwrap().iter().map(|r| r["code"].as_str().unwrap()).collect();
        assert_eq!(codes, ["opted_out", "outside_service_window"]);
    }
}
