//! The gate: may this business send this message to this person now, and if not, why.
//!
//! "No" is a normal answer, not an error, so a decision carries every reason that applies
//! instead of failing on the first one.

use std::borrow::Cow;

use serde::Serialize;

use jiff::Timestamp;

use crate::business::{Business, CategoryName, CategorySlot, TemplateCategory};
use crate::consent::{ConsentBits, ConsentStatus, ContactConsent};
use crate::jurisdiction::{self, Cap, JurisdictionPolicy, RuleOutcome};
use crate::phone::{PhoneNumber, PhoneNumberError};
use crate::template::TemplateStatus;

/// How long a customer-service window stays open after the contact's last inbound message.
pub const SERVICE_WINDOW: jiff::SignedDuration = jiff::SignedDuration::from_hours(24);

/// When the contact's service window closes, if it is open at `now`.
pub fn service_window_closes_at(last_inbound_at: Option<Timestamp>, now: Timestamp) -> Option<Timestamp> {
    let closes_at = last_inbound_at?.checked_add(SERVICE_WINDOW).ok()?;
    (closes_at > now).then_some(closes_at)
}

/// Why a message may not be sent. `code()` is stable and documented.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    InvalidPhone(PhoneNumberError),
    UnknownCategory(String),
    NoOptIn,
    OptedOut,
    TemplateNotFound,
    TemplateNotApproved(TemplateStatus),
    /// The template is linked to no category of the business, so consent cannot be checked.
    TemplateNotLinked,
    NotOptedInToTemplateCategory(CategoryName),
    OutsideServiceWindow,
    /// The same number appeared earlier in the same audience (batch decisions); the earlier
    /// occurrence carries the decision.
    Duplicate,
    /// Outside the allowed sending hours in the recipient's local time; `retry_after` is the
    /// first instant it may go (absent when the candidate zones never share the window).
    QuietHours {
        window: String,
        retry_after: Option<Timestamp>,
    },
    /// The recipient already got `max` messages of this category in the jurisdiction's period.
    FrequencyCap {
        max: u32,
        retry_after: Option<Timestamp>,
    },
    /// The business's messaging limit (unique recipients per rolling 24 hours) is reached.
    TierCapReached,
    /// The contact's opt-in lapsed (implied consent lasts only so long where the recipient is).
    ConsentExpired,
    /// The contact opted in but has not confirmed yet (double opt-in).
    OptInPendingConfirmation,
}

