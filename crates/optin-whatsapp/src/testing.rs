//! A local fake of the Cloud API and 360dialog send endpoints, for end-to-end tests.
//!
//! [`FakeUpstream::start`] serves, on a real socket at `127.0.0.1:<random port>`:
//!
//! - `POST /{version}/{phone_number_id}/messages`, which requires `Authorization: Bearer <token>`
//!   (the Cloud API);
//! - `POST /messages`, which requires `D360-API-KEY: <key>` (360dialog).
//!
//! A request with the wrong credential gets 401 with Graph error code 190. A body the platform
//! would refuse (wrong `messaging_product`, no `to`, an unknown `type` or a missing object for it)
//! gets 400 with Graph error code 100 "(#100) Invalid parameter". Otherwise the answer is 200
//! with `{"messaging_product":"whatsapp","contacts":[{"input":to,"wa_id":to}],
//! "messages":[{"id":"wamid.FAKE<n>"}]}` (whatsapp-platform.md §3.4). Errors use the synchronous
//! Graph error shape of §2 for both providers; 360dialog's own error bodies are not imitated.
//!
//! Trouble is scripted: [`FakeUpstream::fail_next`] answers the next requests with an error
//! status, and [`FakeUpstream::hang_next`] holds them past the client's timeout. Scripted
//! behaviour applies to the next requests whatever their route or credential.

mod check;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use optin_core::whatsapp::Provider;
use serde_json::{Value, json};
use tokio::task::JoinHandle;

/// The credentials the fake accepts.
#[derive(Debug, Clone)]
pub struct FakeCredentials {
    pub bearer_token: String,
    pub d360_api_key: String,
}

/// A message the fake accepted, as it arrived.
#[derive(Debug, Clone, PartialEq)]
pub struct ReceivedMessage {
    pub provider: Provider,
    /// From the Cloud API path; `None` for 360dialog.
    pub phone_number_id: Option<String>,
    /// From the Cloud API path; `None` for 360dialog.
    pub api_version: Option<String>,
    pub body: Value,
    pub wamid: String,
}

/// A scripted error answer: an HTTP status with a Graph error body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeFailure {
    status: u16,
    code: i64,
    retry_after_seconds: Option<u64>,
}

impl FakeFailure {
    /// `status` with the Graph code the platform usually pairs with it: 400 → 100, 401 → 190,
    /// 429 → 130429, 503 → 131016, anything else → 131000 "Something went wrong".
    pub fn status(status: u16) -> FakeFailure {
        let code = match status {
            400 => 100,
            401 => 190,
            429 => 130_429,
            503 => 131_016,
            _ => 131_000,
        };
        FakeFailure { status, code, retry_after_seconds: None }
    }

    /// Another Graph error code, e.g. 131056 (pair rate limit, sent with HTTP 400).
    pub fn with_code(self, code: i64) -> FakeFailure {
        FakeFailure { code, ..self }
    }

    /// Adds `Retry-After: <seconds>`.
    pub fn with_retry_after(self, seconds: u64) -> FakeFailure {
        FakeFailure { retry_after_seconds: Some(seconds), ..self }
    }

    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = graph_error(status, self.code, None);
        if let Some(seconds) = self.retry_after_seconds {
            response.headers_mut().insert(header::RETRY_AFTER, seconds.into());
        }
        response
    }
}

/// The fake server; it stops when dropped.
pub struct FakeUpstream {
    address: SocketAddr,
    state: Arc<FakeState>,
    server: JoinHandle<()>,
}

struct FakeState {
    expected: FakeCredentials,
    log: Mutex<RequestLog>,
}

#[derive(Default)]
struct RequestLog {
    attempts: usize,
    sent: Vec<ReceivedMessage>,
    script: VecDeque<Scripted>,
}

enum Scripted {
    Fail(FakeFailure),
    Hang(Duration),
}

impl FakeUpstream {
    pub async fn start(expected: FakeCredentials) -> FakeUpstream {
        let state = Arc::new(FakeState { expected, log: Mutex::default() });
        let router = Router::new()
            .route("/{version}/{phone_number_id}/messages", post(cloud_api_send))
            .route("/messages", post(dialog360_send))
            .fallback(unknown_path)
            .with_state(Arc::clone(&state));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("fake upstream: bind 127.0.0.1:0");
        let address = listener.local_addr().expect("fake upstream: local address");
        let server = tokio::spawn(async move {
            axum::serve(listener, router).await.expect("fake upstream: serve");
        });
        FakeUpstream { address, state, server }
    }

    /// `http://127.0.0.1:PORT`, usable as the `base_url` of either provider.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// The accepted messages, in arrival order.
    pub fn sent(&self) -> Vec<ReceivedMessage> {
        self.state.log().sent.clone()
    }

    /// Every request seen, failed and refused ones included.
    pub fn attempts(&self) -> usize {
        self.state.log().attempts
    }

