//! The port through which the send proxy (`routes::proxy`) reaches the WhatsApp upstream.
//!
//! optin-http has no HTTP client of its own (optin-whatsapp is the only crate that talks to the
//! upstream): the binary implements [`Forwarder`] with optin-whatsapp's client and injects it
//! with [`AppState::with_forwarder`](crate::AppState::with_forwarder), as it does the inbox waker.

use std::future::Future;
use std::pin::Pin;

use optin_store::channel::Sender;

/// What a [`Forwarder`] returns.
pub type ForwardFuture<'a> = Pin<Box<dyn Future<Output = Result<UpstreamAnswer, ForwardFailure>> + Send + 'a>>;

/// Sends a message the proxy allowed to its sender's upstream.
pub trait Forwarder: Send + Sync {
    /// Posts `request.body`, unchanged, to the sender's `/messages` endpoint with the sender's
    /// stored credential, and returns the upstream's answer whatever its status. Must not send
    /// twice: retry only when nothing was sent (no connection could be made).
    fn forward<'a>(&'a self, request: ForwardRequest<'a>) -> ForwardFuture<'a>;
}

/// One message to forward.
#[derive(Debug, Clone, Copy)]
pub struct ForwardRequest<'a> {
    pub sender: &'a Sender,
    /// The Graph API version to call when the sender is a Cloud API number: the client's (from
    /// the proxy path), or the sender's own for the 360dialog shape.
    pub api_version: &'a str,
    /// The client's body, as received.
    pub body: &'a [u8],
}

/// The upstream's answer, returned to the client as it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamAnswer {
    pub status: u16,
    pub content_type: Option<String>,
    pub body: Vec<u8>,
}

/// Why no answer came from the upstream. The reasons name no credential and no message content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ForwardFailure {
    /// The sender's base URL or credential cannot make a request: nothing was sent.
    Unusable(String),
    /// No connection could be made: nothing was sent.
    Unreachable(String),
    /// The request may have reached the upstream but no answer came back: the message may have
    /// been sent.
    NoAnswer(String),
}
