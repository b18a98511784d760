//! Consent events and how they fold into the current state of a contact.
//!
//! Events are facts and never change. The current state per (contact, category) is derived from
//! them by [`apply`], in pure code; stores persist both and never decide.

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::business::{Business, CategoryName};
use crate::evidence::{Evidence, Method};
use crate::ids::{BusinessId, EventId, NoticeId};
use crate::phone::PhoneNumber;

/// Where an opt-out came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OptOutSource {
    Keyword,
    Agent,
    Api,
    Email,
    Platform,
    Sms,
    Ivr,
    Web,
    PreferencePage,
    SupportDesk,
    Other,
}

/// The notice an opt-in was given against, pinned to its exact text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NoticeRef {
    pub id: NoticeId,
    pub version: u32,
    pub language: String,
    pub text_sha256: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OptIn {
    pub categories: Vec<CategoryName>,
    pub method: Method,
    pub notice: NoticeRef,
    pub evidence: Evidence,
    /// When the person gave consent (may be before it was recorded, never after).
    pub collected_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OptOut {
    pub categories: Vec<CategoryName>,
    /// True when the person opted out of everything (the categories are those that existed).
    pub all_categories: bool,
    pub source: OptOutSource,
    pub recorded_by: String,
    pub evidence: Evidence,
    /// When the person asked (the time of their STOP message, say), when it is known and earlier
    /// than the recording: an opt-in given after it is then honoured. Absent: `recorded_at`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested_at: Option<Timestamp>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ConsentChange {
    OptIn(OptIn),
    OptOut(OptOut),
}

/// One immutable fact in a business's ledger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsentEvent {
    pub id: EventId,
    pub business_id: BusinessId,
    #[serde(with = "e164")]
    pub phone: PhoneNumber,
    #[serde(flatten)]
    pub change: ConsentChange,
    pub recorded_at: Timestamp,
}

impl ConsentEvent {
    pub fn kind(&self) -> &'static str {
        match self.change {
            ConsentChange::OptIn(_) => "opt_in",
            ConsentChange::OptOut(_) => "opt_out",
        }
    }

    pub fn categories(&self) -> &[CategoryName] {
        match &self.change {
            ConsentChange::OptIn(opt_in) => &opt_in.categories,
            ConsentChange::OptOut(opt_out) => &opt_out.categories,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ConsentStatus {
    OptedIn,
    OptedOut,
}

/// The current consent of one contact for one category.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CategoryConsent {
    pub status: ConsentStatus,
    /// When the current status began (the opt-in's collection time, or the opt-out's).
    pub since: Timestamp,
    /// The event that set the current status.
    pub event_id: EventId,
    pub method: Option<Method>,
    pub notice_id: Option<NoticeId>,
    /// The latest opt-out, kept so that an older opt-in recorded later cannot undo it.
    pub last_opt_out_at: Option<Timestamp>,
}

/// Current consent of one contact, by category.
pub type ContactConsent = BTreeMap<CategoryName, CategoryConsent>;

/// What an event did to one category.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CategoryOutcome {
    /// The status changed.
    Applied,
    /// Already opted in: the event is kept as further evidence, nothing is downgraded.
    AlreadyOptedIn,
    AlreadyOptedOut,
    /// The opt-in was collected before the contact's latest opt-out, so it cannot undo it.
    SupersededByOptOut,
}

/// The result of folding one event into a contact's consent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Folded {
    /// The categories whose state changed, with their new state.
    pub changed: Vec<(CategoryName, CategoryConsent)>,
    pub outcomes: Vec<(CategoryName, CategoryOutcome)>,
}

/// Folds `event` into `current`: the one place that decides how consent changes.
pub fn apply(current: &ContactConsent, event: &ConsentEvent) -> Folded {
    let mut folded = Folded { changed: Vec::new(), outcomes: Vec::new() };
    for category in event.categories() {
        let before = current.get(category);
        let (outcome, after) = match &event.change {
            ConsentChange::OptIn(opt_in) => fold_opt_in(before, opt_in, event.id),
            ConsentChange::OptOut(opt_out) => {
                let at = opt_out.requested_at.map_or(event.recorded_at, |requested| requested.min(event.recorded_at));
                fold_opt_out(before, event.id, at)
            }
        };
        if let Some(after) = after {
            folded.changed.push((category.clone(), after));
        }
        folded.outcomes.push((category.clone(), outcome));
    }
    folded
}

/// Replays a whole history (in ledger order) into the current state.
pub fn replay<'a>(events: impl IntoIterator<Item = &'a ConsentEvent>) -> ContactConsent {
    let mut state = ContactConsent::new();
    for event in events {
        state.extend(apply(&state, event).changed);
    }
    state
}

fn fold_opt_in(
    before: Option<&CategoryConsent>,
    opt_in: &OptIn,
    event_id: EventId,
) -> (CategoryOutcome, Option<CategoryConsent>) {
    let last_opt_out_at = before.and_then(|b| b.last_opt_out_at);
    match before {
        Some(b) if b.status == ConsentStatus::OptedIn => (CategoryOutcome::AlreadyOptedIn, None),
        _ if last_opt_out_at.is_some_and(|out| out >= opt_in.collected_at) => {
            (CategoryOutcome::SupersededByOptOut, None)
        }
        _ => {
            let after = CategoryConsent {
                status: ConsentStatus::OptedIn,
                since: opt_in.collected_at,
                event_id,
                method: Some(opt_in.method),
                notice_id: Some(opt_in.notice.id),
                last_opt_out_at,
            };
            (CategoryOutcome::Applied, Some(after))
        }
    }
}

fn fold_opt_out(
    before: Option<&CategoryConsent>,
    event_id: EventId,
    at: Timestamp,
) -> (CategoryOutcome, Option<CategoryConsent>) {
    match before {
        Some(b) if b.status == ConsentStatus::OptedOut => {
            let refreshed = CategoryConsent { last_opt_out_at: Some(at), ..b.clone() };
            (CategoryOutcome::AlreadyOptedOut, Some(refreshed))
        }
        _ => {
            let after = CategoryConsent {
                status: ConsentStatus::OptedOut,
                since: at,
                event_id,
                method: None,
                notice_id: None,
                last_opt_out_at: Some(at),
            };
            (CategoryOutcome::Applied, Some(after))
        }
    }
}

/// Per-category consent of one contact as two bit sets over the business's category slots:
/// the compact form the hot path reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct ConsentBits {
    pub opted_in: u64,
    pub opted_out: u64,
}

impl ConsentBits {
    pub fn from_state(business: &Business, state: &ContactConsent) -> ConsentBits {
        let mut bits = ConsentBits::default();
        for (category, consent) in state {
            if let Some(slot) = business.category_slot(category.as_str()) {
                bits.set(slot.bit(), consent.status);
            }
        }
        bits
    }

    pub fn set(&mut self, bit: u64, status: ConsentStatus) {
        match status {
            ConsentStatus::OptedIn => {
                self.opted_in |= bit;
                self.opted_out &= !bit;
            }
            ConsentStatus::OptedOut => {
                self.opted_out |= bit;
                self.opted_in &= !bit;
            }
        }
    }
}

/// Phone numbers cross JSON as E.164 strings.
pub mod e164 {
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::phone::PhoneNumber;

    pub fn serialize<S: Serializer>(phone: &PhoneNumber, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(phone)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<PhoneNumber, D::Error> {
        let text = String::deserialize(deserializer)?;
        PhoneNumber::from_e164(&text).ok_or_else(|| serde::de::Error::custom("not an E.164 number"))
    }
}

#[cfg(test)]
mod tests;
