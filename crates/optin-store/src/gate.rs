//! The gate: one decision, from client input to the core's answer.

use jiff::Timestamp;
use optin_core::business::{Business, CategoryName, CategorySlot};
use optin_core::consent::ConsentBits;
use optin_core::decision::{
    Decision, Message, Reason, Standing, TemplateLookup, decide, decide_message, frequency_cap_reason,
    jurisdiction_reasons, lapsed_opt_ins, may_have_lapsed, service_window_closes_at,
};
use optin_core::jurisdiction::{self, Cap};
use optin_core::phone::{PhoneNumber, PhoneNumberError, Region};
use optin_core::template::{TemplateLanguage, TemplateName};

use crate::jurisdiction::{LoadedPolicy, jurisdiction_policy};
use crate::store::{Store, StoreError};

/// Decides whether `business` may send a message of `category` to `phone` at `at` (now, or the
/// moment a campaign is scheduled for): consent (confirmed, not lapsed), then the jurisdiction's
/// rules of time and place.
///
/// Numbers in strict E.164 that the store knows were validated when their consent was stored,
/// so they are looked up without running the (slow, globally locked) libphonenumber parser.
/// Anything else, or an E.164 number with no stored consent, is parsed in full, so that a
/// malformed number is reported as such rather than as "no opt-in".
pub async fn decide_send(
    store: &dyn Store,
    business: &Business,
    phone: &str,
    region: Option<Region>,
    category: &str,
    at: Timestamp,
) -> Result<Decision, StoreError> {
    let slot = business.category_slot(category).ok_or(category);
    let mut fast_bits = None;
    if let Some(fast) = PhoneNumber::from_e164(phone) {
        let bits = store.consent_bits(business, fast).await?;
        if bits != ConsentBits::default() {
            fast_bits = Some((fast, bits));
        }
    }
    let (parsed, bits): (Result<PhoneNumber, PhoneNumberError>, ConsentBits) = match fast_bits {
        Some((fast, bits)) => (Ok(fast), bits),
        None => {
            let parsed = PhoneNumber::parse(phone, region);
            let bits = match &parsed {
                Ok(number) => store.consent_bits(business, *number).await?,
                Err(_) => ConsentBits::default(),
            };
            (parsed, bits)
        }
    };
    let Ok(number) = &parsed else { return Ok(decide(parsed.as_ref(), slot, bits.into())) };
    let policy = jurisdiction_policy(store, business.id).await?;
    let standing = standing(store, business, &policy, number, bits, at).await?;
    let mut decision = decide(parsed.as_ref(), slot, standing);
    if let Ok(slot) = slot {
        decision.reasons.extend(send_rules(store, &policy, business, number, slot, at).await?);
    }
    Ok(decision)
}

/// The contact's consent at `at`: the stored bits and, only when one of its opt-ins can lapse
/// under the policy, which have (read from the contact's full state).
pub(crate) async fn standing(
    store: &dyn Store,
    business: &Business,
    policy: &LoadedPolicy,
    phone: &PhoneNumber,
    consent: ConsentBits,
    at: Timestamp,
) -> Result<Standing, StoreError> {
    if !may_have_lapsed(&policy.policy, consent) {
        return Ok(consent.into());
    }
    let state = store.contact_consent(business.id, *phone).await?;
    Ok(Standing { consent, lapsed: lapsed_opt_ins(&policy.policy, business, phone, &state, at) })
}

/// The rules of time and place for a business-initiated message counted against the category at
/// `slot`, sent at `at`: quiet hours in the recipient's zone, and the frequency cap on the category
/// (counted over the messages the proxy forwarded).
pub(crate) async fn send_rules(
    store: &dyn Store,
    policy: &LoadedPolicy,
    business: &Business,
    phone: &PhoneNumber,
    slot: CategorySlot,
    at: Timestamp,
) -> Result<Vec<Reason>, StoreError> {
    let mut reasons = time_rules(policy, business, phone, slot, at);
    if let Some(cap) = frequency_cap(policy, business, phone, slot) {
        let category = &business.categories[slot.index()].name;
        let since = at.checked_sub(cap.per).unwrap_or(Timestamp::MIN);
        let sends = store.recent_sends(business.id, category, std::slice::from_ref(phone), since, at).await?;
        let times: Vec<Timestamp> = sends.into_iter().map(|(_, sent_at)| sent_at).collect();
        reasons.extend(frequency_cap_reason(cap, &times));
    }
    Ok(reasons)
}

