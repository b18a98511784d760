//! What a webhook delivery means for a business: planning (pure reading of the changes against
//! the business's policy) and applying (the consent events, in order, and the messages to send).

use std::collections::BTreeMap;

use jiff::Timestamp;
use optin_core::business::{Business, CategoryName, TemplateCategory};
use optin_core::consent::{ConsentChange, ConsentEvent, ConsentStatus, NoticeRef, OptIn, OptOut, OptOutSource};
use optin_core::decision::service_window_closes_at;
use optin_core::evidence::{Evidence, Method};
use optin_core::ids::{EventId, NoticeId};
use optin_core::keywords::{self, CategoryAliases, Intent, KeywordMatcher, Scope};
use optin_core::phone::PhoneNumber;
use optin_core::template::{QualityScore, TemplateLanguage, TemplateName, TemplateStatus};
use optin_core::truncate_to_microseconds;
use optin_core::whatsapp::webhook::{
    Change, ChangeKind, DeliveryStatus, InboundMessage, MessageContent, MessagesChange, PreferenceValue, StatusUpdate,
    UserPreference,
};
use optin_store::Store;
use optin_store::channel::{
    NewSignal, OutboundPurpose, Sender, SentMessage, Sighting, SignalFilter, SignalKind, TemplateChange, TemplateUpdate,
};
use optin_store::whatsapp::{BareKeywordScope, ChannelPolicy, channel_policy};
use serde_json::{Map, Value, json};
use uuid::Uuid;

use crate::inbox::ProcessError;
use crate::outbound::{Credential, ListRow, OutboundClient, OutboundMessage, ReplyButton, SenderEndpoint};

/// The platform's error code for "this recipient stopped marketing messages from you".
const MARKETING_STOPPED: i64 = 131_050;
/// Who recorded the events this module records.
const RECORDED_BY: &str = "whatsapp_webhook";
const ANSWER_PREFIX: &str = "optin:";
const DECLINE_ID: &str = "optin:none";

/// A business with what processing its deliveries needs, loaded once per delivery.
pub(crate) struct BusinessContext {
    pub(crate) business: Business,
    policy: ChannelPolicy,
    senders: Vec<Sender>,
    matcher: KeywordMatcher,
}

impl BusinessContext {
    pub(crate) async fn load(store: &dyn Store, business: Business) -> Result<BusinessContext, ProcessError> {
        let policy = channel_policy(store, &business).await?;
        let senders = store.senders(business.id).await?;
        let matcher = KeywordMatcher::new(&policy.keywords)
            .map_err(|e| ProcessError::Rejected(format!("the business's keywords are invalid: {e}")))?;
        Ok(BusinessContext { business, policy, senders, matcher })
    }

    fn sender(&self, phone_number_id: &str) -> Option<&Sender> {
        self.senders.iter().find(|s| s.phone_number_id == phone_number_id)
    }

    fn marketing_categories(&self) -> Vec<CategoryName> {
        let marketing = self.business.categories.iter().filter(|c| c.template_category == TemplateCategory::Marketing);
        marketing.map(|c| c.name.clone()).collect()
    }

