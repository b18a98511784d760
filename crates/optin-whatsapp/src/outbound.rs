//! Sending free-form service messages (inside the 24-hour window) for a business's sender, and
//! forwarding a business's own messages for the send proxy.
//!
//! Both providers take the same JSON body at a `/messages` endpoint (whatsapp-platform.md §3.4,
//! §4.2); only the URL and the auth header differ:
//!
//! | provider | URL | auth header |
//! |---|---|---|
//! | Cloud API | `{base_url}/{api_version}/{phone_number_id}/messages` | `Authorization: Bearer <token>` |
//! | 360dialog | `{base_url}/messages` | `D360-API-KEY: <key>` |
//!
//! A send validates the message first ([`OutboundMessage::validate`]), then makes up to
//! [`RetryPolicy::max_attempts`] requests. 429, 5xx, timeouts, connection errors and the Graph
//! throttling codes 130429/131056 are retried with jittered exponential backoff, honouring a
//! `Retry-After` in seconds. Any other 4xx is final. A retried POST may, rarely, deliver twice (the
//! upstream accepted but the answer was lost); the platform offers no idempotency key.
//!
//! Logs carry the provider, `phone_number_id`, HTTP status and attempt number; never the
//! credential, the recipient or the message content.
//!
//! [`OutboundClient::forward`] (in `forward`) posts a business's own message for the send proxy,
//! as the client wrote it, and retries only failures to connect (see there why).

mod error;
mod forward;
mod message;
mod retry;

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use optin_core::whatsapp::Provider;
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderName, HeaderValue, RETRY_AFTER};
use reqwest::{StatusCode, Url};
use serde::Deserialize;
use tracing::Instrument;

pub use error::SendError;
pub use forward::{ForwardError, UpstreamResponse};
pub use message::{ListRow, OutboundMessage, ReplyButton};
pub use retry::RetryPolicy;

/// Where and as whom a business's messages are sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SenderEndpoint {
    pub provider: Provider,
    /// `https://graph.facebook.com` or `https://waba-v2.360dialog.io`; a trailing `/` is fine.
    pub base_url: String,
    /// The Graph API version, e.g. `v23.0`; used by the Cloud API only.
    pub api_version: String,
    pub phone_number_id: String,
    pub credential: Credential,
}

/// A Cloud API access token or a 360dialog API key. Its `Debug` is `[redacted]`.
#[derive(Clone, PartialEq, Eq)]
pub struct Credential(String);

impl Credential {
    pub fn new(secret: impl Into<String>) -> Credential {
        Credential(secret.into())
    }

    fn expose_secret(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Credential {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("[redacted]")
    }
}

/// The upstream accepted the message (accepted, not delivered: delivery comes by webhook).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentMessage {
    pub wamid: String,
    /// Requests made, the successful one included.
    pub attempts: u32,
}

/// Sends messages with retries. Cheap to clone: clones share one connection pool.
#[derive(Debug, Clone)]
pub struct OutboundClient {
    http: reqwest::Client,
    policy: RetryPolicy,
    sends_started: Arc<AtomicU64>,
}

/// How one request ended.
enum Attempt {
    Sent(String),
    Retry(Retryable),
    Final(SendError),
}

/// A failure worth another try: 429, 5xx, a throttling code, a timeout or a connection error.
struct Retryable {
    status: Option<u16>,
    reason: String,
    retry_after: Option<Duration>,
}

/// What every attempt of one send posts.
struct PreparedRequest {
    url: Url,
    auth_headers: HeaderMap,
    body: serde_json::Value,
}

impl OutboundClient {
    pub fn new(policy: RetryPolicy) -> Result<OutboundClient, SendError> {
        let http = reqwest::Client::builder()
            .timeout(policy.request_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|error| unusable(&format!("HTTP client failed to build: {error}")))?;
        Ok(OutboundClient { http, policy, sends_started: Arc::new(AtomicU64::new(0)) })
    }

    /// Validates `message`, then posts it for `sender`, retrying as the policy allows.
    pub async fn send(&self, sender: &SenderEndpoint, message: &OutboundMessage) -> Result<SentMessage, SendError> {
        message.validate()?;
        let prepared = PreparedRequest {
            url: messages_url(sender)?,
            auth_headers: auth_headers(sender)?,
            body: message.to_request_body(),
        };
        let span = tracing::debug_span!(
            "whatsapp_send",
            provider = sender.provider.as_str(),
            phone_number_id = sender.phone_number_id.as_str()
        );
        self.send_with_retries(&prepared).instrument(span).await
    }

