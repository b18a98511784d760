//! Concurrent writes are committed in groups and each keeps its own outcome.

mod common;

use std::sync::Arc;

use common::{acme, db_path, number, opt_in};
use jiff::Timestamp;
use optin_core::business::CategoryName;
use optin_core::consent::{ConsentChange, ConsentEvent, OptOut, OptOutSource};
use optin_core::evidence::Evidence;
use optin_core::ids::EventId;
use optin_core::phone::PhoneNumber;
use optin_store::ledger::verify_ledger;
use optin_store::{Store, StoreError};
use optin_store_sqlite::SqliteStore;
use serde_json::Map;
use uuid::Uuid;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_concurrent_writes_for_two_businesses_all_succeed() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(&db_path(&dir)).unwrap());
    let (first, _, first_notice) = acme(store.as_ref()).await;
    let (second, _, second_notice) = acme(store.as_ref()).await;
    let tasks: Vec<_> = (0..200)
        .map(|n| {
            let store = Arc::clone(&store);
            let (business, notice) = if n % 2 == 0 {
                (first.clone(), first_notice.clone())
            } else {
                (second.clone(), second_notice.clone())
            };
            tokio::spawn(async move {
                let recorded = opt_in(store.as_ref(), &business, &notice, &number(n / 2), &["offers"]).await;
                (business.id, recorded.chain_index)
            })
        })
        .collect();
    let mut indexes = [Vec::new(), Vec::new()];
    for task in tasks {
        let (business, index) = task.await.unwrap();
        indexes[usize::from(business != first.id)].push(index);
    }
    for (business, mut indexes) in [first.id, second.id].into_iter().zip(indexes) {
        indexes.sort_unstable();
        assert_eq!(indexes, (1..=100).collect::<Vec<u64>>());
        let report = verify_ledger(store.as_ref(), business).await.unwrap();
        assert!(report.is_intact() && report.verified_events == 100, "{report:?}");
    }
    for n in 0..100 {
        let phone = PhoneNumber::from_e164(&number(n)).unwrap();
        for business in [&first, &second] {
            assert_eq!(store.consent_bits(business, phone).await.unwrap().opted_in, 0b10);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_command_rolls_back_only_itself() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(&db_path(&dir)).unwrap());
    let (business, _, notice) = acme(store.as_ref()).await;
    let tasks: Vec<_> = (0..60)
        .map(|n| {
            let (store, business, notice) = (Arc::clone(&store), business.clone(), notice.clone());
            tokio::spawn(async move {
                if n % 6 == 0 {
                    // An event naming a category the business does not have.
                    let event = ConsentEvent {
                        id: EventId::from_uuid(Uuid::new_v4()),
                        business_id: business.id,
                        phone: PhoneNumber::from_e164(&number(n)).unwrap(),
                        change: ConsentChange::OptOut(OptOut {
                            categories: vec![CategoryName::parse("no_such_category").unwrap()],
                            all_categories: false,
                            source: OptOutSource::Api,
                            recorded_by: "test".into(),
                            evidence: Evidence::recorded(Map::new()),
                            requested_at: None,
                        }),
                        recorded_at: Timestamp::now(),
                    };
                    Err(store.record_consent(&business, &event).await.unwrap_err())
                } else {
                    Ok(opt_in(store.as_ref(), &business, &notice, &number(n), &["offers"]).await.chain_index)
                }
            })
        })
        .collect();
    let mut indexes = Vec::new();
    for task in tasks {
        match task.await.unwrap() {
            Ok(index) => indexes.push(index),
            Err(error) => assert!(matches!(error, StoreError::Category(_)), "{error:?}"),
        }
    }
    indexes.sort_unstable();
    assert_eq!(indexes, (1..=50).collect::<Vec<u64>>());
    let report = verify_ledger(store.as_ref(), business.id).await.unwrap();
    assert!(report.is_intact() && report.verified_events == 50, "{report:?}");
    let failed = PhoneNumber::from_e164(&number(0)).unwrap();
    assert!(store.contact_events(business.id, failed).await.unwrap().is_empty());
}
