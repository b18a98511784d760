//! optin's gate measured against what users would build instead, on the same data, in one run.
//!
//! `cargo bench -p optin --bench compare`. Environment:
//! - `OPTIN_COMPARE_CONTACTS` (default 1,000,000): contacts stored; the audience is every contact
//!   plus a quarter as many unknown numbers, shuffled, all in E.164;
//! - `OPTIN_COMPARE_PER_NUMBER` (default 200,000): numbers looked up one query at a time in
//!   PostgreSQL (that mode is slow: it is measured on a sample and reported as a rate);
//! - `OPTIN_COMPARE_SECONDS` (default 15): duration of the single-decision run;
//! - `OPTIN_COMPARE_QUICK=1`: only optin's batch runs and Redis (no PostgreSQL, no single
//!   decisions), to iterate on the batch path; the default is the full run;
//! - `OPTIN_COMPARE_KEEP=DIR`: keep optin's database in `DIR` and reuse it in later runs with the
//!   same number of contacts (skips loading; the default is a fresh temporary database). The
//!   single-decision run writes opt-outs, so it is skipped with a kept database. The CLI's input
//!   (`audience.csv`) is kept there too, to time `optin audience filter` by hand.
//!
//! Needs PostgreSQL (`OPTIN_TEST_POSTGRES_URL`, default `postgres://postgres@127.0.0.1:5432/test`),
//! Redis on 127.0.0.1:6379 (keys under `optin-bench:`, deleted afterwards) and `wrk`.
//!
//! Every optin decision is asked for the same daytime instant (`SEND_AT`, 14:00 in New York),
//! so that quiet hours (which optin checks and the alternatives do not) refuse nothing.
//!
//! Data: four categories (`order_updates` utility; `offers`, `news`, `tips` marketing). Of the
//! contacts, 65% opted in to `offers`, 15% opted out of it, 20% opted in to `news` only. The
//! question asked of every system: may this business send an `offers` message to this number?

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use jiff::Timestamp;
use optin_core::business::{Business, CategoryName};
use optin_core::consent::{ConsentChange, ConsentEvent, NoticeRef, OptIn, OptOut, OptOutSource};
use optin_core::evidence::{Evidence, Method};
use optin_core::ids::EventId;
use optin_core::phone::PhoneNumber;
use optin_http::{AppState, HttpSettings};
use optin_store::Store;
use optin_store::tenancy::CategoryInput;
use optin_store_sqlite::SqliteStore;
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use uuid::Uuid;

const NOTICE: &str =
    "I agree to receive order updates, offers, news and tips from Bench Shoes on WhatsApp. Reply STOP to opt out.";
/// When the campaign is asked about: inside every US sending window.
const SEND_AT: &str = "2026-06-10T18:00:00Z";
/// Area codes the generated numbers use (all valid US NPAs).
const AREA_CODES: [u64; 10] = [201, 212, 305, 312, 415, 503, 617, 702, 713, 917];

