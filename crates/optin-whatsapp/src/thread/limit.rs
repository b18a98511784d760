//! Following the business's messaging limit from webhooks (whatsapp-platform.md §1.7, §1.8):
//! `phone_number_quality_update` (its `max_daily_conversations_per_business`, or the older
//! `current_limit`) and `business_capability_update` (`max_daily_conversations_per_business`, a
//! tier name or an integer). A value that is not a limit (`TIER_NOT_SET`, a tier this version does
//! not know) leaves the limit alone; a limit set later than the webhook's change wins over it.

use jiff::Timestamp;
use optin_core::limit::MessagingLimit;
use optin_store::capacity::follow_webhook_limit;
use serde_json::Value;

use super::{DeliveryWork, ThreadActions};
use crate::inbox::ProcessError;

/// The member of `business_capability_update` that holds the portfolio's limit.
const CAPABILITY_LIMIT: &str = "max_daily_conversations_per_business";

/// A messaging limit a webhook reported, and when the change happened.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LimitUpdate {
    limit: MessagingLimit,
    at: Timestamp,
}

impl DeliveryWork {
    /// The limit of a `phone_number_quality_update`, if it carries one.
    pub(super) fn follow_limit(&mut self, value: Option<&str>, at: Timestamp) {
        let Some(value) = value else { return };
        match MessagingLimit::from_webhook(value) {
            Some(limit) => self.limit_updates.push(LimitUpdate { limit, at }),
            None => self.note(format!("messaging limit `{}` is not a limit: kept the current one", truncate(value))),
        }
    }

    /// The limit of a `business_capability_update` (other account changes carry none).
    pub(super) fn follow_capability(&mut self, field: &str, value: &Value, at: Timestamp) {
        if field != "business_capability_update" {
            return;
        }
        let text = match value.get(CAPABILITY_LIMIT) {
            Some(Value::String(text)) => text.clone(),
            Some(Value::Number(number)) => number.to_string(),
            _ => return,
        };
        self.follow_limit(Some(&text), at);
    }
}

impl ThreadActions<'_> {
    /// Sets the latest limit the group's deliveries reported (on a tie, the last one), unless the
    /// limit was set later than that change.
    pub(crate) async fn follow_messaging_limits<'w>(
        &self,
        works: impl Iterator<Item = &'w DeliveryWork>,
    ) -> Result<(), ProcessError> {
        let latest = works.flat_map(|work| work.limit_updates.iter()).max_by_key(|update| update.at);
        if let Some(update) = latest {
            follow_webhook_limit(self.store, self.context.business.id, update.limit, update.at).await?;
        }
        Ok(())
    }
}

fn truncate(text: &str) -> String {
    text.chars().take(32).collect()
}
