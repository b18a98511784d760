//! Migrations: applied once per database, even by servers starting together; never edited.

use optin_store::{Store, StoreError};
use optin_store_postgres::{PostgresStore, TestDatabase};
use sha2::Digest;

use crate::support::raw_connection;

/// Every migration, in order.
const ALL_MIGRATIONS: [&str; 6] =
    ["0001_initial", "0002_whatsapp", "0003_forwarded", "0004_messaging_limit", "0005_consent_basis", "0006_documents"];

#[tokio::test]
async fn migrations_are_applied_once() {
    let database = TestDatabase::create().await;
    assert_eq!(PostgresStore::migrate(database.url()).await.unwrap(), ALL_MIGRATIONS);
    assert!(PostgresStore::migrate(database.url()).await.unwrap().is_empty());
    let store = PostgresStore::connect(database.url()).await.unwrap();
    store.ping().await.unwrap();
    PostgresStore::connect(database.url()).await.unwrap().ping().await.unwrap();

    let raw = raw_connection(database.url()).await;
    let rows = raw.query("SELECT version, name, sha256 FROM schema_migrations ORDER BY version", &[]).await.unwrap();
    let names: Vec<&str> = rows.iter().map(|row| row.get("name")).collect();
    assert_eq!(names, ALL_MIGRATIONS);
    assert_eq!(rows[0].get::<_, &str>("sha256").len(), 64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn servers_starting_together_apply_the_migrations_once() {
    let database = TestDatabase::create().await;
    let starts = (0..4).map(|_| {
        let url = database.url().to_owned();
        tokio::spawn(async move { optin_store_postgres::migrate(&url).await.unwrap() })
    });
    let mut applied = Vec::new();
    for start in starts {
        applied.extend(start.await.unwrap());
    }
    assert_eq!(applied, ALL_MIGRATIONS, "exactly one of them applied the migrations");
}

#[tokio::test]
async fn a_changed_migration_is_refused() {
    let database = TestDatabase::create().await;
    PostgresStore::migrate(database.url()).await.unwrap();
    let raw = raw_connection(database.url()).await;
    raw.batch_execute("UPDATE schema_migrations SET sha256 = repeat('0', 64) WHERE version = 1").await.unwrap();

    for refused in
        [PostgresStore::connect(database.url()).await.err(), PostgresStore::migrate(database.url()).await.err()]
    {
        match refused {
            Some(StoreError::Corrupt(message)) => {
                assert!(message.contains("0001_initial") && message.contains("checksum"), "{message}");
            }
            other => panic!("a changed checksum was not refused: {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_database_migrated_by_a_newer_optin_is_refused() {
    let database = TestDatabase::create().await;
    PostgresStore::migrate(database.url()).await.unwrap();
    let raw = raw_connection(database.url()).await;
    let sql = "INSERT INTO schema_migrations (version, name, sha256) VALUES (999, '0999_future', repeat('0', 64))";
    raw.batch_execute(sql).await.unwrap();
    let refused = PostgresStore::connect(database.url()).await;
    assert!(matches!(&refused, Err(StoreError::Corrupt(m)) if m.contains("0999_future")), "{refused:?}");
}

#[tokio::test]
async fn an_unreachable_database_is_unavailable_and_the_password_is_not_shown() {
    let refused = PostgresStore::connect("postgres://optin:hunter2secret@127.0.0.1:1/optin?connect_timeout=2").await;
    let Err(error @ StoreError::Unavailable(_)) = refused else { panic!("{refused:?}") };
    let shown = format!("{error} {error:?} {:?}", std::error::Error::source(&error));
    assert!(!shown.contains("hunter2"), "{shown}");
}

#[tokio::test]
async fn a_database_of_the_first_version_is_upgraded_keeping_its_data() {
    let database = TestDatabase::create().await;
    let raw = raw_connection(database.url()).await;
    let initial = include_str!("../../migrations/0001_initial.sql");
    raw.batch_execute(initial).await.unwrap();
    raw.batch_execute(
        "CREATE TABLE schema_migrations (version integer PRIMARY KEY, name text NOT NULL, sha256 text NOT NULL,
                                         applied_at timestamptz NOT NULL DEFAULT now());
         INSERT INTO businesses (id, name, created_at) VALUES ('6f1d2a3e-0000-4000-8000-000000000001', 'Old', 0);
         INSERT INTO chain_heads (business_id, last_index, last_hash)
         VALUES ('6f1d2a3e-0000-4000-8000-000000000001', 0, NULL)",
    )
    .await
    .unwrap();
    let checksum = hex::encode(sha2::Sha256::digest(initial.replace("\r\n", "\n").as_bytes()));
    let sql = "INSERT INTO schema_migrations (version, name, sha256) VALUES (1, '0001_initial', $1)";
    raw.execute(sql, &[&checksum]).await.unwrap();

    assert_eq!(PostgresStore::migrate(database.url()).await.unwrap(), ALL_MIGRATIONS[1..]);
    let store = PostgresStore::connect(database.url()).await.unwrap();
    let businesses = store.list_businesses().await.unwrap();
    assert_eq!(businesses.iter().map(|b| b.name.as_str()).collect::<Vec<_>>(), ["Old"]);
    let id = store.insert_delivery(businesses[0].id, jiff::Timestamp::now(), b"{}").await.unwrap();
    assert!(store.delivery(businesses[0].id, id).await.unwrap().is_some());
}
