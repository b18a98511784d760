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
//! seen are kept as their 8-byte keys in one hash set per message: about 150 MB for 10 million
//! distinct numbers (briefly 230 MB while the set grows).

use std::collections::HashSet;

use optin_core::business::Business;
use optin_core::consent::ConsentBits;
use optin_core::decision::{Decision, Message, Reason, TemplateLookup, decide_message};
use optin_core::phone::{PhoneNumber, PhoneNumberError, Region};
use optin_core::template::{TemplateLanguage, TemplateName};

use crate::gate::lookup_template;
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
#[derive(Debug, Default)]
pub struct Audience {
    /// Every message the audience asked about so far, and the numbers decided for it (a set per
    /// message, so that the usual audience, about one message, costs one key per number).
    messages: Vec<(OwnedMessage, HashSet<u64, foldhash::fast::RandomState>)>,
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
}

impl Audience {
    pub fn new() -> Audience {
        Audience::default()
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
        let resolved = resolve_numbers(store, business, requests, &e164, &repeated).await?;
        let decisions = requests.iter().zip(resolved).map(|(request, resolved)| {
            let (message, seen) = messages.get(request.message);
            self.decide_one(message, seen, resolved)
        });
        Ok(decisions.collect())
    }

    /// Which requests have an E.164 number decided in an earlier chunk for the same message: they
    /// are duplicates, and need neither parsing nor reading.
    fn decided_earlier(
        &self,
        messages: &ChunkMessages<'_>,
        requests: &[AudienceRequest<'_>],
        e164: &[Option<PhoneNumber>],
    ) -> Vec<bool> {
        let seen = |request: &AudienceRequest<'_>, number: &PhoneNumber| match messages.get(request.message).1 {
            Some(index) => self.messages[index].1.contains(&number.key()),
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
        let bits = resolved.bits.unwrap_or_default();
        let decision = decide_message(resolved.phone.as_ref(), message, bits, false);
        AudienceDecision { phone: resolved.phone.ok(), decision }
    }

    /// The index of the message's set of numbers, added if new.
    fn message_index(&mut self, message: AudienceMessage<'_>) -> usize {
        let message = OwnedMessage::new(message);
        if let Some(index) = self.messages.iter().position(|(own, _)| *own == message) {
            return index;
        }
        self.messages.push((message, HashSet::default()));
        self.messages.len() - 1
    }
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
                resolved[index] = Some(Resolved { phone: Ok(*number), bits: Some(ConsentBits::default()) });
            }
            Some(number) => fast.push((index, *number)),
            None => {}
        }
    }
    let fast_numbers: Vec<PhoneNumber> = fast.iter().map(|(_, number)| *number).collect();
    let fast_bits = store.consent_bits_many(business, &fast_numbers).await?;
    for ((index, number), bits) in fast.into_iter().zip(fast_bits) {
        if bits != ConsentBits::default() {
            resolved[index] = Some(Resolved { phone: Ok(number), bits: Some(bits) });
        } else {
            // Unknown to the store: parse, so that an invalid number says so. A valid one is the
            // same number, whose (empty) consent is known.
            let phone = PhoneNumber::parse(requests[index].phone, requests[index].region);
            resolved[index] = Some(Resolved { bits: Some(bits), phone });
        }
    }
    let mut unknown: Vec<(usize, PhoneNumber)> = Vec::new();
    for (index, slot) in resolved.iter_mut().enumerate() {
        if slot.is_none() {
            let phone = PhoneNumber::parse(requests[index].phone, requests[index].region);
            if let Ok(number) = phone {
                unknown.push((index, number));
            }
            *slot = Some(Resolved { phone, bits: None });
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
