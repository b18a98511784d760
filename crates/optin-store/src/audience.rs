//! Audience filtering: the gate for a whole campaign, decided in chunks.
//!
//! An audience can hold millions of numbers, so it is never held whole: the caller (the batch
//! endpoint, `optin audience filter`) hands over a chunk of requests at a time, typically a
//! thousand, and gets their decisions back in the same order. Each chunk costs at most two store
//! reads ([`Store::consent_bits_many`]) and one template lookup per distinct template, and
//! nothing is held open between chunks, so a chunk sees every write that returned before it.
//!
//! Each decision is the one [`gate::decide_message_send`](crate::gate::decide_message_send) would
//! give (the same core rules and template lookup; a template is allowed outside the service
//! window, so the window is not read), with one addition: the same person asked about twice for
//! the same message (say `+1 415 555 2671`, then `(415) 555-2671` with country US) is decided at
//! the first occurrence, and every later one is refused as [`Reason::Duplicate`]. The numbers
//! seen are kept as their 8-byte keys in one set per message (`seen`): 128 MiB for 10 million
//! distinct numbers (briefly 192 MiB while the set grows).

mod seen;

use std::collections::HashMap;
use std::sync::Arc;

use jiff::Timestamp;
use optin_core::business::{Business, CategorySlot, TemplateCategory};
use optin_core::consent::ConsentBits;
use optin_core::decision::{
    Decision, Message, Reason, Standing, TemplateLookup, decide_message, frequency_cap_reason, may_have_lapsed,
    place_reasons,
};
use optin_core::jurisdiction::{self, Cap, PlaceDigits};
use optin_core::phone::{PhoneNumber, PhoneNumberError, Region};
use optin_core::template::{TemplateLanguage, TemplateName};

use self::seen::SeenNumbers;
use crate::UseCaseError;
use crate::gate::lookup_template;
use crate::jurisdiction::{LoadedPolicy, jurisdiction_policy};
use crate::store::{Store, StoreError};

/// What a campaign sends: business-initiated messages only, so a category or a template.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AudienceMessage<'a> {
    Category(&'a str),
    Template { name: &'a str, language: &'a str },
}

/// One member of an audience, as the client wrote it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AudienceRequest<'a> {
    /// The number in any common format.
    pub phone: &'a str,
    /// The hint for numbers written without a country code.
    pub region: Option<Region>,
    pub message: AudienceMessage<'a>,
}

/// The decision for one request: the number it was read as (`None` when it is not a valid
/// number), and the decision with every reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudienceDecision {
    pub phone: Option<PhoneNumber>,
    pub decision: Decision,
}

/// The state of one audience across its chunks: the numbers already decided, per message.
#[derive(Debug)]
pub struct Audience {
    /// Every message the audience asked about so far, and the numbers decided for it (a set per
    /// message, so that the usual audience, about one message, costs one key per number).
    messages: Vec<(OwnedMessage, SeenNumbers)>,
    /// When the campaign goes out: quiet hours are checked at that time.
    at: Timestamp,
    /// Whether allowed recipients take a place under the business's messaging limit.
    reserve: bool,
    place_rules: PlaceRules,
}

impl Default for Audience {
    fn default() -> Audience {
        Audience { messages: Vec::new(), at: Timestamp::now(), reserve: false, place_rules: PlaceRules::default() }
    }
}

/// What the jurisdiction rules say at the audience's time per place and kind of message (quiet
/// hours, frequency cap), remembered under the policy they were read from: every number in one
/// place gets the same answer, and an audience comes from a handful of places. They are
/// remembered by the digits that decide a number's place (`jurisdiction::place_digits`: for +1
/// numbers the area code), so a number is located only the first time its place comes up.
#[derive(Debug, Default)]
struct PlaceRules {
    policy: Option<Arc<LoadedPolicy>>,
    by_place: HashMap<(PlaceDigits, TemplateCategory), RulesThere, foldhash::fast::RandomState>,
}

/// The quiet-hours reasons and the frequency cap at one place for one kind of message.
type RulesThere = (Vec<Reason>, Option<Cap>);

impl PlaceRules {
    /// The quiet-hours reasons and the frequency cap for a message counted against the category at
    /// `slot` to `phone`, sent at `at` under `policy`.
    fn get(
        &mut self,
        policy: &Arc<LoadedPolicy>,
        business: &Business,
        phone: &PhoneNumber,
        slot: CategorySlot,
        at: Timestamp,
    ) -> RulesThere {
        if !self.policy.as_ref().is_some_and(|known| Arc::ptr_eq(known, policy)) {
            self.policy = Some(Arc::clone(policy));
            self.by_place.clear();
        }
        let kind = business.categories[slot.index()].template_category;
        let rules = self
            .by_place
            .entry((jurisdiction::place_digits(phone), kind))
            .or_insert_with(|| rules_there(policy, phone, kind, at));
        rules.clone()
    }
}