    /// Reads one change into `work`.
    pub(crate) fn plan(&self, change: Change, work: &mut DeliveryWork) {
        let time = change.time;
        match change.kind {
            ChangeKind::Messages(messages) => self.plan_messages(messages, work),
            ChangeKind::UserPreferences(preferences) => {
                let Some(sender) = self.owned_sender(preferences.phone_number_id.as_deref(), work) else { return };
                let phone_number_id = sender.phone_number_id.clone();
                for preference in &preferences.preferences {
                    self.plan_preference(&phone_number_id, preference, work);
                }
            }
            ChangeKind::TemplateStatus(update) => {
                let status = TemplateStatus::from_webhook_event(&update.event);
                let detail = json!({ "reason": update.reason, "category": update.category,
                    "other_info_title": update.other_info_title, "template_id": update.template_id });
                let at = time.unwrap_or_else(Timestamp::now);
                work.template_change(&update.name, &update.language, TemplateChange::Status(status), at);
                work.template_signal(
                    SignalKind::TemplateStatus,
                    &update.name,
                    &update.language,
                    &update.event,
                    at,
                    detail,
                );
            }
            ChangeKind::TemplateQuality(update) => {
                let at = time.unwrap_or_else(Timestamp::now);
                let score = QualityScore::parse(&update.new_score);
                let detail = json!({ "previous_score": update.previous_score, "template_id": update.template_id });
                work.template_change(&update.name, &update.language, TemplateChange::Quality(score), at);
                work.template_signal(
                    SignalKind::TemplateQuality,
                    &update.name,
                    &update.language,
                    &update.new_score,
                    at,
                    detail,
                );
            }
            ChangeKind::TemplateCategory(update) => {
                let at = time.unwrap_or_else(Timestamp::now);
                if let Some(category) = TemplateCategory::parse(&update.new_category) {
                    work.template_change(&update.name, &update.language, TemplateChange::Category(category), at);
                }
                let detail =
                    json!({ "previous_category": update.previous_category, "template_id": update.template_id });
                work.template_signal(
                    SignalKind::TemplateCategory,
                    &update.name,
                    &update.language,
                    &update.new_category,
                    at,
                    detail,
                );
            }
            ChangeKind::PhoneNumberQuality(update) => {
                let at = time.unwrap_or_else(Timestamp::now);
                let detail = json!({ "display_phone_number": update.display_phone_number,
                    "current_limit": update.current_limit, "waba_id": change.waba_id });
                let key = format!("phone_quality:{}:{}:{}", change.waba_id, update.event, at.as_second());
                work.signals.push(signal(key, SignalKind::PhoneNumberQuality, at, Some(update.event), detail));
            }
            ChangeKind::Account { field, value } => {
                let at = time.unwrap_or_else(Timestamp::now);
                let key = format!("account:{field}:{}:{}", change.waba_id, content_digest(&value));
                let detail = json!({ "field": field, "value": value, "waba_id": change.waba_id });
                work.signals.push(signal(key, SignalKind::Account, at, Some(field), detail));
            }
            ChangeKind::Unknown { field } => work.note(format!("ignored a change of unknown field `{field}`")),
        }
    }

    /// The sender a change names, if it is this business's; otherwise the change is ignored.
    fn owned_sender(&self, phone_number_id: Option<&str>, work: &mut DeliveryWork) -> Option<&Sender> {
        let id = phone_number_id.unwrap_or_default();
        let sender = self.sender(id);
        if sender.is_none() {
            tracing::info!(business = %self.business.id, phone_number_id = id,
                "webhook change for a phone_number_id this business does not own: ignored");
            work.note(format!("ignored a change for phone_number_id `{id}`, which is not a sender of this business"));
        }
        sender
    }

    fn plan_messages(&self, change: MessagesChange, work: &mut DeliveryWork) {
        let Some(sender) = self.owned_sender(Some(&change.phone_number_id), work) else { return };
        let phone_number_id = sender.phone_number_id.clone();
        for message in &change.messages {
            self.plan_message(&phone_number_id, message, work);
        }
        for status in &change.statuses {
            plan_status(&phone_number_id, status, work);
        }
        for error in change.errors {
            let key = format!("error:{phone_number_id}:{}:{}", error.code, work.signals.len());
            let detail = json!({ "title": error.title });
            let mut signal = signal(key, SignalKind::Account, Timestamp::now(), Some("error".to_owned()), detail);
            signal.error_codes = vec![error.code];
            signal.phone_number_id = Some(phone_number_id.clone());
            work.signals.push(signal);
        }
    }

    fn plan_message(&self, phone_number_id: &str, message: &InboundMessage, work: &mut DeliveryWork) {
        let contact = Contact::new(message.from.as_deref(), message.from_user_id.clone());
        if contact.phone.is_none() && contact.user_id.is_none() {
            work.note(format!("message {} names no usable sender", message.id));
            return;
        }
        work.sightings.push(Sighting { phone: contact.phone, user_id: contact.user_id.clone(), at: message.timestamp });
        let inbound = Inbound {
            contact,
            phone_number_id: phone_number_id.to_owned(),
            message_id: message.id.clone(),
            at: message.timestamp,
        };
        match &message.content {
            MessageContent::Text { body } => self.plan_text(inbound, body, work),
            MessageContent::Button { payload, text } => {
                if self.is_marketing_opt_out_button(payload, text) {
                    let evidence = fields(&[
                        ("message_id", &message.id),
                        ("button_payload", payload),
                        ("button_text", text),
                        ("context_message_id", message.context.as_ref().and_then(|c| c.id.as_deref()).unwrap_or("")),
                    ]);
                    work.actions.push(Action::OptOut {
                        inbound,
                        scope: OptOutScope::Marketing,
                        source: OptOutSource::Platform,
                        evidence,
                        dedupe_key: format!("message:{}", message.id),
                        confirm_in: Some(language_of_label(payload, text)),
                    });
                } else {
                    work.ask_candidates.push(inbound);
                }
            }
            MessageContent::ButtonReply { id, title } | MessageContent::ListReply { id, title } => {
                if id.starts_with(ANSWER_PREFIX) {
                    let question = message.context.as_ref().and_then(|c| c.id.clone());
                    work.actions.push(Action::Answer { inbound, question, reply_id: id.clone(), title: title.clone() });
                }
            }
            MessageContent::Other { .. } => work.ask_candidates.push(inbound),
        }
    }

