//! The send proxy's way out: optin-whatsapp's outbound client behind optin-http's [`Forwarder`]
//! port (optin-http has no HTTP client; optin-whatsapp does not know the HTTP API).

use std::time::Duration;

use optin_http::{ForwardFailure, ForwardFuture, ForwardRequest, Forwarder, UpstreamAnswer};
use optin_whatsapp::outbound::{Credential, ForwardError, OutboundClient, RetryPolicy, SendError, SenderEndpoint};

/// Forwards the messages the proxy allowed. Cheap to share: one connection pool.
#[derive(Debug, Clone)]
pub struct UpstreamForwarder {
    client: OutboundClient,
}

impl UpstreamForwarder {
    pub fn new(policy: RetryPolicy) -> Result<UpstreamForwarder, SendError> {
        Ok(UpstreamForwarder { client: OutboundClient::new(policy)? })
    }

    /// A forwarder whose upstream calls end within three quarters of `request_timeout`, the
    /// server's limit on a request: the client then gets the proxy's own answer (504, "may have
    /// been sent") rather than the server's timeout. Only failures to connect are retried.
    pub fn for_request_timeout(request_timeout: Duration) -> Result<UpstreamForwarder, SendError> {
        UpstreamForwarder::new(RetryPolicy {
            max_attempts: 3,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(1),
            request_timeout: request_timeout * 3 / 4,
        })
    }
}

impl Forwarder for UpstreamForwarder {
    fn forward<'a>(&'a self, request: ForwardRequest<'a>) -> ForwardFuture<'a> {
        Box::pin(async move {
            let sender = request.sender;
            let endpoint = SenderEndpoint {
                provider: sender.provider,
                base_url: sender.base_url.clone(),
                api_version: request.api_version.to_owned(),
                phone_number_id: sender.phone_number_id.clone(),
                credential: Credential::new(sender.credential.clone()),
            };
            match self.client.forward(&endpoint, request.body).await {
                Ok(answer) => {
                    Ok(UpstreamAnswer { status: answer.status, content_type: answer.content_type, body: answer.body })
                }
                Err(ForwardError::Unusable(reason)) => Err(ForwardFailure::Unusable(reason)),
                Err(error @ ForwardError::Unreachable { .. }) => Err(ForwardFailure::Unreachable(error.to_string())),
                Err(ForwardError::NoAnswer(reason)) => Err(ForwardFailure::NoAnswer(reason)),
            }
        })
    }
}