impl Reason {
    pub fn code(&self) -> &'static str {
        match self {
            Reason::InvalidPhone(error) => error.code(),
            Reason::UnknownCategory(_) => "unknown_category",
            Reason::NoOptIn => "no_opt_in",
            Reason::OptedOut => "opted_out",
            Reason::TemplateNotFound => "template_not_found",
            Reason::TemplateNotApproved(_) => "template_not_approved",
            Reason::TemplateNotLinked => "template_not_linked",
            Reason::NotOptedInToTemplateCategory(_) => "not_opted_in_to_template_category",
            Reason::OutsideServiceWindow => "outside_service_window",
            Reason::Duplicate => "duplicate",
            Reason::QuietHours { .. } => "quiet_hours",
            Reason::FrequencyCap { .. } => "frequency_cap",
            Reason::TierCapReached => "tier_cap_reached",
            Reason::ConsentExpired => "consent_expired",
            Reason::OptInPendingConfirmation => "opt_in_pending_confirmation",
        }
    }

    /// The reason in words (borrowed for every reason but those that name something).
    pub fn detail(&self) -> Cow<'static, str> {
        match self {
            Reason::InvalidPhone(error) => error.to_string().into(),
            Reason::UnknownCategory(name) => format!("the business has no category `{name}`").into(),
            Reason::NoOptIn => "the contact has not opted in to this category".into(),
            Reason::OptedOut => "the contact opted out of this category".into(),
            Reason::TemplateNotFound => "the business has no template with this name and language".into(),
            Reason::TemplateNotApproved(status) => {
                format!("the template's status is {}; only APPROVED templates can be sent", status.as_str()).into()
            }
            Reason::TemplateNotLinked => {
                "the template is linked to none of the business's categories; import it with `optin_category` \
                 or set a default for its template category"
                    .into()
            }
            Reason::NotOptedInToTemplateCategory(category) => {
                format!("the contact is not opted in to `{category}`, the template's category").into()
            }
            Reason::OutsideServiceWindow => {
                "free-form messages can only be sent within 24 hours of the contact's last message; use a template"
                    .into()
            }
            Reason::Duplicate => "the number appeared earlier in this audience; that line has the decision".into(),
            Reason::QuietHours { window, .. } => {
                format!("outside the sending hours in the recipient's local time ({window})").into()
            }
            Reason::FrequencyCap { max, .. } => {
                format!("the recipient already got {max} messages of this category in the jurisdiction's period").into()
            }
            Reason::TierCapReached => {
                "the business's messaging limit (unique recipients in 24 hours) is reached".into()
            }
            Reason::ConsentExpired => {
                "the contact's consent to this category has lapsed under the rules where they are; ask again".into()
            }
            Reason::OptInPendingConfirmation => {
                "the contact opted in to this category but has not confirmed it yet (double opt-in)".into()
            }
        }
    }

    /// When the refused send may be tried again, for time-bound reasons.
    pub fn retry_after(&self) -> Option<Timestamp> {
        match self {
            Reason::QuietHours { retry_after, .. } | Reason::FrequencyCap { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

/// What a decision learns about the template a message would use, from the registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TemplateLookup {
    NotFound,
    Found {
        status: TemplateStatus,
        /// The linked business category and its slot, if the template is linked.
        category: Option<(CategoryName, CategorySlot)>,
    },
}

/// The message a decision is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message<'a> {
    /// A message of one of the business's categories (the category may be unknown).
    Category(Result<CategorySlot, &'a str>),
    /// A template message.
    Template(TemplateLookup),
    /// A free-form (non-template) message, allowed only inside the service window.
    FreeForm,
}

/// What the gate answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub reasons: Vec<Reason>,
}

impl Decision {
    pub fn allowed(&self) -> bool {
        self.reasons.is_empty()
    }
}

/// The serializable form of a reason, as the API and CLI print it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ReasonView {
    pub code: &'static str,
    pub detail: String,
    /// For `quiet_hours` and `frequency_cap`: when the send may be tried again.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub retry_after: Option<Timestamp>,
}

impl From<&Reason> for ReasonView {
    fn from(reason: &Reason) -> ReasonView {
        ReasonView { code: reason.code(), detail: reason.detail().into_owned(), retry_after: reason.retry_after() }
    }
}

/// The time-and-place rules for a `kind` message to `phone` at `at` (quiet hours in the
/// recipient's local time). Frequency caps need the recipient's send history and are counted
/// by the shells with [`JurisdictionPolicy::frequency_cap`].
pub fn jurisdiction_reasons(
    policy: &JurisdictionPolicy,
    phone: &PhoneNumber,
    kind: TemplateCategory,
    at: Timestamp,
    default_zone: Option<&jiff::tz::TimeZone>,
) -> Vec<Reason> {
    let Some(place) = jurisdiction::locate(phone) else { return Vec::new() };
    place_reasons(policy, &place, kind, at, default_zone)
}

/// [`jurisdiction_reasons`] for a recipient at `place`: the same for every number there.
pub fn place_reasons(
    policy: &JurisdictionPolicy,
    place: &jurisdiction::Place,
    kind: TemplateCategory,
    at: Timestamp,
    default_zone: Option<&jiff::tz::TimeZone>,
) -> Vec<Reason> {
    policy
        .check(place, kind, at, default_zone)
        .into_iter()
        .map(|outcome| match outcome {
            RuleOutcome::QuietHours { window, retry_after } => {
                Reason::QuietHours { window: window.to_string(), retry_after }
            }
        })
        .collect()
}

