//! WhatsApp message templates as a business registered them with Meta, and what optin checks
//! about them.
//!
//! Templates come in by import ([`parse_templates`]): the Cloud API's
//! `GET /<WABA_ID>/message_templates` response, a bare array of template objects, or one template
//! object. Each item is checked on its own: an item with problems is reported and skipped, the
//! others are kept. Afterwards a template's status and quality move with the
//! `message_template_status_update` and `message_template_quality_update` webhooks
//! ([`TemplateStatus::from_webhook_event`], [`QualityScore::parse`]).
//!
//! [`lint`] flags marketing templates that tell people no way to opt out: the policy asks for
//! "clear instructions for how people can opt out", and Meta's own marketing templates carry a
//! "Stop promotions" quick-reply button for it.
//!
//! Meta adds enum values often, so an unknown status is kept as [`TemplateStatus::Other`] and an
//! unknown quality score reads as [`QualityScore::Unknown`]; unknown fields are ignored.

mod import;
mod lint;

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};

use crate::business::{CategoryName, TemplateCategory};

pub use import::{MAX_TEMPLATES_PER_IMPORT, ParsedTemplates, TemplateImportError, TemplateProblem, parse_templates};
pub use lint::{TemplateWarning, lint};

/// Longest template name Meta allows, in characters.
pub const MAX_TEMPLATE_NAME_CHARS: usize = 512;

/// Longest unknown status kept by [`TemplateStatus::parse`], in characters.
const MAX_OTHER_STATUS_CHARS: usize = 64;

/// A template as registered with Meta, plus the optin category its messages count against.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Template {
    pub name: TemplateName,
    pub language: TemplateLanguage,
    pub category: TemplateCategory,
    pub status: TemplateStatus,
    pub quality: Option<QualityScore>,
    /// Meta's template id.
    pub platform_id: Option<String>,
    /// The template's components (HEADER, BODY, FOOTER, BUTTONS) as Meta gave them: an array.
    pub components: serde_json::Value,
    /// The business category this template's messages count against, when the import named one
    /// explicitly (field `optin_category` on the template object).
    #[schema(value_type = Option<String>)]
    pub linked_category: Option<CategoryName>,
}

/// Why a template name or language is refused. `code()` is the stable API code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("{0:?} is not a valid template name: use 1 to 512 lower-case ASCII letters, digits or underscores")]
    InvalidName(String),
    #[error("{0:?} is not a valid template language: use a code such as `en`, `en_US` or `pt_BR`")]
    InvalidLanguage(String),
}

impl TemplateError {
    pub fn code(&self) -> &'static str {
        match self {
            TemplateError::InvalidName(_) => "invalid_template_name",
            TemplateError::InvalidLanguage(_) => "invalid_template_language",
        }
    }
}

/// A template name as Meta allows it: 1 to 512 lower-case ASCII letters, digits and underscores.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(try_from = "String", into = "String")]
pub struct TemplateName(String);

