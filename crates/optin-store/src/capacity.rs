//! The business's messaging limit, and reserving places under it for business-initiated messages.
//!
//! Meta caps the unique people a business may reach outside a customer service window in a
//! moving 24 hours (`optin_core::limit`). The limit is a settings document (`messaging_limit`),
//! set by hand (API, CLI) or from `phone_number_quality_update` and `business_capability_update`
//! webhooks ([`follow_webhook_limit`]); without one, nothing is capped.
//!
//! [`reserve_capacity`] is what a send path calls before a business-initiated message goes out:
//! for each recipient, in order, whether it fits. Every admitted recipient is recorded, with or
//! without a limit, so that counting is exact from the first message on, and the moment a limit
//! is set it already counts who was reached in the last 24 hours.

use jiff::Timestamp;
use optin_core::ids::BusinessId;
use optin_core::limit::{MESSAGING_LIMIT_WINDOW, MessagingLimit};
use optin_core::phone::PhoneNumber;
use optin_core::truncate_to_microseconds;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::channel::SettingsDocument;
use crate::rejection::{Rejection, UseCaseError};
use crate::store::{Store, StoreError};

/// The name of the settings document holding the limit.
pub const MESSAGING_LIMIT_DOCUMENT: &str = "messaging_limit";

/// Who set the limit last.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LimitSource {
    /// Through the API or the CLI.
    Manual,
    /// From a webhook of the platform.
    Webhook,
}

impl LimitSource {
    pub fn as_str(self) -> &'static str {
        match self {
            LimitSource::Manual => "manual",
            LimitSource::Webhook => "webhook",
        }
    }
}

/// The `messaging_limit` settings document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessagingLimitSetting {
    pub limit: MessagingLimit,
    pub source: LimitSource,
    /// When it was set (for a webhook, the time of the change it reported).
    pub updated_at: Timestamp,
}

/// The limit and how much of it the last 24 hours used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MessagingLimitStatus {
    /// `None` until a limit is set: nothing is capped.
    pub setting: Option<MessagingLimitSetting>,
    /// Unique recipients of business-initiated messages in the 24 hours before the time asked.
    pub recipients_last_24h: u64,
}

/// Reads a limit as clients write it: a tier (`"TIER_2K"`), a number (`2000`, `-1` for
/// unlimited) or `"unlimited"`. Anything else is `invalid_messaging_limit`.
pub fn parse_messaging_limit(value: &Value) -> Result<MessagingLimit, Rejection> {
    let invalid = |detail: String| Rejection::invalid("invalid_messaging_limit", detail);
    match value {
        Value::String(text) => MessagingLimit::parse(text).map_err(|e| invalid(e.to_string())),
        Value::Number(number) => match number.as_i64() {
            Some(count) => MessagingLimit::from_integer(count).map_err(|e| invalid(e.to_string())),
            None => Err(invalid(format!("{number} is not a messaging limit: use a whole number of recipients"))),
        },
        Value::Null => Err(invalid("limit is required: a tier such as TIER_2K, a number, or `unlimited`".to_owned())),
        _ => Err(invalid("limit must be a tier such as TIER_2K, a number, or `unlimited`".to_owned())),
    }
}

/// The business's limit, `None` if never set.
pub async fn messaging_limit(
    store: &dyn Store,
    business: BusinessId,
) -> Result<Option<MessagingLimitSetting>, UseCaseError> {
    let Some(document) = store.settings_document(business, MESSAGING_LIMIT_DOCUMENT).await? else {
        return Ok(None);
    };
    let setting = serde_json::from_str(&document.content)
        .map_err(|e| StoreError::Corrupt(format!("settings document `{MESSAGING_LIMIT_DOCUMENT}`: {e}")))?;
    Ok(Some(setting))
}

