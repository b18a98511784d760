//! The middleware every route runs behind, outermost first:
//!
//! 1. `Authorization` is marked sensitive, so no layer logs it;
//! 2. a request id (`x-request-id`, kept if the client sent one) is set, and echoed back;
//! 3. a request span with the method, the *route template* (raw paths hold phone numbers) and
//!    the request id;
//! 4. `observe`: metrics per method, route and status, and the log of server failures' causes;
//! 5. panics become an opaque problem 500;
//! 6. the request timeout (problem 503 `request_timeout`);
//! 7. the body limit (problem 413 `body_too_large`, from our extractors).

use std::any::Any;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::{Next, from_fn, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::sensitive_headers::SetSensitiveHeadersLayer;
use tower_http::trace::TraceLayer;
use tracing::Span;

use crate::error::ApiError;
use crate::metrics::record_request;
use crate::state::{AppState, HttpSettings};

/// The route label of requests no route matched.
const UNMATCHED_ROUTE: &str = "unmatched";

/// Wraps every route of `router` (and its fallbacks) in the middleware stack.
pub(crate) fn wrap(router: Router<AppState>, settings: HttpSettings) -> Router<AppState> {
    router.layer(
        ServiceBuilder::new()
            .layer(SetSensitiveHeadersLayer::new([header::AUTHORIZATION]))
            .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
            .layer(TraceLayer::new_for_http().make_span_with(request_span).on_failure(()))
            .layer(PropagateRequestIdLayer::x_request_id())
            .layer(from_fn(observe))
            .layer(CatchPanicLayer::custom(panic_response))
            .layer(from_fn_with_state(settings.request_timeout, enforce_timeout))
            .layer(DefaultBodyLimit::max(settings.body_limit_bytes)),
    )
}

fn request_span(request: &Request) -> Span {
    let route = request.extensions().get::<MatchedPath>().map_or(UNMATCHED_ROUTE, MatchedPath::as_str);
    let request_id = request.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or_default();
    tracing::info_span!("request", method = %request.method(), route, request_id)
}

/// Records the request's metrics and logs the cause of a server failure (inside the span).
async fn observe(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let route = request.extensions().get::<MatchedPath>().cloned();
    let response = next.run(request).await;
    let route = route.as_ref().map_or(UNMATCHED_ROUTE, MatchedPath::as_str);
    record_request(&method, route, response.status(), started.elapsed());
    if let Some(error) = response.extensions().get::<Arc<ApiError>>() {
        error.log();
    }
    response
}

async fn enforce_timeout(State(timeout): State<Duration>, request: Request, next: Next) -> Response {
    match tokio::time::timeout(timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_elapsed) => ApiError::Timeout.into_response(),
    }
}

#[allow(clippy::needless_pass_by_value)] // the signature `CatchPanicLayer::custom` calls
fn panic_response(panic: Box<dyn Any + Send + 'static>) -> Response {
    let message = panic
        .downcast_ref::<&str>()
        .map(|text| (*text).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_owned());
    ApiError::internal(format!("the handler panicked: {message}")).into_response()
}