    fn plan_text(&self, inbound: Inbound, body: &str, work: &mut DeliveryWork) {
        let aliases: Vec<CategoryAliases<'_>> = self
            .business
            .categories
            .iter()
            .map(|c| CategoryAliases {
                category: &c.name,
                aliases: self.policy.category_aliases.get(&c.name).map_or(&[][..], Vec::as_slice),
            })
            .collect();
        let text_evidence = |keyword: &str| {
            fields(&[("message_id", &inbound.message_id), ("text", &truncated(body)), ("keyword", keyword)])
        };
        match self.matcher.classify(body, &aliases) {
            Intent::OptOut { scope, keyword, language } => {
                let scope = match scope {
                    Scope::Categories(categories) => OptOutScope::Categories(categories),
                    Scope::All if self.policy.bare_keyword_scope == BareKeywordScope::Marketing => {
                        OptOutScope::Marketing
                    }
                    Scope::All => OptOutScope::All,
                };
                work.actions.push(Action::OptOut {
                    evidence: text_evidence(&keyword),
                    dedupe_key: format!("message:{}", inbound.message_id),
                    inbound,
                    scope,
                    source: OptOutSource::Keyword,
                    confirm_in: Some(language.to_owned()),
                });
            }
            Intent::OptIn { scope, keyword, .. } => {
                let only = match scope {
                    Scope::All => None,
                    Scope::Categories(categories) => Some(categories),
                };
                work.actions.push(Action::Resubscribe {
                    evidence: text_evidence(&keyword),
                    dedupe_key: format!("message:{}", inbound.message_id),
                    inbound,
                    only,
                });
            }
            Intent::Unclear { keyword } => {
                let key = format!("possible_opt_out:{}", inbound.message_id);
                let detail = json!({ "text": truncated(body), "keyword": keyword });
                let mut signal = signal(key, SignalKind::PossibleOptOut, inbound.at, None, detail);
                inbound.describe(&mut signal);
                work.signals.push(signal);
            }
            Intent::None => work.ask_candidates.push(inbound),
        }
    }

    fn is_marketing_opt_out_button(&self, payload: &str, text: &str) -> bool {
        keywords::is_stop_promotions_label(payload)
            || keywords::is_stop_promotions_label(text)
            || self.policy.opt_out_payloads.iter().any(|configured| configured == payload)
    }

    fn plan_preference(&self, phone_number_id: &str, preference: &UserPreference, work: &mut DeliveryWork) {
        let contact = Contact::new(preference.wa_id.as_deref(), preference.user_id.clone());
        let who = contact.describe();
        let key = format!("preference:{phone_number_id}:{who}:{}:{}", preference.value.as_str(), preference.timestamp);
        let detail = json!({ "category": preference.category, "detail": preference.detail });
        let mut preference_signal = signal(
            key.clone(),
            SignalKind::UserPreference,
            preference.timestamp,
            Some(preference.value.as_str().to_owned()),
            detail,
        );
        preference_signal.phone_number_id = Some(phone_number_id.to_owned());
        preference_signal.phone = contact.phone;
        preference_signal.user_id.clone_from(&contact.user_id);
        work.signals.push(preference_signal);
        if preference.category != "marketing_messages" {
            return;
        }
        let inbound = Inbound {
            contact,
            phone_number_id: phone_number_id.to_owned(),
            message_id: key.clone(),
            at: preference.timestamp,
        };
        let evidence = fields(&[
            ("webhook", "user_preferences"),
            ("value", preference.value.as_str()),
            ("detail", preference.detail.as_deref().unwrap_or("")),
            ("timestamp", &preference.timestamp.to_string()),
        ]);
        match preference.value {
            PreferenceValue::Stop => work.actions.push(Action::OptOut {
                inbound,
                scope: OptOutScope::Marketing,
                source: OptOutSource::Platform,
                evidence,
                dedupe_key: key,
                confirm_in: None,
            }),
            PreferenceValue::Resume if self.policy.resume_restores_marketing => {
                work.actions.push(Action::Resubscribe {
                    inbound,
                    only: Some(self.marketing_categories()),
                    evidence,
                    dedupe_key: key,
                });
            }
            PreferenceValue::Resume | PreferenceValue::Other(_) => {}
        }
    }
}

