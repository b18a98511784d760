//! What a webhook delivery means for a business: planning (pure reading of the changes against
//! the business's policy) and applying (the consent events, in order, and the messages to send).

use jiff::Timestamp;
use optin_core::business::CategoryName;
use optin_core::consent::OptOutSource;
use optin_core::keywords;
use optin_core::phone::PhoneNumber;
use optin_core::template::{TemplateLanguage, TemplateName};
use optin_core::truncate_to_microseconds;
use optin_store::channel::{NewSignal, Sighting, SignalKind, TemplateChange, TemplateUpdate};
use serde_json::{Map, Value};

mod apply;
mod forwarded;
mod limit;
mod plan;
mod send;

pub(crate) use apply::ThreadActions;
pub(crate) use plan::BusinessContext;
pub(crate) use send::PendingSend;

/// The platform's error code for "this recipient stopped marketing messages from you".
const MARKETING_STOPPED: i64 = 131_050;
/// Who recorded the events this module records.
const RECORDED_BY: &str = "whatsapp_webhook";
const ANSWER_PREFIX: &str = "optin:";
const DECLINE_ID: &str = "optin:none";

/// A contact as a webhook names it.
#[derive(Debug, Clone)]
struct Contact {
    phone: Option<PhoneNumber>,
    user_id: Option<String>,
}

impl Contact {
    fn new(wa_id: Option<&str>, user_id: Option<String>) -> Contact {
        let phone = wa_id.and_then(|digits| PhoneNumber::from_e164(&format!("+{digits}")));
        Contact { phone, user_id }
    }

    fn describe(&self) -> String {
        match (&self.phone, &self.user_id) {
            (Some(phone), _) => phone.e164(),
            (None, Some(user_id)) => user_id.clone(),
            (None, None) => "unknown".to_owned(),
        }
    }
}

/// Where a consent-relevant thing came from.
#[derive(Debug, Clone)]
struct Inbound {
    contact: Contact,
    phone_number_id: String,
    message_id: String,
    at: Timestamp,
}

impl Inbound {
    fn describe(&self, signal: &mut NewSignal) {
        signal.phone = self.contact.phone;
        signal.user_id.clone_from(&self.contact.user_id);
        signal.message_id = Some(self.message_id.clone());
        signal.phone_number_id = Some(self.phone_number_id.clone());
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum OptOutScope {
    All,
    Marketing,
    Categories(Vec<CategoryName>),
}

/// Something that changes consent, applied in order after the delivery's sightings.
#[derive(Debug, Clone)]
enum Action {
    OptOut {
        inbound: Inbound,
        scope: OptOutScope,
        source: OptOutSource,
        evidence: Map<String, Value>,
        dedupe_key: String,
        /// The language to confirm in, when the opt-out came as a message in the thread.
        confirm_in: Option<String>,
    },
    /// START and the like (or a platform resume, where the policy allows): opt in again to the
    /// categories the contact had opted out of (`only` narrows them).
    Resubscribe { inbound: Inbound, only: Option<Vec<CategoryName>>, evidence: Map<String, Value>, dedupe_key: String },
    /// A reply to the in-thread opt-in question.
    Answer { inbound: Inbound, question: Option<String>, reply_id: String, title: String },
}

/// Everything one delivery asks for.
#[derive(Debug, Default)]
pub(crate) struct DeliveryWork {
    pub(crate) sightings: Vec<Sighting>,
    pub(crate) signals: Vec<NewSignal>,
    pub(crate) template_updates: Vec<TemplateUpdate>,
    /// Messaging limits reported by webhooks, applied once per group (the latest wins).
    pub(crate) limit_updates: Vec<limit::LimitUpdate>,
    actions: Vec<Action>,
    /// Contacts who wrote something that is not about consent: maybe ask them to opt in.
    ask_candidates: Vec<Inbound>,
    notes: Vec<String>,
}

impl DeliveryWork {
    pub(crate) fn note(&mut self, note: String) {
        if self.notes.len() < 50 {
            self.notes.push(note);
        }
    }

    pub(crate) fn into_note(self) -> Option<String> {
        (!self.notes.is_empty()).then(|| self.notes.join("; "))
    }

    fn template_change(&mut self, name: &str, language: &str, change: TemplateChange, at: Timestamp) {
        match (TemplateName::parse(name), TemplateLanguage::parse(language)) {
            (Ok(name), Ok(language)) => self.template_updates.push(TemplateUpdate { name, language, change, at }),
            _ => self.note(format!("template update for an invalid name or language `{name}`/`{language}`")),
        }
    }

    fn template_signal(
        &mut self,
        kind: SignalKind,
        name: &str,
        language: &str,
        status: &str,
        at: Timestamp,
        detail: Value,
    ) {
        let key = format!("{}:{name}:{language}:{status}:{}", kind.as_str(), at.as_second());
        let mut template_signal = signal(key, kind, at, Some(status.to_owned()), detail);
        template_signal.template_name = Some(name.to_owned());
        template_signal.template_language = Some(language.to_owned());
        self.signals.push(template_signal);
    }
}

fn signal(
    dedupe_key: String,
    kind: SignalKind,
    occurred_at: Timestamp,
    status: Option<String>,
    detail: Value,
) -> NewSignal {
    NewSignal {
        dedupe_key,
        kind,
        occurred_at: truncate_to_microseconds(occurred_at),
        phone_number_id: None,
        phone: None,
        user_id: None,
        message_id: None,
        template_name: None,
        template_language: None,
        category: None,
        status,
        error_codes: Vec::new(),
        detail,
    }
}

fn fields(pairs: &[(&str, &str)]) -> Map<String, Value> {
    pairs.iter().filter(|(_, v)| !v.is_empty()).map(|(k, v)| ((*k).to_owned(), Value::from(*v))).collect()
}

fn truncated(text: &str) -> String {
    text.chars().take(1000).collect()
}

fn content_digest(value: &Value) -> String {
    optin_core::secret::hash_secret(&value.to_string())
}

/// The language of a stop-promotions button label, for the confirmation: the label is localized.
fn language_of_label(payload: &str, text: &str) -> String {
    let language = keywords::stop_promotions_language(text).or_else(|| keywords::stop_promotions_language(payload));
    language.unwrap_or("en").to_owned()
}
