//! End-to-end performance of optin, on the same machine as the load generator.
//!
//! `cargo bench -p optin --bench http` (needs `wrk`: `apt-get install wrk`). Environment:
//! - `OPTIN_BENCH_CONTACTS` (default 1,000,000): contacts stored before measuring decisions;
//! - `OPTIN_BENCH_SECONDS` (default 20): duration of each wrk run;
//! - `OPTIN_BENCH_POSTGRES=1`: also measure durable opt-ins on PostgreSQL (a fresh database on
//!   `OPTIN_TEST_POSTGRES_URL`, default `postgres://postgres@127.0.0.1:5432/test`).
//!
//! It measures, on a SQLite file with the contacts stored:
//! 1. in-process decisions through `gate::decide_send` (what a handler runs), one core;
//! 2. `POST /v1/decisions` over HTTP with keep-alive, 64 connections (wrk);
//! 3. durable opt-ins over HTTP (fsynced before the response), 64 connections (wrk).

use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use jiff::Timestamp;
use optin_core::business::{Business, CategoryName};
use optin_core::consent::{ConsentChange, ConsentEvent, NoticeRef, OptIn};
use optin_core::evidence::{Evidence, Method};
use optin_core::ids::EventId;
use optin_core::phone::PhoneNumber;
use optin_http::{AppState, HttpSettings};
use optin_store::Store;
use optin_store::tenancy::CategoryInput;
use optin_store_sqlite::SqliteStore;
use serde_json::json;
use uuid::Uuid;

const NOTICE: &str = "I agree to receive order updates and offers from Bench Shoes on WhatsApp. Reply STOP to opt out.";

fn main() -> anyhow::Result<()> {
    let contacts: usize = env_number("OPTIN_BENCH_CONTACTS", 1_000_000);
    let seconds: u64 = env_number("OPTIN_BENCH_SECONDS", 20) as u64;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async move {
        let directory = tempfile::tempdir()?;
        println!("generating {contacts} valid mobile numbers from 60+ countries...");
        let started = Instant::now();
        let numbers = global_numbers(contacts + contacts / 10 + 200_000);
        println!("  {} numbers in {:.1} s", numbers.len(), started.elapsed().as_secs_f64());
        let (stored, rest) = numbers.split_at(contacts);
        let (unknown, fresh) = rest.split_at(contacts / 10);

        let store = Arc::new(SqliteStore::open(&directory.path().join("optin.db"))?);
        let (business, key, notice) = create_business(store.as_ref()).await?;
        let started = Instant::now();
        load_contacts(&store, &business, &notice, stored).await?;
        println!("stored {contacts} opted-in contacts in {:.1} s", started.elapsed().as_secs_f64());

        in_process_decisions(store.as_ref(), &business, stored).await?;

        let mut audience: Vec<PhoneNumber> = stored.iter().step_by(9).copied().collect();
        audience.extend(unknown.iter().take(audience.len() / 9).copied());
        let decisions_file = write_numbers(directory.path(), "decisions.txt", &audience)?;
        let fresh_file = write_numbers(directory.path(), "fresh.txt", fresh)?;
        let address = start_server(Arc::clone(&store) as Arc<dyn Store>).await?;
        let env = [("OPTIN_API_KEY", key.clone()), ("OPTIN_NOTICE_ID", notice.id.to_string())];
        println!("\nHTTP decisions (90% stored contacts, 10% unknown numbers), SQLite, {contacts} contacts:");
        run_wrk(&address, "decisions.lua", &decisions_file, 64, seconds, &env)?;
        println!("\nHTTP durable opt-ins (fsynced before the response), SQLite:");
        run_wrk(&address, "opt_ins.lua", &fresh_file, 64, seconds, &env)?;

        if std::env::var("OPTIN_BENCH_POSTGRES").is_ok_and(|v| v == "1") {
            let database = optin_store_postgres::TestDatabase::create().await;
            let store: Arc<dyn Store> = Arc::new(optin_store_postgres::PostgresStore::connect(database.url()).await?);
            let (_, key, notice) = create_business(store.as_ref()).await?;
            let address = start_server(store).await?;
            let env = [("OPTIN_API_KEY", key), ("OPTIN_NOTICE_ID", notice.id.to_string())];
            println!("\nHTTP durable opt-ins, PostgreSQL:");
            run_wrk(&address, "opt_ins.lua", &fresh_file, 64, seconds, &env)?;
            println!("\nHTTP decisions, PostgreSQL (contacts from the opt-in run):");
            let recorded: Vec<PhoneNumber> = fresh.iter().take(50_000).copied().collect();
            let file = write_numbers(directory.path(), "pg-decisions.txt", &recorded)?;
            run_wrk(&address, "decisions.lua", &file, 64, seconds, &env)?;
        }
        Ok(())
    })
}

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.replace('_', "").parse().ok()).unwrap_or(default)
}

/// Distinct valid mobile numbers, round-robin over the countries of the benchmark mix.
fn global_numbers(count: usize) -> Vec<PhoneNumber> {
    let seeds: Vec<&str> = include_str!("../../optin-core/benches/global_mobile_numbers.txt")
        .lines()
        .filter(|l| l.starts_with('+'))
        .collect();
    let mut numbers = Vec::with_capacity(count);
    let mut seen = std::collections::HashSet::with_capacity(count);
    for variant in 0u64.. {
        for seed in &seeds {
            let base: u64 = seed[1..].parse().expect("seed numbers are digits");
            let candidate = format!("+{}", base - base % 1_000_000 + (base % 1_000_000 + variant * 7_919) % 1_000_000);
            if let Ok(phone) = PhoneNumber::parse(&candidate, None)
                && seen.insert(phone)
            {
                numbers.push(phone);
                if numbers.len() == count {
                    return numbers;
                }
            }
        }
    }
    unreachable!("the loop returns")
}

