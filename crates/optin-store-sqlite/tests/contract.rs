//! The storage contract suite, on a real SQLite file.

use std::sync::Arc;

use optin_store::testing::run_contract_suite;
use optin_store_sqlite::SqliteStore;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_store_passes_the_contract_suite() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("optin.db")).unwrap();
    run_contract_suite(Arc::new(store)).await;
}

#[tokio::test(flavor = "current_thread")]
async fn sqlite_store_passes_the_contract_suite_on_a_current_thread_runtime() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("optin.db")).unwrap();
    run_contract_suite(Arc::new(store)).await;
}