fn main() -> anyhow::Result<()> {
    let contacts = env_number("OPTIN_COMPARE_CONTACTS", 1_000_000);
    let per_number = env_number("OPTIN_COMPARE_PER_NUMBER", 200_000);
    let seconds = env_number("OPTIN_COMPARE_SECONDS", 15);
    let quick = std::env::var("OPTIN_COMPARE_QUICK").is_ok_and(|v| v == "1");
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async move {
        let data = Data::generate(contacts);
        println!(
            "{contacts} contacts; audience of {} numbers ({} unknown); question: may `offers` be sent?",
            data.audience.len(),
            data.audience.len() - contacts
        );
        let expected_allowed = data.statuses.iter().filter(|s| **s == Status::OptedIn).count();
        let mut results = Vec::new();

        let temporary = tempfile::tempdir()?;
        let kept = std::env::var_os("OPTIN_COMPARE_KEEP").map(std::path::PathBuf::from);
        let directory = kept.clone().unwrap_or_else(|| temporary.path().to_owned());
        std::fs::create_dir_all(&directory)?;
        let database_path = directory.join("optin.db");
        let loaded = directory.join(format!("business-{contacts}.txt"));
        let reused = kept.is_some() && loaded.exists();
        if kept.is_some() && !reused && database_path.exists() {
            anyhow::bail!("{} holds a database of another size: remove it", directory.display());
        }
        let opening = Instant::now();
        let store = Arc::new(SqliteStore::open(&database_path)?);
        let opened = opening.elapsed();
        let (business, key) = if reused {
            let text = std::fs::read_to_string(&loaded)?;
            let (id, key) = text.trim().split_once(' ').ok_or_else(|| anyhow::anyhow!("bad {}", loaded.display()))?;
            let business = optin_store::tenancy::require_business(store.as_ref(), id.parse()?).await?;
            println!(
                "optin: reusing the database in {}, opened in {:.2} s; resident memory {}",
                directory.display(),
                opened.as_secs_f64(),
                rss_mib()
            );
            (business, key.to_owned())
        } else {
            let (business, key) = create_business(store.as_ref()).await?;
            let started = Instant::now();
            data.load_into_optin(&store, &business).await?;
            println!("optin: loaded in {:.1} s; resident memory {}", started.elapsed().as_secs_f64(), rss_mib());
            if kept.is_some() {
                std::fs::write(&loaded, format!("{} {key}", business.id))?;
            }
            (business, key)
        };
        // As in a running deployment, whose contacts arrived over time: no bulk load's WAL still
        // being copied back while the batch runs.
        store.checkpoint_for_benchmarks().await?;
        let address = start_server(Arc::clone(&store) as Arc<dyn Store>).await?;

        let (allowed, elapsed) = optin_batch_http(&address, &key, &data).await?;
        check(allowed, expected_allowed, "optin batch over HTTP");
        results.push(("optin: POST /v1/decisions/batch (NDJSON stream)", data.audience.len(), elapsed));

        let (allowed, elapsed) = optin_cli(&database_path, &business, &data, &directory)?;
        check(allowed, expected_allowed, "optin audience filter");
        results.push(("optin: `optin audience filter` (CSV, other process)", data.audience.len(), elapsed));
        println!("optin: resident memory after the batch runs {}", rss_mib());

        if !quick {
            let database = optin_store_postgres::TestDatabase::create().await;
            let (client, connection) = tokio_postgres::connect(database.url(), tokio_postgres::NoTls).await?;
            tokio::spawn(connection);
            let started = Instant::now();
            data.load_into_postgres(&client).await?;
            println!("PostgreSQL: loaded and indexed in {:.1} s", started.elapsed().as_secs_f64());
            let sample = per_number.min(data.audience.len());
            let (_, elapsed) = postgres_per_number(database.url(), &data.audience[..sample]).await?;
            results.push(("PostgreSQL: one query per number, 64 in flight", sample, elapsed));
            let (allowed, elapsed) = postgres_any(&client, &data.audience).await?;
            check(allowed, expected_allowed, "PostgreSQL = ANY");
            results.push(("PostgreSQL: one `= ANY($1)` query per 1,000 numbers", data.audience.len(), elapsed));
        }

        let mut redis = Redis::connect().await?;
        let started = Instant::now();
        data.load_into_redis(&mut redis).await?;
        println!("Redis: loaded in {:.1} s", started.elapsed().as_secs_f64());
        let (allowed, elapsed) = redis_smismember(&mut redis, &data.audience).await?;
        check(allowed, expected_allowed, "Redis SMISMEMBER");
        results.push(("Redis: SMISMEMBER per 1,000 numbers, pipelined 16 deep", data.audience.len(), elapsed));
        redis.command(&[b"DEL", b"optin-bench:offers:in", b"optin-bench:offers:out"]).await?;

        report(&results);
        if !quick && kept.is_none() {
            single_decisions_under_opt_outs(&address, &key, &data, seconds).await?;
        }
        Ok(())
    })
}

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.replace('_', "").parse().ok()).unwrap_or(default)
}

