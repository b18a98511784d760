//! The ledger: tampering is detected, the events table refuses changes, appends are atomic.

use optin_core::business::Business;
use optin_core::ids::BusinessId;
use optin_core::ledger::{BreakKind, ChainBreak};
use optin_store::ledger::verify_ledger;
use optin_store::{Store, StoreError};
use optin_store_postgres::{PostgresStore, TestDatabase};
use uuid::Uuid;

use crate::support::{new_business, opt_out, phone, raw_connection};

async fn business_with_events(store: &PostgresStore, events: u32) -> Business {
    let (business, _) = new_business(store).await;
    for n in 0..events {
        store.record_consent(&business, &opt_out(&business, phone(n))).await.unwrap();
    }
    let report = verify_ledger(store, business.id).await.unwrap();
    assert!(report.is_intact() && report.verified_events == u64::from(events), "{report:?}");
    business
}

async fn first_break(store: &PostgresStore, business: BusinessId) -> (u64, ChainBreak) {
    let report = verify_ledger(store, business).await.unwrap();
    (report.verified_events, report.first_break.expect("the tampering is detected"))
}

#[tokio::test]
async fn tampering_with_the_stored_events_is_reported_at_the_first_broken_index() {
    let database = TestDatabase::create().await;
    let store = PostgresStore::connect(database.url()).await.unwrap();
    let changed = business_with_events(&store, 5).await;
    let middle_deleted = business_with_events(&store, 5).await;
    let last_deleted = business_with_events(&store, 5).await;

    let raw = raw_connection(database.url()).await;
    raw.batch_execute("ALTER TABLE consent_events DISABLE TRIGGER consent_events_append_only").await.unwrap();
    let sql = "UPDATE consent_events SET content = replace(content, '\"test\"', '\"someone else\"')
               WHERE business_id = $1 AND chain_index = 3";
    assert_eq!(raw.execute(sql, &[&changed.id.as_uuid()]).await.unwrap(), 1);
    let sql = "DELETE FROM consent_events WHERE business_id = $1 AND chain_index = $2";
    assert_eq!(raw.execute(sql, &[&middle_deleted.id.as_uuid(), &3_i64]).await.unwrap(), 1);
    assert_eq!(raw.execute(sql, &[&last_deleted.id.as_uuid(), &5_i64]).await.unwrap(), 1);

    let (verified, broken) = first_break(&store, changed.id).await;
    assert_eq!((verified, broken.index, broken.kind), (2, 3, BreakKind::ContentChanged));
    let (verified, broken) = first_break(&store, middle_deleted.id).await;
    assert_eq!((verified, broken.index, broken.kind), (2, 3, BreakKind::MissingEvent));
    let (verified, broken) = first_break(&store, last_deleted.id).await;
    assert_eq!((verified, broken.index, broken.kind), (4, 5, BreakKind::HeadMismatch));
}

#[tokio::test]
async fn the_events_table_refuses_updates_and_deletes() {
    let database = TestDatabase::create().await;
    let store = PostgresStore::connect(database.url()).await.unwrap();
    let business = business_with_events(&store, 3).await;

    let raw = raw_connection(database.url()).await;
    let attempts = [
        "UPDATE consent_events SET content = '{}' WHERE chain_index = 2",
        "UPDATE consent_events SET phone = 14155550000",
        "DELETE FROM consent_events WHERE chain_index = 3",
        "TRUNCATE consent_events CASCADE",
    ];
    for sql in attempts {
        let error = raw.batch_execute(sql).await.expect_err(sql);
        let message = error.as_db_error().map(|e| e.message().to_owned()).unwrap_or_default();
        assert!(message.contains("append-only"), "{sql}: {error}");
    }
    let report = verify_ledger(&store, business.id).await.unwrap();
    assert!(report.is_intact() && report.verified_events == 3, "{report:?}");
}

#[tokio::test]
async fn a_failed_append_leaves_the_chain_and_the_state_as_they_were() {
    let database = TestDatabase::create().await;
    let store = PostgresStore::connect(database.url()).await.unwrap();
    let (business, _) = new_business(&store).await;
    let event = opt_out(&business, phone(1));
    store.record_consent(&business, &event).await.unwrap();
    let head = store.chain_head(business.id).await.unwrap();

    let mut repeated = opt_out(&business, phone(2));
    repeated.id = event.id;
    let conflict = store.record_consent(&business, &repeated).await;
    assert!(matches!(conflict, Err(StoreError::Conflict { constraint: "event_id" })), "{conflict:?}");
    assert_eq!(store.chain_head(business.id).await.unwrap(), head);
    assert!(store.contact_consent(business.id, phone(2)).await.unwrap().is_empty());

    let mut unknown = business.clone();
    unknown.id = BusinessId::from_uuid(Uuid::new_v4());
    let missing = store.record_consent(&unknown, &opt_out(&unknown, phone(3))).await;
    assert!(matches!(missing, Err(StoreError::NotFound)), "{missing:?}");
    let mismatched = store.record_consent(&business, &opt_out(&unknown, phone(3))).await;
    assert!(matches!(mismatched, Err(StoreError::Conflict { .. })), "{mismatched:?}");
    assert_eq!(store.chain_head(business.id).await.unwrap(), head);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_append_abandoned_midway_leaves_no_lock_nor_open_transaction_behind() {
    let database = TestDatabase::create().await;
    let store = PostgresStore::connect_with_pool_size(database.url(), 1).await.unwrap();
    let (business, _) = new_business(&store).await;
    store.record_consent(&business, &opt_out(&business, phone(0))).await.unwrap();

    // Abandon appends at every stage (waiting for the connection, inside the transaction,
    // while committing); each time a complete append must still go through on the one
    // connection of the pool.
    for step in 0..60_u32 {
        let abandoned = opt_out(&business, phone(step % 5));
        let cancel_after = std::time::Duration::from_micros(u64::from(step) * 50);
        let _ = tokio::time::timeout(cancel_after, store.record_consent(&business, &abandoned)).await;
        let completed = tokio::time::timeout(
            std::time::Duration::from_secs(10),
            store.record_consent(&business, &opt_out(&business, phone(step % 5))),
        )
        .await;
        assert!(matches!(completed, Ok(Ok(_))), "step {step}: {completed:?}");
    }
    let report = verify_ledger(&store, business.id).await.unwrap();
    assert!(report.is_intact() && report.verified_events >= 61, "{report:?}");
    let events = store.ledger_page(business.id, 0, 1_000).await.unwrap();
    assert_eq!(report.head.map(|h| h.index), events.last().map(|e| e.index));
}
