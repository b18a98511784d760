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

/// What consent rests on, which decides how long it lasts (CASL distinguishes them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ConsentBasis {
    /// The person said yes to these messages.
    #[default]
    Express,
    /// Implied by a purchase or contract: an existing business relationship.
    ImpliedPurchase,
    /// Implied by an inquiry or application.
    ImpliedInquiry,
}

impl ConsentBasis {
    pub const ALL: [ConsentBasis; 3] =
        [ConsentBasis::Express, ConsentBasis::ImpliedPurchase, ConsentBasis::ImpliedInquiry];

    pub fn as_str(&self) -> &'static str {
        match self {
            ConsentBasis::Express => "express",
            ConsentBasis::ImpliedPurchase => "implied_purchase",
            ConsentBasis::ImpliedInquiry => "implied_inquiry",
        }
    }

    pub fn parse(text: &str) -> Option<ConsentBasis> {
        ConsentBasis::ALL.into_iter().find(|basis| basis.as_str() == text)
    }

    pub fn is_express(&self) -> bool {
        *self == ConsentBasis::Express
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OptIn {
    pub categories: Vec<CategoryName>,
    pub method: Method,
    pub notice: NoticeRef,
    pub evidence: Evidence,
    /// When the person gave consent (may be before it was recorded, never after).
    pub collected_at: Timestamp,
    /// What the consent rests on (express unless the business records it as implied).
    #[serde(default, skip_serializing_if = "ConsentBasis::is_express")]
    pub basis: ConsentBasis,
    /// For implied consent: the purchase or inquiry it is implied from, where its lifetime starts
    /// (absent: `collected_at`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub basis_at: Option<Timestamp>,
    /// Double opt-in: the categories stay pending until the person confirms.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub needs_confirmation: bool,
}

impl OptIn {
    /// Where the consent's lifetime starts.
    pub fn lifetime_starts_at(&self) -> Timestamp {
        self.basis_at.unwrap_or(self.collected_at)
    }
}

/// The person confirmed pending opt-ins (the second step of a double opt-in): by replying on
/// WhatsApp, following a link, and so on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Confirmation {
    pub categories: Vec<CategoryName>,
    /// How the person confirmed.
    pub method: Method,
    pub evidence: Evidence,
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
    Confirmation(Confirmation),
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
            ConsentChange::Confirmation(_) => "confirmation",
        }
    }

    pub fn categories(&self) -> &[CategoryName] {
        match &self.change {
            ConsentChange::OptIn(opt_in) => &opt_in.categories,
            ConsentChange::OptOut(opt_out) => &opt_out.categories,
            ConsentChange::Confirmation(confirmation) => &confirmation.categories,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ConsentStatus {
    OptedIn,
    OptedOut,
    /// Opted in, waiting for the person to confirm (double opt-in): not yet consent.
    PendingConfirmation,
}

impl ConsentStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            ConsentStatus::OptedIn => "opted_in",
            ConsentStatus::OptedOut => "opted_out",
            ConsentStatus::PendingConfirmation => "pending_confirmation",
        }
    }

    pub fn parse(text: &str) -> Option<ConsentStatus> {
        [ConsentStatus::OptedIn, ConsentStatus::OptedOut, ConsentStatus::PendingConfirmation]
            .into_iter()
            .find(|status| status.as_str() == text)
    }
}

