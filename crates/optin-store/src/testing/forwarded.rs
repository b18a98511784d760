//! The story of the messages the send proxy forwarded, and of the category a signal carries.

use optin_core::business::CategoryName;
use optin_core::ids::BusinessId;
use optin_core::template::{TemplateLanguage, TemplateName};
use serde_json::json;
use uuid::Uuid;

use super::{new_business, now, phone};
use crate::channel::{ForwardedMessage, NewSignal, SignalFilter, SignalKind};
use crate::{Store, StoreError};

pub(super) async fn forwarded_messages_are_kept_per_business(store: &dyn Store) {
    let (acme, rival) = (new_business(store, "Forwarded Acme").await, new_business(store, "Forwarded Rival").await);
    let sent_at = optin_core::truncate_to_microseconds(now());
    let template = ForwardedMessage {
        business_id: acme.id,
        message_id: "wamid.forwarded-template".into(),
        phone: phone("+14155550601"),
        phone_number_id: "106540352242922".into(),
        template: Some((TemplateName::parse("spring_sale").unwrap(), TemplateLanguage::parse("en_US").unwrap())),
        category: Some(CategoryName::parse("offers").unwrap()),
        sent_at,
    };
    let text = ForwardedMessage {
        message_id: "wamid.forwarded-text".into(),
        template: None,
        category: None,
        ..template.clone()
    };
    store.record_forwarded_message(&template).await.unwrap();
    store.record_forwarded_message(&text).await.unwrap();
    let found = |business, id: &'static str| async move { store.forwarded_message(business, id).await.unwrap() };
    assert_eq!(found(acme.id, "wamid.forwarded-template").await.as_ref(), Some(&template));
    assert_eq!(found(acme.id, "wamid.forwarded-text").await.as_ref(), Some(&text));
    assert_eq!(found(rival.id, "wamid.forwarded-template").await, None, "another business's message");
    assert_eq!(found(acme.id, "wamid.unknown").await, None);

    // The same id again (a retried record) replaces the first.
    let again = ForwardedMessage { phone: phone("+14155550602"), ..template.clone() };
    store.record_forwarded_message(&again).await.unwrap();
    assert_eq!(found(acme.id, "wamid.forwarded-template").await, Some(again));

    let unknown = ForwardedMessage { business_id: BusinessId::from_uuid(Uuid::new_v4()), ..text };
    assert!(matches!(store.record_forwarded_message(&unknown).await, Err(StoreError::NotFound)));
}

pub(super) async fn signals_keep_their_category(store: &dyn Store) {
    let acme = new_business(store, "Category Signals Acme").await;
    let delivered = NewSignal {
        dedupe_key: "status:wamid.forwarded-template:delivered".into(),
        kind: SignalKind::MessageStatus,
        occurred_at: optin_core::truncate_to_microseconds(now()),
        phone_number_id: Some("106540352242922".into()),
        phone: Some(phone("+14155550601")),
        user_id: None,
        message_id: Some("wamid.forwarded-template".into()),
        template_name: Some("spring_sale".into()),
        template_language: Some("en_US".into()),
        category: Some(CategoryName::parse("offers").unwrap()),
        status: Some("delivered".into()),
        error_codes: Vec::new(),
        detail: json!({}),
    };
    assert_eq!(store.record_signals(acme.id, std::slice::from_ref(&delivered), now()).await.unwrap(), 1);
    let filter = SignalFilter { template_name: Some("spring_sale".into()), ..SignalFilter::default() };
    let stored = store.signals(acme.id, &filter).await.unwrap();
    assert_eq!(stored.iter().map(|s| &s.signal).collect::<Vec<_>>(), [&delivered]);
}
