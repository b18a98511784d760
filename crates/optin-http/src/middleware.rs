//! The middleware every route runs behind, outermost first:
//!
//! 1. `Authorization` and `D360-API-KEY` (the proxy's) are marked sensitive, so no layer logs them;
//! 2. a request id (`x-request-id`, kept if the client sent one) is set, and echoed back;
//! 3. a request span with the method, the *route template* (raw paths hold phone numbers), the
//!    request id and, once authenticated, the business id;
//! 4. [`Observe`]: the request timeout (problem 503 `request_timeout`), metrics per method, route
//!    and status, and the log of server failures' causes (inside the span). The timeout (and the
//!    duration measured) ends when the handler returns the response's head, so a route that
//!    streams its body is not cut off: `POST /v1/decisions/batch` authenticates, answers its head
//!    at once and then reads and answers its lines for as long as the audience lasts (an audience
//!    of millions takes longer than any request timeout) — no exemption list is needed;
//! 5. panics become an opaque problem 500;
//! 6. the body limit (problem 413 `body_too_large`, from our extractors).
//!
//! The decision endpoint is the hot path, and this stack costs more than its handler: the
//! request id is a counter rather than a random UUID, and `Observe` is a plain service (not
//! `from_fn`) that registers each metric series once.

use std::any::Any;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, HttpBody};
use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::http::{HeaderName, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use tower::{Layer, Service, ServiceBuilder};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer};
use tower_http::sensitive_headers::SetSensitiveHeadersLayer;
use tower_http::trace::TraceLayer;
use tracing::Span;

use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::state::AppState;

/// The route label of requests no route matched.
const UNMATCHED_ROUTE: &str = "unmatched";

/// Wraps every route of `router` (and its fallbacks) in the middleware stack.
pub(crate) fn wrap(router: Router<AppState>, state: &AppState) -> Router<AppState> {
    let settings = state.settings();
    let observe = ObserveLayer { metrics: state.metrics().clone(), timeout: settings.request_timeout };
    router.layer(
        ServiceBuilder::new()
            .layer(SetSensitiveHeadersLayer::new([header::AUTHORIZATION, HeaderName::from_static("d360-api-key")]))
            .layer(SetRequestIdLayer::x_request_id(RequestIds::new()))
            .layer(TraceLayer::new_for_http().make_span_with(request_span).on_failure(()))
            .layer(PropagateRequestIdLayer::x_request_id())
            .layer(observe)
            .layer(CatchPanicLayer::custom(panic_response))
            .layer(DefaultBodyLimit::max(settings.body_limit_bytes)),
    )
}

fn request_span(request: &Request) -> Span {
    let route = request.extensions().get::<MatchedPath>().map_or(UNMATCHED_ROUTE, MatchedPath::as_str);
    let request_id = request.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or_default();
    // `business` is recorded by the `BusinessAuth` extractor once the key is known.
    tracing::info_span!("request", method = %request.method(), route, request_id, business = tracing::field::Empty)
}

/// Request ids `<random per router>-<sequence>`: unique without a random draw per request.
#[derive(Clone)]
struct RequestIds {
    prefix: Arc<str>,
    next: Arc<AtomicU64>,
}

impl RequestIds {
    fn new() -> RequestIds {
        let random = optin_store::tenancy::random_bytes();
        RequestIds { prefix: hex::encode(&random[..6]).into(), next: Arc::default() }
    }
}

impl MakeRequestId for RequestIds {
    fn make_request_id<B>(&mut self, _request: &Request<B>) -> Option<RequestId> {
        let sequence = self.next.fetch_add(1, Ordering::Relaxed);
        HeaderValue::try_from(format!("{}-{sequence}", self.prefix)).ok().map(RequestId::new)
    }
}

#[derive(Clone)]
struct ObserveLayer {
    metrics: Metrics,
    timeout: Duration,
}

impl<S> Layer<S> for ObserveLayer {
    type Service = Observe<S>;

    fn layer(&self, inner: S) -> Observe<S> {
        Observe { inner, metrics: self.metrics.clone(), timeout: self.timeout }
    }
}

/// Times the request out, records its metrics and logs the cause of a server failure.
#[derive(Clone)]
struct Observe<S> {
    inner: S,
    metrics: Metrics,
    timeout: Duration,
}

impl<S, B> Service<Request> for Observe<S>
where
    S: Service<Request, Response = Response<B>, Error = Infallible>,
    S::Future: Send + 'static,
    B: HttpBody<Data = axum::body::Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, context: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(context)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let started = Instant::now();
        let method = request.method().clone();
        let route = request.extensions().get::<MatchedPath>().cloned();
        let response = tokio::time::timeout(self.timeout, self.inner.call(request));
        let metrics = self.metrics.clone();
        Box::pin(async move {
            let response = match response.await {
                Ok(Ok(response)) => response.map(Body::new),
                Err(_elapsed) => ApiError::Timeout.into_response(),
            };
            let route = route.as_ref().map_or(UNMATCHED_ROUTE, MatchedPath::as_str);
            metrics.record_request(&method, route, response.status(), started.elapsed());
            if let Some(error) = response.extensions().get::<Arc<ApiError>>() {
                error.log();
            }
            Ok(response)
        })
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
