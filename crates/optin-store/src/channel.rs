//! Records of the WhatsApp channel that cross the store boundary: senders, the webhook inbox,
//! contacts seen in threads (and their service window), templates, quality signals, and the
//! messages optin sent itself.

use jiff::Timestamp;
use optin_core::business::{CategoryName, TemplateCategory};
use optin_core::ids::{BusinessId, NoticeId};
use optin_core::phone::PhoneNumber;
use optin_core::template::{QualityScore, TemplateLanguage, TemplateName, TemplateStatus};
use optin_core::whatsapp::Provider;

/// A WhatsApp business phone number a business sends from and receives webhooks for. A
/// `phone_number_id` belongs to one business only.
#[derive(Clone, PartialEq, Eq)]
pub struct Sender {
    pub business_id: BusinessId,
    /// Meta's id of the number (digits), as in webhooks' `metadata.phone_number_id`.
    pub phone_number_id: String,
    pub display_phone_number: String,
    pub waba_id: String,
    pub provider: Provider,
    /// Where to send: `https://graph.facebook.com` or `https://waba-v2.360dialog.io` (or a test fake).
    pub base_url: String,
    /// Cloud API version path segment, such as `v23.0` (unused by 360dialog).
    pub api_version: String,
    /// The Cloud API access token or the 360dialog API key. A secret: never shown or logged.
    pub credential: String,
    pub created_at: Timestamp,
}

impl std::fmt::Debug for Sender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sender")
            .field("business_id", &self.business_id)
            .field("phone_number_id", &self.phone_number_id)
            .field("provider", &self.provider)
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

/// A named JSON document of per-business settings (`webhook`, `whatsapp_policy`), validated by
/// the use cases before it is stored; the store keeps it opaque.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingsDocument {
    pub business_id: BusinessId,
    pub name: String,
    pub content: String,
    pub updated_at: Timestamp,
}

/// The inbox's own sequence number of a webhook delivery.
pub type DeliveryId = i64;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeliveryState {
    /// Received and durable, not processed yet (or queued again by a replay).
    Pending,
    Processed,
    /// Processing failed; `error` says why. Stays until replayed.
    Failed,
}

impl DeliveryState {
    pub fn as_str(&self) -> &'static str {
        match self {
            DeliveryState::Pending => "pending",
            DeliveryState::Processed => "processed",
            DeliveryState::Failed => "failed",
        }
    }

    pub fn parse(text: &str) -> Option<DeliveryState> {
        match text {
            "pending" => Some(DeliveryState::Pending),
            "processed" => Some(DeliveryState::Processed),
            "failed" => Some(DeliveryState::Failed),
            _ => None,
        }
    }
}

/// A webhook delivery exactly as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub id: DeliveryId,
    pub business_id: BusinessId,
    pub received_at: Timestamp,
    pub body: Vec<u8>,
    pub state: DeliveryState,
    /// How many times processing was started.
    pub attempts: u32,
    /// Why processing failed, or what was skipped while processing.
    pub note: Option<String>,
    pub processed_at: Option<Timestamp>,
}

/// How processing a delivery ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryOutcome {
    /// Processed; `note` lists items skipped as malformed, if any.
    Processed {
        note: Option<String>,
    },
    Failed {
        error: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DeliveryFilter {
    pub state: Option<DeliveryState>,
    /// Only deliveries with an id below this (paging backwards, newest first).
    pub before: Option<DeliveryId>,
    pub limit: usize,
}

/// A person seen writing in a WhatsApp thread: by phone number (`wa_id`), by business-scoped
/// user id (`user_id`), or both.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sighting {
    pub phone: Option<PhoneNumber>,
    pub user_id: Option<String>,
    /// The inbound message's time: the service window runs 24 hours from the latest one.
    pub at: Timestamp,
}

/// What optin knows about a contact in the WhatsApp channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThreadContact {
    pub phone: Option<PhoneNumber>,
    pub user_id: Option<String>,
    pub last_inbound_at: Option<Timestamp>,
    /// When optin last asked this contact to opt in inside the thread.
    pub last_asked_at: Option<Timestamp>,
}

/// A template in a business's registry, keyed by (name, language).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredTemplate {
    pub name: TemplateName,
    pub language: TemplateLanguage,
    pub category: TemplateCategory,
    pub status: TemplateStatus,
    pub quality: Option<QualityScore>,
    pub platform_id: Option<String>,
    /// The business category its messages count against (explicit, or the default for its
    /// template category at import time).
    pub linked_category: Option<CategoryName>,
    /// The components as imported (JSON array text).
    pub components: String,
    pub updated_at: Timestamp,
}

/// A change the platform reported for a template (by name and language).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TemplateChange {
    Status(TemplateStatus),
    Quality(QualityScore),
    Category(TemplateCategory),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateUpdate {
    pub name: TemplateName,
    pub language: TemplateLanguage,
    pub change: TemplateChange,
    pub at: Timestamp,
}

