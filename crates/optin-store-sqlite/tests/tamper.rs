//! The ledger is append-only in the schema, and tampering behind the store's back is detected.

mod common;

use common::{acme, db_path, opt_in, opt_out, raw};
use optin_core::business::Business;
use optin_core::ledger::BreakKind;
use optin_store::Store;
use optin_store::ledger::verify_ledger;
use optin_store_sqlite::SqliteStore;

/// Five events: opt-ins and an opt-out over three contacts.
async fn five_events(store: &dyn Store) -> Business {
    let (business, _, notice) = acme(store).await;
    opt_in(store, &business, &notice, "+14155550001", &["offers"]).await;
    opt_in(store, &business, &notice, "+14155550002", &["offers", "order_updates"]).await;
    opt_in(store, &business, &notice, "+14155550003", &["order_updates"]).await;
    opt_out(store, &business, "+14155550002", Some(&["offers"])).await;
    opt_in(store, &business, &notice, "+14155550001", &["order_updates"]).await;
    let report = verify_ledger(store, business.id).await.unwrap();
    assert!(report.is_intact() && report.verified_events == 5, "{report:?}");
    business
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_cannot_be_changed_or_removed_while_the_triggers_exist() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&db_path(&dir)).unwrap();
    let business = five_events(&store).await;
    let conn = raw(&db_path(&dir));
    let id = business.id.to_string();

    let update = conn.execute("UPDATE consent_events SET content = '{}' WHERE business_id = ?1", [&id]);
    assert!(update.unwrap_err().to_string().contains("append-only"));
    let delete = conn.execute("DELETE FROM consent_events WHERE business_id = ?1 AND chain_index = 5", [&id]);
    assert!(delete.unwrap_err().to_string().contains("append-only"));

    let report = verify_ledger(&store, business.id).await.unwrap();
    assert!(report.is_intact() && report.verified_events == 5, "{report:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampering_without_the_triggers_is_found_at_the_first_broken_index() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&db_path(&dir)).unwrap();
    let changed = five_events(&store).await;
    let middle_removed = five_events(&store).await;
    let last_removed = five_events(&store).await;
    let untouched = five_events(&store).await;

    let conn = raw(&db_path(&dir));
    conn.execute_batch("DROP TRIGGER consent_events_no_update; DROP TRIGGER consent_events_no_delete;").unwrap();
    let changed_rows = conn
        .execute(
            "UPDATE consent_events SET content = replace(content, 'web_form', 'paper')
             WHERE business_id = ?1 AND chain_index = 3",
            [changed.id.to_string()],
        )
        .unwrap();
    assert_eq!(changed_rows, 1);
    let removed = "DELETE FROM consent_events WHERE business_id = ?1 AND chain_index = ?2";
    assert_eq!(conn.execute(removed, (middle_removed.id.to_string(), 2)).unwrap(), 1);
    assert_eq!(conn.execute(removed, (last_removed.id.to_string(), 5)).unwrap(), 1);

    let report = verify_ledger(&store, changed.id).await.unwrap();
    let first_break = report.first_break.clone().expect("a changed event is detected");
    assert_eq!((first_break.index, first_break.kind), (3, BreakKind::ContentChanged), "{report:?}");
    assert_eq!(report.verified_events, 2);

    let report = verify_ledger(&store, middle_removed.id).await.unwrap();
    let first_break = report.first_break.clone().expect("a removed event is detected");
    assert_eq!((first_break.index, first_break.kind), (2, BreakKind::MissingEvent), "{report:?}");
    assert_eq!(report.verified_events, 1);

    let report = verify_ledger(&store, last_removed.id).await.unwrap();
    let first_break = report.first_break.clone().expect("a removed last event is detected");
    assert_eq!((first_break.index, first_break.kind), (5, BreakKind::HeadMismatch), "{report:?}");
    assert_eq!(report.verified_events, 4);

    let report = verify_ledger(&store, untouched.id).await.unwrap();
    assert!(report.is_intact() && report.verified_events == 5, "{report:?}");
}
