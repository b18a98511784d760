//! Remembering what the upstream accepted, so that status webhooks find the message's template
//! and category.

use jiff::Timestamp;
use optin_core::business::Business;
use optin_core::template::{TemplateLanguage, TemplateName};
use optin_core::truncate_to_microseconds;
use optin_store::channel::{ForwardedMessage, Sender};
use optin_store::gate::GateAnswer;

use super::message::{MessageKind, SendRequest};
use crate::forward::UpstreamAnswer;
use crate::state::AppState;

/// Remembers an accepted message so that its statuses name its template and category. A failure
/// is logged only: the message was sent, and the client must get the upstream's answer.
pub(super) async fn remember(
    state: &AppState,
    business: &Business,
    sender: &Sender,
    request: &SendRequest,
    decided: &GateAnswer,
    upstream: &UpstreamAnswer,
) {
    let Some(message_id) = accepted_message_id(&upstream.body) else {
        tracing::warn!(status = upstream.status, "the upstream accepted a message without messages[0].id");
        return;
    };
    // The gate allowed the message, so it read a valid number.
    let Some(phone) = decided.phone else { return };
    let template = match &request.kind {
        MessageKind::Template { name, language } => {
            TemplateName::parse(name).ok().zip(TemplateLanguage::parse(language).ok())
        }
        MessageKind::FreeForm => None,
    };
    let record = ForwardedMessage {
        business_id: business.id,
        message_id,
        phone,
        phone_number_id: sender.phone_number_id.clone(),
        template,
        category: decided.template_category.clone(),
        sent_at: truncate_to_microseconds(Timestamp::now()),
    };
    if let Err(error) = state.store().record_forwarded_message(&record).await {
        tracing::warn!(error = %error, "a forwarded message was not remembered: its statuses will not name its template");
    }
}

/// `messages[0].id` of a send response (whatsapp-platform.md §3.4).
fn accepted_message_id(body: &[u8]) -> Option<String> {
    let response: serde_json::Value = serde_json::from_slice(body).ok()?;
    let id = response["messages"][0]["id"].as_str()?;
    (!id.is_empty()).then(|| id.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_accepted_message_id_is_read_from_the_send_response() {
        let body = br#"{"messaging_product":"whatsapp","messages":[{"id":"wamid.HBg1","message_status":"accepted"}]}"#;
        assert_eq!(accepted_message_id(body).as_deref(), Some("wamid.HBg1"));
        for bad in [&b"{}"[..], br#"{"messages":[]}"#, br#"{"messages":[{"id":""}]}"#, b"<html>"] {
            assert_eq!(accepted_message_id(bad), None);
        }
    }
}