    async fn send_with_retries(&self, prepared: &PreparedRequest) -> Result<SentMessage, SendError> {
        let send_number = self.sends_started.fetch_add(1, Ordering::Relaxed);
        let mut attempt = 1;
        loop {
            tracing::debug!(attempt, "sending WhatsApp message");
            let failure = match self.attempt(prepared).await {
                Attempt::Sent(wamid) => {
                    tracing::debug!(attempt, "upstream accepted the message");
                    return Ok(SentMessage { wamid, attempts: attempt });
                }
                Attempt::Final(error) => {
                    tracing::warn!(attempt, error = %error, "upstream send failed");
                    return Err(error);
                }
                Attempt::Retry(failure) => failure,
            };
            let Retryable { status, reason, retry_after } = failure;
            if attempt >= self.policy.attempts() {
                tracing::warn!(status, attempt, reason, "upstream send failed, giving up");
                return Err(SendError::Exhausted { attempts: attempt, last: reason });
            }
            let seed = retry::mix(&[send_number, attempt.into(), clock_nanos()]);
            let pause = self.policy.pause_after(attempt, retry_after, seed);
            let pause_ms = pause.as_millis();
            tracing::warn!(status, attempt, reason, pause_ms, "upstream send failed, retrying");
            tokio::time::sleep(pause).await;
            attempt += 1;
        }
    }

    async fn attempt(&self, prepared: &PreparedRequest) -> Attempt {
        let request = self.http.post(prepared.url.clone()).headers(prepared.auth_headers.clone()).json(&prepared.body);
        let response = match request.send().await {
            Ok(response) => response,
            Err(error) => return self.transport_failure(&error),
        };
        let status = response.status();
        let retry_after = read_retry_after(response.headers());
        let body = response.bytes().await;
        if status.is_success() {
            return match body {
                Ok(body) => read_wamid(&body).map_or_else(Attempt::Final, Attempt::Sent),
                Err(error) => Attempt::Final(SendError::InvalidResponse(format!(
                    "HTTP {status} but the body could not be read: {}",
                    describe(&error)
                ))),
            };
        }
        let body = body.unwrap_or_default();
        let (code, message) = error::read_error_body(&body);
        let retryable = status == StatusCode::TOO_MANY_REQUESTS
            || status.is_server_error()
            || (status.is_client_error() && error::is_throttling_code(code));
        if retryable {
            return Attempt::Retry(Retryable {
                status: Some(status.as_u16()),
                reason: format!("HTTP {}: {message}", status.as_u16()),
                retry_after,
            });
        }
        if status.is_client_error() {
            return Attempt::Final(SendError::Rejected { status: status.as_u16(), code, message });
        }
        Attempt::Final(SendError::InvalidResponse(format!("unexpected HTTP {}", status.as_u16())))
    }

    fn transport_failure(&self, error: &reqwest::Error) -> Attempt {
        let reason = if error.is_timeout() {
            format!("timed out after {:?}", self.policy.request_timeout)
        } else {
            describe(error)
        };
        Attempt::Retry(Retryable { status: None, reason, retry_after: None })
    }
}

fn messages_url(sender: &SenderEndpoint) -> Result<Url, SendError> {
    let base_url = sender.base_url.trim_end_matches('/');
    let url = match sender.provider {
        Provider::CloudApi => {
            format!("{base_url}/{}/{}/messages", sender.api_version.trim_matches('/'), sender.phone_number_id)
        }
        Provider::Dialog360 => format!("{base_url}/messages"),
    };
    Url::parse(&url).map_err(|error| unusable(&format!("base_url is not a URL: {error}")))
}

fn auth_headers(sender: &SenderEndpoint) -> Result<HeaderMap, SendError> {
    let secret = sender.credential.expose_secret();
    let (name, value) = match sender.provider {
        Provider::CloudApi => (AUTHORIZATION, format!("Bearer {secret}")),
        Provider::Dialog360 => (HeaderName::from_static("d360-api-key"), secret.to_owned()),
    };
    let mut value = HeaderValue::try_from(value).map_err(|_| unusable("the credential is not a valid header value"))?;
    value.set_sensitive(true);
    let mut headers = HeaderMap::new();
    headers.insert(name, value);
    Ok(headers)
}

