//! The gate: may this business send this message to this person now, and if not, why.
//!
//! "No" is a normal answer, not an error, so a decision carries every reason that applies
//! instead of failing on the first one.

use serde::Serialize;

use jiff::Timestamp;

use crate::business::{CategoryName, CategorySlot, TemplateCategory};
use crate::consent::ConsentBits;
use crate::jurisdiction::{self, JurisdictionPolicy, RuleOutcome};
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
        }
    }

    pub fn detail(&self) -> String {
        match self {
            Reason::InvalidPhone(error) => error.to_string(),
            Reason::UnknownCategory(name) => format!("the business has no category `{name}`"),
            Reason::NoOptIn => "the contact has not opted in to this category".to_owned(),
            Reason::OptedOut => "the contact opted out of this category".to_owned(),
            Reason::TemplateNotFound => "the business has no template with this name and language".to_owned(),
            Reason::TemplateNotApproved(status) => {
                format!("the template's status is {}; only APPROVED templates can be sent", status.as_str())
            }
            Reason::TemplateNotLinked => {
                "the template is linked to none of the business's categories; import it with `optin_category` \
                 or set a default for its template category"
                    .to_owned()
            }
            Reason::NotOptedInToTemplateCategory(category) => {
                format!("the contact is not opted in to `{category}`, the template's category")
            }
            Reason::OutsideServiceWindow => {
                "free-form messages can only be sent within 24 hours of the contact's last message; use a template"
                    .to_owned()
            }
            Reason::Duplicate => "the number appeared earlier in this audience; that line has the decision".to_owned(),
            Reason::QuietHours { window, .. } => {
                format!("outside the sending hours in the recipient's local time ({window})")
            }
            Reason::FrequencyCap { max, .. } => {
                format!("the recipient already got {max} messages of this category in the jurisdiction's period")
            }
            Reason::TierCapReached => {
                "the business's messaging limit (unique recipients in 24 hours) is reached".to_owned()
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
        ReasonView { code: reason.code(), detail: reason.detail(), retry_after: reason.retry_after() }
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
    policy
        .check(&place, kind, at, default_zone)
        .into_iter()
        .map(|outcome| match outcome {
            RuleOutcome::QuietHours { window, retry_after } => {
                Reason::QuietHours { window: window.to_string(), retry_after }
            }
        })
        .collect()
}

/// Decides one send of a message of `category`. `consent` is the contact's stored consent
/// (empty bits when unknown).
pub fn decide(
    phone: Result<&PhoneNumber, &PhoneNumberError>,
    category: Result<CategorySlot, &str>,
    consent: ConsentBits,
) -> Decision {
    decide_message(phone, &Message::Category(category), consent, false)
}

/// Decides one send of any kind of message. `window_open` says whether the contact's
/// customer-service window is open now.
pub fn decide_message(
    phone: Result<&PhoneNumber, &PhoneNumberError>,
    message: &Message<'_>,
    consent: ConsentBits,
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
            if consent.opted_out & slot.bit() != 0 {
                reasons.push(Reason::OptedOut);
            } else if consent.opted_in & slot.bit() == 0 {
                reasons.push(Reason::NoOptIn);
            }
        }
        Message::Category(Ok(_)) => {}
        Message::Template(lookup) => template_reasons(lookup, consent, valid_phone, &mut reasons),
        Message::FreeForm => {
            if valid_phone && !window_open {
                reasons.push(Reason::OutsideServiceWindow);
            }
        }
    }
    Decision { reasons }
}

fn template_reasons(lookup: &TemplateLookup, consent: ConsentBits, valid_phone: bool, reasons: &mut Vec<Reason>) {
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
    if consent.opted_out & slot.bit() != 0 {
        reasons.push(Reason::OptedOut);
    }
    if consent.opted_in & slot.bit() == 0 {
        reasons.push(Reason::NotOptedInToTemplateCategory(name.clone()));
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
        let opted_in = ConsentBits { opted_in: 0b10, opted_out: 0 };
        let opted_out = ConsentBits { opted_in: 0, opted_out: 0b10 };
        let only_other = ConsentBits { opted_in: 0b01, opted_out: 0 };
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
            let decision = decide(phone, category, consent);
            assert_eq!(codes(&decision), expected);
            assert_eq!(decision.allowed(), expected.is_empty());
        }
    }

    #[test]
    fn a_fixed_line_is_reported_with_its_own_code() {
        let error = PhoneNumberError::NotMobile("fixed-line");
        let decision = decide(Err(&error), Ok(CategorySlot::new(0).unwrap()), ConsentBits::default());
        assert_eq!(codes(&decision), ["not_a_mobile_number"]);
    }

    fn offers() -> (CategoryName, CategorySlot) {
        (CategoryName::parse("offers").unwrap(), CategorySlot::new(1).unwrap())
    }

    #[test]
    fn templates_need_approval_a_link_and_consent_to_their_category() {
        let opted_in = ConsentBits { opted_in: 0b10, opted_out: 0 };
        let opted_out = ConsentBits { opted_in: 0, opted_out: 0b10 };
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
            let decision = decide_message(Ok(&phone()), &Message::Template(lookup), consent, false);
            assert_eq!(codes(&decision), expected);
        }
    }

    #[test]
    fn free_form_messages_need_an_open_window_only() {
        let closed = decide_message(Ok(&phone()), &Message::FreeForm, ConsentBits::default(), false);
        assert_eq!(codes(&closed), ["outside_service_window"]);
        let open = decide_message(Ok(&phone()), &Message::FreeForm, ConsentBits::default(), true);
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
}
