//! Contract stories for the WhatsApp channel records: senders, settings, the webhook inbox,
//! thread contacts, deduplicated consent, templates, signals and sent messages.
//!
//! The store is shared with the other stories, so each story uses fresh businesses. Only these
//! stories write to the inbox, whose claims span businesses: the inbox story leaves nothing
//! pending. Times are whole microseconds (PostgreSQL's precision) so that records read back equal
//! the records written.

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use optin_core::business::{Business, CategoryName, TemplateCategory};
use optin_core::consent::{ConsentBits, ConsentChange, ConsentEvent, OptOut, OptOutSource};
use optin_core::evidence::Evidence;
use optin_core::ids::{BusinessId, EventId, NoticeId};
use optin_core::template::{QualityScore, TemplateLanguage, TemplateName, TemplateStatus};
use optin_core::whatsapp::Provider;
use serde_json::json;
use uuid::Uuid;

use super::{new_business, phone};
use crate::channel::{
    DeliveryFilter, DeliveryId, DeliveryOutcome, DeliveryState, NewSignal, OutboundPurpose, Sender, SentMessage,
    SettingsDocument, Sighting, SignalFilter, SignalKind, StoredTemplate, TemplateChange, TemplateUpdate,
    ThreadContact,
};
use crate::ledger::verify_ledger;
use crate::{Store, StoreError};

pub(super) async fn run_channel_stories(store: &dyn Store) {
    senders_belong_to_one_business(store).await;
    settings_documents_are_replaced_whole(store).await;
    deliveries_are_claimed_under_a_lease_and_finished(store).await;
    sightings_link_and_merge_contacts_and_only_move_the_window_forward(store).await;
    consent_is_recorded_once_per_dedupe_key(store).await;
    templates_are_replaced_and_follow_changes_in_time_order(store).await;
    signals_are_deduplicated_and_filtered(store).await;
    sent_opt_in_questions_set_when_the_contact_was_asked(store).await;
}

/// A fixed instant (whole microseconds) plus `seconds`.
fn at(base: Timestamp, seconds: i64) -> Timestamp {
    base.checked_add(SignedDuration::from_secs(seconds)).unwrap()
}

fn base_time() -> Timestamp {
    optin_core::truncate_to_microseconds(Timestamp::now())
}

fn unknown_business() -> BusinessId {
    BusinessId::from_uuid(Uuid::new_v4())
}

/// A `phone_number_id` no other run of the suite uses (15 digits).
fn fresh_phone_number_id() -> String {
    (Uuid::new_v4().as_u128() % 1_000_000_000_000_000).to_string()
}

fn sender(business: BusinessId, phone_number_id: &str, created_at: Timestamp) -> Sender {
    Sender {
        business_id: business,
        phone_number_id: phone_number_id.to_owned(),
        display_phone_number: "+1 415-555-0100".into(),
        waba_id: "102290129340398".into(),
        provider: Provider::CloudApi,
        base_url: "https://graph.facebook.com".into(),
        api_version: "v23.0".into(),
        credential: "EAAG-secret-token".into(),
        created_at,
    }
}

async fn senders_belong_to_one_business(store: &dyn Store) {
    let (acme, rival) = (new_business(store, "Sender Acme").await, new_business(store, "Sender Rival").await);
    let t0 = base_time();
    let first = sender(acme.id, &fresh_phone_number_id(), t0);
    let second = Sender { provider: Provider::Dialog360, ..sender(acme.id, &fresh_phone_number_id(), at(t0, 1)) };
    store.add_sender(&first).await.unwrap();
    store.add_sender(&second).await.unwrap();
    assert_eq!(store.senders(acme.id).await.unwrap(), [first.clone(), second], "oldest first, credential kept");

    let taken = store.add_sender(&sender(rival.id, &first.phone_number_id, t0)).await;
    assert!(matches!(taken, Err(StoreError::Conflict { constraint: "phone_number_id" })), "{taken:?}");
    let again = store.add_sender(&first).await;
    assert!(matches!(again, Err(StoreError::Conflict { constraint: "phone_number_id" })), "{again:?}");
    assert!(store.senders(rival.id).await.unwrap().is_empty());

    let orphan = store.add_sender(&sender(unknown_business(), &fresh_phone_number_id(), t0)).await;
    assert!(matches!(orphan, Err(StoreError::NotFound)), "{orphan:?}");
}

