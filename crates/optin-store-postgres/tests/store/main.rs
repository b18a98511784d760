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