/// The contact's consent as the gate reads it at the moment of a decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Standing {
    pub consent: ConsentBits,
    /// Slots whose opt-in has lapsed at that moment (see [`lapsed_opt_ins`]).
    pub lapsed: u64,
}

impl From<ConsentBits> for Standing {
    fn from(consent: ConsentBits) -> Standing {
        Standing { consent, lapsed: 0 }
    }
}

/// Whether the stored consent needs its details read to know what has lapsed: it holds an opt-in
/// whose basis can expire under `policy`.
pub fn may_have_lapsed(policy: &JurisdictionPolicy, consent: ConsentBits) -> bool {
    use crate::consent::ConsentBasis;
    let opt_ins = consent.opted_in;
    let implied = opt_ins & consent.implied != 0
        && (policy.may_expire(ConsentBasis::ImpliedPurchase) || policy.may_expire(ConsentBasis::ImpliedInquiry));
    let express = opt_ins & !consent.implied != 0 && policy.may_expire(ConsentBasis::Express);
    implied || express
}

/// The slots of `business` whose opt-in in `state` has lapsed at `at`, under the lifetimes
/// `policy` gives where `phone` is.
pub fn lapsed_opt_ins(
    policy: &JurisdictionPolicy,
    business: &Business,
    phone: &PhoneNumber,
    state: &ContactConsent,
    at: Timestamp,
) -> u64 {
    let Some(place) = jurisdiction::locate(phone) else { return 0 };
    let mut lapsed = 0;
    for (category, consent) in state {
        let (Some(slot), ConsentStatus::OptedIn, Some((basis, starts_at))) =
            (business.category_slot(category.as_str()), consent.status, consent.basis)
        else {
            continue;
        };
        if policy.consent_expires_at(&place, basis, starts_at).is_some_and(|end| end <= at) {
            lapsed |= slot.bit();
        }
    }
    lapsed
}

/// The frequency cap's reason, if the recipient already got `cap.max` messages of the category in
/// the period before the send: `sends` are those messages' times, oldest first. The send may go
/// again once the oldest of the last `max` leaves the period.
pub fn frequency_cap_reason(cap: Cap, sends: &[Timestamp]) -> Option<Reason> {
    let max = usize::try_from(cap.max).unwrap_or(usize::MAX);
    if sends.len() < max {
        return None;
    }
    let leaves_period = sends[sends.len() - max].checked_add(cap.per).ok();
    Some(Reason::FrequencyCap { max: cap.max, retry_after: leaves_period })
}

/// Decides one send of a message of `category`. `standing` is the contact's stored consent
/// (empty bits when unknown).
pub fn decide(
    phone: Result<&PhoneNumber, &PhoneNumberError>,
    category: Result<CategorySlot, &str>,
    standing: Standing,
) -> Decision {
    decide_message(phone, &Message::Category(category), standing, false)
}

/// Decides one send of any kind of message. `window_open` says whether the contact's
/// customer-service window is open now.
pub fn decide_message(
    phone: Result<&PhoneNumber, &PhoneNumberError>,
    message: &Message<'_>,
    standing: Standing,
    window_open: bool,
) -> Decision {
    let mut reasons = Vec::new();
    if let Err(error) = phone {
        reasons.push(Reason::InvalidPhone(error.clone()));
    }
    let valid_phone = phone.is_ok();
    match message {
        Message::Category(Err(name)) => reasons.push(Reason::UnknownCategory(name.chars().take(64).collect())),
        Message::Category(Ok(slot)) if valid_phone => {
            reasons.extend(consent_reason(standing, slot.bit(), || Reason::NoOptIn));
        }
        Message::Category(Ok(_)) => {}
        Message::Template(lookup) => template_reasons(lookup, standing, valid_phone, &mut reasons),
        Message::FreeForm => {
            if valid_phone && !window_open {
                reasons.push(Reason::OutsideServiceWindow);
            }
        }
    }
    Decision { reasons }
}