async fn settings_documents_are_replaced_whole(store: &dyn Store) {
    let (acme, rival) = (new_business(store, "Settings Acme").await, new_business(store, "Settings Rival").await);
    let t0 = base_time();
    assert_eq!(store.settings_document(acme.id, "webhook").await.unwrap(), None);
    let first =
        SettingsDocument { business_id: acme.id, name: "webhook".into(), content: r#"{"a":1}"#.into(), updated_at: t0 };
    store.put_settings_document(&first).await.unwrap();
    assert_eq!(store.settings_document(acme.id, "webhook").await.unwrap().as_ref(), Some(&first));

    let replaced = SettingsDocument { content: r#"{"b":2}"#.into(), updated_at: at(t0, 5), ..first.clone() };
    store.put_settings_document(&replaced).await.unwrap();
    assert_eq!(store.settings_document(acme.id, "webhook").await.unwrap(), Some(replaced));
    assert_eq!(store.settings_document(acme.id, "whatsapp_policy").await.unwrap(), None);
    assert_eq!(store.settings_document(rival.id, "webhook").await.unwrap(), None, "another business's document");

    let orphan = store.put_settings_document(&SettingsDocument { business_id: unknown_business(), ..first }).await;
    assert!(matches!(orphan, Err(StoreError::NotFound)), "{orphan:?}");
}

async fn claimed_ids(store: &dyn Store, now: Timestamp, limit: usize) -> Vec<(DeliveryId, u32)> {
    let lease = Duration::from_secs(60);
    store.claim_deliveries(now, lease, limit).await.unwrap().iter().map(|d| (d.id, d.attempts)).collect()
}

async fn listed_ids(store: &dyn Store, business: BusinessId, filter: DeliveryFilter) -> Vec<DeliveryId> {
    store.list_deliveries(business, &filter).await.unwrap().iter().map(|d| d.id).collect()
}

async fn deliveries_are_claimed_under_a_lease_and_finished(store: &dyn Store) {
    let (acme, rival) = (new_business(store, "Inbox Acme").await, new_business(store, "Inbox Rival").await);
    let t0 = base_time();
    let body = br#"{"object":"whatsapp_business_account","entry":[]}"#;
    let d1 = store.insert_delivery(acme.id, t0, body).await.unwrap();
    let d2 = store.insert_delivery(acme.id, t0, b"2").await.unwrap();
    let d3 = store.insert_delivery(acme.id, at(t0, 1), b"3").await.unwrap();
    let d4 = store.insert_delivery(rival.id, at(t0, 1), b"4").await.unwrap();
    assert!(d1 < d2 && d2 < d3 && d3 < d4, "ids grow: {:?}", [d1, d2, d3, d4]);
    let stored = store.delivery(acme.id, d1).await.unwrap().unwrap();
    assert_eq!((stored.business_id, stored.received_at, stored.body.as_slice()), (acme.id, t0, &body[..]));
    assert_eq!(
        (stored.state, stored.attempts, stored.note, stored.processed_at),
        (DeliveryState::Pending, 0, None, None)
    );
    assert_eq!(store.delivery(rival.id, d1).await.unwrap(), None, "another business's delivery");

    // Oldest first, any business, up to the limit; a claimed delivery is held until its lease ends.
    assert_eq!(claimed_ids(store, t0, 2).await, [(d1, 1), (d2, 1)]);
    assert_eq!(claimed_ids(store, at(t0, 1), 10).await, [(d3, 1), (d4, 1)]);
    assert_eq!(claimed_ids(store, at(t0, 2), 10).await, []);

    // Requeueing releases the claim at once; only the owner may requeue.
    assert!(matches!(store.requeue_delivery(rival.id, d3).await, Err(StoreError::NotFound)));
    assert!(matches!(store.requeue_delivery(acme.id, d4 + 1_000_000).await, Err(StoreError::NotFound)));
    store.requeue_delivery(acme.id, d3).await.unwrap();
    assert_eq!(claimed_ids(store, at(t0, 3), 10).await, [(d3, 2)]);

    let note = "skipped 1 malformed entry";
    let outcomes = [
        (d1, DeliveryOutcome::Processed { note: Some(note.into()) }),
        (d2, DeliveryOutcome::Failed { error: "boom".into() }),
    ];
    store.finish_deliveries(&outcomes, at(t0, 4)).await.unwrap();
    let processed = store.delivery(acme.id, d1).await.unwrap().unwrap();
    assert_eq!((processed.state, processed.note.as_deref()), (DeliveryState::Processed, Some(note)));
    assert_eq!((processed.processed_at, processed.attempts), (Some(at(t0, 4)), 1));
    let failed = store.delivery(acme.id, d2).await.unwrap().unwrap();
    assert_eq!((failed.state, failed.note.as_deref()), (DeliveryState::Failed, Some("boom")));
    assert_eq!(claimed_ids(store, at(t0, 5), 10).await, [], "finished deliveries are not claimed");

    // d4's lease (from t0+1s) ended at t0+61s; d3's (from t0+3s) still holds.
    assert_eq!(claimed_ids(store, at(t0, 62), 10).await, [(d4, 2)]);
    let done = [(d3, DeliveryOutcome::Processed { note: None }), (d4, DeliveryOutcome::Processed { note: None })];
    store.finish_deliveries(&done, at(t0, 63)).await.unwrap();

    let all = DeliveryFilter { limit: 10, ..DeliveryFilter::default() };
    assert_eq!(listed_ids(store, acme.id, all.clone()).await, [d3, d2, d1], "newest first");
    let failed_only = DeliveryFilter { state: Some(DeliveryState::Failed), ..all.clone() };
    assert_eq!(listed_ids(store, acme.id, failed_only).await, [d2]);
    let processed_only = DeliveryFilter { state: Some(DeliveryState::Processed), ..all.clone() };
    assert_eq!(listed_ids(store, acme.id, processed_only).await, [d3, d1]);
    assert_eq!(listed_ids(store, acme.id, DeliveryFilter { before: Some(d3), ..all.clone() }).await, [d2, d1]);
    assert_eq!(listed_ids(store, acme.id, DeliveryFilter { limit: 1, ..all.clone() }).await, [d3]);
    assert_eq!(listed_ids(store, rival.id, all).await, [d4]);

    // A failed delivery replayed: pending again, claimed at once, counted as another attempt.
    store.requeue_delivery(acme.id, d2).await.unwrap();
    assert_eq!(store.delivery(acme.id, d2).await.unwrap().unwrap().state, DeliveryState::Pending);
    assert_eq!(claimed_ids(store, at(t0, 64), 10).await, [(d2, 2)]);
    store.finish_deliveries(&[(d2, DeliveryOutcome::Processed { note: None })], at(t0, 65)).await.unwrap();
    assert_eq!(store.delivery(acme.id, d2).await.unwrap().unwrap().state, DeliveryState::Processed);
}

fn sighting(phone_number: Option<&str>, user_id: Option<&str>, time: Timestamp) -> Sighting {
    Sighting { phone: phone_number.map(phone), user_id: user_id.map(str::to_owned), at: time }
}

fn contact(
    phone_number: Option<&str>,
    user_id: Option<&str>,
    last_inbound_at: Option<Timestamp>,
    last_asked_at: Option<Timestamp>,
) -> Option<ThreadContact> {
    Some(ThreadContact {
        phone: phone_number.map(phone),
        user_id: user_id.map(str::to_owned),
        last_inbound_at,
        last_asked_at,
    })
}

async fn sightings_link_and_merge_contacts_and_only_move_the_window_forward(store: &dyn Store) {
    let (acme, rival) = (new_business(store, "Threads Acme").await, new_business(store, "Threads Rival").await);
    let t0 = base_time();
    let (p1, p2, p3) = ("+14155550201", "+14155550202", "+14155550203");
    let lookup = |number: Option<&'static str>, user_id: Option<&'static str>| {
        let business = acme.id;
        async move { store.thread_contact(business, number.map(phone), user_id).await.unwrap() }
    };

    // Seen first by user id only, then by phone only: two contacts.
    store.record_sightings(acme.id, &[sighting(None, Some("US.1"), t0)]).await.unwrap();
    store.record_sightings(acme.id, &[sighting(Some(p1), None, at(t0, 5))]).await.unwrap();
    assert_eq!(lookup(None, Some("US.1")).await, contact(None, Some("US.1"), Some(t0), None));
    assert_eq!(lookup(Some(p1), None).await, contact(Some(p1), None, Some(at(t0, 5)), None));

    // A message carrying both shows they are one person: merged, keeping the later window.
    store.record_sightings(acme.id, &[sighting(Some(p1), Some("US.1"), at(t0, 3))]).await.unwrap();
    let merged = contact(Some(p1), Some("US.1"), Some(at(t0, 5)), None);
    assert_eq!(lookup(Some(p1), None).await, merged);
    assert_eq!(lookup(None, Some("US.1")).await, merged);

    // The window only moves forward, whichever identity the message carries.
    store.record_sightings(acme.id, &[sighting(Some(p1), None, at(t0, 2))]).await.unwrap();
    assert_eq!(lookup(Some(p1), None).await, merged);
    store.record_sightings(acme.id, &[sighting(None, Some("US.1"), at(t0, 10))]).await.unwrap();
    assert_eq!(lookup(Some(p1), None).await, contact(Some(p1), Some("US.1"), Some(at(t0, 10)), None));

    // A missing identity is linked: a phone to a user-id contact, a user id to a phone contact;
    // several sightings of one call may name the same person.
    let batch = [
        sighting(None, Some("US.2"), t0),
        sighting(Some(p2), Some("US.2"), at(t0, 1)),
        sighting(Some(p3), None, t0),
        sighting(Some(p3), Some("US.3"), at(t0, 2)),
    ];
    store.record_sightings(acme.id, &batch).await.unwrap();
    assert_eq!(lookup(None, Some("US.2")).await, contact(Some(p2), Some("US.2"), Some(at(t0, 1)), None));
    assert_eq!(lookup(None, Some("US.3")).await, contact(Some(p3), Some("US.3"), Some(at(t0, 2)), None));

    // Lookup by phone first, then by user id.
    assert_eq!(lookup(Some(p1), Some("US.2")).await.unwrap().user_id.as_deref(), Some("US.1"));
    assert_eq!(lookup(Some("+14155550299"), Some("US.2")).await.unwrap().phone, Some(phone(p2)));
    assert_eq!(lookup(Some("+14155550299"), Some("US.404")).await, None);
    assert_eq!(store.thread_contact(rival.id, Some(phone(p1)), Some("US.1")).await.unwrap(), None, "another business");
}

fn opt_out_event(business: &Business, number: &str, recorded_at: Timestamp) -> ConsentEvent {
    ConsentEvent {
        id: EventId::from_uuid(Uuid::new_v4()),
        business_id: business.id,
        phone: phone(number),
        change: ConsentChange::OptOut(OptOut {
            categories: business.all_category_names(),
            all_categories: true,
            source: OptOutSource::Keyword,
            recorded_by: "whatsapp".into(),
            evidence: Evidence::default(),
            requested_at: None,
        }),
        recorded_at,
    }
}

async fn consent_is_recorded_once_per_dedupe_key(store: &dyn Store) {
    let (acme, rival) = (new_business(store, "Once Acme").await, new_business(store, "Once Rival").await);
    let (number, t0) = ("+14155550301", base_time());
    let opted_out = ConsentBits { opted_in: 0, opted_out: 0b11, ..ConsentBits::default() };

    // A failed event leaves its key unused.
    let mut unknown_category = opt_out_event(&acme, number, t0);
    if let ConsentChange::OptOut(out) = &mut unknown_category.change {
        out.categories.push(CategoryName::parse("no_such_category").unwrap());
    }
    assert!(store.record_consent_once(&acme, "wamid.A", &unknown_category).await.is_err());
    assert!(store.chain_head(acme.id).await.unwrap().is_none());

    let first = store.record_consent_once(&acme, "wamid.A", &opt_out_event(&acme, number, t0)).await.unwrap();
    assert_eq!(first.map(|recorded| recorded.chain_index), Some(1));
    let again = store.record_consent_once(&acme, "wamid.A", &opt_out_event(&acme, number, at(t0, 1))).await.unwrap();
    assert_eq!(again, None, "the same key records nothing");
    assert_eq!(store.consent_bits(&acme, phone(number)).await.unwrap(), opted_out);
    assert_eq!(store.contact_events(acme.id, phone(number)).await.unwrap().len(), 1);

    let other_key = store.record_consent_once(&acme, "wamid.B", &opt_out_event(&acme, number, at(t0, 2))).await;
    assert_eq!(other_key.unwrap().map(|recorded| recorded.chain_index), Some(2));
    let other_business = store.record_consent_once(&rival, "wamid.A", &opt_out_event(&rival, number, t0)).await;
    assert_eq!(other_business.unwrap().map(|recorded| recorded.chain_index), Some(1), "keys are per business");

    let report = verify_ledger(store, acme.id).await.unwrap();
    assert!(report.is_intact() && report.verified_events == 2, "{report:?}");
    assert_eq!(store.chain_head(acme.id).await.unwrap().map(|head| head.index), Some(2));
}

fn template(name: &str, language: &str, category: TemplateCategory, updated_at: Timestamp) -> StoredTemplate {
    StoredTemplate {
        name: TemplateName::parse(name).unwrap(),
        language: TemplateLanguage::parse(language).unwrap(),
        category,
        status: TemplateStatus::Approved,
        quality: Some(QualityScore::Green),
        platform_id: Some("594425479261596".into()),
        linked_category: Some(CategoryName::parse("order_updates").unwrap()),
        components: r#"[{"type":"BODY","text":"Your order {{1}} shipped."}]"#.into(),
        updated_at,
    }
}

fn change(template: &StoredTemplate, change: TemplateChange, time: Timestamp) -> TemplateUpdate {
    TemplateUpdate { name: template.name.clone(), language: template.language.clone(), change, at: time }
}

async fn templates_are_replaced_and_follow_changes_in_time_order(store: &dyn Store) {
    let (acme, rival) = (new_business(store, "Templates Acme").await, new_business(store, "Templates Rival").await);
    let t0 = base_time();
    let shipped = template("order_shipped", "en_US", TemplateCategory::Utility, at(t0, 10));
    let shipped_es = template("order_shipped", "es", TemplateCategory::Utility, at(t0, 10));
    let promo = StoredTemplate {
        status: TemplateStatus::Pending,
        quality: None,
        linked_category: None,
        ..template("promo", "en", TemplateCategory::Marketing, at(t0, 10))
    };
    store.put_templates(acme.id, &[promo.clone(), shipped.clone(), shipped_es.clone()]).await.unwrap();
    assert_eq!(store.template(acme.id, "order_shipped", "en_US").await.unwrap().as_ref(), Some(&shipped));
    assert_eq!(store.template(rival.id, "order_shipped", "en_US").await.unwrap(), None, "another business");
    assert_eq!(store.template(acme.id, "order_shipped", "fr").await.unwrap(), None);

    let paused = StoredTemplate { status: TemplateStatus::Paused, ..shipped.clone() };
    store.put_templates(acme.id, std::slice::from_ref(&paused)).await.unwrap();
    assert_eq!(store.list_templates(acme.id).await.unwrap(), [paused.clone(), shipped_es, promo.clone()]);
    assert!(store.list_templates(rival.id).await.unwrap().is_empty());

    let updates = [
        change(&paused, TemplateChange::Status(TemplateStatus::Approved), at(t0, 12)),
        // Older than the change just applied: ignored.
        change(&paused, TemplateChange::Quality(QualityScore::Red), at(t0, 11)),
        // Older than the import: ignored.
        change(&promo, TemplateChange::Category(TemplateCategory::Utility), at(t0, 9)),
        change(&promo, TemplateChange::Quality(QualityScore::Yellow), at(t0, 15)),
        // Not a known template: left alone.
        change(
            &template("unknown", "en", TemplateCategory::Utility, t0),
            TemplateChange::Quality(QualityScore::Red),
            at(t0, 20),
        ),
    ];
    assert_eq!(store.apply_template_updates(acme.id, &updates).await.unwrap(), 2);
    let expected_shipped =
        StoredTemplate { status: TemplateStatus::Approved, updated_at: at(t0, 12), ..paused.clone() };
    assert_eq!(store.template(acme.id, "order_shipped", "en_US").await.unwrap(), Some(expected_shipped));
    let expected_promo =
        StoredTemplate { quality: Some(QualityScore::Yellow), updated_at: at(t0, 15), ..promo.clone() };
    assert_eq!(store.template(acme.id, "promo", "en").await.unwrap().as_ref(), Some(&expected_promo));
    assert!(store.template(acme.id, "unknown", "en").await.unwrap().is_none());

    // A change at the same time as the last one applies (only older ones are ignored).
    let same_time = [change(&promo, TemplateChange::Category(TemplateCategory::Utility), at(t0, 15))];
    assert_eq!(store.apply_template_updates(acme.id, &same_time).await.unwrap(), 1);
    let recategorized = store.template(acme.id, "promo", "en").await.unwrap().unwrap();
    assert_eq!(recategorized, StoredTemplate { category: TemplateCategory::Utility, ..expected_promo });
    let foreign = [change(&paused, TemplateChange::Status(TemplateStatus::Disabled), at(t0, 30))];
    assert_eq!(store.apply_template_updates(rival.id, &foreign).await.unwrap(), 0, "another business's template");
}

fn signal(dedupe_key: &str, kind: SignalKind, occurred_at: Timestamp) -> NewSignal {
    NewSignal {
        dedupe_key: dedupe_key.to_owned(),
        kind,
        occurred_at,
        phone_number_id: Some("106540352242922".into()),
        phone: None,
        user_id: None,
        message_id: None,
        template_name: None,
        template_language: None,
        category: None,
        status: None,
        error_codes: Vec::new(),
        detail: json!({}),
    }
}

async fn signals_are_deduplicated_and_filtered(store: &dyn Store) {
    let (acme, rival) = (new_business(store, "Signals Acme").await, new_business(store, "Signals Rival").await);
    let t0 = base_time();
    let customer = phone("+14155550401");
    let delivered = NewSignal {
        phone: Some(customer),
        user_id: Some("US.9".into()),
        message_id: Some("wamid.1".into()),
        status: Some("delivered".into()),
        ..signal("wamid.1/delivered", SignalKind::MessageStatus, t0)
    };
    let failed = NewSignal {
        phone: Some(customer),
        message_id: Some("wamid.2".into()),
        status: Some("failed".into()),
        error_codes: vec![131_049, 130_472],
        detail: json!({"errors": [{"code": 131_049, "title": "healthy ecosystem"}]}),
        ..signal("wamid.2/failed", SignalKind::MessageStatus, at(t0, 10))
    };
    let paused = NewSignal {
        template_name: Some("promo".into()),
        template_language: Some("en".into()),
        status: Some("PAUSED".into()),
        error_codes: vec![131_049],
        ..signal("template/promo/paused", SignalKind::TemplateStatus, at(t0, 20))
    };
    let red = NewSignal {
        phone_number_id: None,
        template_name: Some("promo".into()),
        status: Some("RED".into()),
        ..signal("template/promo/red", SignalKind::TemplateQuality, at(t0, 30))
    };
    let received_at = at(t0, 40);
    let first = [delivered.clone(), failed.clone(), paused.clone()];
    assert_eq!(store.record_signals(acme.id, &first, received_at).await.unwrap(), 3);
    let repeated = NewSignal { status: Some("changed".into()), ..red.clone() };
    let second = [failed.clone(), red.clone(), repeated];
    assert_eq!(store.record_signals(acme.id, &second, received_at).await.unwrap(), 1, "known keys are skipped");
    assert_eq!(
        store.record_signals(rival.id, std::slice::from_ref(&delivered), received_at).await.unwrap(),
        1,
        "keys are per business"
    );

    let all = store.signals(acme.id, &SignalFilter::default()).await.unwrap();
    let recorded: Vec<&NewSignal> = all.iter().map(|s| &s.signal).collect();
    assert_eq!(recorded, [&delivered, &failed, &paused, &red], "oldest first, as written");
    assert!(all.iter().all(|s| s.business_id == acme.id && s.received_at == received_at));
    assert!(all.windows(2).all(|pair| pair[0].id < pair[1].id));

    let keys = |filter: SignalFilter| async move {
        let found = store.signals(acme.id, &filter).await.unwrap();
        found.into_iter().map(|s| s.signal.dedupe_key).collect::<Vec<_>>()
    };
    let (k1, k2, k3, k4) = (&*delivered.dedupe_key, &*failed.dedupe_key, &*paused.dedupe_key, &*red.dedupe_key);
    let none = SignalFilter::default();
    assert_eq!(keys(SignalFilter { kind: Some(SignalKind::MessageStatus), ..none.clone() }).await, [k1, k2]);
    assert_eq!(keys(SignalFilter { phone: Some(customer), ..none.clone() }).await, [k1, k2]);
    assert_eq!(keys(SignalFilter { message_id: Some("wamid.2".into()), ..none.clone() }).await, [k2]);
    assert_eq!(keys(SignalFilter { template_name: Some("promo".into()), ..none.clone() }).await, [k3, k4]);
    assert_eq!(keys(SignalFilter { status: Some("PAUSED".into()), ..none.clone() }).await, [k3]);
    assert_eq!(keys(SignalFilter { error_code: Some(131_049), ..none.clone() }).await, [k2, k3]);
    assert_eq!(keys(SignalFilter { error_code: Some(130_472), ..none.clone() }).await, [k2]);
    assert_eq!(keys(SignalFilter { since: Some(at(t0, 10)), ..none.clone() }).await, [k2, k3, k4]);
    assert_eq!(keys(SignalFilter { until: Some(at(t0, 20)), ..none.clone() }).await, [k1, k2]);
    assert_eq!(keys(SignalFilter { after: Some(all[1].id), ..none.clone() }).await, [k3, k4]);
    assert_eq!(keys(SignalFilter { limit: 2, ..none.clone() }).await, [k1, k2]);
    let combined =
        SignalFilter { kind: Some(SignalKind::MessageStatus), status: Some("failed".into()), ..none.clone() };
    assert_eq!(keys(combined).await, [k2]);
    assert!(keys(SignalFilter { message_id: Some("wamid.404".into()), ..none }).await.is_empty());

    let rivals = store.signals(rival.id, &SignalFilter::default()).await.unwrap();
    assert_eq!(rivals.iter().map(|s| &s.signal).collect::<Vec<_>>(), [&delivered], "another business's signals");
}

async fn sent_opt_in_questions_set_when_the_contact_was_asked(store: &dyn Store) {
    let (acme, rival) = (new_business(store, "Sent Acme").await, new_business(store, "Sent Rival").await);
    let t0 = base_time();
    let (asked, seen, confirmed) = ("+14155550501", "+14155550502", "+14155550503");
    let question = SentMessage {
        business_id: acme.id,
        message_id: "wamid.question".into(),
        phone: phone(asked),
        phone_number_id: "106540352242922".into(),
        purpose: OutboundPurpose::OptInQuestion,
        categories: ["offers", "order_updates"].map(|name| CategoryName::parse(name).unwrap()).to_vec(),
        notice_id: Some(NoticeId::from_uuid(Uuid::new_v4())),
        sent_at: t0,
    };
    store.record_sent_message(&question).await.unwrap();
    assert_eq!(store.sent_message(acme.id, "wamid.question").await.unwrap().as_ref(), Some(&question));
    assert_eq!(store.sent_message(rival.id, "wamid.question").await.unwrap(), None, "another business");
    assert_eq!(store.sent_message(acme.id, "wamid.other").await.unwrap(), None);
    let contact_of =
        |number: &'static str| async move { store.thread_contact(acme.id, Some(phone(number)), None).await.unwrap() };
    assert_eq!(contact_of(asked).await, contact(Some(asked), None, None, Some(t0)), "created by the question");

    // A contact already seen keeps its identity and window.
    store.record_sightings(acme.id, &[sighting(Some(seen), Some("US.5"), t0)]).await.unwrap();
    let later =
        SentMessage { message_id: "wamid.later".into(), phone: phone(seen), sent_at: at(t0, 30), ..question.clone() };
    store.record_sent_message(&later).await.unwrap();
    assert_eq!(contact_of(seen).await, contact(Some(seen), Some("US.5"), Some(t0), Some(at(t0, 30))));

    // Another kind of message does not count as asking.
    let confirmation = SentMessage {
        message_id: "wamid.confirmation".into(),
        phone: phone(confirmed),
        purpose: OutboundPurpose::OptOutConfirmation,
        categories: Vec::new(),
        notice_id: None,
        ..question
    };
    store.record_sent_message(&confirmation).await.unwrap();
    assert_eq!(store.sent_message(acme.id, "wamid.confirmation").await.unwrap(), Some(confirmation));
    assert_eq!(contact_of(confirmed).await, None);
    assert_eq!(store.thread_contact(rival.id, Some(phone(asked)), None).await.unwrap(), None);
}
