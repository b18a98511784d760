//! `optin import opt-ins FILE.csv`: opt-ins collected elsewhere, imported from a CSV file through
//! `optin_store::import` (the use case behind `POST /v1/imports`), streamed a chunk at a time.
//!
//! Rejected rows go to `--report` (a CSV: the row number, the row as read, its reason codes
//! joined by `;`). Exit status: 0 when every row was imported or already was, 1 when some rows
//! were rejected (the others are imported), 2 when the import could not run (unreadable file,
//! unusable header, unwritable report, database failure).

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Subcommand};
use optin_http::views::ImportSummaryView;
use optin_store::import::{
    CHUNK_ROWS, CsvRows, ImportHeader, ImportOptions, ImportSummary, Importer, NextRow, RawRow, RowRejection,
    empty_file,
};
use optin_store::tenancy;

use super::business::BusinessArg;
use super::{Failure, GlobalArgs, Output};

/// Bytes read from the file at a time.
const READ_BYTES: usize = 256 * 1024;

#[derive(Debug, Subcommand)]
pub enum ImportCommand {
    /// Import existing opt-ins from a CSV file (see the README for its columns).
    OptIns(OptInsArgs),
}

#[derive(Debug, Args)]
pub struct OptInsArgs {
    #[command(flatten)]
    business: BusinessArg,
    /// Check every row and report what would happen; record nothing.
    #[arg(long)]
    dry_run: bool,
    /// Where to write the rejected rows (CSV: row, the row's columns, reason_codes).
    #[arg(long, value_name = "REJECTED.csv")]
    report: Option<PathBuf>,
    /// The batch id recorded in every imported opt-in's evidence; default a new UUID.
    #[arg(long)]
    batch_id: Option<String>,
    /// The opt-ins: a CSV file with a header row.
    #[arg(value_name = "FILE.csv")]
    input: PathBuf,
}

