//! Webhook ingestion end to end: signed deliveries over HTTP, written durably to the inbox,
//! processed into sightings (the service window) and consent events, on a SQLite file.
//!
//! `cargo bench -p optin --bench webhooks`. Environment:
//! - `OPTIN_BENCH_MESSAGES` (default 200,000): inbound messages sent;
//! - `OPTIN_BENCH_BATCH` (default 10): messages per delivery (Meta batches up to 1,000);
//! - `OPTIN_BENCH_CONCURRENCY` (default 64): deliveries in flight at most;
//! - `OPTIN_BENCH_RATE` (default 0: as fast as possible): messages per second to send at;
//! - `OPTIN_BENCH_PROBES` (default 10): opt-outs sent during the load, one per 500 ms, each
//!   timed from the webhook POST until `POST /v1/decisions` answers `opted_out`.
//!
//! The load generator runs in the same process, on the same 2 cores, as the server.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use jiff::Timestamp;
use optin_core::whatsapp::signature::sign_hub;
use optin_http::{AppState, HttpSettings};
use optin_store::Store;
use optin_store::channel::{DeliveryFilter, DeliveryState};
use optin_store_sqlite::SqliteStore;
use serde_json::{Value, json};

const APP_SECRET: &str = "bench-app-secret-0123456789";
const PHONE_NUMBER_ID: &str = "106540352242922";
const NOTICE: &str = "I agree to receive order updates and offers from Bench Shoes on WhatsApp. Reply STOP to opt out.";

fn main() -> anyhow::Result<()> {
    let messages = env_number("OPTIN_BENCH_MESSAGES", 200_000);
    let batch = env_number("OPTIN_BENCH_BATCH", 10).max(1);
    let concurrency = env_number("OPTIN_BENCH_CONCURRENCY", 64).max(1);
    let probes = env_number("OPTIN_BENCH_PROBES", 10);
    let rate = env_number("OPTIN_BENCH_RATE", 0);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async move {
        let directory = tempfile::tempdir()?;
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&directory.path().join("optin.db"))?);
        let address = start_server(Arc::clone(&store)).await?;
        let client = reqwest::Client::builder().pool_max_idle_per_host(concurrency).build()?;
        let bench = Bench::set_up(client, address, store, probes).await?;

        let deliveries = messages.div_ceil(batch);
        let pace = if rate == 0 { "as fast as possible".to_owned() } else { format!("at {rate} messages/s") };
        println!(
            "{messages} inbound messages in {deliveries} signed deliveries of {batch}, {concurrency} in flight, {pace}"
        );
        // Seconds between two deliveries, to hold the rate.
        let interval = (rate > 0).then(|| Duration::from_secs_f64(batch as f64 / rate as f64));
        let bodies = Arc::new(generate(deliveries, batch));
        let started = Instant::now();
        let probing = tokio::spawn(bench.clone().probe_opt_outs(probes));
        let latencies = bench.send_all(Arc::clone(&bodies), concurrency, interval).await?;
        let accepted_in = started.elapsed();
        bench.wait_until_processed().await?;
        let processed_in = started.elapsed();
        let probe_latencies = probing.await??;

        let sent = (deliveries * batch) as f64;
        println!(
            "accepted (200, durable in the inbox): {:.0} messages/s, {:.0} deliveries/s in {:.1} s",
            sent / accepted_in.as_secs_f64(),
            deliveries as f64 / accepted_in.as_secs_f64(),
            accepted_in.as_secs_f64()
        );
        println!("  webhook answer latency: {}", summary(latencies));
        println!(
            "processed end to end (all deliveries out of the inbox): {:.0} messages/s in {:.1} s",
            sent / processed_in.as_secs_f64(),
            processed_in.as_secs_f64()
        );
        println!("opt-out keyword → visible to decisions, under that load: {}", summary(probe_latencies));
        Ok(())
    })
}

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.replace('_', "").parse().ok()).unwrap_or(default)
}