fn read_wamid(body: &[u8]) -> Result<String, SendError> {
    #[derive(Deserialize)]
    struct Accepted {
        messages: Vec<AcceptedMessage>,
    }
    #[derive(Deserialize)]
    struct AcceptedMessage {
        id: String,
    }
    let accepted: Accepted = serde_json::from_slice(body)
        .map_err(|error| SendError::InvalidResponse(format!("2xx body is not a send response: {error}")))?;
    match accepted.messages.into_iter().next() {
        Some(AcceptedMessage { id }) if !id.is_empty() => Ok(id),
        _ => Err(SendError::InvalidResponse("2xx body has no messages[0].id".to_owned())),
    }
}

/// `Retry-After` in whole seconds; the HTTP-date form is ignored (backoff applies instead).
fn read_retry_after(headers: &HeaderMap) -> Option<Duration> {
    let seconds = headers.get(RETRY_AFTER)?.to_str().ok()?.trim().parse().ok()?;
    Some(Duration::from_secs(seconds))
}

/// A transport error with its causes, e.g. "error sending request: …: Connection refused".
fn describe(error: &reqwest::Error) -> String {
    let mut description = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        description.push_str(": ");
        description.push_str(&cause.to_string());
        source = cause.source();
    }
    description
}

fn unusable(reason: &str) -> SendError {
    SendError::Exhausted { attempts: 0, last: format!("unusable sender endpoint: {reason}") }
}

fn clock_nanos() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |since_epoch| since_epoch.subsec_nanos().into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sender(provider: Provider, base_url: &str) -> SenderEndpoint {
        SenderEndpoint {
            provider,
            base_url: base_url.to_owned(),
            api_version: "v23.0".to_owned(),
            phone_number_id: "106540352242922".to_owned(),
            credential: Credential::new("EAAG-secret-token"),
        }
    }

    #[test]
    fn credential_is_redacted_in_debug_output() {
        let debug = format!("{:?}", sender(Provider::CloudApi, "https://graph.facebook.com"));
        assert!(debug.contains("[redacted]"));
        assert!(!debug.contains("EAAG-secret-token"));
    }

    #[test]
    fn urls_follow_the_provider_with_or_without_a_trailing_slash() {
        for base_url in ["https://graph.facebook.com", "https://graph.facebook.com/"] {
            let url = messages_url(&sender(Provider::CloudApi, base_url)).unwrap();
            assert_eq!(url.as_str(), "https://graph.facebook.com/v23.0/106540352242922/messages");
        }
        for base_url in ["https://waba-v2.360dialog.io", "https://waba-v2.360dialog.io/"] {
            let url = messages_url(&sender(Provider::Dialog360, base_url)).unwrap();
            assert_eq!(url.as_str(), "https://waba-v2.360dialog.io/messages");
        }
    }

    #[test]
    fn auth_header_is_sensitive_and_per_provider() {
        let cloud = auth_headers(&sender(Provider::CloudApi, "https://x")).unwrap();
        assert_eq!(cloud[AUTHORIZATION], "Bearer EAAG-secret-token");
        assert!(cloud[AUTHORIZATION].is_sensitive());
        let dialog = auth_headers(&sender(Provider::Dialog360, "https://x")).unwrap();
        assert_eq!(dialog["D360-API-KEY"], "EAAG-secret-token");
        assert!(!dialog.contains_key(AUTHORIZATION));
    }

    #[test]
    fn a_malformed_endpoint_fails_without_a_request() {
        let error = messages_url(&sender(Provider::Dialog360, "not a url")).unwrap_err();
        assert!(matches!(error, SendError::Exhausted { attempts: 0, .. }));
        let mut bad_credential = sender(Provider::CloudApi, "https://x");
        bad_credential.credential = Credential::new("line\nbreak");
        let error = auth_headers(&bad_credential).unwrap_err();
        assert!(!error.to_string().contains("line"));
    }

    #[test]
    fn wamid_is_read_from_the_send_response() {
        let body = br#"{"messaging_product":"whatsapp","contacts":[{"input":"1","wa_id":"1"}],
            "messages":[{"id":"wamid.HBg1"}]}"#;
        assert_eq!(read_wamid(body), Ok("wamid.HBg1".to_owned()));
        for bad in [&b"{}"[..], br#"{"messages":[]}"#, b"nope"] {
            assert!(matches!(read_wamid(bad), Err(SendError::InvalidResponse(_))));
        }
    }
}
