//! SQLite store benchmarks: `consent_bits` over 1,000,000 stored contacts, and fsynced
//! `record_consent` throughput with 64 concurrent tasks.
//!
//! `cargo bench -p optin-store-sqlite` (the database goes to a temporary directory; set
//! `OPTIN_BENCH_DIR` to measure on another disk: fsync costs differ a lot between disks).

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use jiff::Timestamp;
use optin_core::business::{Business, BusinessName, Category, CategoryName, TemplateCategory};
use optin_core::consent::{ConsentChange, ConsentEvent, NoticeRef, OptIn};
use optin_core::evidence::{Evidence, Method};
use optin_core::ids::{ApiKeyId, BusinessId, EventId, NoticeId};
use optin_core::notice::{Language, NoticeText};
use optin_core::phone::PhoneNumber;
use optin_store::{NewApiKey, NewNotice, Notice, Store};
use optin_store_sqlite::SqliteStore;
use serde_json::{Map, json};
use uuid::Uuid;

static CONTACTS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
const LOAD_CHUNK: u64 = 50_000;
const WRITERS: usize = 64;
const FIRST_KEY: u64 = 14_152_000_000;

fn main() {
    // OPTIN_BENCH_CONTACTS overrides the number of stored contacts (default 1,000,000).
    let contacts: u64 = std::env::var("OPTIN_BENCH_CONTACTS").ok().and_then(|n| n.parse().ok()).unwrap_or(1_000_000);
    CONTACTS.store(contacts, std::sync::atomic::Ordering::Relaxed);
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let dir = match std::env::var_os("OPTIN_BENCH_DIR") {
        Some(base) => tempfile::tempdir_in(base).unwrap(),
        None => tempfile::tempdir().unwrap(),
    };
    let path = dir.path().join("bench.db");
    let store = Arc::new(SqliteStore::open(&path).unwrap());
    let (business, notice) = runtime.block_on(setup(&store));

    let started = Instant::now();
    runtime.block_on(async {
        for first in (0..contacts).step_by(LOAD_CHUNK as usize) {
            let events =
                (first..(first + LOAD_CHUNK).min(contacts)).map(|n| opt_in(&business, &notice, contact(n))).collect();
            store.bulk_record_for_benchmarks(events).await.unwrap();
        }
    });
    let load = started.elapsed();
    println!(
        "bulk load: {contacts} opt-ins (events + states, chained) in {load:.2?} = {:.0} events/s",
        contacts as f64 / load.as_secs_f64()
    );
    drop(store);
    let started = Instant::now();
    let store = Arc::new(SqliteStore::open(&path).unwrap());
    println!("reopen (migrations checked, index of {contacts} contacts loaded): {:.2?}", started.elapsed());

    let lookups: Arc<[PhoneNumber]> = shuffled_contacts().into();
    let mut criterion = Criterion::default().configure_from_args().measurement_time(Duration::from_secs(5));
    let mut group = criterion.benchmark_group("consent_bits");
    group.throughput(Throughput::Elements(1));
    group.bench_function("consent_bits_now, stored contacts, random order", |b| {
        b.iter_custom(|iters| {
            let started = Instant::now();
            for i in 0..iters as usize {
                black_box(store.consent_bits_now(business.id, lookups[i % lookups.len()]).unwrap());
            }
            started.elapsed()
        })
    });
    group.bench_function("Store::consent_bits (async), stored contacts, random order", |b| {
        b.iter_custom(|iters| {
            runtime.block_on(async {
                let started = Instant::now();
                for i in 0..iters as usize {
                    black_box(store.consent_bits(&business, lookups[i % lookups.len()]).await.unwrap());
                }
                started.elapsed()
            })
        })
    });
    group.bench_function("consent_bits_many, stored contacts, 1000 per call", |b| {
        b.iter_custom(|iters| {
            let started = Instant::now();
            let mut done = 0;
            while done < iters as usize {
                let first = done % (lookups.len() - 1_000);
                black_box(store.consent_bits_many(business.id, &lookups[first..first + 1_000]).unwrap());
                done += 1_000;
            }
            started.elapsed()
        })
    });
    group.bench_function("consent_bits_now, unknown contacts", |b| {
        b.iter_custom(|iters| {
            let started = Instant::now();
            for i in 0..iters {
                let unknown = PhoneNumber::from_key(14_162_000_000 + i % 1_000_000).unwrap();
                black_box(store.consent_bits_now(business.id, unknown).unwrap());
            }
            started.elapsed()
        })
    });
    group.finish();

    lookups_per_cpu_second(&store, business.id, &lookups);
    two_threads_of_lookups(&store, business.id, &lookups);

    let mut group = criterion.benchmark_group("record_consent");
    group.throughput(Throughput::Elements(1)).sample_size(10).measurement_time(Duration::from_secs(10));
    let next = Arc::new(std::sync::atomic::AtomicU64::new(contacts));
    let before = store.writer_stats();
    let writer_cpu_before = writer_thread_schedstat();
    group.bench_function("64 concurrent tasks, synchronous=FULL", |b| {
        b.iter_custom(|iters| runtime.block_on(concurrent_opt_ins(&store, &business, &notice, &next, iters)))
    });
    group.finish();
    let after = store.writer_stats();
    let (batches, commands) = (after.0 - before.0, after.1 - before.1);
    println!(
        "record_consent: {commands} commands in {batches} transactions = {:.1} commands per fsynced commit",
        commands as f64 / batches.max(1) as f64
    );
    if let (Some((cpu_before, queued_before)), Some((cpu, queued))) = (writer_cpu_before, writer_thread_schedstat()) {
        println!(
            "writer thread: {:.1} µs of CPU per command ({:.1} µs per command waiting for a CPU)",
            (cpu - cpu_before) as f64 / commands.max(1) as f64 / 1e3,
            (queued - queued_before) as f64 / commands.max(1) as f64 / 1e3
        );
    }
    lookups_while_writing(&runtime, &store, &business, &notice, &lookups, &next);
    criterion.final_summary();
}

