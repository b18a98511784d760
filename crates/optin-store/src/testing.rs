//! The storage contract suite: one story per capability, run by each backend's tests on a real
//! database (`optin_store::testing::run_contract_suite(store)`).

use std::sync::Arc;

use jiff::Timestamp;
use optin_core::business::{BusinessName, Category, CategoryName, TemplateCategory};
use optin_core::consent::{CategoryOutcome, ConsentBits, ConsentStatus, OptOutSource};
use optin_core::ids::{ApiKeyId, BusinessId, NoticeId};
use optin_core::phone::PhoneNumber;
use optin_core::secret::hash_secret;
use serde_json::{Map, json};
use uuid::Uuid;

use crate::intake::{OptInInput, OptOutInput, PhoneInput, record_opt_in, record_opt_out, register_notice};
use crate::ledger::verify_ledger;
use crate::tenancy::{CategoryInput, create_business, issue_key};
use crate::{SavedResponse, Store, StoreError, UseCaseError};

mod batch;
mod capacity;
mod channel;
mod forwarded;
mod import;

pub use capacity::reservations_survive_reopening;
pub use import::import_text;

/// Shuffles `items` in the same order every run (Fisher–Yates with a fixed xorshift seed): benchmarks
/// use it for audiences and files that are not sorted by number, reproducibly.
pub fn shuffle<T>(items: &mut [T]) {
    let mut state = 0x9E37_79B9_7F4A_7C15_u64;
    for i in (1..items.len()).rev() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        items.swap(i, (state % (i as u64 + 1)) as usize);
    }
}

const NOTICE: &str = "I agree to receive order updates and offers from Acme Shoes on WhatsApp. Reply STOP to opt out.";

/// Runs every story against `store`, which must be empty.
pub async fn run_contract_suite(store: Arc<dyn Store>) {
    capacity::run_capacity_stories(&store).await;
    let store = store.as_ref();
    operator_token_is_replaced(store).await;
    businesses_keep_their_categories_in_slot_order(store).await;
    api_keys_authenticate_until_revoked(store).await;
    notices_get_increasing_versions_per_business(store).await;
    consent_changes_are_visible_at_once_and_chained(store).await;
    tenants_do_not_see_each_other(store).await;
    concurrent_writes_keep_one_chain(store).await;
    saved_responses_keep_the_first(store).await;
    channel::run_channel_stories(store).await;
    forwarded::forwarded_messages_are_kept_per_business(store).await;
    forwarded::signals_keep_their_category(store).await;
    batch::run_batch_stories(store).await;
    import::run_import_stories(store).await;
}

fn now() -> Timestamp {
    Timestamp::now()
}

fn categories() -> Vec<CategoryInput> {
    [("order_updates", "utility"), ("offers", "marketing")]
        .map(|(name, template_category)| CategoryInput {
            name: name.into(),
            template_category: template_category.into(),
        })
        .to_vec()
}

async fn new_business(store: &dyn Store, name: &str) -> optin_core::business::Business {
    create_business(store, name, &categories(), now()).await.unwrap().0
}

fn phone(text: &str) -> PhoneNumber {
    PhoneNumber::from_e164(text).unwrap()
}

fn web_form_opt_in(number: &str, categories: &[&str], notice: NoticeId) -> OptInInput {
    OptInInput {
        phone: PhoneInput { phone: number.into(), country: Some("US".into()) },
        categories: categories.iter().map(|c| (*c).to_owned()).collect(),
        method: "web_form".into(),
        notice_id: notice.to_string(),
        collected_at: None,
        evidence: json!({"page_url": "https://acme.example/join", "ip": "203.0.113.9"}).as_object().cloned().unwrap(),
        terms: Default::default(),
    }
}

fn opt_out(number: &str, categories: Option<&[&str]>) -> OptOutInput {
    OptOutInput {
        phone: PhoneInput { phone: number.into(), country: None },
        categories: categories.map(|c| c.iter().map(|c| (*c).to_owned()).collect()),
        source: OptOutSource::Agent,
        recorded_by: "agent 7".into(),
        evidence: Map::new(),
    }
}

async fn operator_token_is_replaced(store: &dyn Store) {
    assert_eq!(store.operator_token_hash().await.unwrap(), None);
    store.set_operator_token_hash("aa", now()).await.unwrap();
    store.set_operator_token_hash("bb", now()).await.unwrap();
    assert_eq!(store.operator_token_hash().await.unwrap().as_deref(), Some("bb"));
    store.ping().await.unwrap();
}

