//! Two stores on one file (a server and the `optin` CLI, say) see each other's writes at once.

mod common;

use common::{acme, db_path, number, opt_in, opt_out};
use jiff::Timestamp;
use optin_core::business::{Category, CategoryName, TemplateCategory};
use optin_core::consent::ConsentBits;
use optin_core::phone::PhoneNumber;
use optin_store::Store;
use optin_store::ledger::verify_ledger;
use optin_store::tenancy::issue_key;
use optin_store_sqlite::SqliteStore;

fn phone(text: &str) -> PhoneNumber {
    PhoneNumber::from_e164(text).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consent_recorded_by_one_store_is_seen_by_the_others_next_lookup() {
    let dir = tempfile::tempdir().unwrap();
    let server = SqliteStore::open(&db_path(&dir)).unwrap();
    let cli = SqliteStore::open(&db_path(&dir)).unwrap();
    let (business, _, notice) = acme(&server).await;
    let contact = "+14155550100";

    assert_eq!(cli.business(business.id).await.unwrap().as_ref(), Some(&business));
    assert_eq!(cli.consent_bits(&business, phone(contact)).await.unwrap(), ConsentBits::default());
    opt_in(&server, &business, &notice, contact, &["offers", "order_updates"]).await;
    assert_eq!(
        cli.consent_bits(&business, phone(contact)).await.unwrap(),
        ConsentBits { opted_in: 0b11, opted_out: 0, ..ConsentBits::default() }
    );

    // The CLI records an opt-out: the server's very next lookup sees it.
    assert_eq!(server.consent_bits(&business, phone(contact)).await.unwrap().opted_in, 0b11);
    opt_out(&cli, &business, contact, Some(&["offers"])).await;
    assert_eq!(
        server.consent_bits(&business, phone(contact)).await.unwrap(),
        ConsentBits { opted_in: 0b01, opted_out: 0b10, ..ConsentBits::default() }
    );
    opt_out(&cli, &business, contact, None).await;
    assert_eq!(
        server.consent_bits(&business, phone(contact)).await.unwrap(),
        ConsentBits { opted_in: 0, opted_out: 0b11, ..ConsentBits::default() }
    );
    assert_eq!(server.contact_consent(business.id, phone(contact)).await.unwrap().len(), 2);

    // Both append to the same chain, each reading the head inside its own transaction.
    for n in 0..20 {
        let store: &dyn Store = if n % 2 == 0 { &server } else { &cli };
        let recorded = opt_in(store, &business, &notice, &number(n), &["offers"]).await;
        assert_eq!(recorded.chain_index, 4 + u64::from(n));
        let other: &dyn Store = if n % 2 == 0 { &cli } else { &server };
        assert_eq!(other.consent_bits(&business, phone(&number(n))).await.unwrap().opted_in, 0b10);
    }
    for store in [&server, &cli] {
        let report = verify_ledger(store, business.id).await.unwrap();
        assert!(report.is_intact() && report.verified_events == 23, "{report:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_in_two_stores_keep_one_chain() {
    let dir = tempfile::tempdir().unwrap();
    let server = SqliteStore::open(&db_path(&dir)).unwrap();
    let cli = SqliteStore::open(&db_path(&dir)).unwrap();
    let (business, _, notice) = acme(&server).await;
    let writes = (0..60).map(|n| {
        let store: &dyn Store = if n % 2 == 0 { &server } else { &cli };
        let (business, notice) = (&business, &notice);
        async move { opt_in(store, business, notice, &number(n), &["offers"]).await.chain_index }
    });
    let mut indexes = futures::future::join_all(writes).await;
    indexes.sort_unstable();
    assert_eq!(indexes, (1..=60).collect::<Vec<u64>>());
    for n in 0..60 {
        for store in [&server, &cli] {
            assert_eq!(store.consent_bits(&business, phone(&number(n))).await.unwrap().opted_in, 0b10);
        }
    }
    let report = verify_ledger(&cli, business.id).await.unwrap();
    assert!(report.is_intact() && report.verified_events == 60, "{report:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_revoked_by_one_store_stops_authenticating_on_the_other() {
    let dir = tempfile::tempdir().unwrap();
    let server = SqliteStore::open(&db_path(&dir)).unwrap();
    let cli = SqliteStore::open(&db_path(&dir)).unwrap();
    let (business, first_key, _) = acme(&server).await;
    let second = issue_key(business.id, "ci", Timestamp::now());
    cli.create_api_key(&second.record).await.unwrap();

    for _ in 0..3 {
        // Repeated so that the answers are cached.
        assert_eq!(server.authenticate(&second.record.secret_hash).await.unwrap(), Some(business.id));
        assert_eq!(cli.authenticate(&first_key.record.secret_hash).await.unwrap(), Some(business.id));
    }
    cli.revoke_api_key(business.id, second.record.id, Timestamp::now()).await.unwrap();
    assert_eq!(server.authenticate(&second.record.secret_hash).await.unwrap(), None);
    server.revoke_api_key(business.id, first_key.record.id, Timestamp::now()).await.unwrap();
    assert_eq!(cli.authenticate(&first_key.record.secret_hash).await.unwrap(), None);
    assert_eq!(server.authenticate(&first_key.record.secret_hash).await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn business_changes_by_one_store_are_seen_by_the_other() {
    let dir = tempfile::tempdir().unwrap();
    let server = SqliteStore::open(&db_path(&dir)).unwrap();
    let cli = SqliteStore::open(&db_path(&dir)).unwrap();
    let (business, _, _) = acme(&server).await;
    assert_eq!(server.business(business.id).await.unwrap().as_ref(), Some(&business)); // cached
    let recommendations = Category {
        name: CategoryName::parse("recommendations").unwrap(),
        template_category: TemplateCategory::Marketing,
    };
    let updated = cli.add_categories(business.id, &[recommendations]).await.unwrap();
    assert_eq!(updated.categories.len(), 3);
    assert_eq!(server.business(business.id).await.unwrap().as_ref(), Some(&updated));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_concurrency_every_write_is_seen_by_both_stores_once_it_returned() {
    let dir = tempfile::tempdir().unwrap();
    let stores =
        std::sync::Arc::new([SqliteStore::open(&db_path(&dir)).unwrap(), SqliteStore::open(&db_path(&dir)).unwrap()]);
    let (business, _, notice) = acme(&stores[0]).await;
    let tasks: Vec<_> = (0..100)
        .map(|n: u32| {
            let (stores, business, notice) = (std::sync::Arc::clone(&stores), business.clone(), notice.clone());
            tokio::spawn(async move {
                let contact = phone(&number(n));
                let (first, second) = (&stores[(n % 2) as usize], &stores[1 - (n % 2) as usize]);
                opt_in(first, &business, &notice, &number(n), &["offers", "order_updates"]).await;
                for store in stores.iter() {
                    let bits = store.consent_bits(&business, contact).await.unwrap();
                    assert_eq!(
                        bits,
                        ConsentBits { opted_in: 0b11, opted_out: 0, ..ConsentBits::default() },
                        "after the opt-in of {n}"
                    );
                }
                opt_out(second, &business, &number(n), Some(&["offers"])).await;
                for store in stores.iter() {
                    let bits = store.consent_bits(&business, contact).await.unwrap();
                    assert_eq!(
                        bits,
                        ConsentBits { opted_in: 0b01, opted_out: 0b10, ..ConsentBits::default() },
                        "after the opt-out of {n}"
                    );
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let report = verify_ledger(&stores[1], business.id).await.unwrap();
    assert!(report.is_intact() && report.verified_events == 200, "{report:?}");
}

/// Runs only as the child of `a_separate_process_is_followed`: opts a contact out of everything
/// and revokes a key, through its own store, then exits.
#[test]
fn child_process_writes() {
    let (Some(path), Some(business), Some(key)) = (
        std::env::var_os("OPTIN_TEST_CHILD_DB"),
        std::env::var("OPTIN_TEST_CHILD_BUSINESS").ok(),
        std::env::var("OPTIN_TEST_CHILD_KEY").ok(),
    ) else {
        return;
    };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let store = SqliteStore::open(std::path::Path::new(&path)).unwrap();
        let business = store.business(business.parse().unwrap()).await.unwrap().unwrap();
        opt_out(&store, &business, "+14155550177", None).await;
        store.revoke_api_key(business.id, key.parse().unwrap(), Timestamp::now()).await.unwrap();
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_separate_process_is_followed() {
    let dir = tempfile::tempdir().unwrap();
    let server = SqliteStore::open(&db_path(&dir)).unwrap();
    let (business, key, notice) = acme(&server).await;
    opt_in(&server, &business, &notice, "+14155550177", &["offers", "order_updates"]).await;
    let contact = phone("+14155550177");
    assert_eq!(server.consent_bits(&business, contact).await.unwrap().opted_in, 0b11);
    assert_eq!(server.authenticate(&key.record.secret_hash).await.unwrap(), Some(business.id));

    let status = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_process_writes", "--test-threads=1"])
        .env("OPTIN_TEST_CHILD_DB", db_path(&dir))
        .env("OPTIN_TEST_CHILD_BUSINESS", business.id.to_string())
        .env("OPTIN_TEST_CHILD_KEY", key.record.id.to_string())
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "the child process failed: {status}");

    assert_eq!(
        server.consent_bits(&business, contact).await.unwrap(),
        ConsentBits { opted_in: 0, opted_out: 0b11, ..ConsentBits::default() }
    );
    assert_eq!(server.authenticate(&key.record.secret_hash).await.unwrap(), None);
    let report = verify_ledger(&server, business.id).await.unwrap();
    assert!(report.is_intact() && report.verified_events == 2, "{report:?}");
}