async fn setup(store: &SqliteStore) -> (Business, Notice) {
    let business = Business {
        id: BusinessId::from_uuid(Uuid::new_v4()),
        name: BusinessName::parse("Acme Shoes").unwrap(),
        brand_names: Vec::new(),
        categories: [("order_updates", TemplateCategory::Utility), ("offers", TemplateCategory::Marketing)]
            .map(|(name, template_category)| Category { name: CategoryName::parse(name).unwrap(), template_category })
            .to_vec(),
        created_at: Timestamp::now(),
    };
    let key = NewApiKey {
        id: ApiKeyId::from_uuid(Uuid::new_v4()),
        business_id: business.id,
        secret_hash: "0".repeat(64),
        label: "bench".into(),
        created_at: Timestamp::now(),
    };
    store.create_business(&business, &key).await.unwrap();
    let notice = store
        .register_notice(&NewNotice {
            id: NoticeId::from_uuid(Uuid::new_v4()),
            business_id: business.id,
            language: Language::parse("en").unwrap(),
            text: NoticeText::parse("I agree to receive offers from Acme Shoes on WhatsApp.").unwrap(),
            warnings: Vec::new(),
            created_at: Timestamp::now(),
        })
        .await
        .unwrap();
    (business, notice)
}

fn contact(n: u64) -> PhoneNumber {
    PhoneNumber::from_key(FIRST_KEY + n).unwrap()
}

fn opt_in(business: &Business, notice: &Notice, phone: PhoneNumber) -> ConsentEvent {
    let now = Timestamp::now();
    let evidence =
        json!({"batch_id": "bench", "original_method": "web_form"}).as_object().cloned().unwrap_or_else(Map::new);
    ConsentEvent {
        id: EventId::from_uuid(Uuid::new_v4()),
        business_id: business.id,
        phone,
        change: ConsentChange::OptIn(OptIn {
            categories: business.all_category_names(),
            method: Method::Import,
            notice: NoticeRef {
                id: notice.id,
                version: notice.version,
                language: notice.language.as_str().to_owned(),
                text_sha256: notice.text_sha256.clone(),
            },
            evidence: Evidence::recorded(evidence),
            collected_at: now,
            basis: Default::default(),
            basis_at: None,
            needs_confirmation: false,
        }),
        recorded_at: now,
    }
}

/// The stored contacts in a random order (so that lookups miss the CPU caches, as in production).
fn shuffled_contacts() -> Vec<PhoneNumber> {
    let mut contacts: Vec<PhoneNumber> =
        (0..CONTACTS.load(std::sync::atomic::Ordering::Relaxed)).map(contact).collect();
    optin_store::testing::shuffle(&mut contacts);
    contacts
}

/// Nanoseconds this thread ran on a CPU (Linux), to measure without other processes' noise.
fn thread_cpu_ns() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    stat.split_whitespace().next()?.parse().ok()
}