/// The jurisdiction's cap on messages of the category at `slot` to `phone`, if one applies.
pub(crate) fn frequency_cap(
    policy: &LoadedPolicy,
    business: &Business,
    phone: &PhoneNumber,
    slot: CategorySlot,
) -> Option<Cap> {
    let place = jurisdiction::locate(phone)?;
    policy.policy.frequency_cap(&place, business.categories[slot.index()].template_category)
}

/// The rules of the clock (quiet hours in the recipient's zone) for a business-initiated
/// message counted against the business category at `slot`, sent at `at`.
pub(crate) fn time_rules(
    policy: &LoadedPolicy,
    business: &Business,
    phone: &PhoneNumber,
    slot: CategorySlot,
    at: Timestamp,
) -> Vec<Reason> {
    let kind = business.categories[slot.index()].template_category;
    jurisdiction_reasons(&policy.policy, phone, kind, at, policy.default_zone.as_ref())
}

/// The message a client asks about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageRequest<'a> {
    Category(&'a str),
    Template {
        name: &'a str,
        language: &'a str,
    },
    /// A free-form (non-template) message.
    FreeForm,
}

/// A decision with what it learned on the way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GateAnswer {
    pub decision: Decision,
    /// The number as the gate read it (`None` when it is not a valid number).
    pub phone: Option<PhoneNumber>,
    /// When the contact's customer-service window closes, if it is open now.
    pub service_window_closes_at: Option<Timestamp>,
    /// For a template: the business category it counts against.
    pub template_category: Option<CategoryName>,
}

/// Decides whether `business` may send `message` to `phone` at `now` (now, or when it is
/// scheduled): a category message (as [`decide_send`]), a template (approved, linked, consent to
/// its category, the jurisdiction's rules; allowed outside the service window) or a free-form
/// message (only inside the service window, which is customer service: no jurisdiction rules).
pub async fn decide_message_send(
    store: &dyn Store,
    business: &Business,
    phone: &str,
    region: Option<Region>,
    message: MessageRequest<'_>,
    now: Timestamp,
) -> Result<GateAnswer, StoreError> {
    // As in `decide_send`: the fast path only for numbers the store already validated.
    let parsed = match PhoneNumber::from_e164(phone) {
        Some(fast) if store.consent_bits(business, fast).await? != ConsentBits::default() => Ok(fast),
        _ => PhoneNumber::parse(phone, region),
    };
    let (bits, window_closes_at) = match &parsed {
        Ok(number) => {
            let contact = store.thread_contact(business.id, Some(*number), None).await?;
            let last_inbound = contact.and_then(|c| c.last_inbound_at);
            (store.consent_bits(business, *number).await?, service_window_closes_at(last_inbound, now))
        }
        Err(_) => (ConsentBits::default(), None),
    };
    let mut template_category = None;
    let mut counted_against = None;
    let core_message = match message {
        MessageRequest::Category(category) => {
            counted_against = business.category_slot(category);
            Message::Category(business.category_slot(category).ok_or(category))
        }
        MessageRequest::FreeForm => Message::FreeForm,
        MessageRequest::Template { name, language } => {
            let lookup = lookup_template(store, business, name, language).await?;
            if let TemplateLookup::Found { category: Some((name, slot)), .. } = &lookup {
                template_category = Some(name.clone());
                counted_against = Some(*slot);
            }
            Message::Template(lookup)
        }
    };
    let policy = jurisdiction_policy(store, business.id).await?;
    let standing = match &parsed {
        Ok(number) => standing(store, business, &policy, number, bits, now).await?,
        Err(_) => bits.into(),
    };
    let mut decision = decide_message(parsed.as_ref(), &core_message, standing, window_closes_at.is_some());
    if let (Ok(number), Some(slot)) = (&parsed, counted_against) {
        decision.reasons.extend(send_rules(store, &policy, business, number, slot, now).await?);
    }
    Ok(GateAnswer { decision, phone: parsed.ok(), service_window_closes_at: window_closes_at, template_category })
}

/// What the registry says about a template, for a decision (also used by `audience`).
pub(crate) async fn lookup_template(
    store: &dyn Store,
    business: &Business,
    name: &str,
    language: &str,
) -> Result<TemplateLookup, StoreError> {
    let (Ok(name), Ok(language)) = (TemplateName::parse(name), TemplateLanguage::parse(language)) else {
        return Ok(TemplateLookup::NotFound);
    };
    let Some(template) = store.template(business.id, name.as_str(), language.as_str()).await? else {
        return Ok(TemplateLookup::NotFound);
    };
    let category = template
        .linked_category
        .and_then(|category| business.category_slot(category.as_str()).map(|slot| (category, slot)));
    Ok(TemplateLookup::Found { status: template.status, category })
}
