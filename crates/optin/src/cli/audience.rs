//! `optin audience filter`: a campaign's CSV audience through the gate, streamed a chunk at a
//! time through `optin_store::audience` (the use case behind `POST /v1/decisions/batch`).
//!
//! Three stages work at once, so that both cores do: a blocking thread reads the CSV a chunk at
//! a time, the command's task decides the chunks in order, and another blocking thread writes
//! the rows; each holds at most a few chunks for the next, so memory stays bounded.
//!
//! Rows keep every column: the allowed ones are written as read (same header), the refused ones
//! with an extra `reasons` column (codes joined by `;`). A row whose number is not valid is a
//! refused row, not an error; the command fails (exit 2, `error[code]`) only when the input
//! cannot be read as CSV, has no phone column, or an output cannot be written.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{ArgGroup, Args, Subcommand};
use csv::ByteRecord;
use optin_core::phone::Region;
use optin_store::audience::{Audience, AudienceDecision, AudienceMessage, AudienceRequest};
use optin_store::{Store, tenancy};
use serde::Serialize;

use super::business::BusinessArg;
use super::{Failure, GlobalArgs, Output};

/// Rows decided together (as the batch endpoint's chunks).
const CHUNK_ROWS: usize = 1_000;
/// Chunks read ahead of the decisions, and decided ahead of the writing.
const CHUNKS_AHEAD: usize = 4;

#[derive(Debug, Subcommand)]
pub enum AudienceCommand {
    /// Split a CSV audience into the rows that may be messaged and the rows that may not, with why.
    Filter(FilterArgs),
}

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("message").required(true).args(["category", "template"])))]
pub struct FilterArgs {
    #[command(flatten)]
    business: BusinessArg,
    /// The category of the campaign's message.
    #[arg(long)]
    category: Option<String>,
    /// The campaign's template, as NAME:LANGUAGE (e.g. spring_sale:en_US).
    #[arg(long, value_name = "NAME:LANG")]
    template: Option<String>,
    /// ISO country code for numbers written without a country code (e.g. US).
    #[arg(long)]
    country: Option<String>,
    /// The column holding the phone numbers (its header, any case).
    #[arg(long, default_value = "phone")]
    phone_column: String,
    /// Where to write the allowed rows; default standard output.
    #[arg(long, value_name = "FILE")]
    allowed: Option<PathBuf>,
    /// Where to write the refused rows, with a `reasons` column; without it they are only counted.
    #[arg(long, value_name = "FILE")]
    refused: Option<PathBuf>,
    /// When the campaign goes out (RFC 3339): quiet hours are checked at that time; default now.
    #[arg(long)]
    at: Option<String>,
    /// The audience: a CSV file with a header row.
    #[arg(value_name = "INPUT.csv")]
    input: PathBuf,
}

/// What a filter run found, printed at the end (`--json`: this object).
#[derive(Debug, Default, Serialize)]
struct Summary {
    rows: u64,
    allowed: u64,
    refused: u64,
    /// Refused rows per reason code (a row with two reasons counts under both).
    reasons: BTreeMap<&'static str, u64>,
}

pub async fn run(global: &GlobalArgs, output: Output, command: AudienceCommand) -> Result<ExitCode, Failure> {
    let AudienceCommand::Filter(args) = command;
    filter(global, output, args).await
}

async fn filter(global: &GlobalArgs, output: Output, args: FilterArgs) -> Result<ExitCode, Failure> {
    let region = args
        .country
        .as_deref()
        .map(Region::parse)
        .transpose()
        .map_err(|e| Failure::rejected(e.code(), e.to_string()))?;
    let template = args.template.as_deref().map(parse_template).transpose()?;
    let mut audience = Audience::new();
    if let Some(at) = args.at.as_deref() {
        let at = at.parse::<jiff::Timestamp>().map_err(|_| {
            Failure::rejected("invalid_time", "--at must be an RFC 3339 time, such as 2026-12-01T15:00:00Z")
        })?;
        audience = audience.sent_at(at);
    }
    let message = match (&args.category, &template) {
        (Some(category), None) => AudienceMessage::Category(category),
        (None, Some((name, language))) => AudienceMessage::Template { name, language },
        _ => unreachable!("clap requires exactly one of --category and --template"),
    };
    let (mut reader, phone_column) = open_input(&args.input, &args.phone_column)?;
    let store = global.database()?.open().await?;
    let business = tenancy::require_business(store.as_ref(), args.business.parse()?).await?;
    let mut outputs = Outputs::create(args.allowed.as_deref(), args.refused.as_deref())?;
    outputs.write_headers(reader.byte_headers().map_err(|e| invalid_csv(&e))?)?;
    let progress = super::output::file_progress_bar(&args.input);
    let mut filter = Filter { store: store.as_ref(), business, audience, region, message, phone_column };
    let (read, mut to_decide) = tokio::sync::mpsc::channel(CHUNKS_AHEAD);
    let (decided, to_write) = tokio::sync::mpsc::channel(CHUNKS_AHEAD);
    let (recycle, recycled) = std::sync::mpsc::channel();
    let reading = tokio::task::spawn_blocking({
        let progress = progress.clone();
        move || read_chunks(reader, &read, &recycled, &progress)
    });
    let writing = tokio::task::spawn_blocking({
        let progress = progress.clone();
        move || write_chunks(outputs, to_write, &recycle, &progress)
    });
    let deciding = async {
        while let Some(records) = to_decide.recv().await {
            let records = records?;
            let decisions = filter.decide(&records).await?;
            if decided.send((records, decisions)).await.is_err() {
                break;
            }
        }
        Ok::<(), Failure>(())
    }
    .await;
    // The rows decided before a failure are written first, as when one task did everything; a
    // failure to write concerns earlier rows, so it is the one reported.
    drop((decided, to_decide));
    let summary = writing.await??;
    deciding?;
    reading.await?;
    progress.finish_and_clear();
    summary.print(output, args.allowed.is_some());
    Ok(ExitCode::SUCCESS)
}