/// What the rules say for a `kind` message to `phone` at `at`, worked out in full.
fn rules_there(policy: &LoadedPolicy, phone: &PhoneNumber, kind: TemplateCategory, at: Timestamp) -> RulesThere {
    let Some(place) = jurisdiction::locate(phone) else { return (Vec::new(), None) };
    let quiet = place_reasons(&policy.policy, &place, kind, at, policy.default_zone.as_ref());
    (quiet, policy.policy.frequency_cap(&place, kind))
}

#[derive(Debug, PartialEq, Eq)]
enum OwnedMessage {
    Category(String),
    Template { name: String, language: String },
}

impl OwnedMessage {
    /// The message with its template name and language normalized (`en-US` is `en_US`).
    fn new(message: AudienceMessage<'_>) -> OwnedMessage {
        match message {
            AudienceMessage::Category(name) => OwnedMessage::Category(name.to_owned()),
            AudienceMessage::Template { name, language } => OwnedMessage::Template {
                name: TemplateName::parse(name).map_or_else(|_| name.to_owned(), |n| n.as_str().to_owned()),
                language: TemplateLanguage::parse(language)
                    .map_or_else(|_| language.to_owned(), |l| l.as_str().to_owned()),
            },
        }
    }
}

/// A chunk's numbers as parsed, with their consent once known.
struct Resolved {
    phone: Result<PhoneNumber, PhoneNumberError>,
    bits: Option<ConsentBits>,
    /// The slots whose opt-in has lapsed at the audience's time.
    lapsed: u64,
}

impl Audience {
    /// An audience sent now, without reserving capacity.
    pub fn new() -> Audience {
        Audience::default()
    }

    /// The audience is sent at `at` (a scheduled campaign).
    #[must_use]
    pub fn sent_at(mut self, at: Timestamp) -> Audience {
        self.at = at;
        self
    }

    /// Every allowed recipient takes a place under the business's messaging limit (unique
    /// recipients per rolling 24 hours); once it is full, the rest are `tier_cap_reached`.
    #[must_use]
    pub fn reserving_capacity(mut self) -> Audience {
        self.reserve = true;
        self
    }

    /// How many decisions were not duplicates so far (distinct valid numbers per message).
    pub fn distinct_numbers(&self) -> usize {
        self.messages.iter().map(|(_, seen)| seen.len()).sum()
    }

