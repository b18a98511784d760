//! Forwarding a business's own message for the send proxy: the body exactly as the client wrote
//! it, to the sender's `/messages` endpoint with the stored credential; the upstream's answer
//! (status, content type, body) comes back as it is.
//!
//! Unlike [`OutboundClient::send`], a forward is retried only when no connection could be made,
//! so that nothing was sent. A timeout or a connection lost after the request went out is not
//! retried: the upstream may have accepted the message, and a marketing message delivered twice
//! is worse than an error the client sees (the client may send again, through the gate again).
//! 429s and 5xx are not retried either: they are the client's to handle, as without optin.
//!
//! Logs carry the provider, `phone_number_id`, HTTP status and attempt number; never the
//! credential or the body.

use reqwest::Url;
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderValue};
use tracing::Instrument;

use super::{OutboundClient, SendError, SenderEndpoint, auth_headers, clock_nanos, describe, messages_url, retry};

/// The upstream's answer, as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamResponse {
    pub status: u16,
    pub content_type: Option<String>,
    pub body: Vec<u8>,
}

/// Why a forward got no answer from the upstream.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ForwardError {
    /// The sender's base URL or credential cannot make a request: nothing was sent.
    #[error("the sender's endpoint is unusable: {0}")]
    Unusable(String),
    /// No connection could be made on any attempt: nothing was sent.
    #[error("the upstream is unreachable after {attempts} attempts: {last}")]
    Unreachable { attempts: u32, last: String },
    /// The request may have reached the upstream, but no complete answer came back (a timeout, a
    /// connection lost): the message may have been sent.
    #[error("no answer from the upstream, the message may have been sent: {0}")]
    NoAnswer(String),
}

impl ForwardError {
    /// A stable code for logs and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            ForwardError::Unusable(_) => "upstream_unusable",
            ForwardError::Unreachable { .. } => "upstream_unreachable",
            ForwardError::NoAnswer(_) => "upstream_no_answer",
        }
    }
}

impl OutboundClient {
    /// Posts `body` (a Cloud API send body, JSON) for `sender` and returns the upstream's answer,
    /// whatever its status. Retried only while no connection can be made.
    pub async fn forward(&self, sender: &SenderEndpoint, body: &[u8]) -> Result<UpstreamResponse, ForwardError> {
        let url = messages_url(sender).map_err(unusable)?;
        let mut headers = auth_headers(sender).map_err(unusable)?;
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        let span = tracing::debug_span!(
            "whatsapp_forward",
            provider = sender.provider.as_str(),
            phone_number_id = sender.phone_number_id.as_str()
        );
        self.forward_with_retries(&url, &headers, body).instrument(span).await
    }

    async fn forward_with_retries(
        &self,
        url: &Url,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<UpstreamResponse, ForwardError> {
        let mut attempt = 1;
        loop {
            let request = self.http.post(url.clone()).headers(headers.clone()).body(body.to_vec());
            let error = match request.send().await {
                Ok(response) => return read_answer(response, attempt).await,
                Err(error) => error,
            };
            // A connect error means no byte of the request left; anything else may have.
            if !error.is_connect() || error.is_timeout() {
                tracing::warn!(attempt, reason = describe(&error), "forwarded message got no answer");
                return Err(ForwardError::NoAnswer(describe(&error)));
            }
            if attempt >= self.policy.attempts() {
                tracing::warn!(attempt, reason = describe(&error), "upstream unreachable, giving up");
                return Err(ForwardError::Unreachable { attempts: attempt, last: describe(&error) });
            }
            let pause = self.policy.pause_after(attempt, None, retry::mix(&[attempt.into(), clock_nanos()]));
            let pause_ms = pause.as_millis();
            tracing::warn!(attempt, pause_ms, reason = describe(&error), "upstream unreachable, retrying");
            tokio::time::sleep(pause).await;
            attempt += 1;
        }
    }
}

async fn read_answer(response: reqwest::Response, attempt: u32) -> Result<UpstreamResponse, ForwardError> {
    let status = response.status().as_u16();
    let content_type = response.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let body = response.bytes().await.map_err(|error| {
        tracing::warn!(status, attempt, "the upstream's answer could not be read");
        ForwardError::NoAnswer(format!("HTTP {status} but the body could not be read: {}", describe(&error)))
    })?;
    tracing::debug!(status, attempt, "upstream answered the forwarded message");
    Ok(UpstreamResponse { status, content_type, body: body.to_vec() })
}

fn unusable(error: SendError) -> ForwardError {
    match error {
        SendError::Exhausted { last, .. } => ForwardError::Unusable(last),
        other => ForwardError::Unusable(other.to_string()),
    }
}