fn plan_status(phone_number_id: &str, status: &StatusUpdate, work: &mut DeliveryWork) {
    let contact = Contact::new(status.recipient_id.as_deref(), status.recipient_user_id.clone());
    let codes: Vec<i64> = status.errors.iter().map(|e| e.code).collect();
    let key = format!("status:{}:{}", status.id, status.status.as_str());
    let detail = json!({
        "biz_opaque_callback_data": status.biz_opaque_callback_data,
        "pricing_category": status.pricing_category,
        "error_titles": status.errors.iter().map(|e| e.title.clone()).collect::<Vec<_>>(),
    });
    let mut status_signal =
        signal(key, SignalKind::MessageStatus, status.timestamp, Some(status.status.as_str().to_owned()), detail);
    status_signal.phone_number_id = Some(phone_number_id.to_owned());
    status_signal.phone = contact.phone;
    status_signal.user_id.clone_from(&contact.user_id);
    status_signal.message_id = Some(status.id.clone());
    status_signal.error_codes.clone_from(&codes);
    work.signals.push(status_signal);
    if status.status == DeliveryStatus::Failed && codes.contains(&MARKETING_STOPPED) {
        let evidence = fields(&[("status_message_id", &status.id), ("error_code", &MARKETING_STOPPED.to_string())]);
        work.actions.push(Action::OptOut {
            inbound: Inbound {
                contact,
                phone_number_id: phone_number_id.to_owned(),
                message_id: status.id.clone(),
                at: status.timestamp,
            },
            scope: OptOutScope::Marketing,
            source: OptOutSource::Platform,
            evidence,
            dedupe_key: format!("status:{}:{MARKETING_STOPPED}", status.id),
            confirm_in: None,
        });
    }
}

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

/// Applies a delivery's actions against the store, in order.
pub(crate) struct ThreadActions<'a> {
    pub(crate) store: &'a dyn Store,
    pub(crate) context: &'a BusinessContext,
    pub(crate) now: Timestamp,
}

