//! What can go wrong when sending, and how a Graph error body is read.

use serde::Deserialize;

/// Why a send failed. Messages carry upstream error text and our own reasons, never the
/// credential or the message body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// A 4xx other than 429 (or a Graph throttling code): the request will not succeed as is, so
    /// it was not retried. `code` is the Graph error `code` when the body had one.
    #[error("upstream rejected the message with HTTP {status}: {message}")]
    Rejected { status: u16, code: Option<i64>, message: String },
    /// 429, 5xx, timeouts or connection errors on every attempt. `attempts` is 0 when no request
    /// could be made at all: an unusable `base_url` or credential, or an HTTP client that failed
    /// to build.
    #[error("upstream unavailable after {attempts} attempts: {last}")]
    Exhausted { attempts: u32, last: String },
    /// The upstream answered 2xx but not with a `messages[0].id`, or with a status we do not expect.
    #[error("upstream sent an invalid response: {0}")]
    InvalidResponse(String),
    /// The message breaks a platform limit; nothing was sent.
    #[error("invalid outbound message: {0}")]
    InvalidMessage(String),
}

impl SendError {
    /// A stable code for API error bodies and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            SendError::Rejected { .. } => "upstream_rejected",
            SendError::Exhausted { .. } => "upstream_unavailable",
            SendError::InvalidResponse(_) => "upstream_invalid_response",
            SendError::InvalidMessage(_) => "invalid_outbound_message",
        }
    }
}

/// Graph error codes that mean "throttled, try again" even when the HTTP status is a plain 4xx
/// (whatsapp-platform.md §2): 130429 throughput reached, 131056 pair rate limit.
pub(crate) fn is_throttling_code(code: Option<i64>) -> bool {
    matches!(code, Some(130_429 | 131_056))
}

/// The Graph error code and a readable message from an error response body.
///
/// The synchronous shape is `{"error":{"message","type","code","error_data":{"details"}}}`.
/// Anything else (360dialog's own errors, proxies) is reported as a short excerpt of the body.
pub(crate) fn read_error_body(body: &[u8]) -> (Option<i64>, String) {
    #[derive(Deserialize)]
    struct Envelope {
        error: GraphError,
    }
    #[derive(Deserialize)]
    struct GraphError {
        message: Option<String>,
        code: Option<i64>,
        error_data: Option<ErrorData>,
    }
    #[derive(Deserialize)]
    struct ErrorData {
        details: Option<String>,
    }

    let Ok(Envelope { error }) = serde_json::from_slice::<Envelope>(body) else {
        return (None, excerpt(body));
    };
    let title = error.message.unwrap_or_else(|| "no error message".to_owned());
    let details = error.error_data.and_then(|data| data.details);
    let message = match details {
        Some(details) if !details.is_empty() => format!("{title}: {details}"),
        _ => title,
    };
    (error.code, message)
}

fn excerpt(body: &[u8]) -> String {
    const MAX_CHARS: usize = 200;
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        return "empty body".to_owned();
    }
    let mut excerpt: String = text.chars().take(MAX_CHARS).collect();
    if text.chars().count() > MAX_CHARS {
        excerpt.push('…');
    }
    excerpt
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn graph_error_gives_code_and_message_with_details() {
        let body = br#"{ "error": { "message": "(#130429) Rate limit hit", "type": "OAuthException",
            "code": 130429, "error_data": { "messaging_product": "whatsapp",
            "details": "Cloud API message throughput has been reached." },
            "fbtrace_id": "Az8or2yhqkZfEZ-_4Qn_Bam" } }"#;
        let (code, message) = read_error_body(body);
        assert_eq!(code, Some(130_429));
        assert_eq!(message, "(#130429) Rate limit hit: Cloud API message throughput has been reached.");
    }

    #[test]
    fn other_bodies_are_quoted_briefly() {
        assert_eq!(read_error_body(b"<html>bad gateway</html>"), (None, "<html>bad gateway</html>".to_owned()));
        assert_eq!(read_error_body(b""), (None, "empty body".to_owned()));
        let (_, long) = read_error_body("x".repeat(1000).as_bytes());
        assert!(long.chars().count() < 220);
    }
}
