//! The PostgreSQL store on a real server: each test creates its own database
//! (`OPTIN_TEST_POSTGRES_URL`, default `postgres://postgres@127.0.0.1:5432/test`) and drops it.

mod channel;
mod ledger;
mod migrations;
mod servers;
mod support;

use std::sync::Arc;

use optin_store_postgres::{PostgresStore, TestDatabase};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_passes_the_contract_suite() {
    let database = TestDatabase::create().await;
    let store = PostgresStore::connect(database.url()).await.unwrap();
    optin_store::testing::run_contract_suite(Arc::new(store)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reservations_under_the_messaging_limit_survive_a_new_pool() {
    let database = TestDatabase::create().await;
    let store = PostgresStore::connect(database.url()).await.unwrap();
    let url = database.url().to_owned();
    optin_store::testing::reservations_survive_reopening(Arc::new(store), |first| async move {
        drop(first);
        let second: Arc<dyn optin_store::Store> = Arc::new(PostgresStore::connect(&url).await.unwrap());
        second
    })
    .await;
}
