//! The WhatsApp channel on PostgreSQL with several servers: claims, sightings and webhook
//! deduplication decided by the database, never by one process.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use optin_core::phone::PhoneNumber;
use optin_store::Store;
use optin_store::channel::{DeliveryOutcome, DeliveryState, NewSignal, Sighting, SignalFilter, SignalKind};
use optin_store_postgres::{PostgresStore, TestDatabase};
use serde_json::json;

use crate::support::{new_business, opt_out, phone, raw_connection};

const LEASE: Duration = Duration::from_secs(60);

async fn two_servers(database: &TestDatabase) -> [Arc<PostgresStore>; 2] {
    let first = PostgresStore::connect_with_pool_size(database.url(), 4).await.unwrap();
    let second = PostgresStore::connect_with_pool_size(database.url(), 4).await.unwrap();
    [Arc::new(first), Arc::new(second)]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_servers_claiming_at_once_never_get_the_same_delivery() {
    let database = TestDatabase::create().await;
    let servers = two_servers(&database).await;
    let (business, _) = new_business(servers[0].as_ref()).await;
    let now = Timestamp::now();
    let mut inserted = BTreeSet::new();
    for n in 0..300_u32 {
        inserted.insert(servers[n as usize % 2].insert_delivery(business.id, now, &n.to_be_bytes()).await.unwrap());
    }

    // Eight claimers per server, each claiming small batches until nothing is left.
    let mut claimers = tokio::task::JoinSet::new();
    for claimer in 0..16 {
        let store = Arc::clone(&servers[claimer % 2]);
        claimers.spawn(async move {
            let mut claimed = Vec::new();
            loop {
                let batch = store.claim_deliveries(now, LEASE, 7).await.unwrap();
                if batch.is_empty() {
                    return claimed;
                }
                assert!(batch.windows(2).all(|pair| pair[0].id < pair[1].id), "a batch comes oldest first");
                claimed.extend(batch.into_iter().map(|delivery| (delivery.id, delivery.attempts)));
            }
        });
    }
    let claimed: Vec<(i64, u32)> = claimers.join_all().await.into_iter().flatten().collect();
    let distinct: BTreeSet<i64> = claimed.iter().map(|(id, _)| *id).collect();
    assert_eq!(claimed.len(), distinct.len(), "a delivery was claimed twice");
    assert_eq!(distinct, inserted, "every delivery was claimed");
    assert!(claimed.iter().all(|(_, attempts)| *attempts == 1));

    // Held until the lease ends, then claimable again (a crashed processor's work is retaken).
    let before_expiry = now + SignedDuration::from_secs(59);
    assert!(servers[1].claim_deliveries(before_expiry, LEASE, 1_000).await.unwrap().is_empty());
    let after_expiry = now + SignedDuration::from_secs(61);
    let retaken = servers[1].claim_deliveries(after_expiry, LEASE, 1_000).await.unwrap();
    assert_eq!(retaken.len(), 300);
    assert!(retaken.iter().all(|delivery| delivery.attempts == 2 && delivery.state == DeliveryState::Pending));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finished_deliveries_are_not_claimed_again_until_requeued() {
    let database = TestDatabase::create().await;
    let [one, other] = two_servers(&database).await;
    let (business, _) = new_business(one.as_ref()).await;
    let now = Timestamp::now();
    let first = one.insert_delivery(business.id, now, b"{}").await.unwrap();
    let second = one.insert_delivery(business.id, now, b"[]").await.unwrap();
    assert_eq!(other.claim_deliveries(now, LEASE, 10).await.unwrap().len(), 2);

    let outcomes = [
        (first, DeliveryOutcome::Processed { note: None }),
        (second, DeliveryOutcome::Failed { error: "bad body".into() }),
    ];
    one.finish_deliveries(&outcomes, now).await.unwrap();
    let later = now + SignedDuration::from_secs(3_600);
    assert!(other.claim_deliveries(later, LEASE, 10).await.unwrap().is_empty());
    let failed = other.delivery(business.id, second).await.unwrap().unwrap();
    assert_eq!((failed.state, failed.note.as_deref()), (DeliveryState::Failed, Some("bad body")));

    other.requeue_delivery(business.id, second).await.unwrap();
    let retried = one.claim_deliveries(later, LEASE, 10).await.unwrap();
    assert_eq!(retried.iter().map(|d| (d.id, d.attempts)).collect::<Vec<_>>(), [(second, 2)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_sightings_of_one_person_make_one_contact() {
    let database = TestDatabase::create().await;
    let servers = two_servers(&database).await;
    let (business, _) = new_business(servers[0].as_ref()).await;
    let start = Timestamp::now();

    // Twenty people, each seen by phone, by user id and by both, from both servers at once.
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..120_u32 {
        let store = Arc::clone(&servers[n as usize % 2]);
        let person = n % 20;
        let sighting = Sighting {
            phone: (n % 3 != 1).then(|| phone(person)),
            user_id: (n % 3 != 0).then(|| format!("US.{person}")),
            at: start + SignedDuration::from_secs(i64::from(n)),
        };
        tasks.spawn(async move { store.record_sightings(business.id, &[sighting]).await.unwrap() });
    }
    tasks.join_all().await;

    let raw = raw_connection(database.url()).await;
    let count: i64 = raw.query_one("SELECT count(*) FROM thread_contacts", &[]).await.unwrap().get(0);
    assert_eq!(count, 20, "one contact per person");
    for person in 0..20_u32 {
        let contact = servers[1].thread_contact(business.id, Some(phone(person)), None).await.unwrap().unwrap();
        assert_eq!(contact.user_id, Some(format!("US.{person}")));
        let last = (0..120).filter(|n| n % 20 == person).max().unwrap();
        assert_eq!(contact.last_inbound_at, Some(start + SignedDuration::from_secs(i64::from(last))));
        let by_user_id = servers[0].thread_contact(business.id, None, Some(&format!("US.{person}"))).await.unwrap();
        assert_eq!(by_user_id, Some(contact));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_contact_known_twice_is_merged_into_the_phone_contact() {
    let database = TestDatabase::create().await;
    let store = PostgresStore::connect(database.url()).await.unwrap();
    let (business, _) = new_business(&store).await;
    let start = Timestamp::now();
    let number = phone(7);
    let seen = |phone: Option<PhoneNumber>, user_id: Option<&str>, seconds: i64| Sighting {
        phone,
        user_id: user_id.map(str::to_owned),
        at: start + SignedDuration::from_secs(seconds),
    };

    store.record_sightings(business.id, &[seen(Some(number), None, 10), seen(None, Some("US.7"), 30)]).await.unwrap();
    store.record_sightings(business.id, &[seen(Some(number), Some("US.7"), 20)]).await.unwrap();
    let merged = store.thread_contact(business.id, Some(number), None).await.unwrap().unwrap();
    assert_eq!(merged.user_id.as_deref(), Some("US.7"));
    assert_eq!(merged.last_inbound_at, Some(start + SignedDuration::from_secs(30)), "the latest of both, never back");

    let raw = raw_connection(database.url()).await;
    let count: i64 = raw.query_one("SELECT count(*) FROM thread_contacts", &[]).await.unwrap().get(0);
    assert_eq!(count, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_webhook_consent_delivered_to_two_servers_at_once_is_recorded_once() {
    let database = TestDatabase::create().await;
    let servers = two_servers(&database).await;
    let (business, _) = new_business(servers[0].as_ref()).await;
    let business = Arc::new(business);

    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..40_u32 {
        let store = Arc::clone(&servers[n as usize % 2]);
        let business = Arc::clone(&business);
        // Ten keys, each delivered four times.
        tasks.spawn(async move {
            let key = format!("wamid.{}", n % 10);
            store.record_consent_once(&business, &key, &opt_out(&business, phone(n % 10))).await.unwrap()
        });
    }
    let recorded: Vec<_> = tasks.join_all().await.into_iter().flatten().collect();
    assert_eq!(recorded.len(), 10);
    let head = servers[1].chain_head(business.id).await.unwrap().unwrap();
    assert_eq!(head.index, 10);
}

#[tokio::test]
async fn signals_repeated_in_one_batch_are_stored_once_and_filter_by_error_code() {
    let database = TestDatabase::create().await;
    let store = PostgresStore::connect(database.url()).await.unwrap();
    let (business, _) = new_business(&store).await;
    let now = Timestamp::now();
    let signal = |key: &str, error_codes: Vec<i64>| NewSignal {
        dedupe_key: key.into(),
        kind: SignalKind::MessageStatus,
        occurred_at: now,
        phone_number_id: Some("1234567890".into()),
        phone: Some(phone(1)),
        user_id: None,
        message_id: Some(format!("wamid.{key}")),
        template_name: None,
        template_language: None,
        category: None,
        status: Some("failed".into()),
        error_codes,
        detail: json!({"title": "Re-engagement message", "nested": {"z": 1, "a": [1.5, null, "\u{0}"]}}),
    };
    let batch =
        [signal("a", vec![131047]), signal("b", vec![]), signal("a", vec![1]), signal("c", vec![131026, 131047])];
    assert_eq!(store.record_signals(business.id, &batch, now).await.unwrap(), 3);
    assert_eq!(store.record_signals(business.id, &batch, now).await.unwrap(), 0);

    let all = store.signals(business.id, &SignalFilter::default()).await.unwrap();
    let keys: Vec<&str> = all.iter().map(|s| s.signal.dedupe_key.as_str()).collect();
    assert_eq!(keys, ["a", "b", "c"], "in the order given");
    assert_eq!(all[0].signal, batch[0], "stored exactly as given");
    let filter = SignalFilter { error_code: Some(131047), ..SignalFilter::default() };
    let with_code = store.signals(business.id, &filter).await.unwrap();
    assert_eq!(with_code.iter().map(|s| s.signal.dedupe_key.as_str()).collect::<Vec<_>>(), ["a", "c"]);
    let filter = SignalFilter { after: Some(all[0].id), limit: 1, ..SignalFilter::default() };
    assert_eq!(store.signals(business.id, &filter).await.unwrap(), &all[1..2]);
}
