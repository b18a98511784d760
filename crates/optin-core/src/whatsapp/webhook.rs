//! A tolerant parser for WhatsApp Cloud API webhook deliveries (360dialog forwards the same shape).
//!
//! One POST carries up to 1,000 updates. Meta retries a delivery we refuse for up to seven days, so
//! refusing a whole delivery because one update in it is odd would lose every good update with it, and
//! Meta changes these payloads often. The parser therefore fails only when the body is not a webhook at
//! all ([`DeliveryError`]). Below the envelope every entry, change, message, status, preference and
//! template update stands alone: a malformed one is left out and listed in [`ParsedDelivery::skipped`]
//! with its JSON path and the reason, and its siblings are still parsed.
//!
//! The reading rules, applied everywhere:
//! - Unknown members are ignored. Unknown `field` values become [`ChangeKind::Unknown`], unknown
//!   message types [`MessageContent::Other`], unknown statuses [`DeliveryStatus::Other`].
//! - Members that identify a person, a message or a moment (`id`, `from`, `wa_id`, `user_id`,
//!   `timestamp`, …) must be well formed when present, or the item is skipped: guessing there could pin
//!   consent on the wrong person. Purely descriptive members (titles, details, pricing category) that
//!   have the wrong type read as absent instead.
//! - `null` and the empty string read as absent.
//! - Timestamps are Unix seconds, as a string or an integer, and must fit a [`jiff::Timestamp`].
//! - Template ids and WABA ids arrive as integers or strings and are kept as strings.

mod envelope;
mod fields;
mod json;
mod management;
mod messages;
#[cfg(test)]
mod tests;
mod walk;

use jiff::Timestamp;
use serde_json::Value;

use json::Json;

/// Why a body is not a webhook delivery at all. Anything finer-grained is a [`Skipped`] item instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeliveryError {
    /// The body is not JSON (or is truncated JSON), at the position serde_json reports.
    #[error("the body is not JSON (line {line}, column {column}): {message}")]
    NotJson { line: usize, column: usize, message: String },
    /// The body is JSON but not an object with an `entry` array.
    #[error("the body is not a webhook delivery: {0}")]
    NotAWebhook(String),
}

impl DeliveryError {
    /// A stable, machine-readable code; never changes once published.
    pub fn code(&self) -> &'static str {
        match self {
            DeliveryError::NotJson { .. } => "invalid_json",
            DeliveryError::NotAWebhook(_) => "not_a_webhook",
        }
    }
}

/// Everything usable in a delivery, in delivery order, plus what was left out and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedDelivery {
    pub changes: Vec<Change>,
    pub skipped: Vec<Skipped>,
}

/// An item left out of a delivery because it was malformed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// Where the item sits in the body, e.g. `entry[0].changes[1].value.messages[3]`.
    pub path: String,
    /// What was wrong with it, naming the member relative to `path`.
    pub reason: String,
}

/// One `entry[].changes[]` element, with its entry's WABA id and time copied in so it stands alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub waba_id: String,
    /// `entry[].time`; Meta sends it on management fields but not on `messages`.
    pub time: Option<Timestamp>,
    /// The subscription field exactly as sent. It can disagree with `kind` when Meta mislabels a change
    /// (a template quality update sent as `message_template_status_update`): trust `kind`.
    pub field: String,
    pub kind: ChangeKind,
}

/// What a change is about, decided by its `field` and, where Meta mislabels, its shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChangeKind {
    /// `messages`: inbound messages, statuses of what we sent, and platform errors.
    Messages(MessagesChange),
    /// `user_preferences`: a user stopped or resumed marketing messages.
    UserPreferences(UserPreferencesChange),
    /// `message_template_status_update`.
    TemplateStatus(TemplateStatusUpdate),
    /// `message_template_quality_update`, or any template change carrying `new_quality_score` and no
    /// `event`, because Meta's own example labels quality updates `message_template_status_update`.
    TemplateQuality(TemplateQualityUpdate),
    /// `template_category_update`.
    TemplateCategory(TemplateCategoryUpdate),
    /// `phone_number_quality_update`.
    PhoneNumberQuality(PhoneNumberQualityUpdate),
    /// `account_update`, `account_alerts`, `business_capability_update`: kept raw for operators, since
    /// no consent rule reads them and their shapes change often. `value` is `Null` when absent.
    Account { field: String, value: Value },
    /// Any other field: kept so it can be counted, otherwise ignored.
    Unknown { field: String },
}

/// The `value` of a `messages` change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessagesChange {
    /// The business phone number the change concerns (`metadata.phone_number_id`).
    pub phone_number_id: String,
    pub display_phone_number: Option<String>,
    pub contacts: Vec<WaContact>,
    pub messages: Vec<InboundMessage>,
    pub statuses: Vec<StatusUpdate>,
    /// System, app or account level errors (`value.errors`).
    pub errors: Vec<PlatformError>,
}

/// A `contacts[]` element: who the users in this change are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaContact {
    /// The user's WhatsApp id (phone digits); absent for users known only by username.
    pub wa_id: Option<String>,
    /// The business-scoped user id (BSUID), e.g. `US.13491208655302741918`.
    pub user_id: Option<String>,
}

/// A message a user sent to the business.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundMessage {
    /// The wamid.
    pub id: String,
    /// The sender's `wa_id` digits. At least one of `from` and `from_user_id` is always present; each
    /// is completed from `contacts[]` when the other identifies the contact.
    pub from: Option<String>,
    pub from_user_id: Option<String>,
    pub timestamp: Timestamp,
    pub context: Option<MessageContext>,
    pub content: MessageContent,
}

