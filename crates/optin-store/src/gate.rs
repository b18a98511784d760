//! The gate: one decision, from client input to the core's answer.

use jiff::Timestamp;
use optin_core::business::{Business, CategoryName};
use optin_core::consent::ConsentBits;
use optin_core::decision::{Decision, Message, TemplateLookup, decide, decide_message, service_window_closes_at};
use optin_core::phone::{PhoneNumber, PhoneNumberError, Region};
use optin_core::template::{TemplateLanguage, TemplateName};

use crate::store::{Store, StoreError};

/// Decides whether `business` may send a message of `category` to `phone` now.
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
) -> Result<Decision, StoreError> {
    let slot = business.category_slot(category).ok_or(category);
    if let Some(fast) = PhoneNumber::from_e164(phone) {
        let bits = store.consent_bits(business, fast).await?;
        if bits != ConsentBits::default() {
            return Ok(decide(Ok(&fast), slot, bits));
        }
    }
    let parsed: Result<PhoneNumber, PhoneNumberError> = PhoneNumber::parse(phone, region);
    let bits = match &parsed {
        Ok(number) => store.consent_bits(business, *number).await?,
        Err(_) => ConsentBits::default(),
    };
    Ok(decide(parsed.as_ref(), slot, bits))
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
    /// When the contact's customer-service window closes, if it is open now.
    pub service_window_closes_at: Option<Timestamp>,
    /// For a template: the business category it counts against.
    pub template_category: Option<CategoryName>,
}

/// Decides whether `business` may send `message` to `phone` at `now`: a category message
/// (as [`decide_send`]), a template (approved, linked, consent to its category; allowed outside
/// the service window) or a free-form message (only inside the service window).
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
    let core_message = match message {
        MessageRequest::Category(category) => Message::Category(business.category_slot(category).ok_or(category)),
        MessageRequest::FreeForm => Message::FreeForm,
        MessageRequest::Template { name, language } => {
            let lookup = lookup_template(store, business, name, language).await?;
            if let TemplateLookup::Found { category: Some((name, _)), .. } = &lookup {
                template_category = Some(name.clone());
            }
            Message::Template(lookup)
        }
    };
    let decision = decide_message(parsed.as_ref(), &core_message, bits, window_closes_at.is_some());
    Ok(GateAnswer { decision, service_window_closes_at: window_closes_at, template_category })
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