/// Reads the rows a chunk at a time (into vectors of records the writer gives back), until the
/// end, a bad row (sent last) or the decisions stop.
fn read_chunks(
    mut reader: csv::Reader<File>,
    read: &tokio::sync::mpsc::Sender<Result<Vec<ByteRecord>, Failure>>,
    recycled: &std::sync::mpsc::Receiver<Vec<ByteRecord>>,
    progress: &indicatif::ProgressBar,
) {
    loop {
        let mut records = recycled.try_recv().unwrap_or_else(|_| vec![ByteRecord::new(); CHUNK_ROWS]);
        let count = read_chunk(&mut reader, &mut records);
        progress.set_position(reader.position().byte());
        match count {
            Ok(0) => return,
            Ok(count) => {
                records.truncate(count);
                if read.blocking_send(Ok(records)).is_err() {
                    return;
                }
            }
            Err(failure) => {
                let _ = read.blocking_send(Err(failure));
                return;
            }
        }
    }
}

/// Writes the decided chunks' rows, in order, and counts them; the writers are flushed at the
/// end.
fn write_chunks(
    mut outputs: Outputs,
    mut to_write: tokio::sync::mpsc::Receiver<(Vec<ByteRecord>, Vec<AudienceDecision>)>,
    recycle: &std::sync::mpsc::Sender<Vec<ByteRecord>>,
    progress: &indicatif::ProgressBar,
) -> Result<Summary, Failure> {
    let mut summary = Summary::default();
    while let Some((mut records, decisions)) = to_write.blocking_recv() {
        for (record, decided) in records.iter().zip(&decisions) {
            summary.add(decided);
            outputs.write(record, decided)?;
        }
        progress.set_message(format!("{} rows", summary.rows));
        records.resize(CHUNK_ROWS, ByteRecord::new());
        let _ = recycle.send(records);
    }
    outputs.flush()?;
    Ok(summary)
}

/// The per-run state the chunks share.
struct Filter<'a> {
    store: &'a dyn Store,
    business: optin_core::business::Business,
    audience: Audience,
    region: Option<Region>,
    message: AudienceMessage<'a>,
    phone_column: usize,
}

impl Filter<'_> {
    async fn decide(&mut self, records: &[ByteRecord]) -> Result<Vec<AudienceDecision>, Failure> {
        let phones: Vec<std::borrow::Cow<'_, str>> = records
            .iter()
            .map(|record| String::from_utf8_lossy(record.get(self.phone_column).unwrap_or_default()))
            .collect();
        let requests: Vec<AudienceRequest<'_>> =
            phones.iter().map(|phone| AudienceRequest { phone, region: self.region, message: self.message }).collect();
        Ok(self.audience.decide_chunk(self.store, &self.business, &requests).await?)
    }
}

impl Summary {
    fn add(&mut self, decided: &AudienceDecision) {
        self.rows += 1;
        if decided.decision.allowed() {
            self.allowed += 1;
            return;
        }
        self.refused += 1;
        for reason in &decided.decision.reasons {
            *self.reasons.entry(reason.code()).or_default() += 1;
        }
    }

    /// On stderr; with `--json`, as JSON on stdout when the allowed rows went to a file (else on
    /// stderr, since stdout holds them).
    fn print(&self, output: Output, allowed_to_file: bool) {
        if output.json {
            let json = serde_json::to_string(self).expect("the summary serializes");
            if allowed_to_file {
                println!("{json}")
            } else {
                eprintln!("{json}")
            }
            return;
        }
        eprintln!("{} rows: {} allowed, {} refused", self.rows, self.allowed, self.refused);
        for (code, count) in &self.reasons {
            eprintln!("  {code:<34} {count}");
        }
    }
}