impl TemplateName {
    pub fn parse(text: &str) -> Result<TemplateName, TemplateError> {
        let valid = (1..=MAX_TEMPLATE_NAME_CHARS).contains(&text.len())
            && text.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        valid.then(|| TemplateName(text.to_owned())).ok_or_else(|| TemplateError::InvalidName(truncate(text)))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A template language code in Meta's template-API form (`en_US`).
///
/// Webhooks write `en-US`, so `-` is read as `_`. Letter case is made canonical as in Meta's
/// list of codes (`en`, `en_US`, `zh_Hant_HK`): language lower-case, a two-letter region
/// upper-case, a four-letter script title-case, anything else lower-case.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(try_from = "String", into = "String")]
pub struct TemplateLanguage(String);

impl TemplateLanguage {
    /// Accepts `[A-Za-z]{2,3}([_-][A-Za-z0-9]{2,4}){0,2}`.
    pub fn parse(code: &str) -> Result<TemplateLanguage, TemplateError> {
        let invalid = || TemplateError::InvalidLanguage(truncate(code));
        let mut subtags = code.split(['_', '-']);
        let language = subtags.next().unwrap_or_default();
        if !(2..=3).contains(&language.len()) || !language.bytes().all(|b| b.is_ascii_alphabetic()) {
            return Err(invalid());
        }
        let mut canonical = language.to_ascii_lowercase();
        for (position, subtag) in subtags.enumerate() {
            if position >= 2 || !(2..=4).contains(&subtag.len()) || !subtag.bytes().all(|b| b.is_ascii_alphanumeric()) {
                return Err(invalid());
            }
            canonical.push('_');
            push_canonical_subtag(&mut canonical, subtag);
        }
        Ok(TemplateLanguage(canonical))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn push_canonical_subtag(canonical: &mut String, subtag: &str) {
    let alphabetic = subtag.bytes().all(|b| b.is_ascii_alphabetic());
    for (position, character) in subtag.chars().enumerate() {
        let upper = alphabetic && (subtag.len() == 2 || (subtag.len() == 4 && position == 0));
        canonical.push(if upper { character.to_ascii_uppercase() } else { character.to_ascii_lowercase() });
    }
}

macro_rules! string_newtype_conversions {
    ($name:ident) => {
        impl TryFrom<String> for $name {
            type Error = TemplateError;
            fn try_from(text: String) -> Result<Self, Self::Error> {
                $name::parse(&text)
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.0
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(&self.0, f)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

string_newtype_conversions!(TemplateName);
string_newtype_conversions!(TemplateLanguage);

/// A template's review status: the Template API's `status` and the status webhook's `event`.
/// Only an approved template can be sent. Serialized in Meta's UPPER_CASE form.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TemplateStatus {
    Approved,
    Pending,
    Rejected,
    Paused,
    Disabled,
    InAppeal,
    PendingDeletion,
    Deleted,
    Archived,
    Unarchived,
    Flagged,
    Reinstated,
    LimitExceeded,
    Locked,
    /// A status this version does not know, upper-cased and cut to 64 characters.
    Other(String),
}

impl TemplateStatus {
    const KNOWN: [TemplateStatus; 14] = [
        TemplateStatus::Approved,
        TemplateStatus::Pending,
        TemplateStatus::Rejected,
        TemplateStatus::Paused,
        TemplateStatus::Disabled,
        TemplateStatus::InAppeal,
        TemplateStatus::PendingDeletion,
        TemplateStatus::Deleted,
        TemplateStatus::Archived,
        TemplateStatus::Unarchived,
        TemplateStatus::Flagged,
        TemplateStatus::Reinstated,
        TemplateStatus::LimitExceeded,
        TemplateStatus::Locked,
    ];

    /// Reads Meta's UPPER_CASE status (any case, surrounding spaces ignored).
    pub fn parse(text: &str) -> TemplateStatus {
        let upper: String = text.trim().chars().take(MAX_OTHER_STATUS_CHARS).collect::<String>().to_ascii_uppercase();
        TemplateStatus::KNOWN
            .into_iter()
            .find(|status| status.as_str() == upper)
            .unwrap_or(TemplateStatus::Other(upper))
    }

    /// Reads the `event` of a `message_template_status_update` webhook: the same values.
    pub fn from_webhook_event(event: &str) -> TemplateStatus {
        TemplateStatus::parse(event)
    }

    pub fn as_str(&self) -> &str {
        match self {
            TemplateStatus::Approved => "APPROVED",
            TemplateStatus::Pending => "PENDING",
            TemplateStatus::Rejected => "REJECTED",
            TemplateStatus::Paused => "PAUSED",
            TemplateStatus::Disabled => "DISABLED",
            TemplateStatus::InAppeal => "IN_APPEAL",
            TemplateStatus::PendingDeletion => "PENDING_DELETION",
            TemplateStatus::Deleted => "DELETED",
            TemplateStatus::Archived => "ARCHIVED",
            TemplateStatus::Unarchived => "UNARCHIVED",
            TemplateStatus::Flagged => "FLAGGED",
            TemplateStatus::Reinstated => "REINSTATED",
            TemplateStatus::LimitExceeded => "LIMIT_EXCEEDED",
            TemplateStatus::Locked => "LOCKED",
            TemplateStatus::Other(text) => text,
        }
    }

    /// Whether Meta accepts sends of a template in this status: only `APPROVED`.
    pub fn is_sendable(&self) -> bool {
        *self == TemplateStatus::Approved
    }
}

impl Serialize for TemplateStatus {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for TemplateStatus {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(|text| TemplateStatus::parse(&text))
    }
}

impl utoipa::PartialSchema for TemplateStatus {
    fn schema() -> RefOr<Schema> {
        let description = "Meta's template status, UPPER_CASE: APPROVED, PENDING, REJECTED, PAUSED, DISABLED, \
            IN_APPEAL, PENDING_DELETION, DELETED, ARCHIVED, UNARCHIVED, FLAGGED, REINSTATED, LIMIT_EXCEEDED, \
            LOCKED, or a newer value passed through. Only APPROVED templates can be sent.";
        ObjectBuilder::new().schema_type(Type::String).description(Some(description)).examples(["APPROVED"]).into()
    }
}

impl utoipa::ToSchema for TemplateStatus {}

/// Meta's template quality score. `Unknown` is Meta's "pending" and also stands for any score
/// this version does not know. Serialized UPPER_CASE.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum QualityScore {
    Green,
    Yellow,
    Red,
    Unknown,
}

impl QualityScore {
    /// Reads `GREEN`, `YELLOW`, `RED` (any case); anything else is `Unknown`.
    pub fn parse(text: &str) -> QualityScore {
        match text.trim().to_ascii_uppercase().as_str() {
            "GREEN" => QualityScore::Green,
            "YELLOW" => QualityScore::Yellow,
            "RED" => QualityScore::Red,
            _ => QualityScore::Unknown,
        }
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            QualityScore::Green => "GREEN",
            QualityScore::Yellow => "YELLOW",
            QualityScore::Red => "RED",
            QualityScore::Unknown => "UNKNOWN",
        }
    }
}

/// Meta writes the score as a string (`"GREEN"`, in webhooks and template lists) or as an object
/// (`{"score":"GREEN","date":1758754645}`, from `GET /<TEMPLATE_ID>?fields=quality_score`).
#[derive(Deserialize)]
#[serde(untagged)]
enum QualityScoreWire {
    Text(String),
    Object { score: Option<String> },
}

impl<'de> Deserialize<'de> for QualityScore {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(match QualityScoreWire::deserialize(deserializer)? {
            QualityScoreWire::Text(text) => QualityScore::parse(&text),
            QualityScoreWire::Object { score } => score.as_deref().map_or(QualityScore::Unknown, QualityScore::parse),
        })
    }
}

/// Outside text as it may appear in a message: at most 64 characters.
fn truncate(text: &str) -> String {
    text.chars().take(64).collect()
}

#[cfg(test)]
mod tests;
