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
    assert_eq!((applied_before, applied_after), (7, 7));
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
            "0006_documents",
            "0007_checks_without_lists"
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

/// A database as migrations 0001 to 0006 left it, with consent states and webhook deliveries
/// (the last delivery removed, so that its id was used but is no longer in the table).
fn database_at_the_sixth_migration(path: &std::path::Path) -> optin_core::ids::BusinessId {
    let conn = raw(path);
    conn.execute_batch(
        "CREATE TABLE schema_migrations (
             version INTEGER PRIMARY KEY, name TEXT NOT NULL, sha256 TEXT NOT NULL, applied_at INTEGER NOT NULL
         ) STRICT;",
    )
    .unwrap();
    let migrations = [
        ("0001_initial", include_str!("../migrations/0001_initial.sql")),
        ("0002_whatsapp", include_str!("../migrations/0002_whatsapp.sql")),
        ("0003_forwarded", include_str!("../migrations/0003_forwarded.sql")),
        ("0004_messaging_limit", include_str!("../migrations/0004_messaging_limit.sql")),
        ("0005_consent_basis", include_str!("../migrations/0005_consent_basis.sql")),
        ("0006_documents", include_str!("../migrations/0006_documents.sql")),
    ];
    for (version, (name, sql)) in (1..).zip(migrations) {
        conn.execute_batch(sql).unwrap();
        let hash = optin_core::ledger::Hash::of(sql.as_bytes()).to_hex();
        conn.execute("INSERT INTO schema_migrations VALUES (?1, ?2, ?3, 0)", rusqlite::params![version, name, hash])
            .unwrap();
    }
    let business = optin_core::ids::BusinessId::from_uuid(uuid::Uuid::new_v4());
    let id = business.to_string();
    conn.execute("INSERT INTO businesses VALUES (?1, 'Old Shoes', 0)", [&id]).unwrap();
    conn.execute("INSERT INTO categories VALUES (?1, 0, 'offers', 'marketing')", [&id]).unwrap();
    conn.execute("INSERT INTO categories VALUES (?1, 1, 'order_updates', 'utility')", [&id]).unwrap();
    conn.execute_batch(&format!(
        "INSERT INTO consent_state VALUES
             ('{id}', 14155550100, 'offers', 'opted_in', 1, 'e1', 'web_form', NULL, NULL, 'express', 1),
             ('{id}', 14155550100, 'order_updates', 'opted_out', 2, 'e2', NULL, NULL, 2, NULL, NULL),
             ('{id}', 14155550101, 'offers', 'pending_confirmation', 3, 'e3', 'web_form', NULL, NULL,
              'express', 3);
         INSERT INTO inbox (business_id, received_at, body) VALUES ('{id}', 1, x'7b7d'), ('{id}', 2, x'7b7d'),
             ('{id}', 3, x'7b7d');
         UPDATE inbox SET state = 'processed', processed_at = 4 WHERE id = 1;
         DELETE FROM inbox WHERE id = 3;"
    ))
    .unwrap();
    business
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checks_without_lists_keep_the_rows_the_rules_and_the_delivery_ids() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir);
    let business = database_at_the_sixth_migration(&path);
    let states = |conn: &rusqlite::Connection| -> Vec<(i64, String, String, Option<String>)> {
        let mut stmt =
            conn.prepare("SELECT phone, category, status, basis FROM consent_state ORDER BY phone, category").unwrap();
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))).unwrap().map(Result::unwrap).collect()
    };
    let before = states(&raw(&path));
    assert_eq!(migrate(&path).unwrap(), ["0007_checks_without_lists"]);

    let conn = raw(&path);
    assert_eq!(states(&conn), before, "every consent state is kept");
    let deliveries: Vec<(i64, String)> = conn
        .prepare("SELECT id, state FROM inbox ORDER BY id")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(deliveries, [(1, "processed".to_owned()), (2, "pending".to_owned())]);
    let sql = conn
        .query_row(
            "SELECT group_concat(sql) FROM sqlite_master WHERE tbl_name IN ('consent_state', 'inbox')",
            [],
            |r| r.get::<_, String>(0),
        )
        .unwrap();
    assert!(!sql.contains(" IN ("), "{sql}");
    assert!(sql.contains("inbox_by_state") && sql.contains("inbox_by_business"), "the inbox keeps its indexes: {sql}");
    // The rules still hold.
    let id = business.to_string();
    let bad_status = conn.execute(
        "INSERT INTO consent_state VALUES (?1, 14155550102, 'offers', 'maybe', 1, 'e4', NULL, NULL, NULL, NULL, NULL)",
        [&id],
    );
    assert!(bad_status.unwrap_err().to_string().contains("CHECK constraint failed"));
    let bad_basis = conn.execute(
        "INSERT INTO consent_state VALUES (?1, 14155550102, 'offers', 'opted_in', 1, 'e4', NULL, NULL, NULL, 'hearsay', 1)",
        [&id],
    );
    assert!(bad_basis.unwrap_err().to_string().contains("CHECK constraint failed"));
    let bad_state = conn.execute("UPDATE inbox SET state = 'lost' WHERE id = 2", []);
    assert!(bad_state.unwrap_err().to_string().contains("CHECK constraint failed"));

    let store = SqliteStore::open(&path).unwrap();
    let bits = store.consent_bits(&store.business(business).await.unwrap().unwrap(), phone("+14155550100")).await;
    assert_eq!(bits.unwrap(), ConsentBits { opted_in: 0b01, opted_out: 0b10, ..ConsentBits::default() });
    let next = store.insert_delivery(business, jiff::Timestamp::now(), b"{}").await.unwrap();
    assert_eq!(next, 4, "a removed delivery's id is not given again");
}