impl ThreadActions<'_> {
    /// Records the consent events and returns the messages to send.
    pub(crate) async fn apply(&self, work: &mut DeliveryWork) -> Result<Vec<PendingSend>, ProcessError> {
        let mut sends = Vec::new();
        let actions = std::mem::take(&mut work.actions);
        let mut touched: Vec<PhoneNumber> = Vec::new();
        for action in actions {
            if let Some(phone) = action_phone(&action) {
                touched.push(phone);
            }
            match action {
                Action::OptOut { inbound, scope, source, evidence, dedupe_key, confirm_in } => {
                    let send = self.opt_out(work, inbound, &scope, source, evidence, &dedupe_key, confirm_in).await?;
                    sends.extend(send);
                }
                Action::Resubscribe { inbound, only, evidence, dedupe_key } => {
                    self.resubscribe(work, &inbound, only.as_deref(), evidence, &dedupe_key).await?;
                }
                Action::Answer { inbound, question, reply_id, title } => {
                    self.answer(work, &inbound, question.as_deref(), &reply_id, &title).await?;
                }
            }
        }
        let candidates = std::mem::take(&mut work.ask_candidates);
        sends.extend(self.questions(candidates, &touched).await?);
        Ok(sends)
    }

    fn business(&self) -> &Business {
        &self.context.business
    }

    async fn record(&self, dedupe_key: &str, phone: PhoneNumber, change: ConsentChange) -> Result<bool, ProcessError> {
        let event = ConsentEvent {
            id: EventId::from_uuid(Uuid::new_v4()),
            business_id: self.business().id,
            phone,
            change,
            recorded_at: truncate_to_microseconds(self.now),
        };
        Ok(self.store.record_consent_once(self.business(), dedupe_key, &event).await?.is_some())
    }

    #[allow(clippy::too_many_arguments)]
    async fn opt_out(
        &self,
        work: &mut DeliveryWork,
        inbound: Inbound,
        scope: &OptOutScope,
        source: OptOutSource,
        evidence: Map<String, Value>,
        dedupe_key: &str,
        confirm_in: Option<String>,
    ) -> Result<Option<PendingSend>, ProcessError> {
        let (categories, all_categories) = match scope {
            OptOutScope::All => (self.business().all_category_names(), true),
            OptOutScope::Marketing => (self.context.marketing_categories(), false),
            OptOutScope::Categories(categories) => (categories.clone(), false),
        };
        if categories.is_empty() {
            work.note(format!("opt-out {dedupe_key} covers no category of this business"));
            return Ok(None);
        }
        let Some(phone) = inbound.contact.phone else {
            self.keep_unlinked_opt_out(work, &inbound, scope, source, &evidence, dedupe_key);
            return Ok(None);
        };
        let change = ConsentChange::OptOut(OptOut {
            categories,
            all_categories,
            source,
            recorded_by: RECORDED_BY.to_owned(),
            evidence: Evidence::recorded(evidence),
            requested_at: Some(truncate_to_microseconds(inbound.at)),
        });
        if !self.record(dedupe_key, phone, change).await? {
            return Ok(None);
        }
        let Some(language) = confirm_in else { return Ok(None) };
        Ok(self.confirmation(&inbound, phone, &language))
    }

    fn confirmation(&self, inbound: &Inbound, phone: PhoneNumber, language: &str) -> Option<PendingSend> {
        let texts = &self.context.policy.opt_out_confirmation;
        let text = texts.get(language).or_else(|| texts.get("en")).or_else(|| texts.values().next())?;
        service_window_closes_at(Some(inbound.at), self.now)?;
        let sender = self.context.sender(&inbound.phone_number_id)?;
        Some(PendingSend {
            phone,
            sender: sender.clone(),
            message: OutboundMessage::Text { to: phone.e164().trim_start_matches('+').to_owned(), body: text.clone() },
            purpose: OutboundPurpose::OptOutConfirmation,
            categories: Vec::new(),
            notice_id: None,
        })
    }

    /// An opt-out from a contact known only by user id cannot enter the phone-keyed ledger yet:
    /// it is kept as a signal and recorded when a webhook links the user id to a number.
    fn keep_unlinked_opt_out(
        &self,
        work: &mut DeliveryWork,
        inbound: &Inbound,
        scope: &OptOutScope,
        source: OptOutSource,
        evidence: &Map<String, Value>,
        dedupe_key: &str,
    ) {
        let scope = match scope {
            OptOutScope::All => json!("all"),
            OptOutScope::Marketing => json!("marketing"),
            OptOutScope::Categories(categories) => json!(categories),
        };
        let detail = json!({ "scope": scope, "source": source, "evidence": evidence, "dedupe_key": dedupe_key });
        let mut unlinked =
            signal(format!("unlinked:{dedupe_key}"), SignalKind::UnlinkedOptOut, inbound.at, None, detail);
        inbound.describe(&mut unlinked);
        work.signals.push(unlinked);
    }

    /// Records the opt-outs kept for user ids that these sightings link to a phone number;
    /// returns the signals that recording produced.
    pub(crate) async fn linked_opt_outs(&self, sightings: &[Sighting]) -> Result<Vec<NewSignal>, ProcessError> {
        let linked: Vec<(&str, PhoneNumber)> =
            sightings.iter().filter_map(|s| Some((s.user_id.as_deref()?, s.phone?))).collect();
        let mut work = DeliveryWork::default();
        if linked.is_empty() {
            return Ok(work.signals);
        }
        // Kept opt-outs are rare: one read for the whole group, and a write only for those users.
        let filter = SignalFilter { kind: Some(SignalKind::UnlinkedOptOut), limit: 1000, ..SignalFilter::default() };
        let kept = self.store.signals(self.business().id, &filter).await?;
        for (user_id, phone) in linked {
            for signal in kept.iter().filter(|s| s.signal.user_id.as_deref() == Some(user_id)) {
                self.record_unlinked(&mut work, &signal.signal, phone).await?;
            }
        }
        Ok(work.signals)
    }

    async fn record_unlinked(
        &self,
        work: &mut DeliveryWork,
        kept: &NewSignal,
        phone: PhoneNumber,
    ) -> Result<(), ProcessError> {
        let detail = &kept.detail;
        let scope = match &detail["scope"] {
            Value::String(all) if all == "all" => OptOutScope::All,
            Value::String(_) => OptOutScope::Marketing,
            list => OptOutScope::Categories(serde_json::from_value(list.clone()).unwrap_or_default()),
        };
        let source = serde_json::from_value(detail["source"].clone()).unwrap_or(OptOutSource::Platform);
        let evidence = detail["evidence"].as_object().cloned().unwrap_or_default();
        let key = detail["dedupe_key"].as_str().unwrap_or(&kept.dedupe_key).to_owned();
        let inbound = Inbound {
            contact: Contact { phone: Some(phone), user_id: kept.user_id.clone() },
            phone_number_id: kept.phone_number_id.clone().unwrap_or_default(),
            message_id: kept.message_id.clone().unwrap_or_default(),
            at: kept.occurred_at,
        };
        self.opt_out(work, inbound, &scope, source, evidence, &key, None).await?;
        Ok(())
    }

    async fn resubscribe(
        &self,
        work: &mut DeliveryWork,
        inbound: &Inbound,
        only: Option<&[CategoryName]>,
        mut evidence: Map<String, Value>,
        dedupe_key: &str,
    ) -> Result<(), ProcessError> {
        let Some(phone) = inbound.contact.phone else {
            work.note(format!("re-subscription {dedupe_key} from a contact without a phone number: ignored"));
            return Ok(());
        };
        let categories = self.resubscribable(phone, only).await?;
        if categories.is_empty() {
            return Ok(());
        }
        let notice_id = self.context.policy.resubscribe_notice_id.or(self
            .context
            .policy
            .thread_opt_in
            .as_ref()
            .map(|t| t.notice_id));
        let Some(notice) = self.notice_ref(notice_id).await? else {
            work.note(format!("re-subscription {dedupe_key} ignored: the business set no resubscribe_notice_id"));
            return Ok(());
        };
        evidence.entry("message_id").or_insert_with(|| Value::from(inbound.message_id.clone()));
        let evidence = Evidence::for_method(Method::WhatsappThread, evidence)
            .map_err(|e| ProcessError::Rejected(format!("{}: {e}", e.code())))?;
        let collected_at = truncate_to_microseconds(inbound.at.min(self.now));
        let change =
            ConsentChange::OptIn(OptIn { categories, method: Method::WhatsappThread, notice, evidence, collected_at });
        self.record(dedupe_key, phone, change).await?;
        Ok(())
    }

    /// The categories a re-subscription brings back: those the contact opted in to once and is
    /// opted out of now (a bare STOP also covered categories never consented to; START does not
    /// create consent to them).
    async fn resubscribable(
        &self,
        phone: PhoneNumber,
        only: Option<&[CategoryName]>,
    ) -> Result<Vec<CategoryName>, ProcessError> {
        let consent = self.store.contact_consent(self.business().id, phone).await?;
        let opted_out: Vec<&CategoryName> = consent
            .iter()
            .filter(|(name, state)| state.status == ConsentStatus::OptedOut && only.is_none_or(|o| o.contains(name)))
            .map(|(name, _)| name)
            .collect();
        if opted_out.is_empty() {
            return Ok(Vec::new());
        }
        let history = self.store.contact_events(self.business().id, phone).await?;
        let mut once_opted_in: Vec<CategoryName> = Vec::new();
        for entry in &history {
            let event =
                entry.event().map_err(|e| ProcessError::Rejected(format!("a ledger event does not parse: {e}")))?;
            if let ConsentChange::OptIn(opt_in) = &event.change {
                once_opted_in.extend(opt_in.categories.iter().cloned());
            }
        }
        Ok(opted_out.into_iter().filter(|c| once_opted_in.contains(c)).cloned().collect())
    }

    async fn notice_ref(&self, id: Option<NoticeId>) -> Result<Option<NoticeRef>, ProcessError> {
        let Some(id) = id else { return Ok(None) };
        let notice = self.store.notice(self.business().id, id).await?;
        Ok(notice.map(|notice| NoticeRef {
            id: notice.id,
            version: notice.version,
            language: notice.language.as_str().to_owned(),
            text_sha256: notice.text_sha256,
        }))
    }

    async fn answer(
        &self,
        work: &mut DeliveryWork,
        inbound: &Inbound,
        question: Option<&str>,
        reply_id: &str,
        title: &str,
    ) -> Result<(), ProcessError> {
        let asked = match question {
            Some(id) => self.store.sent_message(self.business().id, id).await?,
            None => None,
        };
        let matching =
            asked.filter(|q| q.purpose == OutboundPurpose::OptInQuestion && Some(q.phone) == inbound.contact.phone);
        let Some(asked) = matching else {
            let key = format!("unmatched_reply:{}", inbound.message_id);
            let detail = json!({ "reply_id": reply_id, "title": title, "context_message_id": question });
            let mut unmatched = signal(key, SignalKind::UnmatchedReply, inbound.at, None, detail);
            inbound.describe(&mut unmatched);
            work.signals.push(unmatched);
            return Ok(());
        };
        if reply_id == DECLINE_ID {
            return Ok(());
        }
        let chosen = reply_id.trim_start_matches(ANSWER_PREFIX);
        let Some(category) = asked.categories.iter().find(|c| c.as_str() == chosen).cloned() else {
            work.note(format!("reply {} names `{chosen}`, which the question did not offer", inbound.message_id));
            return Ok(());
        };
        let Some(notice) = self.notice_ref(asked.notice_id).await? else {
            work.note(format!("reply {}: the question's notice is gone", inbound.message_id));
            return Ok(());
        };
        let evidence = fields(&[
            ("message_id", &inbound.message_id),
            ("question_message_id", &asked.message_id),
            ("reply_id", reply_id),
            ("reply_title", title),
        ]);
        let evidence = Evidence::for_method(Method::WhatsappThread, evidence)
            .map_err(|e| ProcessError::Rejected(format!("{}: {e}", e.code())))?;
        let collected_at = truncate_to_microseconds(inbound.at.min(self.now));
        let change = ConsentChange::OptIn(OptIn {
            categories: vec![category],
            method: Method::WhatsappThread,
            notice,
            evidence,
            collected_at,
        });
        self.record(&format!("message:{}", inbound.message_id), asked.phone, change).await?;
        Ok(())
    }

    /// The in-thread opt-in questions to send: one per contact who wrote, has no opt-in (and no
    /// opt-out) for an offered category, was not asked within the period, and whose window is open.
    async fn questions(
        &self,
        candidates: Vec<Inbound>,
        touched: &[PhoneNumber],
    ) -> Result<Vec<PendingSend>, ProcessError> {
        let Some(ask) = self.context.policy.thread_opt_in.as_ref().filter(|a| a.enabled) else { return Ok(Vec::new()) };
        let mut latest: BTreeMap<u64, Inbound> = BTreeMap::new();
        for candidate in candidates {
            let Some(phone) = candidate.contact.phone else { continue };
            if touched.contains(&phone) {
                continue;
            }
            let newer = latest.get(&phone.key()).is_none_or(|known| known.at < candidate.at);
            if newer {
                latest.insert(phone.key(), candidate);
            }
        }
        let mut sends = Vec::new();
        for inbound in latest.into_values() {
            if let Some(send) = self.question(ask, &inbound).await? {
                sends.push(send);
            }
        }
        Ok(sends)
    }

    async fn question(
        &self,
        ask: &optin_store::whatsapp::ThreadOptIn,
        inbound: &Inbound,
    ) -> Result<Option<PendingSend>, ProcessError> {
        let phone = inbound.contact.phone.expect("candidates have phones");
        if service_window_closes_at(Some(inbound.at), self.now).is_none() {
            return Ok(None);
        }
        let Some(sender) = self.context.sender(&inbound.phone_number_id) else { return Ok(None) };
        let contact = self.store.thread_contact(self.business().id, Some(phone), None).await?;
        let period = jiff::SignedDuration::from_hours(24 * i64::from(ask.ask_again_after_days));
        let asked_recently = contact
            .and_then(|c| c.last_asked_at)
            .is_some_and(|asked| asked.checked_add(period).is_ok_and(|until| until > self.now));
        if asked_recently {
            return Ok(None);
        }
        let consent = self.store.contact_consent(self.business().id, phone).await?;
        let open: Vec<CategoryName> = ask.categories.iter().filter(|c| !consent.contains_key(*c)).cloned().collect();
        if open.is_empty() {
            return Ok(None);
        }
        let Some(notice) = self.store.notice(self.business().id, ask.notice_id).await? else { return Ok(None) };
        let to = phone.e164().trim_start_matches('+').to_owned();
        let body = notice.text.as_str().to_owned();
        let title = |c: &CategoryName| ask.labels.get(c).cloned().unwrap_or_else(|| default_label(c));
        let message = if open.len() <= 2 {
            let mut buttons: Vec<ReplyButton> =
                open.iter().map(|c| ReplyButton { id: format!("{ANSWER_PREFIX}{c}"), title: title(c) }).collect();
            buttons.push(ReplyButton { id: DECLINE_ID.to_owned(), title: ask.decline_label.clone() });
            OutboundMessage::ReplyButtons { to, body, footer: None, buttons }
        } else {
            let mut rows: Vec<ListRow> = open
                .iter()
                .map(|c| ListRow { id: format!("{ANSWER_PREFIX}{c}"), title: title(c), description: None })
                .collect();
            rows.push(ListRow { id: DECLINE_ID.to_owned(), title: ask.decline_label.clone(), description: None });
            OutboundMessage::List { to, body, button: "Choose".to_owned(), rows }
        };
        Ok(Some(PendingSend {
            phone,
            sender: sender.clone(),
            message,
            purpose: OutboundPurpose::OptInQuestion,
            categories: open,
            notice_id: Some(ask.notice_id),
        }))
    }
}

