//! Reopening keeps everything; migrations are applied once and checked.

mod common;

use common::{acme, db_path, number, opt_in, opt_out, raw};
use optin_core::consent::ConsentBits;
use optin_core::phone::PhoneNumber;
use optin_store::ledger::verify_ledger;
use optin_store::{Store, StoreError};
use optin_store_sqlite::{SqliteStore, migrate};

fn phone(text: &str) -> PhoneNumber {
    PhoneNumber::from_e164(text).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reopening_keeps_the_data_and_rebuilds_the_index() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir);
    let (business, key, notice) = {
        let store = SqliteStore::open(&path).unwrap();
        let (business, key, notice) = acme(&store).await;
        for n in 0..30 {
            opt_in(&store, &business, &notice, &number(n), &["offers", "order_updates"]).await;
        }
        for n in 0..10 {
            opt_out(&store, &business, &number(n), Some(&["offers"])).await;
        }
        (business, key, notice)
    };
    let applied_before: i64 = raw(&path).query_row("SELECT COUNT(*) FROM schema_migrations", [], |r| r.get(0)).unwrap();

    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.business(business.id).await.unwrap().as_ref(), Some(&business));
    assert_eq!(store.authenticate(&key.record.secret_hash).await.unwrap(), Some(business.id));
    assert_eq!(store.notice(business.id, notice.id).await.unwrap().as_ref(), Some(&notice));
    for n in 0..30 {
        let expected = if n < 10 {
            ConsentBits { opted_in: 0b01, opted_out: 0b10, ..ConsentBits::default() }
        } else {
            ConsentBits { opted_in: 0b11, opted_out: 0, ..ConsentBits::default() }
        };
        assert_eq!(store.consent_bits(&business, phone(&number(n))).await.unwrap(), expected, "contact {n}");
    }
    let report = verify_ledger(&store, business.id).await.unwrap();
    assert!(report.is_intact() && report.verified_events == 40, "{report:?}");
    // The chain continues where it stopped.
    assert_eq!(opt_in(&store, &business, &notice, &number(50), &["offers"]).await.chain_index, 41);

    assert!(migrate(&path).unwrap().is_empty(), "nothing left to apply");
    let applied_after: i64 = raw(&path).query_row("SELECT COUNT(*) FROM schema_migrations", [], |r| r.get(0)).unwrap();
    assert_eq!((applied_before, applied_after), (6, 6));
}

#[test]
fn migrate_applies_each_migration_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir);
    assert_eq!(
        migrate(&path).unwrap(),
        [
            "0001_initial",
            "0002_whatsapp",
            "0003_forwarded",
            "0004_messaging_limit",
            "0005_consent_basis",
            "0006_documents"
        ]
    );
    assert!(migrate(&path).unwrap().is_empty());
    drop(SqliteStore::open(&path).unwrap());
    assert!(migrate(&path).unwrap().is_empty());
}

#[test]
fn a_changed_migration_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir);
    drop(SqliteStore::open(&path).unwrap());
    raw(&path).execute("UPDATE schema_migrations SET sha256 = 'changed' WHERE version = 1", []).unwrap();
    match SqliteStore::open(&path) {
        Err(StoreError::Corrupt(message)) => {
            assert!(message.contains("0001_initial") && message.contains("changed"), "{message}")
        }
        other => panic!("a changed migration was accepted: {other:?}"),
    }
    assert!(matches!(migrate(&path), Err(StoreError::Corrupt(_))));
}

#[test]
fn a_database_from_a_newer_optin_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir);
    drop(SqliteStore::open(&path).unwrap());
    raw(&path).execute("INSERT INTO schema_migrations VALUES (999, '0999_future', 'x', 0)", []).unwrap();
    match SqliteStore::open(&path) {
        Err(StoreError::Corrupt(message)) => assert!(message.contains("newer"), "{message}"),
        other => panic!("an unknown migration was accepted: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reservations_under_the_messaging_limit_survive_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir);
    let store = SqliteStore::open(&path).unwrap();
    optin_store::testing::reservations_survive_reopening(std::sync::Arc::new(store), |first| async move {
        // A second store on the same file (as another process would open it), then the first closes.
        let second: std::sync::Arc<dyn Store> = std::sync::Arc::new(SqliteStore::open(&path).unwrap());
        drop(first);
        second
    })
    .await;
}