    /// The next `count` requests get `status` with a Graph error body (see [`FakeFailure::status`]).
    pub fn fail_next(&self, count: usize, status: u16) {
        self.fail_next_with(count, &FakeFailure::status(status));
    }

    /// The next `count` requests get `failure`.
    pub fn fail_next_with(&self, count: usize, failure: &FakeFailure) {
        let mut log = self.state.log();
        log.script.extend((0..count).map(|_| Scripted::Fail(failure.clone())));
    }

    /// The next `count` requests get no answer for `delay`, then 504: set `delay` above the
    /// client's request timeout to simulate a hung upstream. They are never accepted.
    pub fn hang_next(&self, count: usize, delay: Duration) {
        let mut log = self.state.log();
        log.script.extend((0..count).map(|_| Scripted::Hang(delay)));
    }

    /// Waits until at least `count` messages were accepted and returns them all.
    ///
    /// # Panics
    /// When `timeout` passes first.
    pub async fn wait_for_sent(&self, count: usize, timeout: Duration) -> Vec<ReceivedMessage> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let sent = self.sent();
            if sent.len() >= count {
                return sent;
            }
            if tokio::time::Instant::now() >= deadline {
                panic!(
                    "fake upstream: expected at least {count} accepted messages within {timeout:?}, \
                     got {} ({} requests seen)",
                    sent.len(),
                    self.attempts()
                );
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

impl Drop for FakeUpstream {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl FakeState {
    fn log(&self) -> MutexGuard<'_, RequestLog> {
        self.log.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Which endpoint a request came through.
struct Route {
    provider: Provider,
    phone_number_id: Option<String>,
    api_version: Option<String>,
}

async fn cloud_api_send(
    State(state): State<Arc<FakeState>>,
    Path((version, phone_number_id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let route =
        Route { provider: Provider::CloudApi, phone_number_id: Some(phone_number_id), api_version: Some(version) };
    receive(&state, route, &headers, &body).await
}

async fn dialog360_send(State(state): State<Arc<FakeState>>, headers: HeaderMap, body: Bytes) -> Response {
    let route = Route { provider: Provider::Dialog360, phone_number_id: None, api_version: None };
    receive(&state, route, &headers, &body).await
}

async fn unknown_path(State(state): State<Arc<FakeState>>) -> Response {
    state.log().attempts += 1;
    graph_error(StatusCode::NOT_FOUND, 100, Some("unknown path"))
}

async fn receive(state: &FakeState, route: Route, headers: &HeaderMap, body: &[u8]) -> Response {
    let scripted = {
        let mut log = state.log();
        log.attempts += 1;
        log.script.pop_front()
    };
    match scripted {
        Some(Scripted::Fail(failure)) => return failure.into_response(),
        Some(Scripted::Hang(delay)) => {
            tokio::time::sleep(delay).await;
            return graph_error(StatusCode::GATEWAY_TIMEOUT, 131_000, None);
        }
        None => {}
    }
    if !check::is_authorized(route.provider, headers, &state.expected) {
        return graph_error(StatusCode::UNAUTHORIZED, 190, None);
    }
    let message = match check::parse_message(headers, body) {
        Ok(message) => message,
        Err(reason) => return graph_error(StatusCode::BAD_REQUEST, 100, Some(&reason)),
    };
    let to = message["to"].clone();
    let wamid = {
        let mut log = state.log();
        let wamid = format!("wamid.FAKE{}", log.sent.len() + 1);
        log.sent.push(ReceivedMessage {
            provider: route.provider,
            phone_number_id: route.phone_number_id,
            api_version: route.api_version,
            body: message,
            wamid: wamid.clone(),
        });
        wamid
    };
    axum::Json(json!({
        "messaging_product": "whatsapp",
        "contacts": [ { "input": to, "wa_id": to } ],
        "messages": [ { "id": wamid } ],
    }))
    .into_response()
}

/// A synchronous Graph error (whatsapp-platform.md §2).
fn graph_error(status: StatusCode, code: i64, details: Option<&str>) -> Response {
    let title = match code {
        100 => "(#100) Invalid parameter",
        190 => "Invalid OAuth access token",
        130_429 => "(#130429) Rate limit hit",
        131_016 => "(#131016) Service unavailable",
        131_056 => "(#131056) (Business Account, Consumer Account) pair rate limit hit",
        131_000 => "(#131000) Something went wrong",
        _ => "Scripted failure",
    };
    let details = details.unwrap_or(match code {
        130_429 => "Cloud API message throughput has been reached.",
        131_056 => "Message failed to send because there were too many messages sent from this phone number to the same phone number in a short period of time.",
        _ => title,
    });
    let body = json!({
        "error": {
            "message": title,
            "type": "OAuthException",
            "code": code,
            "error_data": { "messaging_product": "whatsapp", "details": details },
            "fbtrace_id": "AFakeUpstreamTrace",
        }
    });
    (status, axum::Json(body)).into_response()
}