async fn start_server(store: Arc<dyn Store>) -> anyhow::Result<String> {
    let processor = optin::server::inbox_processor(Arc::clone(&store))?;
    tokio::spawn({
        let processor = processor.clone();
        async move { processor.run(std::future::pending()).await }
    });
    let waker: optin_http::InboxWaker = Arc::new(move || processor.wake());
    let router = optin_http::router(AppState::new(store, HttpSettings::default()).with_inbox_waker(waker));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move { optin::server::serve(router, listener, std::future::pending()).await });
    Ok(address)
}

#[derive(Clone)]
struct Bench {
    client: reqwest::Client,
    address: String,
    store: Arc<dyn Store>,
    business_id: optin_core::ids::BusinessId,
    key: String,
    /// Contacts opted in to `offers` before the load, one per probe.
    probe_contacts: Arc<Vec<String>>,
}

impl Bench {
    async fn set_up(
        client: reqwest::Client,
        address: String,
        store: Arc<dyn Store>,
        probes: usize,
    ) -> anyhow::Result<Bench> {
        let categories = [("order_updates", "utility"), ("offers", "marketing")].map(|(name, kind)| {
            optin_store::tenancy::CategoryInput { name: name.to_owned(), template_category: kind.to_owned() }
        });
        let (business, key) =
            optin_store::tenancy::create_business(store.as_ref(), "Bench Shoes", &categories, Timestamp::now()).await?;
        let notice =
            optin_store::intake::register_notice(store.as_ref(), &business, NOTICE, "en", Timestamp::now()).await?;
        let bench = Bench {
            client,
            address,
            store,
            business_id: business.id,
            key: key.secret,
            probe_contacts: Arc::new((0..probes).map(|i| format!("1415666{:04}", i)).collect()),
        };
        let sender = json!({"phone_number_id": PHONE_NUMBER_ID, "display_phone_number": "15550783881",
            "waba_id": "102290129340398", "provider": "cloud_api", "base_url": "http://127.0.0.1:9", "credential": "x"});
        bench.api(reqwest::Method::POST, "/v1/senders", &sender).await?;
        bench.api(reqwest::Method::PUT, "/v1/webhook-settings", &json!({"app_secret": APP_SECRET})).await?;
        for contact in bench.probe_contacts.iter() {
            let opt_in = json!({"phone": format!("+{contact}"), "categories": ["offers"], "method": "web_form",
                "notice_id": notice.id.to_string(), "evidence": {"page_url": "https://bench.example", "ip": "203.0.113.1"}});
            bench.api(reqwest::Method::POST, "/v1/opt-ins", &opt_in).await?;
        }
        Ok(bench)
    }

    async fn api(&self, method: reqwest::Method, path: &str, body: &Value) -> anyhow::Result<Value> {
        let response = self
            .client
            .request(method, format!("{}{path}", self.address))
            .bearer_auth(&self.key)
            .json(body)
            .send()
            .await?;
        anyhow::ensure!(response.status().is_success(), "{path}: {}", response.text().await?);
        Ok(response.json().await?)
    }

    async fn deliver(&self, body: &[u8], signature: &str) -> anyhow::Result<()> {
        let response = self
            .client
            .post(format!("{}/webhooks/whatsapp/{}", self.address, self.business_id))
            .header("content-type", "application/json")
            .header("x-hub-signature-256", signature)
            .body(body.to_vec())
            .send()
            .await?;
        anyhow::ensure!(response.status().is_success(), "webhook: {}", response.status());
        Ok(())
    }