/// Why the consent at slot `bit` does not allow a send, if it does not; `missing` is the reason
/// for no opt-in at all.
fn consent_reason(standing: Standing, bit: u64, missing: impl FnOnce() -> Reason) -> Option<Reason> {
    let consent = standing.consent;
    if consent.opted_out & bit != 0 {
        Some(Reason::OptedOut)
    } else if consent.pending & bit != 0 {
        Some(Reason::OptInPendingConfirmation)
    } else if consent.opted_in & bit == 0 {
        Some(missing())
    } else if standing.lapsed & bit != 0 {
        Some(Reason::ConsentExpired)
    } else {
        None
    }
}

fn template_reasons(lookup: &TemplateLookup, standing: Standing, valid_phone: bool, reasons: &mut Vec<Reason>) {
    let TemplateLookup::Found { status, category } = lookup else {
        reasons.push(Reason::TemplateNotFound);
        return;
    };
    if !status.is_sendable() {
        reasons.push(Reason::TemplateNotApproved(status.clone()));
    }
    let Some((name, slot)) = category else {
        reasons.push(Reason::TemplateNotLinked);
        return;
    };
    if !valid_phone {
        return;
    }
    let reason = consent_reason(standing, slot.bit(), || Reason::NotOptedInToTemplateCategory(name.clone()));
    if reason == Some(Reason::OptedOut) {
        // Both: the template cannot go, and the client learns which category it counts against.
        reasons.push(Reason::OptedOut);
        reasons.push(Reason::NotOptedInToTemplateCategory(name.clone()));
    } else {
        reasons.extend(reason);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codes(decision: &Decision) -> Vec<&'static str> {
        decision.reasons.iter().map(Reason::code).collect()
    }

    fn phone() -> PhoneNumber {
        PhoneNumber::from_e164("+14155552671").unwrap()
    }

    #[test]
    fn reasons_cover_every_combination() {
        let offers = CategorySlot::new(1).unwrap();
        let opted_in = ConsentBits { opted_in: 0b10, opted_out: 0, ..ConsentBits::default() };
        let opted_out = ConsentBits { opted_in: 0, opted_out: 0b10, ..ConsentBits::default() };
        let only_other = ConsentBits { opted_in: 0b01, opted_out: 0, ..ConsentBits::default() };
        let bad_phone = PhoneNumberError::NotValid;
        type Case<'a> =
            (Result<&'a PhoneNumber, &'a PhoneNumberError>, Result<CategorySlot, &'a str>, ConsentBits, Vec<&'a str>);
        let cases: [Case; 6] = [
            (Ok(&phone()), Ok(offers), opted_in, vec![]),
            (Ok(&phone()), Ok(offers), opted_out, vec!["opted_out"]),
            (Ok(&phone()), Ok(offers), only_other, vec!["no_opt_in"]),
            (Ok(&phone()), Ok(offers), ConsentBits::default(), vec!["no_opt_in"]),
            (Ok(&phone()), Err("nope"), opted_in, vec!["unknown_category"]),
            (Err(&bad_phone), Err("nope"), ConsentBits::default(), vec!["invalid_phone", "unknown_category"]),
        ];
        for (phone, category, consent, expected) in cases {
            let decision = decide(phone, category, consent.into());
            assert_eq!(codes(&decision), expected);
            assert_eq!(decision.allowed(), expected.is_empty());
        }
    }

    #[test]
    fn a_fixed_line_is_reported_with_its_own_code() {
        let error = PhoneNumberError::NotMobile("fixed-line");
        let decision = decide(Err(&error), Ok(CategorySlot::new(0).unwrap()), Standing::default());
        assert_eq!(codes(&decision), ["not_a_mobile_number"]);
    }

    fn offers() -> (CategoryName, CategorySlot) {
        (CategoryName::parse("offers").unwrap(), CategorySlot::new(1).unwrap())
    }

    #[test]
    fn templates_need_approval_a_link_and_consent_to_their_category() {
        let opted_in = ConsentBits { opted_in: 0b10, opted_out: 0, ..ConsentBits::default() };
        let opted_out = ConsentBits { opted_in: 0, opted_out: 0b10, ..ConsentBits::default() };
        let approved = |category| TemplateLookup::Found { status: TemplateStatus::Approved, category };
        let paused = TemplateLookup::Found { status: TemplateStatus::Paused, category: Some(offers()) };
        let cases: [(TemplateLookup, ConsentBits, Vec<&str>); 6] = [
            (approved(Some(offers())), opted_in, vec![]),
            (approved(Some(offers())), ConsentBits::default(), vec!["not_opted_in_to_template_category"]),
            (approved(Some(offers())), opted_out, vec!["opted_out", "not_opted_in_to_template_category"]),
            (approved(None), opted_in, vec!["template_not_linked"]),
            (paused, opted_in, vec!["template_not_approved"]),
            (TemplateLookup::NotFound, opted_in, vec!["template_not_found"]),
        ];
        for (lookup, consent, expected) in cases {
            // A template is allowed outside the service window.
            let decision = decide_message(Ok(&phone()), &Message::Template(lookup), consent.into(), false);
            assert_eq!(codes(&decision), expected);
        }
    }

    #[test]
    fn free_form_messages_need_an_open_window_only() {
        let closed = decide_message(Ok(&phone()), &Message::FreeForm, Standing::default(), false);
        assert_eq!(codes(&closed), ["outside_service_window"]);
        let open = decide_message(Ok(&phone()), &Message::FreeForm, Standing::default(), true);
        assert!(open.allowed());
    }

    #[test]
    fn the_window_closes_24_hours_after_the_last_inbound_message() {
        let last = Timestamp::from_second(1_750_000_000).unwrap();
        let just_before = last.checked_add(jiff::SignedDuration::from_secs(24 * 3600 - 1)).unwrap();
        let at_close = last.checked_add(SERVICE_WINDOW).unwrap();
        assert_eq!(service_window_closes_at(Some(last), just_before), Some(at_close));
        assert_eq!(service_window_closes_at(Some(last), at_close), None);
        assert_eq!(service_window_closes_at(None, last), None);
    }

    #[test]
    fn quiet_hours_in_the_recipients_zone_give_a_retry_time() {
        let miami = PhoneNumber::from_e164("+13055551234").unwrap();
        let policy = JurisdictionPolicy::shipped();
        // 2026-06-10 20:30 in Miami (EDT, UTC-4): after Florida's 20:00.
        let late = Timestamp::from_second(1_781_137_800).unwrap();
        let reasons = jurisdiction_reasons(policy, &miami, TemplateCategory::Marketing, late, None);
        assert_eq!(reasons.iter().map(Reason::code).collect::<Vec<_>>(), ["quiet_hours"]);
        let retry = reasons[0].retry_after().unwrap();
        assert_eq!(retry.as_second() - late.as_second(), 11 * 3600 + 30 * 60, "08:00 next morning");
        assert!(jurisdiction_reasons(policy, &miami, TemplateCategory::Utility, late, None).is_empty());
        let view = ReasonView::from(&reasons[0]);
        assert_eq!(view.retry_after, Some(retry));
    }

    #[test]
    fn pending_and_lapsed_opt_ins_are_refused_with_their_own_reasons() {
        let slot = CategorySlot::new(1).unwrap();
        let pending = ConsentBits { pending: 0b10, ..ConsentBits::default() };
        let opted_in = ConsentBits { opted_in: 0b10, implied: 0b10, ..ConsentBits::default() };
        let lapsed = Standing { consent: opted_in, lapsed: 0b10 };
        assert_eq!(codes(&decide(Ok(&phone()), Ok(slot), pending.into())), ["opt_in_pending_confirmation"]);
        assert_eq!(codes(&decide(Ok(&phone()), Ok(slot), lapsed)), ["consent_expired"]);
        assert!(decide(Ok(&phone()), Ok(slot), opted_in.into()).allowed());
        let template =
            Message::Template(TemplateLookup::Found { status: TemplateStatus::Approved, category: Some(offers()) });
        assert_eq!(
            codes(&decide_message(Ok(&phone()), &template, pending.into(), false)),
            ["opt_in_pending_confirmation"]
        );
        assert_eq!(codes(&decide_message(Ok(&phone()), &template, lapsed, false)), ["consent_expired"]);
    }

    #[test]
    fn implied_consent_lapses_in_canada_after_its_lifetime_and_express_never_does() {
        use crate::business::{Category, CategoryName};
        use crate::consent::{CategoryConsent, ConsentBasis, ConsentStatus};
        use crate::ids::EventId;
        let business = Business {
            id: crate::ids::BusinessId::from_uuid(uuid::Uuid::from_u128(7)),
            name: crate::business::BusinessName::parse("Acme").unwrap(),
            brand_names: vec![],
            categories: ["order_updates", "offers"]
                .map(|n| Category {
                    name: CategoryName::parse(n).unwrap(),
                    template_category: TemplateCategory::Marketing,
                })
                .to_vec(),
            created_at: Timestamp::UNIX_EPOCH,
        };
        let toronto = PhoneNumber::from_e164("+14165550123").unwrap();
        let purchase = Timestamp::from_second(1_700_000_000).unwrap();
        let state_with = |basis| {
            let consent = CategoryConsent {
                status: ConsentStatus::OptedIn,
                since: purchase,
                event_id: EventId::from_uuid(uuid::Uuid::from_u128(1)),
                method: None,
                notice_id: None,
                last_opt_out_at: None,
                basis: Some((basis, purchase)),
            };
            ContactConsent::from([(CategoryName::parse("offers").unwrap(), consent)])
        };
        let policy = JurisdictionPolicy::shipped();
        let day = jiff::SignedDuration::from_hours(24);
        let after = |days: i32| purchase.checked_add(day * days).unwrap();
        let implied = state_with(ConsentBasis::ImpliedInquiry);
        assert_eq!(lapsed_opt_ins(policy, &business, &toronto, &implied, after(170)), 0);
        assert_eq!(
            lapsed_opt_ins(policy, &business, &toronto, &implied, after(190)),
            0b10,
            "6 months after an inquiry"
        );
        let purchase_state = state_with(ConsentBasis::ImpliedPurchase);
        assert_eq!(lapsed_opt_ins(policy, &business, &toronto, &purchase_state, after(700)), 0);
        assert_eq!(lapsed_opt_ins(policy, &business, &toronto, &purchase_state, after(740)), 0b10, "2 years");
        let express = state_with(ConsentBasis::Express);
        assert_eq!(lapsed_opt_ins(policy, &business, &toronto, &express, after(5000)), 0);
        // In the US the shipped rules set no lifetime.
        let chicago = PhoneNumber::from_e164("+13125550123").unwrap();
        assert_eq!(lapsed_opt_ins(policy, &business, &chicago, &implied, after(5000)), 0);
        let bits = ConsentBits { opted_in: 0b10, implied: 0b10, ..ConsentBits::default() };
        assert!(may_have_lapsed(policy, bits));
        assert!(!may_have_lapsed(policy, ConsentBits { opted_in: 0b10, ..ConsentBits::default() }));
    }

    #[test]
    fn the_frequency_cap_counts_the_period_and_says_when_the_oldest_send_leaves_it() {
        let cap = Cap { max: 3, per: jiff::SignedDuration::from_hours(24) };
        let hour = |h: i64| Timestamp::from_second(1_750_000_000 + h * 3600).unwrap();
        assert_eq!(frequency_cap_reason(cap, &[hour(0), hour(1)]), None);
        let reason = frequency_cap_reason(cap, &[hour(0), hour(1), hour(5)]).unwrap();
        assert_eq!(reason, Reason::FrequencyCap { max: 3, retry_after: Some(hour(24)) });
        let reason = frequency_cap_reason(cap, &[hour(0), hour(1), hour(5), hour(6)]).unwrap();
        assert_eq!(reason.retry_after(), Some(hour(25)), "the second oldest of four must leave first");
    }
}
