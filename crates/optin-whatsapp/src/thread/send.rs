//! Sending a thread message and remembering it.

use jiff::Timestamp;
use optin_core::business::CategoryName;
use optin_core::ids::NoticeId;
use optin_core::phone::PhoneNumber;
use optin_core::truncate_to_microseconds;
use optin_store::Store;
use optin_store::channel::{OutboundPurpose, Sender, SentMessage};

use crate::outbound::{Credential, OutboundClient, OutboundMessage, SenderEndpoint};

/// A message to send in a thread, after the delivery's events are recorded.
pub(crate) struct PendingSend {
    pub(crate) phone: PhoneNumber,
    pub(super) sender: Sender,
    pub(super) message: OutboundMessage,
    pub(super) purpose: OutboundPurpose,
    pub(super) categories: Vec<CategoryName>,
    pub(super) notice_id: Option<NoticeId>,
}

impl PendingSend {
    pub(crate) fn is_question(&self) -> bool {
        self.purpose == OutboundPurpose::OptInQuestion
    }

    /// Sends and remembers the message; failures are logged (the contact is asked again next
    /// time, and a lost confirmation is not retried: at most one is ever sent).
    pub(crate) async fn deliver(self, store: &dyn Store, client: &OutboundClient) {
        let endpoint = SenderEndpoint {
            provider: self.sender.provider,
            base_url: self.sender.base_url.clone(),
            api_version: self.sender.api_version.clone(),
            phone_number_id: self.sender.phone_number_id.clone(),
            credential: Credential::new(self.sender.credential.clone()),
        };
        let result = client.send(&endpoint, &self.message).await;
        let outcome = if result.is_ok() { "sent" } else { "failed" };
        metrics::counter!("optin_thread_messages_total", "purpose" => self.purpose.as_str(), "outcome" => outcome)
            .increment(1);
        let sent = match result {
            Ok(sent) => sent,
            Err(error) => {
                tracing::warn!(business = %self.sender.business_id, purpose = self.purpose.as_str(),
                    to = %self.phone.redacted(), code = error.code(), "thread message not sent");
                return;
            }
        };
        let record = SentMessage {
            business_id: self.sender.business_id,
            message_id: sent.wamid,
            phone: self.phone,
            phone_number_id: self.sender.phone_number_id.clone(),
            purpose: self.purpose,
            categories: self.categories,
            notice_id: self.notice_id,
            sent_at: truncate_to_microseconds(Timestamp::now()),
        };
        if let Err(error) = store.record_sent_message(&record).await {
            tracing::warn!(business = %record.business_id, error = %error, "a sent thread message was not remembered");
        }
    }
}
