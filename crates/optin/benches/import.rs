//! Bulk import throughput through the CLI: `optin import opt-ins FILE.csv` (the release binary,
//! in its own process, as an operator runs it) into a fresh SQLite database.
//!
//! `cargo bench -p optin --bench import`. Environment:
//! - `OPTIN_BENCH_ROWS` (default 1,000,000): rows in the generated file;
//! - `OPTIN_BENCH_NUMBERS=global`: numbers from 60+ countries in round-robin (default: US
//!   numbers only, the usual shape of one business's file).
//!
//! The file has the columns of a web-form export (`phone`, `categories`, `method`,
//! `collected_at`, `notice_id`, `page_url`, `ip`, `user_agent`), every row valid and distinct, in
//! a shuffled order. It reports the first import (every row recorded), the rerun (every row
//! already imported) and a dry run, in rows per second (and the import process's CPU seconds,
//! which a busy machine distorts less than wall time), then checks the ledger.

use std::io::{BufWriter, Write};
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use jiff::Timestamp;
use optin_core::phone::PhoneNumber;
use optin_store::tenancy::CategoryInput;
use optin_store_sqlite::SqliteStore;

const NOTICE: &str = "I agree to receive order updates and offers from Bench Shoes on WhatsApp. Reply STOP to opt out.";

fn main() -> anyhow::Result<()> {
    let rows: usize = std::env::var("OPTIN_BENCH_ROWS").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000_000);
    let global = std::env::var("OPTIN_BENCH_NUMBERS").is_ok_and(|v| v == "global");
    let directory = tempfile::tempdir()?;
    let database = directory.path().join("optin.db");
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let (business, notice) = runtime.block_on(async {
        let store = SqliteStore::open(&database)?;
        let categories = [("order_updates", "utility"), ("offers", "marketing")]
            .map(|(name, kind)| CategoryInput { name: name.into(), template_category: kind.into() });
        let (business, _) =
            optin_store::tenancy::create_business(&store, "Bench Shoes", &categories, Timestamp::now()).await?;
        let notice = optin_store::intake::register_notice(&store, &business, NOTICE, "en", Timestamp::now()).await?;
        anyhow::Ok((business, notice))
    })?;
    drop(runtime);

    let started = Instant::now();
    let numbers = numbers(rows, global);
    let file = directory.path().join("opt-ins.csv");
    write_file(&file, &numbers, &notice.id.to_string())?;
    let size = std::fs::metadata(&file)?.len();
    println!(
        "generated {rows} rows ({}, {:.0} MB) in {:.1} s",
        if global { "numbers from 60+ countries" } else { "US numbers" },
        size as f64 / 1e6,
        started.elapsed().as_secs_f64()
    );

    let database_url = format!("sqlite://{}", database.display());
    let run = |label: &str, extra: &[&str]| -> anyhow::Result<()> {
        let (started, cpu_before) = (Instant::now(), children_cpu_seconds());
        let output = Command::new(env!("CARGO_BIN_EXE_optin"))
            .args(["import", "opt-ins", "--json", "--business", &business.id.to_string()])
            .args(extra)
            .arg(&file)
            .env("OPTIN_DATABASE_URL", &database_url)
            .output()?;
        let seconds = started.elapsed().as_secs_f64();
        let cpu = children_cpu_seconds().zip(cpu_before).map(|(after, before)| after - before);
        anyhow::ensure!(output.status.success(), "{label}: {}", String::from_utf8_lossy(&output.stderr));
        let summary: serde_json::Value = serde_json::from_slice(&output.stdout)?;
        let cpu = cpu.map(|cpu| format!("  CPU {cpu:>6.1} s")).unwrap_or_default();
        println!(
            "{label:<28} {seconds:>7.2} s  {:>9.0} rows/s{cpu}   imported {} already {} rejected {}",
            rows as f64 / seconds,
            summary["imported"],
            summary["already_imported"],
            summary["rejected"]
        );
        Ok(())
    };
    run("import (fresh database)", &[])?;
    run("rerun (all already imported)", &[])?;
    run("dry run", &["--dry-run"])?;

    let verify = Command::new(env!("CARGO_BIN_EXE_optin"))
        .args(["ledger", "verify", "--business", &business.id.to_string()])
        .env("OPTIN_DATABASE_URL", &database_url)
        .output()?;
    println!("ledger: {}", String::from_utf8_lossy(&verify.stdout).trim());
    Ok(())
}

/// User + system CPU seconds of this process's waited-for children (Linux: `/proc/self/stat`,
/// in clock ticks of 1/100 s): on a shared machine, CPU time varies less than wall time.
fn children_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // After the command name in parentheses: fields 3, 4, ...; cutime and cstime are 16 and 17.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks = |field: usize| fields.get(field - 3)?.parse::<f64>().ok();
    Some((ticks(16)? + ticks(17)?) / 100.0)
}

/// Distinct valid mobile numbers, shuffled (a file is rarely sorted by number).
fn numbers(count: usize, global: bool) -> Vec<PhoneNumber> {
    let seeds: Vec<u64> = include_str!("../../optin-core/benches/global_mobile_numbers.txt")
        .lines()
        .filter(|line| line.starts_with('+') && (global || line.starts_with("+1")))
        .map(|line| line[1..].parse().expect("seed numbers are digits"))
        .collect();
    let mut numbers = Vec::with_capacity(count);
    let mut seen = std::collections::HashSet::with_capacity(count);
    'outer: for variant in 0u64.. {
        for seed in &seeds {
            // US seeds vary their exchange and line (7 digits); others their last 6 digits.
            let span = if *seed / 10_000_000_000 == 1 { 10_000_000 } else { 1_000_000 };
            let candidate = seed - seed % span + (seed % span + variant * 7_919) % span;
            if let Some(phone) = PhoneNumber::from_e164(&format!("+{candidate}"))
                && PhoneNumber::parse(&phone.e164(), None).is_ok()
                && seen.insert(phone)
            {
                numbers.push(phone);
                if numbers.len() == count {
                    break 'outer;
                }
            }
        }
    }
    optin_store::testing::shuffle(&mut numbers);
    numbers
}

fn write_file(path: &Path, numbers: &[PhoneNumber], notice_id: &str) -> anyhow::Result<()> {
    let mut out = BufWriter::new(std::fs::File::create(path)?);
    writeln!(out, "phone,categories,method,collected_at,notice_id,page_url,ip,user_agent")?;
    let categories = ["offers;order_updates", "offers", "order_updates"];
    for (i, phone) in numbers.iter().enumerate() {
        let collected_at = Timestamp::from_second(1_700_000_000 + i as i64 * 17)?;
        writeln!(
            out,
            "{},{},web_form,{collected_at},{notice_id},https://shop.example/join?src={},203.0.113.{},\"Mozilla/5.0 (X11; Linux x86_64)\"",
            phone.e164(),
            categories[i % 3],
            i % 100,
            i % 250
        )?;
    }
    out.flush()?;
    Ok(())
}