pub async fn run(global: &GlobalArgs, output: Output, command: ImportCommand) -> Result<ExitCode, Failure> {
    let ImportCommand::OptIns(args) = command;
    let summary = import_opt_ins(global, &args).await?;
    let text = summary_text(&summary);
    output.print(&ImportSummaryView::from(summary.clone()), text);
    Ok(if summary.rejected == 0 { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

async fn import_opt_ins(global: &GlobalArgs, args: &OptInsArgs) -> Result<ImportSummary, Failure> {
    let batch_id = args.batch_id.clone().unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    if batch_id.trim().is_empty() || batch_id.chars().count() > 200 {
        return Err(Failure::rejected("invalid_batch_id", "--batch-id must be 1 to 200 characters"));
    }
    let mut input = Input::open(&args.input)?;
    let header = ImportHeader::parse(&input.header()?).map_err(Failure::Rejected)?;
    let mut report = args.report.as_deref().map(|path| Report::create(path, &header)).transpose()?;
    let store = global.database()?.open().await?;
    let business = tenancy::require_business(store.as_ref(), args.business.parse()?).await?;
    let options = ImportOptions { batch_id, dry_run: args.dry_run };
    let mut importer = Importer::new(store.as_ref(), business, header, options, jiff::Timestamp::now());
    let progress = super::output::file_progress_bar(&args.input);
    let mut rows = vec![RawRow::default(); CHUNK_ROWS];
    let (mut read, mut rejected) = (0_u64, 0_u64);
    loop {
        let count = input.read_chunk(&mut rows)?;
        if count == 0 {
            break;
        }
        let rejections = importer.import_chunk(&rows[..count]).await?;
        if let Some(report) = &mut report {
            report.write(&rows[..count], &rejections)?;
        }
        (read, rejected) = (read + count as u64, rejected + rejections.len() as u64);
        progress.set_position(input.position);
        progress.set_message(format!("{read} rows, {rejected} rejected"));
    }
    // Then the good rows are written, in number order (see `optin_store::import`).
    let good = read - rejected;
    if !args.dry_run && good > 0 {
        progress.set_length(good);
        progress.set_position(0);
    }
    let summary = importer
        .finish_with(|written| {
            progress.set_position(written);
            progress.set_message(format!("{written} of {good} rows written"));
        })
        .await?;
    progress.finish_and_clear();
    if let Some(report) = &mut report {
        report.flush()?;
    }
    Ok(summary)
}

fn summary_text(summary: &ImportSummary) -> String {
    let verb = if summary.dry_run { "would be imported" } else { "imported" };
    let mut text = format!(
        "{} rows: {} {verb}, {} already imported, {} rejected (batch {})",
        summary.rows, summary.imported, summary.already_imported, summary.rejected, summary.batch_id
    );
    if summary.notices_registered > 0 {
        let verb = if summary.dry_run { "would be registered" } else { "registered" };
        text.push_str(&format!("\n{} notice texts {verb}", summary.notices_registered));
    }
    for (code, count) in &summary.reasons {
        text.push_str(&format!("\n  {code:<34} {count}"));
    }
    text
}

/// The file, read in blocks into the row reader.
struct Input {
    file: File,
    rows: CsvRows,
    buffer: Vec<u8>,
    /// Bytes read so far (for the progress bar).
    position: u64,
}

impl Input {
    fn open(path: &Path) -> Result<Input, Failure> {
        let file = File::open(path)
            .map_err(|e| Failure::rejected("unreadable_input", format!("cannot read {}: {e}", path.display())))?;
        Ok(Input { file, rows: CsvRows::new(), buffer: vec![0; READ_BYTES], position: 0 })
    }

    fn header(&mut self) -> Result<RawRow, Failure> {
        let mut header = RawRow::default();
        match self.next_row(&mut header)? {
            true => Ok(header),
            false => Err(Failure::Rejected(empty_file())),
        }
    }

    /// Fills `rows` from the start; how many were read (0 at the end of the file).
    fn read_chunk(&mut self, rows: &mut [RawRow]) -> Result<usize, Failure> {
        for (count, row) in rows.iter_mut().enumerate() {
            if !self.next_row(row)? {
                return Ok(count);
            }
        }
        Ok(rows.len())
    }

    fn next_row(&mut self, row: &mut RawRow) -> Result<bool, Failure> {
        loop {
            match self.rows.next_row(row) {
                NextRow::Row => return Ok(true),
                NextRow::End => return Ok(false),
                NextRow::NeedInput => {
                    let read = self
                        .file
                        .read(&mut self.buffer)
                        .map_err(|e| Failure::rejected("unreadable_input", format!("cannot read the input: {e}")))?;
                    self.position += read as u64;
                    if read == 0 {
                        self.rows.finish();
                    } else {
                        self.rows.feed(&self.buffer[..read]);
                    }
                }
            }
        }
    }
}

/// The rejected rows' CSV.
struct Report {
    writer: csv::Writer<File>,
}

impl Report {
    fn create(path: &Path, header: &ImportHeader) -> Result<Report, Failure> {
        let file = File::create(path)
            .map_err(|e| Failure::rejected("unwritable_output", format!("cannot write {}: {e}", path.display())))?;
        let mut writer = csv::WriterBuilder::new().flexible(true).from_writer(file);
        let mut columns = vec!["row"];
        columns.extend(header.names.iter().map(String::as_str));
        columns.push("reason_codes");
        writer.write_record(columns.iter().map(|c| neutralize(c.as_bytes()))).map_err(|e| unwritable(&e))?;
        Ok(Report { writer })
    }

    /// Each rejected row: its number, its fields as read, its codes.
    fn write(&mut self, rows: &[RawRow], rejections: &[RowRejection]) -> Result<(), Failure> {
        for rejection in rejections {
            let row = &rows[rejection.index];
            let mut codes: Vec<&str> = rejection.problems.iter().map(|p| p.code).collect();
            codes.dedup();
            let mut write = || {
                self.writer.write_field(rejection.row.to_string())?;
                for field in row.fields() {
                    self.writer.write_field(neutralize(field))?;
                }
                self.writer.write_field(codes.join(";"))?;
                self.writer.write_record(None::<&[u8]>)
            };
            write().map_err(|e| unwritable(&e))?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), Failure> {
        self.writer.flush().map_err(|e| unwritable(&e.into()))
    }
}

/// A cell a spreadsheet would run as a formula (`=`, `@`, a tab or carriage return first, or `+`
/// / `-` first in something that is not a number) gets a `'` in front; phone numbers such as
/// `+14155552671` are written as they were.
fn neutralize(field: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    let risky = match field.first() {
        Some(b'=' | b'@' | b'\t' | b'\r') => true,
        Some(b'+' | b'-') => !field[1..].iter().all(|b| b.is_ascii_digit() || b" ()-.".contains(b)),
        _ => false,
    };
    if risky {
        let mut quoted = Vec::with_capacity(field.len() + 1);
        quoted.push(b'\'');
        quoted.extend_from_slice(field);
        std::borrow::Cow::Owned(quoted)
    } else {
        std::borrow::Cow::Borrowed(field)
    }
}

fn unwritable(error: &csv::Error) -> Failure {
    Failure::rejected("unwritable_output", format!("cannot write the report: {error}"))
}

#[cfg(test)]
mod tests {
    use super::neutralize;

    #[test]
    fn formulas_are_neutralized_and_numbers_kept() {
        assert_eq!(neutralize(b"=HYPERLINK(\"x\")").as_ref(), b"'=HYPERLINK(\"x\")");
        assert_eq!(neutralize(b"+1+cmd|' /C calc'!A0").as_ref(), b"'+1+cmd|' /C calc'!A0");
        assert_eq!(neutralize(b"@SUM(A1)").as_ref(), b"'@SUM(A1)");
        assert_eq!(neutralize(b"+1 (415) 555-2671").as_ref(), b"+1 (415) 555-2671");
        assert_eq!(neutralize(b"offers").as_ref(), b"offers");
    }
}
