//! Applying: the consent events of a delivery, in order, and the thread messages they call for.

use std::collections::BTreeMap;

use jiff::Timestamp;
use optin_core::business::{Business, CategoryName};
use optin_core::consent::{
    Confirmation, ConsentChange, ConsentEvent, ConsentStatus, NoticeRef, OptIn, OptOut, OptOutSource,
};
use optin_core::decision::service_window_closes_at;
use optin_core::evidence::{Evidence, Method};
use optin_core::ids::{EventId, NoticeId};
use optin_core::phone::PhoneNumber;
use optin_core::truncate_to_microseconds;
use optin_store::Store;
use optin_store::channel::{NewSignal, OutboundPurpose, Sighting, SignalFilter, SignalKind};
use serde_json::{Map, Value, json};
use uuid::Uuid;

use crate::inbox::ProcessError;
use crate::outbound::{ListRow, OutboundMessage, ReplyButton};

use super::{
    ANSWER_PREFIX, Action, BusinessContext, Contact, DECLINE_ID, DeliveryWork, Inbound, OptOutScope, PendingSend,
    RECORDED_BY, fields, signal,
};

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
        let recorded = self.store.record_consent_once(self.business(), dedupe_key, &event).await?.is_some();
        if recorded {
            metrics::counter!("optin_webhook_consent_events_total", "kind" => event.kind()).increment(1);
        }
        Ok(recorded)
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
        // Kept opt-outs are rare: one read per linked user id (on the kind index), a write only when one is kept.
        for (user_id, phone) in linked {
            let filter = SignalFilter {
                kind: Some(SignalKind::UnlinkedOptOut),
                user_id: Some(user_id.to_owned()),
                limit: 1000,
                ..SignalFilter::default()
            };
            for kept in self.store.signals(self.business().id, &filter).await? {
                self.record_unlinked(&mut work, &kept.signal, phone).await?;
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
        if self.confirm_pending(phone, only, &mut evidence, inbound, dedupe_key).await? {
            return Ok(());
        }
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
        let change = ConsentChange::OptIn(OptIn {
            categories,
            method: Method::WhatsappThread,
            notice,
            evidence,
            collected_at,
            basis: Default::default(),
            basis_at: None,
            needs_confirmation: false,
        });
        self.record(dedupe_key, phone, change).await?;
        Ok(())
    }

    /// A START-family reply from a contact with opt-ins waiting for confirmation (double opt-in)
    /// confirms them, the message being the proof: whether there were any.
    async fn confirm_pending(
        &self,
        phone: PhoneNumber,
        only: Option<&[CategoryName]>,
        evidence: &mut Map<String, Value>,
        inbound: &Inbound,
        dedupe_key: &str,
    ) -> Result<bool, ProcessError> {
        let pending =
            optin_store::intake::pending_categories(self.store, self.business().id, phone, only, self.now).await?;
        if pending.live.is_empty() {
            // Expired ones stay unconfirmed; the reply still was about them, not a re-subscription.
            return Ok(!pending.expired.is_empty());
        }
        let pending = pending.live;
        evidence.entry("message_id").or_insert_with(|| Value::from(inbound.message_id.clone()));
        let confirmation = Confirmation {
            categories: pending,
            method: Method::WhatsappThread,
            evidence: Evidence::recorded(std::mem::take(evidence)),
        };
        self.record(dedupe_key, phone, ConsentChange::Confirmation(confirmation)).await?;
        Ok(true)
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
            basis: Default::default(),
            basis_at: None,
            needs_confirmation: false,
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