async fn businesses_keep_their_categories_in_slot_order(store: &dyn Store) {
    let business = new_business(store, "Slot Order Ltd").await;
    assert_eq!(store.business(business.id).await.unwrap().as_ref(), Some(&business));
    assert!(store.list_businesses().await.unwrap().iter().any(|b| b.id == business.id));

    let recommendations = Category {
        name: CategoryName::parse("recommendations").unwrap(),
        template_category: TemplateCategory::Marketing,
    };
    let updated = store.add_categories(business.id, std::slice::from_ref(&recommendations)).await.unwrap();
    assert_eq!(updated.category_slot("recommendations").map(|s| s.index()), Some(2));
    assert_eq!(updated.category_slot("order_updates").map(|s| s.index()), Some(0));
    let duplicate = store.add_categories(business.id, &[recommendations]).await;
    assert!(matches!(duplicate, Err(StoreError::Category(_))), "{duplicate:?}");
    assert_eq!(store.business(business.id).await.unwrap().unwrap().categories.len(), 3);

    let brands = [BusinessName::parse("Slotty").unwrap()];
    let branded = store.set_brand_names(business.id, &brands).await.unwrap();
    assert_eq!(branded.brand_names, brands);
    assert_eq!(store.business(business.id).await.unwrap().unwrap().brand_names, brands);

    let unknown = BusinessId::from_uuid(Uuid::new_v4());
    assert!(store.business(unknown).await.unwrap().is_none());
    assert!(matches!(store.set_brand_names(unknown, &[]).await, Err(StoreError::NotFound)));
    assert!(matches!(store.add_categories(unknown, &[]).await, Err(StoreError::NotFound)));
}

async fn api_keys_authenticate_until_revoked(store: &dyn Store) {
    let (business, first_key) = create_business(store, "Keys Inc", &categories(), now()).await.unwrap();
    let other = new_business(store, "Other Keys Inc").await;
    assert_eq!(store.authenticate(&hash_secret(&first_key.secret)).await.unwrap(), Some(business.id));
    assert_eq!(store.authenticate(&hash_secret("optin_sk_nonsense")).await.unwrap(), None);

    let second = issue_key(business.id, "ci", now());
    store.create_api_key(&second.record).await.unwrap();
    assert_eq!(store.authenticate(&second.record.secret_hash).await.unwrap(), Some(business.id));

    let foreign = store.revoke_api_key(other.id, second.record.id, now()).await;
    assert!(matches!(foreign, Err(StoreError::NotFound)), "revoking another business's key: {foreign:?}");
    store.revoke_api_key(business.id, second.record.id, now()).await.unwrap();
    assert_eq!(store.authenticate(&second.record.secret_hash).await.unwrap(), None);
    assert!(matches!(store.revoke_api_key(business.id, second.record.id, now()).await, Err(StoreError::NotFound)));
    assert!(matches!(
        store.revoke_api_key(business.id, ApiKeyId::from_uuid(Uuid::new_v4()), now()).await,
        Err(StoreError::NotFound)
    ));

    let keys = store.list_api_keys(business.id).await.unwrap();
    assert_eq!(keys.len(), 2);
    assert!(keys.iter().any(|k| k.id == second.record.id && k.revoked_at.is_some() && k.label == "ci"));
    assert!(keys.iter().any(|k| k.id == first_key.record.id && k.revoked_at.is_none()));

    let orphan = issue_key(BusinessId::from_uuid(Uuid::new_v4()), "x", now());
    assert!(matches!(store.create_api_key(&orphan.record).await, Err(StoreError::NotFound)));
}

async fn notices_get_increasing_versions_per_business(store: &dyn Store) {
    let business = new_business(store, "Acme Shoes").await;
    let other = new_business(store, "Acme Shoes").await;
    let first = register_notice(store, &business, NOTICE, "en", now()).await.unwrap();
    let second = register_notice(store, &business, NOTICE, "en-GB", now()).await.unwrap();
    let others = register_notice(store, &other, NOTICE, "en", now()).await.unwrap();
    assert_eq!((first.version, second.version, others.version), (1, 2, 1));
    assert_eq!(first.text.as_str(), NOTICE);
    assert_eq!(first.text_sha256, first.text.sha256_hex());
    assert_eq!(store.notice(business.id, first.id).await.unwrap().as_ref(), Some(&first));
    assert_eq!(store.notice(other.id, first.id).await.unwrap(), None, "another business's notice");
    let listed = store.list_notices(business.id).await.unwrap();
    assert_eq!(listed.iter().map(|n| n.version).collect::<Vec<_>>(), [1, 2]);
    assert_eq!(listed[1].language.as_str(), "en-GB");
}