/// Sets the business's limit. `NotFound` (a store error) for an unknown business.
pub async fn set_messaging_limit(
    store: &dyn Store,
    business: BusinessId,
    limit: MessagingLimit,
    source: LimitSource,
    now: Timestamp,
) -> Result<MessagingLimitSetting, UseCaseError> {
    let setting = MessagingLimitSetting { limit, source, updated_at: truncate_to_microseconds(now) };
    let document = SettingsDocument {
        business_id: business,
        name: MESSAGING_LIMIT_DOCUMENT.to_owned(),
        content: serde_json::to_string(&setting).expect("settings serialize"),
        updated_at: setting.updated_at,
    };
    store.put_settings_document(&document).await?;
    Ok(setting)
}

/// Sets the limit a webhook reported at `occurred_at`, unless the limit was set later than that
/// (webhooks arrive late and are replayed) or already says the same. Returns whether it changed.
pub async fn follow_webhook_limit(
    store: &dyn Store,
    business: BusinessId,
    limit: MessagingLimit,
    occurred_at: Timestamp,
) -> Result<bool, UseCaseError> {
    let occurred_at = truncate_to_microseconds(occurred_at);
    if let Some(current) = messaging_limit(store, business).await? {
        let unchanged = current.limit == limit && current.source == LimitSource::Webhook;
        if current.updated_at > occurred_at || unchanged {
            return Ok(false);
        }
    }
    set_messaging_limit(store, business, limit, LimitSource::Webhook, occurred_at).await?;
    Ok(true)
}

/// Reserves places under the business's limit for the recipients of business-initiated messages
/// sent at `at`: for each phone, in order, whether it may be messaged (someone already reached
/// in the 24 hours before `at` always may; a phone given twice takes one place). Exact with
/// concurrent callers in any process; admitted recipients are recorded even when no limit is set.
pub async fn reserve_capacity(
    store: &dyn Store,
    business: BusinessId,
    phones: &[PhoneNumber],
    at: Timestamp,
) -> Result<Vec<bool>, UseCaseError> {
    let limit = messaging_limit(store, business).await?.and_then(|setting| setting.limit.recipients());
    Ok(store.reserve_recipients(business, phones, at, MESSAGING_LIMIT_WINDOW, limit).await?)
}

/// The limit, and the unique recipients reached in the 24 hours before `at`.
pub async fn messaging_limit_status(
    store: &dyn Store,
    business: BusinessId,
    at: Timestamp,
) -> Result<MessagingLimitStatus, UseCaseError> {
    let setting = messaging_limit(store, business).await?;
    let recipients_last_24h = store.recipients_in_window(business, at, MESSAGING_LIMIT_WINDOW).await?;
    Ok(MessagingLimitStatus { setting, recipients_last_24h })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn limits_are_read_from_strings_and_integers() {
        assert_eq!(parse_messaging_limit(&json!("TIER_2K")), Ok(MessagingLimit::Limited(2_000)));
        assert_eq!(parse_messaging_limit(&json!(250)), Ok(MessagingLimit::Limited(250)));
        assert_eq!(parse_messaging_limit(&json!(-1)), Ok(MessagingLimit::Unlimited));
        assert_eq!(parse_messaging_limit(&json!("unlimited")), Ok(MessagingLimit::Unlimited));
        for invalid in [json!(null), json!(0), json!(2.5), json!("TIER_NOT_SET"), json!("many"), json!({})] {
            let rejection = parse_messaging_limit(&invalid).unwrap_err();
            assert_eq!(rejection.code(), "invalid_messaging_limit", "{invalid}");
        }
    }

    #[test]
    fn the_setting_document_keeps_the_tier_name_and_the_source() {
        let setting = MessagingLimitSetting {
            limit: MessagingLimit::Limited(2_000),
            source: LimitSource::Webhook,
            updated_at: Timestamp::from_second(1_800_000_000).unwrap(),
        };
        let stored = serde_json::to_value(setting).unwrap();
        assert_eq!(stored, json!({"limit": "TIER_2K", "source": "webhook", "updated_at": "2027-01-15T08:00:00Z"}));
        assert_eq!(serde_json::from_value::<MessagingLimitSetting>(stored).unwrap(), setting);
    }
}
