//! Several optin servers on one database: what one writes, the others see at once.

use std::sync::Arc;

use jiff::Timestamp;
use optin_core::business::{Category, CategoryName, TemplateCategory};
use optin_core::consent::ConsentBits;
use optin_core::secret::hash_secret;
use optin_store::Store;
use optin_store::intake::register_notice;
use optin_store::ledger::verify_ledger;
use optin_store_postgres::{PostgresStore, TestDatabase};

use crate::support::{NOTICE, new_business, opt_in, opt_out, phone};

async fn two_servers(database: &TestDatabase) -> (Arc<PostgresStore>, Arc<PostgresStore>) {
    let first = PostgresStore::connect(database.url()).await.unwrap();
    let second = PostgresStore::connect(database.url()).await.unwrap();
    (Arc::new(first), Arc::new(second))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_opt_out_through_one_server_is_in_effect_on_the_other_at_once() {
    let database = TestDatabase::create().await;
    let (one, other) = two_servers(&database).await;
    let (business, _) = new_business(one.as_ref()).await;
    let number = phone(1);

    opt_in(one.as_ref(), &business, number).await;
    assert_eq!(
        other.consent_bits(&business, number).await.unwrap(),
        ConsentBits { opted_in: 0b11, opted_out: 0, ..ConsentBits::default() }
    );
    other.record_consent(&business, &opt_out(&business, number)).await.unwrap();
    assert_eq!(
        one.consent_bits(&business, number).await.unwrap(),
        ConsentBits { opted_in: 0, opted_out: 0b11, ..ConsentBits::default() }
    );
    assert_eq!(one.contact_consent(business.id, number).await.unwrap().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_revoked_through_one_server_stops_working_on_the_other() {
    let database = TestDatabase::create().await;
    let (one, other) = two_servers(&database).await;
    let (business, key) = new_business(one.as_ref()).await;
    let secret_hash = hash_secret(&key.secret);

    assert_eq!(other.authenticate(&secret_hash).await.unwrap(), Some(business.id));
    one.revoke_api_key(business.id, key.record.id, Timestamp::now()).await.unwrap();
    assert_eq!(other.authenticate(&secret_hash).await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_appends_through_two_servers_form_one_intact_chain() {
    let database = TestDatabase::create().await;
    let (one, other) = two_servers(&database).await;
    let (business, _) = new_business(one.as_ref()).await;
    let business = Arc::new(business);

    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..200_u32 {
        let store = if n % 2 == 0 { Arc::clone(&one) } else { Arc::clone(&other) };
        let business = Arc::clone(&business);
        // Ten contacts, so appends also contend on the same consent rows.
        tasks.spawn(async move {
            store.record_consent(&business, &opt_out(&business, phone(n % 10))).await.unwrap().chain_index
        });
    }
    let mut indexes = tasks.join_all().await;
    indexes.sort_unstable();
    assert_eq!(indexes, (1..=200).collect::<Vec<u64>>());

    for store in [&one, &other] {
        let report = verify_ledger(store.as_ref(), business.id).await.unwrap();
        assert!(report.is_intact() && report.verified_events == 200, "{report:?}");
        assert_eq!(report.head.map(|h| h.index), Some(200));
    }
    // Each append read the state its predecessor wrote: the projection equals the replay.
    for n in 0..10 {
        let events = other.contact_events(business.id, phone(n)).await.unwrap();
        assert_eq!(events.len(), 20);
        let history: Vec<_> = events.iter().map(|e| e.event().unwrap()).collect();
        let state = one.contact_consent(business.id, phone(n)).await.unwrap();
        assert_eq!(optin_core::consent::replay(&history), state);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notices_and_categories_added_through_two_servers_at_once_get_distinct_numbers() {
    let database = TestDatabase::create().await;
    let (one, other) = two_servers(&database).await;
    let (business, _) = new_business(one.as_ref()).await;
    let business = Arc::new(business);

    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..20 {
        let store = if n % 2 == 0 { Arc::clone(&one) } else { Arc::clone(&other) };
        let business = Arc::clone(&business);
        tasks.spawn(async move {
            let notice = register_notice(store.as_ref(), &business, NOTICE, "en", Timestamp::now()).await.unwrap();
            let category = Category {
                name: CategoryName::parse(&format!("extra_{n}")).unwrap(),
                template_category: TemplateCategory::Marketing,
            };
            store.add_categories(business.id, &[category]).await.unwrap();
            notice.version
        });
    }
    let mut versions = tasks.join_all().await;
    versions.sort_unstable();
    assert_eq!(versions, (1..=20).collect::<Vec<u32>>());
    let updated = other.business(business.id).await.unwrap().unwrap();
    assert_eq!(updated.categories.len(), 22);
    assert_eq!(updated.category_slot("order_updates").map(|s| s.index()), Some(0));
    assert_eq!(updated.category_slot("offers").map(|s| s.index()), Some(1));
}