async fn consent_changes_are_visible_at_once_and_chained(store: &dyn Store) {
    let business = new_business(store, "Acme Shoes").await;
    let notice = register_notice(store, &business, NOTICE, "en", now()).await.unwrap();
    let number = phone("+14155552671");
    assert_eq!(store.consent_bits(&business, number).await.unwrap(), ConsentBits::default());
    assert!(store.chain_head(business.id).await.unwrap().is_none());

    let first = record_opt_in(
        store,
        &business,
        web_form_opt_in("(415) 555-2671", &["offers", "order_updates"], notice.id),
        now(),
    )
    .await
    .unwrap();
    assert_eq!(first.chain_index, 1);
    assert_eq!(first.phone, number, "the recorded contact is the parsed number");
    assert!(first.outcomes.iter().all(|(_, o)| *o == CategoryOutcome::Applied));
    assert_eq!(
        store.consent_bits(&business, number).await.unwrap(),
        ConsentBits { opted_in: 0b11, opted_out: 0, ..ConsentBits::default() }
    );

    let again =
        record_opt_in(store, &business, web_form_opt_in("+14155552671", &["offers"], notice.id), now()).await.unwrap();
    assert_eq!(again.outcomes[0].1, CategoryOutcome::AlreadyOptedIn);

    let out = record_opt_out(store, &business, opt_out("+1 415 555 2671", Some(&["offers"])), now()).await.unwrap();
    assert_eq!(out.chain_index, 3);
    assert_eq!(
        store.consent_bits(&business, number).await.unwrap(),
        ConsentBits { opted_in: 0b01, opted_out: 0b10, ..ConsentBits::default() }
    );

    let state = store.contact_consent(business.id, number).await.unwrap();
    let offers = &state[&CategoryName::parse("offers").unwrap()];
    assert_eq!((offers.status, offers.event_id), (ConsentStatus::OptedOut, out.event_id));
    let updates = &state[&CategoryName::parse("order_updates").unwrap()];
    assert_eq!((updates.status, updates.notice_id), (ConsentStatus::OptedIn, Some(notice.id)));

    let events = store.contact_events(business.id, number).await.unwrap();
    assert_eq!(events.iter().map(|e| e.index).collect::<Vec<_>>(), [1, 2, 3]);
    let history: Vec<_> = events.iter().map(|e| e.event().unwrap()).collect();
    assert_eq!(history.iter().map(|e| e.kind()).collect::<Vec<_>>(), ["opt_in", "opt_in", "opt_out"]);
    assert_eq!(optin_core::consent::replay(&history), state, "the projection equals the replayed events");

    let all_out = record_opt_out(store, &business, opt_out("+14155552671", None), now()).await.unwrap();
    assert_eq!(all_out.outcomes.len(), 2);
    assert_eq!(
        store.consent_bits(&business, number).await.unwrap(),
        ConsentBits { opted_in: 0, opted_out: 0b11, ..ConsentBits::default() }
    );

    let page = store.ledger_page(business.id, 1, 2).await.unwrap();
    assert_eq!(page.iter().map(|e| e.index).collect::<Vec<_>>(), [2, 3]);
    assert_eq!(store.chain_head(business.id).await.unwrap().map(|h| h.index), Some(4));
    let report = verify_ledger(store, business.id).await.unwrap();
    assert!(report.is_intact(), "{report:?}");
    assert_eq!(report.verified_events, 4);
}

async fn tenants_do_not_see_each_other(store: &dyn Store) {
    let acme = new_business(store, "Acme Shoes").await;
    let rival = new_business(store, "Acme Shoes").await;
    let notice = register_notice(store, &acme, NOTICE, "en", now()).await.unwrap();
    record_opt_in(store, &acme, web_form_opt_in("+14155550101", &["offers"], notice.id), now()).await.unwrap();
    let number = phone("+14155550101");
    assert_eq!(store.consent_bits(&rival, number).await.unwrap(), ConsentBits::default());
    assert!(store.contact_consent(rival.id, number).await.unwrap().is_empty());
    assert!(store.contact_events(rival.id, number).await.unwrap().is_empty());
    assert!(store.ledger_page(rival.id, 0, 10).await.unwrap().is_empty());

    let foreign_notice =
        record_opt_in(store, &rival, web_form_opt_in("+14155550101", &["offers"], notice.id), now()).await;
    match foreign_notice {
        Err(UseCaseError::Rejected(rejection)) => assert_eq!(rejection.code(), "unknown_notice"),
        other => panic!("another business's notice was accepted: {other:?}"),
    }
}

async fn concurrent_writes_keep_one_chain(store: &dyn Store) {
    let business = new_business(store, "Acme Shoes").await;
    let notice = register_notice(store, &business, NOTICE, "en", now()).await.unwrap();
    let writes = (0..40).map(|n| {
        let input = web_form_opt_in(&format!("+1415555{:04}", 3000 + n), &["offers"], notice.id);
        let business = &business;
        async move { record_opt_in(store, business, input, now()).await.unwrap().chain_index }
    });
    let mut indexes = futures::future::join_all(writes).await;
    indexes.sort_unstable();
    assert_eq!(indexes, (1..=40).collect::<Vec<u64>>());
    let report = verify_ledger(store, business.id).await.unwrap();
    assert!(report.is_intact() && report.verified_events == 40, "{report:?}");
}

async fn saved_responses_keep_the_first(store: &dyn Store) {
    let business = new_business(store, "Idem Co").await;
    let other = new_business(store, "Idem Other").await;
    let first = SavedResponse { request_fingerprint: "f1".into(), status: 201, body: "{}".into(), created_at: now() };
    let second = SavedResponse { request_fingerprint: "f2".into(), status: 422, body: "[]".into(), created_at: now() };
    assert_eq!(store.saved_response(business.id, "k").await.unwrap(), None);
    store.save_response(business.id, "k", &first).await.unwrap();
    store.save_response(business.id, "k", &second).await.unwrap();
    let saved = store.saved_response(business.id, "k").await.unwrap().unwrap();
    assert_eq!((saved.request_fingerprint.as_str(), saved.status, saved.body.as_str()), ("f1", 201, "{}"));
    assert_eq!(store.saved_response(other.id, "k").await.unwrap(), None);
}