async fn create_business(store: &dyn Store) -> anyhow::Result<(Business, String, optin_store::Notice)> {
    let categories = [("order_updates", "utility"), ("offers", "marketing")]
        .map(|(name, kind)| CategoryInput { name: name.into(), template_category: kind.into() });
    let (business, key) =
        optin_store::tenancy::create_business(store, "Bench Shoes", &categories, Timestamp::now()).await?;
    let notice = optin_store::intake::register_notice(store, &business, NOTICE, "en", Timestamp::now()).await?;
    Ok((business, key.secret, notice))
}

async fn load_contacts(
    store: &SqliteStore,
    business: &Business,
    notice: &optin_store::Notice,
    numbers: &[PhoneNumber],
) -> anyhow::Result<()> {
    let evidence =
        Evidence::recorded(json!({"batch_id": "bench", "original_method": "web_form"}).as_object().cloned().unwrap());
    let notice_ref = NoticeRef {
        id: notice.id,
        version: notice.version,
        language: notice.language.as_str().to_owned(),
        text_sha256: notice.text_sha256.clone(),
    };
    let offers = CategoryName::parse("offers")?;
    for chunk in numbers.chunks(50_000) {
        let now = Timestamp::now();
        let events = chunk
            .iter()
            .map(|phone| ConsentEvent {
                id: EventId::from_uuid(Uuid::new_v4()),
                business_id: business.id,
                phone: *phone,
                change: ConsentChange::OptIn(OptIn {
                    categories: vec![offers.clone()],
                    method: Method::Import,
                    notice: notice_ref.clone(),
                    evidence: evidence.clone(),
                    collected_at: now,
                    basis: Default::default(),
                    basis_at: None,
                    needs_confirmation: false,
                }),
                recorded_at: now,
            })
            .collect();
        store.bulk_record_for_benchmarks(events).await?;
    }
    Ok(())
}

/// Decisions as a handler makes them, sequentially on one task, for stored contacts in random order.
async fn in_process_decisions(store: &dyn Store, business: &Business, stored: &[PhoneNumber]) -> anyhow::Result<()> {
    let inputs: Vec<String> = (0..1_000_000).map(|i| stored[(i * 7_919) % stored.len()].e164()).collect();
    let started = Instant::now();
    let mut allowed = 0usize;
    for input in &inputs {
        let decision = optin_store::gate::decide_send(store, business, input, None, "offers", Timestamp::now()).await?;
        allowed += usize::from(decision.allowed());
    }
    let elapsed = started.elapsed();
    anyhow::ensure!(allowed == inputs.len(), "every stored contact is allowed");
    println!(
        "\nin-process decisions (gate::decide_send, one task): {:.0}/s ({} decisions in {:.2} s)",
        inputs.len() as f64 / elapsed.as_secs_f64(),
        inputs.len(),
        elapsed.as_secs_f64()
    );
    Ok(())
}

fn write_numbers(directory: &Path, name: &str, numbers: &[PhoneNumber]) -> anyhow::Result<std::path::PathBuf> {
    let path = directory.join(name);
    let mut file = std::io::BufWriter::new(std::fs::File::create(&path)?);
    for number in numbers {
        writeln!(file, "{number}")?;
    }
    file.flush()?;
    Ok(path)
}

async fn start_server(store: Arc<dyn Store>) -> anyhow::Result<String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = format!("http://{}", listener.local_addr()?);
    let router = optin_http::router(AppState::new(store, HttpSettings::default()));
    tokio::spawn(optin::server::serve(router, listener, std::future::pending()));
    Ok(address)
}

fn run_wrk(
    address: &str,
    script: &str,
    numbers: &Path,
    connections: u32,
    seconds: u64,
    env: &[(&str, String)],
) -> anyhow::Result<()> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/wrk").join(script);
    let threads = 2;
    let output = Command::new("wrk")
        .args(["-t", &threads.to_string(), "-c", &connections.to_string(), "-d", &format!("{seconds}s"), "--latency"])
        .arg("-s")
        .arg(&script)
        .arg(address)
        .env("OPTIN_BENCH_NUMBERS", numbers)
        .env("OPTIN_BENCH_THREADS", threads.to_string())
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .map_err(|e| anyhow::anyhow!("cannot run wrk (apt-get install wrk): {e}"))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let summary: Vec<&str> = stdout
        .lines()
        .filter(|l| {
            let l = l.trim_start();
            l.starts_with("Requests/sec")
                || l.starts_with("50%")
                || l.starts_with("90%")
                || l.starts_with("99%")
                || l.contains("requests in")
                || l.starts_with("Non-2xx")
                || l.starts_with("Socket errors")
        })
        .collect();
    println!(
        "  wrk -t{threads} -c{connections} -d{seconds}s: {}",
        summary.iter().map(|l| l.trim()).collect::<Vec<_>>().join(" | ")
    );
    let unexpected = stderr.lines().filter(|l| l.starts_with("unexpected status")).count();
    if unexpected > 0 {
        println!("  {unexpected} unexpected statuses, e.g. {}", stderr.lines().next().unwrap_or_default());
    }
    std::thread::sleep(Duration::from_millis(200));
    Ok(())
}
