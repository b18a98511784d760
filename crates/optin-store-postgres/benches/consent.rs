//! Throughput of the PostgreSQL store on its two hot paths, on a fresh database of the local
//! server (`OPTIN_TEST_POSTGRES_URL`, as the tests):
//!
//! - `record_consent` with 64 concurrent tasks, on one business (one chain, whose appends
//!   serialize on its head row) and spread over 16 businesses;
//! - `consent_bits` with 64 concurrent tasks over 100,000 stored contacts.
//!
//! `cargo bench -p optin-store-postgres` runs it in full; without `--bench` (as
//! `cargo test --benches` runs it) it does a small smoke run.

use std::sync::Arc;
use std::time::{Duration, Instant};

use jiff::Timestamp;
use optin_core::business::Business;
use optin_core::consent::{ConsentChange, ConsentEvent, NoticeRef, OptIn};
use optin_core::evidence::{Evidence, Method};
use optin_core::ids::EventId;
use optin_core::phone::PhoneNumber;
use optin_store::Store;
use optin_store::intake::register_notice;
use optin_store::tenancy::{CategoryInput, create_business};
use optin_store_postgres::{PostgresStore, TestDatabase};
use serde_json::json;
use tokio_postgres::NoTls;
use uuid::Uuid;

const TASKS: usize = 64;
const NOTICE: &str = "I agree to receive order updates and offers from Acme Shoes on WhatsApp. Reply STOP to opt out.";

struct Sizes {
    appends_per_task: usize,
    contacts: u64,
    lookups_per_task: usize,
}