/// What kind of thing a signal records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SignalKind {
    /// A status of a message the business sent (sent, delivered, read, failed...).
    MessageStatus,
    TemplateStatus,
    TemplateQuality,
    TemplateCategory,
    PhoneNumberQuality,
    /// `account_update`, `account_alerts`, `business_capability_update`.
    Account,
    /// `user_preferences` (marketing stop / resume).
    UserPreference,
    /// An inbound text that mentions an opt-out word without being a clear command: for a human.
    PossibleOptOut,
    /// A reply to a message optin does not know.
    UnmatchedReply,
    /// An opt-out from a contact known only by user id (no phone number yet): it is recorded in
    /// the ledger as soon as a webhook links the user id to a phone number.
    UnlinkedOptOut,
}

impl SignalKind {
    pub const ALL: [SignalKind; 10] = [
        SignalKind::MessageStatus,
        SignalKind::TemplateStatus,
        SignalKind::TemplateQuality,
        SignalKind::TemplateCategory,
        SignalKind::PhoneNumberQuality,
        SignalKind::Account,
        SignalKind::UserPreference,
        SignalKind::PossibleOptOut,
        SignalKind::UnmatchedReply,
        SignalKind::UnlinkedOptOut,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            SignalKind::MessageStatus => "message_status",
            SignalKind::TemplateStatus => "template_status",
            SignalKind::TemplateQuality => "template_quality",
            SignalKind::TemplateCategory => "template_category",
            SignalKind::PhoneNumberQuality => "phone_number_quality",
            SignalKind::Account => "account",
            SignalKind::UserPreference => "user_preference",
            SignalKind::PossibleOptOut => "possible_opt_out",
            SignalKind::UnmatchedReply => "unmatched_reply",
            SignalKind::UnlinkedOptOut => "unlinked_opt_out",
        }
    }

    pub fn parse(text: &str) -> Option<SignalKind> {
        SignalKind::ALL.into_iter().find(|kind| kind.as_str() == text)
    }
}

/// A signal to store. `dedupe_key` is unique per business: the same key again changes nothing
/// (webhooks are delivered at least once).
#[derive(Debug, Clone, PartialEq)]
pub struct NewSignal {
    pub dedupe_key: String,
    pub kind: SignalKind,
    pub occurred_at: Timestamp,
    pub phone_number_id: Option<String>,
    pub phone: Option<PhoneNumber>,
    pub user_id: Option<String>,
    pub message_id: Option<String>,
    pub template_name: Option<String>,
    pub template_language: Option<String>,
    /// The business category the message counted against: for the status of a message the
    /// proxy forwarded, its template's linked category.
    pub category: Option<CategoryName>,
    /// The status, event or score the signal reports (`failed`, `PAUSED`, `RED`, `stop`...).
    pub status: Option<String>,
    pub error_codes: Vec<i64>,
    /// Everything else worth keeping, as JSON.
    pub detail: serde_json::Value,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Signal {
    pub id: i64,
    pub business_id: BusinessId,
    pub received_at: Timestamp,
    pub signal: NewSignal,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SignalFilter {
    pub kind: Option<SignalKind>,
    pub phone: Option<PhoneNumber>,
    /// The business-scoped user id (BSUID) of the contact.
    pub user_id: Option<String>,
    pub message_id: Option<String>,
    pub template_name: Option<String>,
    pub status: Option<String>,
    pub error_code: Option<i64>,
    /// `occurred_at >= since`.
    pub since: Option<Timestamp>,
    /// `occurred_at < until`.
    pub until: Option<Timestamp>,
    /// Only signals with an id above this (paging forwards, oldest first).
    pub after: Option<i64>,
    pub limit: usize,
}

/// What a message optin sent in a thread was for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutboundPurpose {
    /// The in-thread opt-in question.
    OptInQuestion,
    /// The confirmation after an opt-out.
    OptOutConfirmation,
}

impl OutboundPurpose {
    pub fn as_str(&self) -> &'static str {
        match self {
            OutboundPurpose::OptInQuestion => "opt_in_question",
            OutboundPurpose::OptOutConfirmation => "opt_out_confirmation",
        }
    }

    pub fn parse(text: &str) -> Option<OutboundPurpose> {
        match text {
            "opt_in_question" => Some(OutboundPurpose::OptInQuestion),
            "opt_out_confirmation" => Some(OutboundPurpose::OptOutConfirmation),
            _ => None,
        }
    }
}

/// A message optin sent itself (never a business's campaign message).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentMessage {
    pub business_id: BusinessId,
    /// The platform's message id (`wamid...`), which replies name in `context.id`.
    pub message_id: String,
    pub phone: PhoneNumber,
    pub phone_number_id: String,
    pub purpose: OutboundPurpose,
    /// For a question: the categories it offered, in button order.
    pub categories: Vec<CategoryName>,
    /// For a question: the notice its text is.
    pub notice_id: Option<NoticeId>,
    pub sent_at: Timestamp,
}

/// A business's own message that the send proxy forwarded to the upstream, so that the status
/// webhooks naming it later can be attributed to its template and category.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForwardedMessage {
    pub business_id: BusinessId,
    /// The platform's message id (`wamid...`) from the upstream's answer.
    pub message_id: String,
    /// The recipient.
    pub phone: PhoneNumber,
    /// The sender it was sent from.
    pub phone_number_id: String,
    /// For a template message: its name and language, as the registry knows them.
    pub template: Option<(TemplateName, TemplateLanguage)>,
    /// For a template message: the business category it counted against.
    pub category: Option<CategoryName>,
    pub sent_at: Timestamp,
}