    /// Decides a chunk of the audience, in order.
    ///
    /// As in `gate::decide_send`, numbers in strict E.164 that the store knows take the fast path
    /// (no libphonenumber); everything else is parsed in full, so that a malformed number is
    /// reported as such rather than as "no opt-in".
    pub async fn decide_chunk(
        &mut self,
        store: &dyn Store,
        business: &Business,
        requests: &[AudienceRequest<'_>],
    ) -> Result<Vec<AudienceDecision>, StoreError> {
        let messages = ChunkMessages::load(self, store, business, requests).await?;
        let e164: Vec<Option<PhoneNumber>> = requests.iter().map(|r| PhoneNumber::from_e164(r.phone)).collect();
        let repeated = self.decided_earlier(&messages, requests, &e164);
        let mut resolved = resolve_numbers(store, business, requests, &e164, &repeated).await?;
        let policy = jurisdiction_policy(store, business.id).await?;
        let at = self.at;
        mark_lapsed(store, business, &policy, &mut resolved, at).await?;
        let mut caps: Vec<Option<(CategorySlot, Cap)>> = Vec::with_capacity(requests.len());
        let mut decisions: Vec<AudienceDecision> = requests
            .iter()
            .zip(resolved)
            .map(|(request, resolved)| {
                let (message, seen) = messages.get(request.message);
                let mut decided = self.decide_one(message, seen, resolved);
                let mut cap = None;
                if let (Some(number), Some(slot)) = (decided.phone, counted_against(message))
                    && decided.decision.reasons != [Reason::Duplicate]
                {
                    let (quiet, frequency_cap) = self.place_rules.get(&policy, business, &number, slot, at);
                    decided.decision.reasons.extend(quiet);
                    cap = frequency_cap.map(|cap| (slot, cap));
                }
                caps.push(cap);
                decided
            })
            .collect();
        apply_frequency_caps(store, business, caps, &mut decisions, at).await?;
        if self.reserve {
            reserve(store, business, &mut decisions, at).await?;
        }
        Ok(decisions)
    }

    /// Which requests have an E.164 number decided in an earlier chunk for the same message: they
    /// are duplicates, and need neither parsing nor reading.
    fn decided_earlier(
        &self,
        messages: &ChunkMessages<'_>,
        requests: &[AudienceRequest<'_>],
        e164: &[Option<PhoneNumber>],
    ) -> Vec<bool> {
        // The usual chunk asks about one message: its numbers are looked up together.
        if let [(only, _, index)] = messages.messages.as_slice() {
            let Some(index) = *index else { return vec![false; requests.len()] };
            debug_assert!(requests.iter().all(|request| request.message == *only));
            let keys: Vec<Option<u64>> = e164.iter().map(|number| number.map(|n| n.key())).collect();
            return self.messages[index].1.contains_each(&keys);
        }
        let seen = |request: &AudienceRequest<'_>, number: &PhoneNumber| match messages.get(request.message).1 {
            Some(index) => self.messages[index].1.contains(number.key()),
            None => false,
        };
        requests.iter().zip(e164).map(|(request, number)| number.is_some_and(|n| seen(request, &n))).collect()
    }

    /// Decides one request, or refuses it as a duplicate if its number was decided before for the
    /// message (whose set of numbers is `seen`, if the message exists).
    fn decide_one(&mut self, message: &Message<'_>, seen: Option<usize>, resolved: Resolved) -> AudienceDecision {
        if let (Ok(number), Some(seen)) = (&resolved.phone, seen)
            && !self.messages[seen].1.insert(number.key())
        {
            return AudienceDecision { phone: Some(*number), decision: Decision { reasons: vec![Reason::Duplicate] } };
        }
        let standing = Standing { consent: resolved.bits.unwrap_or_default(), lapsed: resolved.lapsed };
        let decision = decide_message(resolved.phone.as_ref(), message, standing, false);
        AudienceDecision { phone: resolved.phone.ok(), decision }
    }

    /// The index of the message's set of numbers, added if new.
    fn message_index(&mut self, message: AudienceMessage<'_>) -> usize {
        let message = OwnedMessage::new(message);
        if let Some(index) = self.messages.iter().position(|(own, _)| *own == message) {
            return index;
        }
        self.messages.push((message, SeenNumbers::default()));
        self.messages.len() - 1
    }
}

/// The business category a message counts against, if it exists.
fn counted_against(message: &Message<'_>) -> Option<CategorySlot> {
    match message {
        Message::Category(Ok(slot)) => Some(*slot),
        Message::Template(TemplateLookup::Found { category: Some((_, slot)), .. }) => Some(*slot),
        _ => None,
    }
}

/// Reads which opt-ins have lapsed, for the numbers whose consent has one that can (rare: implied
/// consent where the policy gives it a lifetime), one contact at a time.
async fn mark_lapsed(
    store: &dyn Store,
    business: &Business,
    policy: &LoadedPolicy,
    resolved: &mut [Resolved],
    at: Timestamp,
) -> Result<(), StoreError> {
    for entry in resolved.iter_mut() {
        if let (Ok(number), Some(bits)) = (&entry.phone, entry.bits)
            && may_have_lapsed(&policy.policy, bits)
        {
            entry.lapsed = crate::gate::standing(store, business, policy, number, bits, at).await?.lapsed;
        }
    }
    Ok(())
}

/// Adds `frequency_cap` to the decisions whose recipient already got the jurisdiction's maximum
/// of messages of the category (`caps`: the category and cap that apply to each request, if
/// any): one store read per category and cap.
async fn apply_frequency_caps(
    store: &dyn Store,
    business: &Business,
    caps: Vec<Option<(CategorySlot, Cap)>>,
    decisions: &mut [AudienceDecision],
    at: Timestamp,
) -> Result<(), StoreError> {
    let mut groups: Vec<((CategorySlot, Cap), Vec<usize>)> = Vec::new();
    for (index, cap) in caps.into_iter().enumerate() {
        let Some((slot, cap)) = cap else { continue };
        match groups.iter_mut().find(|(key, _)| *key == (slot, cap)) {
            Some((_, members)) => members.push(index),
            None => groups.push(((slot, cap), vec![index])),
        }
    }
    for ((slot, cap), members) in groups {
        let phones: Vec<PhoneNumber> = members.iter().filter_map(|index| decisions[*index].phone).collect();
        let since = at.checked_sub(cap.per).unwrap_or(Timestamp::MIN);
        let category = &business.categories[slot.index()].name;
        let sends = store.recent_sends(business.id, category, &phones, since, at).await?;
        let mut by_phone: HashMap<u64, Vec<Timestamp>, foldhash::fast::RandomState> = HashMap::default();
        for (phone, sent_at) in sends {
            by_phone.entry(phone.key()).or_default().push(sent_at);
        }
        for index in members {
            let times = decisions[index].phone.and_then(|phone| by_phone.get(&phone.key()));
            if let Some(reason) = times.and_then(|times| frequency_cap_reason(cap, times)) {
                decisions[index].decision.reasons.push(reason);
            }
        }
    }
    Ok(())
}

/// Takes a place under the messaging limit for every allowed recipient of the chunk (one
/// transaction); those left without one are refused as `tier_cap_reached`.
async fn reserve(
    store: &dyn Store,
    business: &Business,
    decisions: &mut [AudienceDecision],
    at: Timestamp,
) -> Result<(), StoreError> {
    let allowed: Vec<usize> = (0..decisions.len()).filter(|i| decisions[*i].decision.allowed()).collect();
    let phones: Vec<PhoneNumber> = allowed.iter().filter_map(|i| decisions[*i].phone).collect();
    let places =
        crate::capacity::reserve_capacity(store, business.id, &phones, at).await.map_err(|error| match error {
            UseCaseError::Store(error) => error,
            UseCaseError::Rejected(rejection) => StoreError::Corrupt(rejection.detail().to_owned()),
        })?;
    for (index, placed) in allowed.into_iter().zip(places) {
        if !placed {
            decisions[index].decision.reasons.push(Reason::TierCapReached);
        }
    }
    Ok(())
}

/// Parses the chunk's numbers and reads their consent: one read for the E.164 numbers, one for
/// the numbers that had to be parsed (if any). `e164` has each request's number if it is written
/// in strict E.164; `repeated` marks those already decided (they are neither parsed nor read).
async fn resolve_numbers(
    store: &dyn Store,
    business: &Business,
    requests: &[AudienceRequest<'_>],
    e164: &[Option<PhoneNumber>],
    repeated: &[bool],
) -> Result<Vec<Resolved>, StoreError> {
    let mut resolved: Vec<Option<Resolved>> = (0..requests.len()).map(|_| None).collect();
    let mut fast: Vec<(usize, PhoneNumber)> = Vec::with_capacity(requests.len());
    for (index, number) in e164.iter().enumerate() {
        match number {
            Some(number) if repeated[index] => {
                resolved[index] = Some(Resolved { phone: Ok(*number), bits: Some(ConsentBits::default()), lapsed: 0 });
            }
            Some(number) => fast.push((index, *number)),
            None => {}
        }
    }
    let fast_numbers: Vec<PhoneNumber> = fast.iter().map(|(_, number)| *number).collect();
    let fast_bits = store.consent_bits_many(business, &fast_numbers).await?;
    for ((index, number), bits) in fast.into_iter().zip(fast_bits) {
        if bits != ConsentBits::default() {
            resolved[index] = Some(Resolved { phone: Ok(number), bits: Some(bits), lapsed: 0 });
        } else {
            // Unknown to the store. Full validation (libphonenumber, ~90,000 numbers/s on one
            // lock) would dominate a large audience, and the answer is a refusal either way: a
            // number with a known country calling code is taken as it is (`no_opt_in`); anything
            // else is parsed, so that an invalid number says so.
            let phone = if jurisdiction::locate(&number).is_some() {
                Ok(number)
            } else {
                PhoneNumber::parse(requests[index].phone, requests[index].region)
            };
            resolved[index] = Some(Resolved { bits: Some(bits), phone, lapsed: 0 });
        }
    }
    let mut unknown: Vec<(usize, PhoneNumber)> = Vec::new();
    for (index, slot) in resolved.iter_mut().enumerate() {
        if slot.is_none() {
            let phone = PhoneNumber::parse(requests[index].phone, requests[index].region);
            if let Ok(number) = phone {
                unknown.push((index, number));
            }
            *slot = Some(Resolved { phone, bits: None, lapsed: 0 });
        }
    }
    if !unknown.is_empty() {
        let numbers: Vec<PhoneNumber> = unknown.iter().map(|(_, number)| *number).collect();
        let bits = store.consent_bits_many(business, &numbers).await?;
        for ((index, _), bits) in unknown.into_iter().zip(bits) {
            resolved[index].as_mut().expect("every request was resolved").bits = Some(bits);
        }
    }
    Ok(resolved.into_iter().map(|r| r.expect("every request was resolved")).collect())
}

/// The chunk's distinct messages, each resolved once (a template is looked up once per chunk, so
/// a change in the registry applies from the next chunk on).
struct ChunkMessages<'r> {
    messages: Vec<(AudienceMessage<'r>, Message<'r>, Option<usize>)>,
}

impl<'r> ChunkMessages<'r> {
    async fn load(
        audience: &mut Audience,
        store: &dyn Store,
        business: &Business,
        requests: &[AudienceRequest<'r>],
    ) -> Result<ChunkMessages<'r>, StoreError> {
        let mut messages: Vec<(AudienceMessage<'r>, Message<'r>, Option<usize>)> = Vec::new();
        for request in requests {
            if messages.iter().any(|(message, _, _)| *message == request.message) {
                continue;
            }
            let core_message = match request.message {
                AudienceMessage::Category(name) => Message::Category(business.category_slot(name).ok_or(name)),
                AudienceMessage::Template { name, language } => {
                    Message::Template(lookup_template(store, business, name, language).await?)
                }
            };
            // Only messages that exist get a set: the others are refused anyway, and a client
            // cannot grow the audience's state with made-up names.
            let exists =
                matches!(core_message, Message::Category(Ok(_)) | Message::Template(TemplateLookup::Found { .. }));
            let index = exists.then(|| audience.message_index(request.message));
            messages.push((request.message, core_message, index));
        }
        Ok(ChunkMessages { messages })
    }