/// The message being replied to, for example the template whose button was tapped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageContext {
    /// The wamid of the business's message.
    pub id: Option<String>,
    pub from: Option<String>,
}

/// What a user sent, reduced to what consent handling reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MessageContent {
    Text {
        body: String,
    },
    /// A template quick-reply tap. `payload` is the button label unless a payload was set when sending.
    Button {
        payload: String,
        text: String,
    },
    ButtonReply {
        id: String,
        title: String,
    },
    ListReply {
        id: String,
        title: String,
    },
    /// Any other type, e.g. `image`, `unsupported`, or `interactive:nfm_reply`.
    Other {
        kind: String,
    },
}

/// A status of a message the business sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusUpdate {
    /// The wamid of the business's message.
    pub id: String,
    pub status: DeliveryStatus,
    pub timestamp: Timestamp,
    pub recipient_id: Option<String>,
    pub recipient_user_id: Option<String>,
    pub errors: Vec<PlatformError>,
    /// What the business attached when sending, echoed back.
    pub biz_opaque_callback_data: Option<String>,
    /// `pricing.category`, e.g. `marketing`.
    pub pricing_category: Option<String>,
}

/// A message's delivery state; statuses arrive out of order, so order by timestamp, not by this.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryStatus {
    Sent,
    Delivered,
    Read,
    Played,
    Failed,
    /// A status Meta added after this was written, kept as sent.
    Other(String),
}

impl DeliveryStatus {
    /// Meta's spelling.
    pub fn as_str(&self) -> &str {
        match self {
            DeliveryStatus::Sent => "sent",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Read => "read",
            DeliveryStatus::Played => "played",
            DeliveryStatus::Failed => "failed",
            DeliveryStatus::Other(status) => status,
        }
    }

    fn parse(text: &str) -> DeliveryStatus {
        match text.to_ascii_lowercase().as_str() {
            "sent" => DeliveryStatus::Sent,
            "delivered" => DeliveryStatus::Delivered,
            "read" => DeliveryStatus::Read,
            "played" => DeliveryStatus::Played,
            "failed" => DeliveryStatus::Failed,
            _ => DeliveryStatus::Other(text.to_owned()),
        }
    }
}

/// An error Meta reports; `code` is what rules match on (131050 = the user stopped marketing).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlatformError {
    pub code: i64,
    pub title: Option<String>,
}

/// The `value` of a `user_preferences` change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserPreferencesChange {
    /// The preference applies to this business phone number only.
    pub phone_number_id: Option<String>,
    pub preferences: Vec<UserPreference>,
}

/// A user's marketing stop or resume. At least one of `wa_id` and `user_id` is always present; each is
/// completed from `contacts[]` like a message's sender.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserPreference {
    pub wa_id: Option<String>,
    pub user_id: Option<String>,
    /// e.g. `marketing_messages`.
    pub category: String,
    pub value: PreferenceValue,
    pub timestamp: Timestamp,
    pub detail: Option<String>,
}

/// What the user asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PreferenceValue {
    Stop,
    Resume,
    /// Not in Meta's reference (third parties show `signup`), kept as sent.
    Other(String),
}

impl PreferenceValue {
    /// Meta's spelling.
    pub fn as_str(&self) -> &str {
        match self {
            PreferenceValue::Stop => "stop",
            PreferenceValue::Resume => "resume",
            PreferenceValue::Other(value) => value,
        }
    }

    fn parse(text: &str) -> PreferenceValue {
        match text.to_ascii_lowercase().as_str() {
            "stop" => PreferenceValue::Stop,
            "resume" => PreferenceValue::Resume,
            _ => PreferenceValue::Other(text.to_owned()),
        }
    }
}

/// A template's review or pause state changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateStatusUpdate {
    pub template_id: Option<String>,
    pub name: String,
    /// As sent, e.g. `en-US` or `en_US`.
    pub language: String,
    /// Upper case as sent: `APPROVED`, `PAUSED`, `DISABLED`, …
    pub event: String,
    pub reason: Option<String>,
    pub category: Option<String>,
    /// `other_info.title`: `FIRST_PAUSE`, `SECOND_PAUSE`, `UNPAUSE`, …
    pub other_info_title: Option<String>,
}

/// A template's quality score changed (`GREEN`, `YELLOW`, `RED`, `UNKNOWN`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateQualityUpdate {
    pub template_id: Option<String>,
    pub name: String,
    pub language: String,
    pub previous_score: Option<String>,
    pub new_score: String,
}

/// Meta re-categorised a template (e.g. `UTILITY` to `MARKETING`), which changes who may receive it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateCategoryUpdate {
    pub template_id: Option<String>,
    pub name: String,
    pub language: String,
    pub previous_category: Option<String>,
    pub new_category: String,
}

/// A business phone number's throughput or messaging limit changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhoneNumberQualityUpdate {
    pub display_phone_number: Option<String>,
    pub event: String,
    /// `max_daily_conversations_per_business` (the current member) or else the older `current_limit`,
    /// e.g. `TIER_2K`; integers such as `2000` are kept as their decimal text.
    pub current_limit: Option<String>,
}

/// Parses a webhook body that has already passed [`verify_hub_signature`](super::signature::verify_hub_signature).
///
/// Fails only when the body is not JSON or not an object with an `entry` array; see the module docs
/// for how malformed items inside are handled.
pub fn parse_delivery(body: &[u8]) -> Result<ParsedDelivery, DeliveryError> {
    let document: Json = serde_json::from_slice(body).map_err(|error| DeliveryError::NotJson {
        line: error.line(),
        column: error.column(),
        message: error.to_string(),
    })?;
    envelope::parse_document(&document)
}