fn action_phone(action: &Action) -> Option<PhoneNumber> {
    match action {
        Action::OptOut { inbound, .. } | Action::Resubscribe { inbound, .. } | Action::Answer { inbound, .. } => {
            inbound.contact.phone
        }
    }
}

/// "order_updates" → "Order updates", cut to a button title's 20 characters.
fn default_label(category: &CategoryName) -> String {
    let spaced = category.as_str().replace('_', " ");
    let mut chars = spaced.chars();
    let first = chars.next().map(|c| c.to_ascii_uppercase()).into_iter();
    first.chain(chars).take(20).collect()
}

/// A message to send in a thread, after the delivery's events are recorded.
pub(crate) struct PendingSend {
    pub(crate) phone: PhoneNumber,
    sender: Sender,
    message: OutboundMessage,
    purpose: OutboundPurpose,
    categories: Vec<CategoryName>,
    notice_id: Option<NoticeId>,
}

impl PendingSend {
    pub(crate) fn is_question(&self) -> bool {
        self.purpose == OutboundPurpose::OptInQuestion
    }

    /// Sends and remembers the message; failures are logged (the contact is asked again next
    /// time, and a lost confirmation is not retried: at most one is ever sent).
    pub(crate) async fn deliver(self, store: &dyn Store, client: &OutboundClient) {
        let endpoint = SenderEndpoint {
            provider: self.sender.provider,
            base_url: self.sender.base_url.clone(),
            api_version: self.sender.api_version.clone(),
            phone_number_id: self.sender.phone_number_id.clone(),
            credential: Credential::new(self.sender.credential.clone()),
        };
        let sent = match client.send(&endpoint, &self.message).await {
            Ok(sent) => sent,
            Err(error) => {
                tracing::warn!(business = %self.sender.business_id, purpose = self.purpose.as_str(),
                    to = %self.phone.redacted(), code = error.code(), "thread message not sent");
                return;
            }
        };
        let record = SentMessage {
            business_id: self.sender.business_id,
            message_id: sent.wamid,
            phone: self.phone,
            phone_number_id: self.sender.phone_number_id.clone(),
            purpose: self.purpose,
            categories: self.categories,
            notice_id: self.notice_id,
            sent_at: truncate_to_microseconds(Timestamp::now()),
        };
        if let Err(error) = store.record_sent_message(&record).await {
            tracing::warn!(business = %record.business_id, error = %error, "a sent thread message was not remembered");
        }
    }
}