fn main() {
    let full = std::env::args().any(|arg| arg == "--bench");
    let sizes = if full {
        Sizes { appends_per_task: 100, contacts: 100_000, lookups_per_task: 4_000 }
    } else {
        Sizes { appends_per_task: 2, contacts: 1_000, lookups_per_task: 10 }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("a runtime");
    runtime.block_on(run(&sizes));
}

async fn run(sizes: &Sizes) {
    let database = TestDatabase::create().await;
    let store = Arc::new(PostgresStore::connect(database.url()).await.expect("connect"));
    println!("optin-store-postgres bench: {TASKS} tasks, pool of {}", optin_store_postgres::DEFAULT_POOL_SIZE);

    let one = vec![Arc::new(opt_in_business(store.as_ref()).await)];
    let (rate, latencies) = appends(&store, &one, sizes.appends_per_task).await;
    report("record_consent, 1 business (one chain)", rate, latencies);

    let mut many = Vec::new();
    for _ in 0..16 {
        many.push(Arc::new(opt_in_business(store.as_ref()).await));
    }
    let (rate, latencies) = appends(&store, &many, sizes.appends_per_task).await;
    report("record_consent, 16 businesses", rate, latencies);

    let business = Arc::new(opt_in_business(store.as_ref()).await.business);
    let seeded = Instant::now();
    seed_contacts(database.url(), &business, sizes.contacts).await;
    println!("seeded {} contacts (2 categories each) in {:.1?}", sizes.contacts, seeded.elapsed());
    let (rate, latencies) = lookups(&store, &business, sizes.contacts, sizes.lookups_per_task).await;
    report(&format!("consent_bits, {} contacts", sizes.contacts), rate, latencies);
}

/// A business with a registered notice, ready for opt-ins.
struct OptInBusiness {
    business: Business,
    notice: NoticeRef,
}

async fn opt_in_business(store: &dyn Store) -> OptInBusiness {
    let categories = [("order_updates", "utility"), ("offers", "marketing")]
        .map(|(name, template)| CategoryInput { name: name.into(), template_category: template.into() });
    let (business, _) = create_business(store, "Acme Shoes", &categories, Timestamp::now()).await.expect("business");
    let notice = register_notice(store, &business, NOTICE, "en", Timestamp::now()).await.expect("notice");
    let notice = NoticeRef {
        id: notice.id,
        version: notice.version,
        language: notice.language.as_str().to_owned(),
        text_sha256: notice.text_sha256,
    };
    OptInBusiness { business, notice }
}

fn opt_in(target: &OptInBusiness, phone: PhoneNumber) -> ConsentEvent {
    let fields = json!({"page_url": "https://acme.example/join", "ip": "203.0.113.9"}).as_object().cloned();
    let evidence = Evidence::for_method(Method::WebForm, fields.unwrap_or_default()).expect("web form evidence");
    let now = Timestamp::now();
    ConsentEvent {
        id: EventId::from_uuid(Uuid::new_v4()),
        business_id: target.business.id,
        phone,
        change: ConsentChange::OptIn(OptIn {
            categories: target.business.all_category_names(),
            method: Method::WebForm,
            notice: target.notice.clone(),
            evidence,
            collected_at: now,
            basis: Default::default(),
            basis_at: None,
            needs_confirmation: false,
        }),
        recorded_at: now,
    }
}

fn phone(n: u64) -> PhoneNumber {
    PhoneNumber::from_key(14_150_000_000 + n).expect("a valid key")
}

async fn appends(
    store: &Arc<PostgresStore>,
    businesses: &[Arc<OptInBusiness>],
    per_task: usize,
) -> (f64, Vec<Duration>) {
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for task in 0..TASKS {
        let store = Arc::clone(store);
        let target = Arc::clone(&businesses[task % businesses.len()]);
        tasks.spawn(async move {
            let mut latencies = Vec::with_capacity(per_task);
            for n in 0..per_task {
                let event = opt_in(&target, phone((task * per_task + n) as u64));
                let call = Instant::now();
                store.record_consent(&target.business, &event).await.expect("record_consent");
                latencies.push(call.elapsed());
            }
            latencies
        });
    }
    let latencies: Vec<Duration> = tasks.join_all().await.into_iter().flatten().collect();
    (latencies.len() as f64 / started.elapsed().as_secs_f64(), latencies)
}

/// Stores opted-in consent for `contacts` numbers directly (only the projection the reads use).
async fn seed_contacts(url: &str, business: &Business, contacts: u64) {
    let (client, connection) = tokio_postgres::connect(url, NoTls).await.expect("raw connection");
    tokio::spawn(connection);
    let sql = "INSERT INTO consent_state (business_id, phone, category, status, since, event_id, method)
               SELECT $1, 14150000000 + n, c.name, 'opted_in', 0, gen_random_uuid(), 'web_form'
               FROM generate_series(0, $2::bigint - 1) AS n CROSS JOIN categories c WHERE c.business_id = $1";
    let count = i64::try_from(contacts).expect("a count");
    client.execute(sql, &[&business.id.as_uuid(), &count]).await.expect("seed");
    client.batch_execute("ANALYZE consent_state").await.expect("analyze");
}

async fn lookups(
    store: &Arc<PostgresStore>,
    business: &Arc<Business>,
    contacts: u64,
    per_task: usize,
) -> (f64, Vec<Duration>) {
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for task in 0..TASKS {
        let store = Arc::clone(store);
        let business = Arc::clone(business);
        tasks.spawn(async move {
            let mut random = 0x9e37_79b9_7f4a_7c15_u64 ^ (task as u64 + 1);
            let mut latencies = Vec::with_capacity(per_task);
            for _ in 0..per_task {
                random ^= random << 13;
                random ^= random >> 7;
                random ^= random << 17;
                // One lookup in ten is of an unknown contact.
                let n = random % (contacts + contacts / 10);
                let call = Instant::now();
                let bits = store.consent_bits(&business, phone(n)).await.expect("consent_bits");
                latencies.push(call.elapsed());
                assert_eq!(bits.opted_in == 0b11, n < contacts);
            }
            latencies
        });
    }
    let latencies: Vec<Duration> = tasks.join_all().await.into_iter().flatten().collect();
    (latencies.len() as f64 / started.elapsed().as_secs_f64(), latencies)
}

fn report(name: &str, per_second: f64, mut latencies: Vec<Duration>) {
    latencies.sort_unstable();
    let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q) as usize];
    println!(
        "{name:<44} {per_second:>9.0} /s   n={:<7} p50 {:>8.2?}  p99 {:>8.2?}  max {:>8.2?}",
        latencies.len(),
        at(0.5),
        at(0.99),
        at(1.0)
    );
}