fn check(allowed: usize, expected: usize, what: &str) {
    assert_eq!(allowed, expected, "{what} allowed {allowed} numbers, expected {expected}");
}

/// Resident memory of this process: its own (anonymous: heap, the consent index) and the
/// database file's pages it has mapped (file-backed page cache, shared and reclaimable).
fn rss_mib() -> String {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        let line = status.lines().find(|l| l.starts_with(name)).unwrap_or("");
        line.split_whitespace().nth(1).and_then(|kb| kb.parse::<u64>().ok()).unwrap_or(0) / 1024
    };
    format!("{} MiB (anonymous {} MiB, mapped file {} MiB)", field("VmRSS:"), field("RssAnon:"), field("RssFile:"))
}

fn report(results: &[(&str, usize, Duration)]) {
    let rate = |count: usize, elapsed: Duration| count as f64 / elapsed.as_secs_f64();
    let optin = rate(results[0].1, results[0].2);
    println!("\n| What | Numbers | Time | Decisions/s | optin batch is × faster |");
    println!("|---|---|---|---|---|");
    for (what, count, elapsed) in results {
        let this = rate(*count, *elapsed);
        println!("| {what} | {count} | {:.2} s | {:.0} | {:.1} |", elapsed.as_secs_f64(), this, optin / this);
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Status {
    OptedIn,
    OptedOut,
    NewsOnly,
}

struct Data {
    /// The stored contacts, with their status for `offers` (same index).
    contacts: Vec<PhoneNumber>,
    statuses: Vec<Status>,
    /// Every contact and some unknown numbers, shuffled.
    audience: Vec<PhoneNumber>,
}

impl Data {
    fn generate(contacts: usize) -> Data {
        let total = contacts + contacts / 4;
        // Distinct 7-digit subscriber numbers from a full-period LCG over 10^7 per area code.
        let numbers: Vec<PhoneNumber> = (0..total)
            .map(|i| {
                let area = AREA_CODES[i % AREA_CODES.len()];
                let n = (i / AREA_CODES.len()) as u64;
                let subscriber = (n * 7_654_321 + 1_234_567) % 8_000_000 + 2_000_000;
                PhoneNumber::from_e164(&format!("+1{area}{subscriber}")).expect("valid E.164")
            })
            .collect();
        let statuses = (0..contacts)
            .map(|i| match i % 20 {
                0..13 => Status::OptedIn,
                13..16 => Status::OptedOut,
                _ => Status::NewsOnly,
            })
            .collect();
        let mut audience = numbers.clone();
        optin_store::testing::shuffle(&mut audience);
        Data { contacts: numbers[..contacts].to_vec(), statuses, audience }
    }

    async fn load_into_optin(&self, store: &SqliteStore, business: &Business) -> anyhow::Result<()> {
        let notice = optin_store::intake::register_notice(store, business, NOTICE, "en", Timestamp::now()).await?;
        let notice = NoticeRef {
            id: notice.id,
            version: notice.version,
            language: notice.language.as_str().to_owned(),
            text_sha256: notice.text_sha256,
        };
        let evidence = Evidence::recorded(
            json!({"batch_id": "bench", "original_method": "web_form"}).as_object().cloned().unwrap_or_default(),
        );
        let (offers, news) = (CategoryName::parse("offers")?, CategoryName::parse("news")?);
        for chunk in self.contacts.iter().zip(&self.statuses).collect::<Vec<_>>().chunks(50_000) {
            let now = Timestamp::now();
            let events = chunk
                .iter()
                .map(|(phone, status)| {
                    let change = match status {
                        Status::OptedOut => ConsentChange::OptOut(OptOut {
                            categories: vec![offers.clone()],
                            all_categories: false,
                            source: OptOutSource::Other,
                            recorded_by: "bench".to_owned(),
                            evidence: evidence.clone(),
                            requested_at: None,
                        }),
                        Status::OptedIn | Status::NewsOnly => ConsentChange::OptIn(OptIn {
                            categories: vec![if **status == Status::OptedIn { offers.clone() } else { news.clone() }],
                            method: Method::Import,
                            notice: notice.clone(),
                            evidence: evidence.clone(),
                            collected_at: now,
                            basis: Default::default(),
                            basis_at: None,
                            needs_confirmation: false,
                        }),
                    };
                    ConsentEvent {
                        id: EventId::from_uuid(Uuid::new_v4()),
                        business_id: business.id,
                        phone: **phone,
                        change,
                        recorded_at: now,
                    }
                })
                .collect();
            store.bulk_record_for_benchmarks(events).await?;
        }
        Ok(())
    }

    async fn load_into_postgres(&self, client: &tokio_postgres::Client) -> anyhow::Result<()> {
        // What an application would keep: one row per (contact, category) with its status.
        client
            .batch_execute(
                "CREATE TABLE consent (phone bigint NOT NULL, category text NOT NULL, status text NOT NULL, \
                 PRIMARY KEY (category, phone))",
            )
            .await?;
        let sink =
            client.copy_in::<_, std::io::Cursor<Vec<u8>>>("COPY consent (phone, category, status) FROM STDIN").await?;
        let mut sink = std::pin::pin!(sink);
        for chunk in self.contacts.iter().zip(&self.statuses).collect::<Vec<_>>().chunks(100_000) {
            let mut text = String::with_capacity(chunk.len() * 32);
            for (phone, status) in chunk {
                let (category, state) = match status {
                    Status::OptedIn => ("offers", "opted_in"),
                    Status::OptedOut => ("offers", "opted_out"),
                    Status::NewsOnly => ("news", "opted_in"),
                };
                text.push_str(&format!("{}\t{category}\t{state}\n", phone.key()));
            }
            futures::SinkExt::send(&mut sink, std::io::Cursor::new(text.into_bytes())).await?;
        }
        sink.as_mut().finish().await?;
        client.batch_execute("ANALYZE consent").await?;
        Ok(())
    }

    async fn load_into_redis(&self, redis: &mut Redis) -> anyhow::Result<()> {
        for (set, wanted) in [("optin-bench:offers:in", Status::OptedIn), ("optin-bench:offers:out", Status::OptedOut)]
        {
            let members: Vec<String> = self
                .contacts
                .iter()
                .zip(&self.statuses)
                .filter(|(_, status)| **status == wanted)
                .map(|(phone, _)| phone.key().to_string())
                .collect();
            for chunk in members.chunks(10_000) {
                let mut arguments: Vec<&[u8]> = vec![b"SADD", set.as_bytes()];
                arguments.extend(chunk.iter().map(String::as_bytes));
                redis.command(&arguments).await?;
            }
        }
        Ok(())
    }
}

async fn create_business(store: &dyn Store) -> anyhow::Result<(Business, String)> {
    let categories =
        [("order_updates", "utility"), ("offers", "marketing"), ("news", "marketing"), ("tips", "marketing")]
            .map(|(name, kind)| CategoryInput { name: name.into(), template_category: kind.into() });
    let (business, key) =
        optin_store::tenancy::create_business(store, "Bench Shoes", &categories, Timestamp::now()).await?;
    Ok((business, key.secret))
}

async fn start_server(store: Arc<dyn Store>) -> anyhow::Result<String> {
    let router = optin_http::router(AppState::new(store, HttpSettings::default()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move { optin::server::serve(router, listener, std::future::pending()).await });
    Ok(address)
}

/// Streams the audience as NDJSON and reads the decisions as they come.
async fn optin_batch_http(address: &str, key: &str, data: &Data) -> anyhow::Result<(usize, Duration)> {
    let lines: Vec<String> = data
        .audience
        .chunks(10_000)
        .map(|chunk| {
            let mut text = String::with_capacity(chunk.len() * 48);
            for phone in chunk {
                text.push_str(&format!("{{\"phone\":\"{}\",\"category\":\"offers\"}}\n", phone.e164()));
            }
            text
        })
        .collect();
    let started = Instant::now();
    let body = reqwest::Body::wrap_stream(futures::stream::iter(lines.into_iter().map(Ok::<_, std::io::Error>)));
    let response = reqwest::Client::new()
        .post(format!("{address}/v1/decisions/batch?at={SEND_AT}"))
        .bearer_auth(key)
        .header("content-type", "application/x-ndjson")
        .body(body)
        .send()
        .await?;
    anyhow::ensure!(response.status().is_success(), "batch: {}", response.status());
    let mut stream = response.bytes_stream();
    let (mut allowed, mut answered) = (0, 0);
    let mut rest: Vec<u8> = Vec::new();
    let allowed_field = memchr::memmem::Finder::new(b"\"allowed\":true");
    while let Some(chunk) = stream.next().await {
        rest.extend_from_slice(&chunk?);
        let complete = rest.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        for line in rest[..complete].split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            answered += 1;
            // Cheap: the answer's `allowed` field, without parsing every line in full.
            if allowed_field.find(line).is_some() {
                allowed += 1;
            }
        }
        rest.drain(..complete);
    }
    anyhow::ensure!(answered == data.audience.len(), "{answered} answers for {} lines", data.audience.len());
    Ok((allowed, started.elapsed()))
}

/// The CLI, as a separate process on the same SQLite file (as an operator would run it).
fn optin_cli(
    database: &std::path::Path,
    business: &Business,
    data: &Data,
    directory: &std::path::Path,
) -> anyhow::Result<(usize, Duration)> {
    let input = directory.join("audience.csv");
    let mut text = String::with_capacity(data.audience.len() * 24);
    text.push_str("customer_id,phone\n");
    for (i, phone) in data.audience.iter().enumerate() {
        text.push_str(&format!("{i},{}\n", phone.e164()));
    }
    std::fs::write(&input, text)?;
    let allowed_file = directory.join("allowed.csv");
    let started = Instant::now();
    let output = Command::new(env!("CARGO_BIN_EXE_optin"))
        .args(["audience", "filter", "--business", &business.id.to_string(), "--category", "offers", "--at", SEND_AT])
        .arg("--allowed")
        .arg(&allowed_file)
        .arg("--database-url")
        .arg(format!("sqlite://{}", database.display()))
        .arg(&input)
        .output()?;
    let elapsed = started.elapsed();
    anyhow::ensure!(output.status.success(), "audience filter: {}", String::from_utf8_lossy(&output.stderr));
    let allowed = std::fs::read_to_string(&allowed_file)?.lines().count().saturating_sub(1);
    Ok((allowed, elapsed))
}

async fn postgres_per_number(url: &str, numbers: &[PhoneNumber]) -> anyhow::Result<(usize, Duration)> {
    let mut clients = Vec::new();
    for _ in 0..4 {
        let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
        tokio::spawn(connection);
        let statement = client.prepare("SELECT status FROM consent WHERE category = 'offers' AND phone = $1").await?;
        clients.push((Arc::new(client), statement));
    }
    let started = Instant::now();
    let clients = &clients;
    let answers = futures::stream::iter(numbers.iter().enumerate())
        .map(|(i, phone)| async move {
            let (client, statement) = &clients[i % clients.len()];
            let key = i64::try_from(phone.key()).unwrap_or(i64::MAX);
            let row = client.query_opt(statement, &[&key]).await?;
            anyhow::Ok(row.is_some_and(|row| row.get::<_, &str>(0) == "opted_in"))
        })
        .buffer_unordered(64)
        .collect::<Vec<_>>()
        .await;
    let allowed = answers.into_iter().collect::<Result<Vec<bool>, _>>()?.into_iter().filter(|a| *a).count();
    Ok((allowed, started.elapsed()))
}

async fn postgres_any(client: &tokio_postgres::Client, numbers: &[PhoneNumber]) -> anyhow::Result<(usize, Duration)> {
    let statement = client
        .prepare("SELECT count(*) FROM consent WHERE category = 'offers' AND status = 'opted_in' AND phone = ANY($1)")
        .await?;
    let statement = &statement;
    let started = Instant::now();
    let chunks: Vec<Vec<i64>> =
        numbers.chunks(1_000).map(|c| c.iter().map(|p| i64::try_from(p.key()).unwrap_or(i64::MAX)).collect()).collect();
    let counts = futures::stream::iter(chunks.iter())
        .map(|keys| async move { anyhow::Ok(client.query_one(statement, &[keys]).await?.get::<_, i64>(0)) })
        .buffered(8)
        .collect::<Vec<_>>()
        .await;
    let allowed: i64 = counts.into_iter().collect::<Result<Vec<i64>, _>>()?.into_iter().sum();
    Ok((usize::try_from(allowed)?, started.elapsed()))
}

async fn redis_smismember(redis: &mut Redis, numbers: &[PhoneNumber]) -> anyhow::Result<(usize, Duration)> {
    let started = Instant::now();
    let mut allowed = 0;
    let keys: Vec<String> = numbers.iter().map(|p| p.key().to_string()).collect();
    for window in keys.chunks(16_000) {
        // 16 commands per round trip, each asking about 1,000 numbers.
        let commands: Vec<Vec<&[u8]>> = window
            .chunks(1_000)
            .map(|chunk| {
                let mut arguments: Vec<&[u8]> = vec![b"SMISMEMBER", b"optin-bench:offers:in"];
                arguments.extend(chunk.iter().map(String::as_bytes));
                arguments
            })
            .collect();
        for reply in redis.pipeline(&commands).await? {
            allowed += reply.iter().filter(|member| **member == 1).count();
        }
    }
    Ok((allowed, started.elapsed()))
}

/// A minimal RESP2 client: enough for SADD, SMISMEMBER and DEL in pipelines.
struct Redis {
    reader: BufReader<tokio::net::tcp::OwnedReadHalf>,
    writer: tokio::net::tcp::OwnedWriteHalf,
}

impl Redis {
    async fn connect() -> anyhow::Result<Redis> {
        let stream = tokio::net::TcpStream::connect("127.0.0.1:6379").await?;
        let (read, writer) = stream.into_split();
        Ok(Redis { reader: BufReader::new(read), writer })
    }

    async fn command(&mut self, arguments: &[&[u8]]) -> anyhow::Result<Vec<i64>> {
        Ok(self.pipeline(&[arguments.to_vec()]).await?.remove(0))
    }

    /// Sends every command, then reads every reply (integers, or arrays of integers).
    async fn pipeline(&mut self, commands: &[Vec<&[u8]>]) -> anyhow::Result<Vec<Vec<i64>>> {
        let mut out = Vec::new();
        for arguments in commands {
            out.extend_from_slice(format!("*{}\r\n", arguments.len()).as_bytes());
            for argument in arguments {
                out.extend_from_slice(format!("${}\r\n", argument.len()).as_bytes());
                out.extend_from_slice(argument);
                out.extend_from_slice(b"\r\n");
            }
        }
        self.writer.write_all(&out).await?;
        let mut replies = Vec::with_capacity(commands.len());
        for _ in commands {
            replies.push(self.reply().await?);
        }
        Ok(replies)
    }

    async fn reply(&mut self) -> anyhow::Result<Vec<i64>> {
        let line = self.line().await?;
        match line.split_at(1) {
            (":", number) => Ok(vec![number.parse()?]),
            ("*", count) => {
                let count: usize = count.parse()?;
                let mut items = Vec::with_capacity(count);
                for _ in 0..count {
                    items.push(self.line().await?.trim_start_matches(':').parse()?);
                }
                Ok(items)
            }
            ("+", _) => Ok(Vec::new()),
            _ => anyhow::bail!("Redis answered {line}"),
        }
    }

    async fn line(&mut self) -> anyhow::Result<String> {
        let mut line = String::new();
        self.reader.read_line(&mut line).await?;
        anyhow::ensure!(line.ends_with("\r\n"), "Redis closed the connection");
        line.truncate(line.len() - 2);
        Ok(line)
    }
}

/// Single decisions over HTTP (wrk, 64 connections) while opt-outs are written at 1,000/s; each
/// opt-out is followed at once by a decision for the same number, which must refuse it.
async fn single_decisions_under_opt_outs(address: &str, key: &str, data: &Data, seconds: usize) -> anyhow::Result<()> {
    let directory = tempfile::tempdir()?;
    let decisions = directory.path().join("decisions.txt");
    let sample: Vec<String> = data.audience.iter().take(200_000).map(PhoneNumber::e164).collect();
    std::fs::write(&decisions, sample.join("\n") + "\n")?;
    let opted_in: Vec<PhoneNumber> = data
        .contacts
        .iter()
        .zip(&data.statuses)
        .filter(|(_, s)| **s == Status::OptedIn)
        .map(|(p, _)| *p)
        .rev()
        .take(seconds * 1_000 + 1_000)
        .collect();
    let writer = {
        let (address, key) = (address.to_owned(), key.to_owned());
        tokio::spawn(async move { write_opt_outs(&address, &key, &opted_in, seconds).await })
    };
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/wrk/decisions.lua");
    let output = Command::new("wrk")
        .args(["-t2", "-c64", &format!("-d{seconds}s"), "--latency", "-s", script, address])
        .env("OPTIN_API_KEY", key)
        .env("OPTIN_BENCH_NUMBERS", &decisions)
        .output()?;
    let (written, not_honored) = writer.await??;
    println!("\nSingle decisions over HTTP (wrk, 64 connections) while opt-outs are written:");
    print!("{}", String::from_utf8_lossy(&output.stdout));
    println!(
        "opt-outs written during the run: {written} ({:.0}/s); decisions right after an opt-out not refused as `opted_out`: {not_honored}",
        written as f64 / seconds as f64
    );
    Ok(())
}

async fn write_opt_outs(
    address: &str,
    key: &str,
    numbers: &[PhoneNumber],
    seconds: usize,
) -> anyhow::Result<(usize, usize)> {
    let client = reqwest::Client::new();
    let start = tokio::time::Instant::now();
    let deadline = start + Duration::from_secs(seconds as u64);
    let (mut written, mut not_honored) = (0, 0);
    let mut tasks = futures::stream::FuturesUnordered::new();
    for (i, phone) in numbers.iter().enumerate() {
        let at = start + Duration::from_millis(i as u64);
        if at >= deadline {
            break;
        }
        tokio::time::sleep_until(at).await;
        let (client, phone) = (client.clone(), phone.e164());
        let (opt_outs, decisions) = (format!("{address}/v1/opt-outs"), format!("{address}/v1/decisions"));
        let key = key.to_owned();
        tasks.push(async move {
            let body = json!({"phone": phone, "categories": ["offers"], "source": "api", "recorded_by": "bench"});
            let response = client.post(opt_outs).bearer_auth(&key).json(&body).send().await?;
            anyhow::ensure!(response.status().is_success(), "opt-out: {}", response.status());
            let decision: serde_json::Value = client
                .post(decisions)
                .bearer_auth(&key)
                .json(&json!({"phone": phone, "category": "offers"}))
                .send()
                .await?
                .json()
                .await?;
            let refused_as_opted_out =
                decision["reasons"].as_array().is_some_and(|reasons| reasons.iter().any(|r| r["code"] == "opted_out"));
            anyhow::Ok(!refused_as_opted_out)
        });
        while let Some(Some(done)) = futures::FutureExt::now_or_never(tasks.next()) {
            written += 1;
            not_honored += usize::from(done?);
        }
    }
    while let Some(done) = tasks.next().await {
        written += 1;
        not_honored += usize::from(done?);
    }
    Ok((written, not_honored))
}