    async fn send_all(
        &self,
        bodies: Arc<Vec<(Vec<u8>, String)>>,
        concurrency: usize,
        interval: Option<Duration>,
    ) -> anyhow::Result<Vec<Duration>> {
        let next = Arc::new(AtomicUsize::new(0));
        let start = tokio::time::Instant::now();
        let mut workers = Vec::with_capacity(concurrency);
        for _ in 0..concurrency {
            let (bench, bodies, next) = (self.clone(), Arc::clone(&bodies), Arc::clone(&next));
            workers.push(tokio::spawn(async move {
                let mut latencies = Vec::new();
                loop {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    let Some((body, signature)) = bodies.get(index) else { return anyhow::Ok(latencies) };
                    if let Some(interval) = interval {
                        tokio::time::sleep_until(start + interval * u32::try_from(index).unwrap_or(u32::MAX)).await;
                    }
                    let started = Instant::now();
                    bench.deliver(body, signature).await?;
                    latencies.push(started.elapsed());
                }
            }));
        }
        let mut latencies = Vec::new();
        for worker in workers {
            latencies.extend(worker.await??);
        }
        Ok(latencies)
    }

    async fn wait_until_processed(&self) -> anyhow::Result<()> {
        let pending = DeliveryFilter { state: Some(DeliveryState::Pending), before: None, limit: 1 };
        while !self.store.list_deliveries(self.business_id, &pending).await?.is_empty() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(())
    }

    /// Sends one STOP per probe contact, 500 ms apart, and times each until decisions see it.
    async fn probe_opt_outs(self, probes: usize) -> anyhow::Result<Vec<Duration>> {
        let mut latencies = Vec::with_capacity(probes);
        for (index, contact) in self.probe_contacts.iter().enumerate().take(probes) {
            tokio::time::sleep(Duration::from_millis(500)).await;
            let messages = vec![text(&format!("wamid.probe{index}"), contact, "STOP")];
            let body = serde_json::to_vec(&envelope(&messages))?;
            let started = Instant::now();
            self.deliver(&body, &sign_hub(APP_SECRET.as_bytes(), &body)).await?;
            let decision = json!({"phone": format!("+{contact}"), "category": "offers"});
            loop {
                let answer = self.api(reqwest::Method::POST, "/v1/decisions", &decision).await?;
                if answer["reasons"][0]["code"] == "opted_out" {
                    break;
                }
                anyhow::ensure!(started.elapsed() < Duration::from_secs(60), "the opt-out never became visible");
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            latencies.push(started.elapsed());
        }
        Ok(latencies)
    }
}

/// Signed delivery bodies: `batch` text messages each, from many different contacts.
fn generate(deliveries: usize, batch: usize) -> Vec<(Vec<u8>, String)> {
    let now = Timestamp::now().as_second();
    (0..deliveries)
        .map(|d| {
            let messages: Vec<Value> = (0..batch)
                .map(|m| {
                    let n = d * batch + m;
                    let mut message = text(
                        &format!("wamid.bench{n}"),
                        &format!("1415{:07}", n % 9_000_000 + 1_000_000),
                        "Where is my order? Size 42 please",
                    );
                    message["timestamp"] = json!(now.to_string());
                    message
                })
                .collect();
            let body = serde_json::to_vec(&envelope(&messages)).expect("JSON");
            let signature = sign_hub(APP_SECRET.as_bytes(), &body);
            (body, signature)
        })
        .collect()
}

fn text(id: &str, from: &str, body: &str) -> Value {
    let now = Timestamp::now().as_second().to_string();
    json!({"from": from, "id": id, "timestamp": now, "type": "text", "text": {"body": body}})
}

fn envelope(messages: &[Value]) -> Value {
    json!({"object": "whatsapp_business_account", "entry": [{"id": "102290129340398", "changes": [{"field": "messages",
        "value": {"messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550783881", "phone_number_id": PHONE_NUMBER_ID},
            "contacts": [], "messages": messages}}]}]})
}

fn summary(mut latencies: Vec<Duration>) -> String {
    if latencies.is_empty() {
        return "no samples".to_owned();
    }
    latencies.sort();
    let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q).round() as usize];
    format!(
        "p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms ({} samples)",
        at(0.5).as_secs_f64() * 1e3,
        at(0.99).as_secs_f64() * 1e3,
        latencies[latencies.len() - 1].as_secs_f64() * 1e3,
        latencies.len()
    )
}
