//! Planning: what each change of a delivery asks for, read against the business's policy (no I/O).

use jiff::Timestamp;
use optin_core::business::{Business, CategoryName, TemplateCategory};
use optin_core::consent::OptOutSource;
use optin_core::keywords::{self, CategoryAliases, Intent, KeywordMatcher, Scope};
use optin_core::template::{QualityScore, TemplateStatus};
use optin_core::whatsapp::webhook::{
    Change, ChangeKind, DeliveryStatus, InboundMessage, MessageContent, MessagesChange, PreferenceValue, StatusUpdate,
    UserPreference,
};
use optin_store::Store;
use optin_store::channel::{Sender, Sighting, SignalKind, TemplateChange};
use optin_store::whatsapp::{BareKeywordScope, ChannelPolicy, channel_policy};
use serde_json::json;

use crate::inbox::ProcessError;

use super::{
    ANSWER_PREFIX, Action, Contact, DeliveryWork, Inbound, MARKETING_STOPPED, OptOutScope, content_digest, fields,
    language_of_label, signal, truncated,
};

/// A business with what processing its deliveries needs, loaded once per delivery.
pub(crate) struct BusinessContext {
    pub(crate) business: Business,
    pub(crate) policy: ChannelPolicy,
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

    pub(super) fn sender(&self, phone_number_id: &str) -> Option<&Sender> {
        self.senders.iter().find(|s| s.phone_number_id == phone_number_id)
    }

    pub(super) fn marketing_categories(&self) -> Vec<CategoryName> {
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
                work.follow_limit(update.current_limit.as_deref(), at);
                let detail = json!({ "display_phone_number": update.display_phone_number,
                    "current_limit": update.current_limit, "waba_id": change.waba_id });
                let key = format!("phone_quality:{}:{}:{}", change.waba_id, update.event, at.as_second());
                work.signals.push(signal(key, SignalKind::PhoneNumberQuality, at, Some(update.event), detail));
            }
            ChangeKind::Account { field, value } => {
                let at = time.unwrap_or_else(Timestamp::now);
                work.follow_capability(&field, &value, at);
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