/// (ns on a CPU, ns waiting for one) of the store's writer thread (Linux).
fn writer_thread_schedstat() -> Option<(u64, u64)> {
    for task in std::fs::read_dir("/proc/self/task").ok()? {
        let task = task.ok()?.path();
        if std::fs::read_to_string(task.join("comm")).ok()?.trim() == "optin-sqlite-wr" {
            let stat = std::fs::read_to_string(task.join("schedstat")).ok()?;
            let mut fields = stat.split_whitespace().map(|f| f.parse::<u64>().ok());
            return Some((fields.next()??, fields.next()??));
        }
    }
    None
}

fn lookups_per_cpu_second(store: &SqliteStore, business: BusinessId, lookups: &[PhoneNumber]) {
    const LOOKUPS: usize = 5_000_000;
    let (Some(cpu_before), wall_before) = (thread_cpu_ns(), Instant::now()) else { return };
    for i in 0..LOOKUPS {
        black_box(store.consent_bits_now(business, lookups[i % lookups.len()]).unwrap());
    }
    let (cpu, wall) = (thread_cpu_ns().unwrap() - cpu_before, wall_before.elapsed());
    println!(
        "consent_bits_now, one thread: {:.0} ns of CPU per lookup = {:.2} M lookups per CPU-second \
         (wall: {:.2} M/s)",
        cpu as f64 / LOOKUPS as f64,
        LOOKUPS as f64 / (cpu as f64 / 1e9) / 1e6,
        LOOKUPS as f64 / wall.as_secs_f64() / 1e6
    );
}

fn two_threads_of_lookups(store: &Arc<SqliteStore>, business: BusinessId, lookups: &Arc<[PhoneNumber]>) {
    const PER_THREAD: usize = 4_000_000;
    let started = Instant::now();
    let threads: Vec<_> = (0..2)
        .map(|t| {
            let (store, lookups) = (Arc::clone(store), Arc::clone(lookups));
            std::thread::spawn(move || {
                for i in 0..PER_THREAD {
                    black_box(store.consent_bits_now(business, lookups[(i * 2 + t) % lookups.len()]).unwrap());
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    let elapsed = started.elapsed();
    println!(
        "consent_bits_now on 2 threads: {:.2} M lookups/s aggregate",
        (2 * PER_THREAD) as f64 / elapsed.as_secs_f64() / 1e6
    );
}

/// `total` opt-ins of new contacts by 64 tasks; returns the wall time.
async fn concurrent_opt_ins(
    store: &Arc<SqliteStore>,
    business: &Business,
    notice: &Notice,
    next: &Arc<std::sync::atomic::AtomicU64>,
    total: u64,
) -> Duration {
    let remaining = Arc::new(std::sync::atomic::AtomicU64::new(total));
    let started = Instant::now();
    let tasks: Vec<_> = (0..WRITERS)
        .map(|_| {
            let (store, business, notice) = (Arc::clone(store), business.clone(), notice.clone());
            let (next, remaining) = (Arc::clone(next), Arc::clone(&remaining));
            tokio::spawn(async move {
                while remaining
                    .fetch_update(std::sync::atomic::Ordering::Relaxed, std::sync::atomic::Ordering::Relaxed, |r| {
                        r.checked_sub(1)
                    })
                    .is_ok()
                {
                    // Spread new contacts over the key space, like real numbers.
                    let n = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let phone =
                        PhoneNumber::from_key(16_000_000_000 + (n.wrapping_mul(2_654_435_761) % 999_999_999)).unwrap();
                    store.record_consent(&business, &opt_in(&business, &notice, phone)).await.unwrap();
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    started.elapsed()
}

/// Lookups on one thread while 64 tasks write: every commit makes the next lookup catch up.
fn lookups_while_writing(
    runtime: &tokio::runtime::Runtime,
    store: &Arc<SqliteStore>,
    business: &Business,
    notice: &Notice,
    lookups: &Arc<[PhoneNumber]>,
    next: &Arc<std::sync::atomic::AtomicU64>,
) {
    let writing = {
        let (store, business, notice, next) = (Arc::clone(store), business.clone(), notice.clone(), Arc::clone(next));
        runtime.spawn(async move { concurrent_opt_ins(&store, &business, &notice, &next, 20_000).await })
    };
    let started = Instant::now();
    let mut done = 0_usize;
    while !writing.is_finished() {
        for _ in 0..1_000 {
            black_box(store.consent_bits_now(business.id, lookups[done % lookups.len()]).unwrap());
            done += 1;
        }
    }
    let elapsed = started.elapsed();
    let write_time = runtime.block_on(writing).unwrap();
    println!(
        "while 64 tasks wrote 20000 opt-ins ({:.0}/s): {:.2} M lookups/s on one thread",
        20_000.0 / write_time.as_secs_f64(),
        done as f64 / elapsed.as_secs_f64() / 1e6
    );
}