/// The current consent of one contact for one category.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CategoryConsent {
    pub status: ConsentStatus,
    /// When the current status began (the opt-in's collection time, its confirmation, or the
    /// opt-out's).
    pub since: Timestamp,
    /// The event that set the current status.
    pub event_id: EventId,
    pub method: Option<Method>,
    pub notice_id: Option<NoticeId>,
    /// The latest opt-out, kept so that an older opt-in recorded later cannot undo it.
    pub last_opt_out_at: Option<Timestamp>,
    /// For an opt-in (pending or not): what it rests on, and where its lifetime starts.
    pub basis: Option<(ConsentBasis, Timestamp)>,
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
    /// The opt-in is recorded and waits for the person's confirmation (double opt-in).
    AwaitingConfirmation,
    /// Already waiting for confirmation: the newer request is the one waiting now (a confirmation
    /// refers to it, and its deadline applies); an older one recorded late changes nothing.
    AlreadyAwaitingConfirmation,
    /// A confirmation for a category that was not waiting for one: nothing changes.
    NothingToConfirm,
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
            ConsentChange::Confirmation(_) => fold_confirmation(before, event.id, event.recorded_at),
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
    let status = before.map(|b| b.status);
    match status {
        // A repeated opt-in, even one that asks for confirmation, never downgrades consent.
        Some(ConsentStatus::OptedIn) => (CategoryOutcome::AlreadyOptedIn, None),
        _ if last_opt_out_at.is_some_and(|out| out >= opt_in.collected_at) => {
            (CategoryOutcome::SupersededByOptOut, None)
        }
        Some(ConsentStatus::PendingConfirmation)
            if opt_in.needs_confirmation && before.is_some_and(|b| b.since >= opt_in.collected_at) =>
        {
            (CategoryOutcome::AlreadyAwaitingConfirmation, None)
        }
        _ => {
            let already_waiting = status == Some(ConsentStatus::PendingConfirmation);
            let (status, outcome) = if opt_in.needs_confirmation && already_waiting {
                (ConsentStatus::PendingConfirmation, CategoryOutcome::AlreadyAwaitingConfirmation)
            } else if opt_in.needs_confirmation {
                (ConsentStatus::PendingConfirmation, CategoryOutcome::AwaitingConfirmation)
            } else {
                (ConsentStatus::OptedIn, CategoryOutcome::Applied)
            };
            let after = CategoryConsent {
                status,
                since: opt_in.collected_at,
                event_id,
                method: Some(opt_in.method),
                notice_id: Some(opt_in.notice.id),
                last_opt_out_at,
                basis: Some((opt_in.basis, opt_in.lifetime_starts_at())),
            };
            (outcome, Some(after))
        }
    }
}

/// A confirmation turns a pending opt-in into consent from the moment it is recorded, keeping the
/// opt-in's method, notice and basis.
fn fold_confirmation(
    before: Option<&CategoryConsent>,
    event_id: EventId,
    at: Timestamp,
) -> (CategoryOutcome, Option<CategoryConsent>) {
    match before {
        Some(b) if b.status == ConsentStatus::PendingConfirmation => {
            let after = CategoryConsent { status: ConsentStatus::OptedIn, since: at, event_id, ..b.clone() };
            (CategoryOutcome::Applied, Some(after))
        }
        _ => (CategoryOutcome::NothingToConfirm, None),
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
                basis: None,
            };
            (CategoryOutcome::Applied, Some(after))
        }
    }
}

/// Per-category consent of one contact as bit sets over the business's category slots: the
/// compact form the hot path reads. A slot's bit is in at most one of `opted_in`, `opted_out` and
/// `pending`; `implied` marks opt-ins (pending or not) on an implied basis, whose lifetime the
/// decision checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct ConsentBits {
    pub opted_in: u64,
    pub opted_out: u64,
    pub pending: u64,
    pub implied: u64,
}

impl ConsentBits {
    pub fn from_state(business: &Business, state: &ContactConsent) -> ConsentBits {
        let mut bits = ConsentBits::default();
        for (category, consent) in state {
            if let Some(slot) = business.category_slot(category.as_str()) {
                bits.set(slot.bit(), consent.status, consent.basis.map(|(basis, _)| basis));
            }
        }
        bits
    }

    /// Sets one slot (`bit`) to `status`, on `basis` for an opt-in.
    pub fn set(&mut self, bit: u64, status: ConsentStatus, basis: Option<ConsentBasis>) {
        self.opted_in &= !bit;
        self.opted_out &= !bit;
        self.pending &= !bit;
        self.implied &= !bit;
        match status {
            ConsentStatus::OptedIn => self.opted_in |= bit,
            ConsentStatus::OptedOut => self.opted_out |= bit,
            ConsentStatus::PendingConfirmation => self.pending |= bit,
        }
        if status != ConsentStatus::OptedOut && basis.is_some_and(|basis| !basis.is_express()) {
            self.implied |= bit;
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
