//! The WhatsApp channel on SQLite: the inbox shared by stores on one file, group commit on the
//! webhook's hot path, and the upgrade of a database made before the channel existed.

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use common::{acme, categories, db_path, raw};
use jiff::Timestamp;
use optin_core::ids::BusinessId;
use optin_core::ledger::Hash;
use optin_store::Store;
use optin_store::channel::{DeliveryId, DeliveryOutcome, DeliveryState};
use optin_store::tenancy::create_business;
use optin_store_sqlite::{SqliteStore, migrate};

const LEASE: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_received_by_one_store_is_processed_by_another_on_the_same_file() {
    let dir = tempfile::tempdir().unwrap();
    let server = SqliteStore::open(&db_path(&dir)).unwrap();
    let worker = SqliteStore::open(&db_path(&dir)).unwrap();
    let (business, _, _) = acme(&server).await;
    let now = Timestamp::now();

    let id = server.insert_delivery(business.id, now, b"{}").await.unwrap();
    let claimed = worker.claim_deliveries(now, LEASE, 10).await.unwrap();
    assert_eq!(
        claimed.iter().map(|d| (d.id, d.attempts, d.body.as_slice())).collect::<Vec<_>>(),
        [(id, 1, &b"{}"[..])]
    );
    assert!(server.claim_deliveries(now, LEASE, 10).await.unwrap().is_empty(), "held by the worker");

    worker.finish_deliveries(&[(id, DeliveryOutcome::Processed { note: None })], now).await.unwrap();
    assert_eq!(server.delivery(business.id, id).await.unwrap().unwrap().state, DeliveryState::Processed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_in_two_stores_never_claim_the_same_delivery() {
    let dir = tempfile::tempdir().unwrap();
    let first = Arc::new(SqliteStore::open(&db_path(&dir)).unwrap());
    let second = Arc::new(SqliteStore::open(&db_path(&dir)).unwrap());
    let (business, _, _) = acme(first.as_ref()).await;
    let now = Timestamp::now();
    let mut inserted = BTreeSet::new();
    for n in 0..300_u32 {
        let store = if n % 2 == 0 { &first } else { &second };
        inserted.insert(store.insert_delivery(business.id, now, &n.to_be_bytes()).await.unwrap());
    }

    let workers = [first, second].into_iter().cycle().take(6).map(|store| {
        tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let claimed = store.claim_deliveries(now, LEASE, 7).await.unwrap();
                if claimed.is_empty() {
                    return mine;
                }
                mine.extend(claimed.into_iter().map(|d| d.id));
            }
        })
    });
    let mut claimed: Vec<DeliveryId> = Vec::new();
    for worker in workers.collect::<Vec<_>>() {
        claimed.extend(worker.await.unwrap());
    }
    let distinct: BTreeSet<DeliveryId> = claimed.iter().copied().collect();
    assert_eq!(distinct.len(), claimed.len(), "a delivery was claimed twice");
    assert_eq!(distinct, inserted);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_webhook_deliveries_share_commits() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(&db_path(&dir)).unwrap());
    let (business, _, _) = acme(store.as_ref()).await;
    let (batches_before, commands_before) = store.writer_stats();
    let body = vec![b'x'; 2_048];
    let requests: Vec<_> = (0..500)
        .map(|_| {
            let (store, body) = (Arc::clone(&store), body.clone());
            tokio::spawn(async move { store.insert_delivery(business.id, Timestamp::now(), &body).await.unwrap() })
        })
        .collect();
    let mut ids = BTreeSet::new();
    for request in requests {
        ids.insert(request.await.unwrap());
    }
    assert_eq!(ids.len(), 500);
    let (batches, commands) = store.writer_stats();
    let (batches, commands) = (batches - batches_before, commands - commands_before);
    assert_eq!(commands, 500);
    assert!(batches < commands, "every delivery had its own commit ({batches} commits)");
}

/// The tracking table and 0001 exactly as an optin without the WhatsApp channel left them.
fn database_at_the_first_migration(path: &std::path::Path) -> BusinessId {
    let initial = include_str!("../migrations/0001_initial.sql");
    let conn = raw(path);
    conn.execute_batch(initial).unwrap();
    conn.execute_batch(
        "CREATE TABLE schema_migrations (
             version INTEGER PRIMARY KEY, name TEXT NOT NULL, sha256 TEXT NOT NULL, applied_at INTEGER NOT NULL
         ) STRICT;",
    )
    .unwrap();
    conn.execute(
        "INSERT INTO schema_migrations VALUES (1, '0001_initial', ?1, 0)",
        [Hash::of(initial.as_bytes()).to_hex()],
    )
    .unwrap();
    let business = BusinessId::from_uuid(uuid::Uuid::new_v4());
    conn.execute("INSERT INTO businesses VALUES (?1, 'Old Shoes', 0)", [business.to_string()]).unwrap();
    conn.execute("INSERT INTO categories VALUES (?1, 0, 'offers', 'marketing')", [business.to_string()]).unwrap();
    business
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_from_before_the_channel_is_upgraded_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir);
    let old_business = database_at_the_first_migration(&path);
    assert_eq!(
        migrate(&path).unwrap(),
        [
            "0002_whatsapp",
            "0003_forwarded",
            "0004_messaging_limit",
            "0005_consent_basis",
            "0006_documents",
            "0007_checks_without_lists"
        ]
    );

    let store = SqliteStore::open(&path).unwrap();
    assert!(store.business(old_business).await.unwrap().is_some(), "the old data is kept");
    let id = store.insert_delivery(old_business, Timestamp::now(), b"{}").await.unwrap();
    assert!(store.delivery(old_business, id).await.unwrap().is_some());
    let (new_business, _) = create_business(&store, "New Shoes", &categories(), Timestamp::now()).await.unwrap();
    assert!(store.list_deliveries(new_business.id, &Default::default()).await.unwrap().is_empty());
    assert!(migrate(&path).unwrap().is_empty());
}