fn parse_template(text: &str) -> Result<(&str, &str), Failure> {
    match text.split_once(':') {
        Some((name, language)) if !name.is_empty() && !language.is_empty() => Ok((name, language)),
        _ => Err(Failure::rejected("invalid_template", "--template must be NAME:LANGUAGE, e.g. spring_sale:en_US")),
    }
}

/// Opens the CSV and finds the phone column in its header.
fn open_input(path: &Path, phone_column: &str) -> Result<(csv::Reader<File>, usize), Failure> {
    let file = File::open(path)
        .map_err(|e| Failure::rejected("unreadable_input", format!("cannot read {}: {e}", path.display())))?;
    let mut reader = csv::ReaderBuilder::new().from_reader(file);
    let headers = reader.byte_headers().map_err(|e| invalid_csv(&e))?;
    let wanted = phone_column.trim();
    let found = headers.iter().position(|h| String::from_utf8_lossy(h).trim().eq_ignore_ascii_case(wanted));
    let Some(index) = found else {
        let columns: Vec<String> = headers.iter().map(|h| String::from_utf8_lossy(h).into_owned()).collect();
        return Err(Failure::rejected(
            "missing_phone_column",
            format!(
                "the header has no column `{wanted}` (it has: {}); name it with --phone-column",
                columns.join(", ")
            ),
        ));
    };
    Ok((reader, index))
}

/// Reads up to `records.len()` rows into the reused records; how many were read.
fn read_chunk(reader: &mut csv::Reader<File>, records: &mut [ByteRecord]) -> Result<usize, Failure> {
    for (count, record) in records.iter_mut().enumerate() {
        if !reader.read_byte_record(record).map_err(|e| invalid_csv(&e))? {
            return Ok(count);
        }
    }
    Ok(records.len())
}

/// Where the rows go: the allowed ones (stdout by default) and, if asked, the refused ones.
struct Outputs {
    allowed: csv::Writer<Box<dyn Write + Send>>,
    refused: Option<csv::Writer<Box<dyn Write + Send>>>,
}

impl Outputs {
    fn create(allowed: Option<&Path>, refused: Option<&Path>) -> Result<Outputs, Failure> {
        let refused = refused.map(|path| csv_writer(Some(path))).transpose()?;
        Ok(Outputs { allowed: csv_writer(allowed)?, refused })
    }

    fn write_headers(&mut self, headers: &ByteRecord) -> Result<(), Failure> {
        self.allowed.write_byte_record(headers).map_err(|e| unwritable(&e))?;
        if let Some(refused) = &mut self.refused {
            let mut with_reasons = headers.clone();
            with_reasons.push_field(b"reasons");
            refused.write_byte_record(&with_reasons).map_err(|e| unwritable(&e))?;
        }
        Ok(())
    }

    /// An allowed row as read; a refused one (if they are kept) as read, then its reason codes
    /// joined by `;`.
    fn write(&mut self, record: &ByteRecord, decided: &AudienceDecision) -> Result<(), Failure> {
        if decided.decision.allowed() {
            return self.allowed.write_byte_record(record).map_err(|e| unwritable(&e));
        }
        let Some(refused) = &mut self.refused else { return Ok(()) };
        let mut write = || {
            for field in record {
                refused.write_field(field)?;
            }
            let mut codes = decided.decision.reasons.iter().map(|r| r.code());
            let first = codes.next().unwrap_or_default();
            refused.write_field(codes.fold(first.to_owned(), |joined, code| joined + ";" + code))?;
            refused.write_record(None::<&[u8]>)
        };
        write().map_err(|e| unwritable(&e))
    }

    fn flush(&mut self) -> Result<(), Failure> {
        self.allowed.flush().map_err(|e| unwritable(&e.into()))?;
        if let Some(refused) = &mut self.refused {
            refused.flush().map_err(|e| unwritable(&e.into()))?;
        }
        Ok(())
    }
}

fn csv_writer(path: Option<&Path>) -> Result<csv::Writer<Box<dyn Write + Send>>, Failure> {
    let sink: Box<dyn Write + Send> = match path {
        Some(path) => Box::new(
            File::create(path)
                .map_err(|e| Failure::rejected("unwritable_output", format!("cannot write {}: {e}", path.display())))?,
        ),
        None => Box::new(std::io::stdout()),
    };
    Ok(csv::Writer::from_writer(sink))
}

fn invalid_csv(error: &csv::Error) -> Failure {
    let line = error.position().map(|p| format!("line {}: ", p.line())).unwrap_or_default();
    Failure::rejected("invalid_csv", format!("{line}{error}"))
}

fn unwritable(error: &csv::Error) -> Failure {
    Failure::rejected("unwritable_output", format!("cannot write the output: {error}"))
}