    /// The core message and the index of its set of numbers (`None` for a message that does not
    /// exist).
    fn get(&self, message: AudienceMessage<'_>) -> (&Message<'r>, Option<usize>) {
        let found = self.messages.iter().find(|(own, _, _)| *own == message);
        let (_, core_message, index) = found.expect("every message of the chunk was loaded");
        (core_message, *index)
    }
}

#[cfg(test)]
mod tests {
    use optin_core::business::{BusinessName, Category, CategoryName};
    use optin_core::ids::BusinessId;
    use optin_core::jurisdiction::JurisdictionPolicy;
    use proptest::prelude::*;

    use super::*;

    fn business() -> Business {
        let category =
            |name, template_category| Category { name: CategoryName::parse(name).unwrap(), template_category };
        Business {
            id: BusinessId::from_uuid(uuid::Uuid::nil()),
            name: BusinessName::parse("Shop").unwrap(),
            brand_names: Vec::new(),
            categories: vec![
                category("offers", TemplateCategory::Marketing),
                category("alerts", TemplateCategory::Utility),
            ],
            created_at: Timestamp::UNIX_EPOCH,
        }
    }

    /// Numbers from places with different rules: US states (some capped), Canada, countries that share a
    /// calling code (the UK and the Isle of Man), countries with several zones, and nowhere.
    fn number() -> impl Strategy<Value = PhoneNumber> {
        let leads = vec![1_305_u64, 1_212, 1_416, 1_808, 1_999, 44, 447_624, 7, 55, 61, 91, 800, 33];
        (proptest::sample::select(leads), any::<u64>()).prop_filter_map("a number", |(lead, rest)| {
            // Eleven digits: the lead, then any.
            let rest_digits = 10_u64.pow(10 - lead.ilog10());
            PhoneNumber::from_key(lead * rest_digits + rest % rest_digits)
        })
    }

    proptest! {
        /// Remembered per place's digits, the rules answer as they do worked out for each number.
        #[test]
        fn remembered_place_rules_answer_like_the_rules_worked_out_for_each_number(
            numbers in proptest::collection::vec(number(), 1..200),
            slot in 0_usize..2,
            second in 1_767_225_600_i64..1_767_830_400,
        ) {
            let business = business();
            let policy = Arc::new(LoadedPolicy {
                policy: JurisdictionPolicy::from_toml("[default]\nquiet_hours = { start = \"10:00\", end = \"16:00\" }\n").unwrap(),
                default_zone: None,
            });
            let at = Timestamp::from_second(second).unwrap();
            let slot = CategorySlot::new(slot).unwrap();
            let kind = business.categories[slot.index()].template_category;
            let mut rules = PlaceRules::default();
            for number in &numbers {
                prop_assert_eq!(rules.get(&policy, &business, number, slot, at), rules_there(&policy, number, kind, at));
            }
        }
    }
}
