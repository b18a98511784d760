//! Bulk import of opt-ins collected elsewhere (a CSV file), shared by `optin import opt-ins` and
//! `POST /v1/imports`.
//!
//! The caller reads rows (`csv::CsvRows`: bytes in, bounded rows out) and hands them over a chunk
//! at a time; nothing here holds more than a chunk. Per chunk, each row is checked on its own
//! (`row`: the phone, categories, original method, time and evidence, with the API's codes; its
//! notice is looked up or checked once per import, `notices`), and the good rows are recorded in
//! one store call, `Store::record_consent_batch_once`: one transaction per chunk. That call runs
//! while the next chunk is read and checked, so on two cores parsing and writing overlap.
//!
//! Each imported row becomes an opt-in with method `import`, its original `collected_at`, and
//! evidence `{batch_id, original_method, source_row, ...its evidence columns}`. It is recorded
//! once per *content*: its dedupe key is `import:` + the SHA-256 of its normalized content (E.164
//! number, sorted categories, original method, collection time, the notice's text hash and
//! language, sorted evidence cells; not the batch id or row number), so importing the same file
//! again records nothing and reports those rows as already imported. A dry run checks every row
//! and reads which keys were used, and writes nothing.

pub mod csv;
mod header;
mod notices;
mod row;

use std::collections::{BTreeMap, HashSet};
use std::future::Future;
use std::pin::Pin;

use jiff::Timestamp;
use optin_core::business::Business;
use optin_core::consent::{ConsentBasis, ConsentChange, ConsentEvent, OptIn};
use optin_core::evidence::{Evidence, Method};
use optin_core::ids::EventId;
use optin_core::ledger::Hash;
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

pub use self::csv::{CsvRows, NextRow, RawRow};
pub use self::header::ImportHeader;
use self::notices::{Notices, ResolvedNotice};
use self::row::{CheckedRow, NoticeRequest, RowChecker};
use crate::rejection::{Problem, UseCaseError};
use crate::store::{Store, StoreError};

/// Rows checked and recorded together (one transaction each). The transaction holds SQLite's write
/// lock, so other writes (an opt-out through the server) wait for it: at the rates measured (up to
/// ~370 µs a row with a million contacts stored) 2,000 rows keep that wait under a second.
/// 5,000-row chunks (with a 256 MiB page cache for them) imported 100,000 rows in 11.4 s instead of
/// 15.9 s, but hold the lock two and a half times as long: opt-outs come first.
pub const CHUNK_ROWS: usize = 2_000;
/// Longest problem detail or phone echoed back in a rejection.
const MAX_ECHO_CHARS: usize = 200;

/// How to run an import.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// Recorded in every imported opt-in's evidence (`batch_id`).
    pub batch_id: String,
    /// Check everything, record nothing.
    pub dry_run: bool,
}

/// What an import did (or, in a dry run, would do).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ImportSummary {
    pub batch_id: String,
    pub dry_run: bool,
    /// Data rows read (the header excluded).
    pub rows: u64,
    /// Rows recorded (dry run: that would be).
    pub imported: u64,
    /// Rows whose content an earlier import (or an earlier row of this one) already recorded.
    pub already_imported: u64,
    pub rejected: u64,
    /// Rejected rows per reason code (a row with two codes counts under both).
    pub reasons: BTreeMap<&'static str, u64>,
    /// Notice texts registered (dry run: that would be).
    pub notices_registered: u64,
}

/// A row that was not imported, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowRejection {
    /// Its position in the chunk handed over.
    pub index: usize,
    /// Its row number in the file (1: the first row after the header).
    pub row: u64,
    /// E.164 when the number was valid, else as given (shortened); `None` when unreadable.
    pub phone: Option<String>,
    pub problems: Vec<Problem>,
}

type Pending<'s> = Pin<Box<dyn Future<Output = Result<Written, StoreError>> + Send + 's>>;

/// What a chunk's store call found: rows recorded and rows already there.
struct Written {
    imported: u64,
    already_imported: u64,
}

/// One import run: [`Importer::import_chunk`] for each chunk of rows, then [`Importer::finish`].
pub struct Importer<'s> {
    store: &'s dyn Store,
    business: Business,
    header: ImportHeader,
    options: ImportOptions,
    rows: RowChecker,
    notices: Notices,
    summary: ImportSummary,
    /// The previous chunk's store call, running while the next chunk is checked.
    pending: Option<Pending<'s>>,
    key: Vec<u8>,
}

impl<'s> Importer<'s> {
    pub fn new(
        store: &'s dyn Store,
        business: Business,
        header: ImportHeader,
        options: ImportOptions,
        now: Timestamp,
    ) -> Importer<'s> {
        let summary =
            ImportSummary { batch_id: options.batch_id.clone(), dry_run: options.dry_run, ..ImportSummary::default() };
        Importer {
            store,
            business,
            header,
            options,
            rows: RowChecker::new(now),
            notices: Notices::default(),
            summary,
            pending: None,
            key: Vec::with_capacity(512),
        }
    }

    pub fn header(&self) -> &ImportHeader {
        &self.header
    }

    /// Checks a chunk of rows and starts recording the good ones (the previous chunk's recording
    /// is awaited meanwhile). The rejected rows, in order.
    pub async fn import_chunk(&mut self, rows: &[RawRow]) -> Result<Vec<RowRejection>, UseCaseError> {
        let previous = self.pending.take();
        let wait = async move {
            match previous {
                Some(pending) => pending.await.map(Some),
                None => Ok(None),
            }
        };
        let (written, checked) = futures::future::join(wait, self.check_chunk(rows)).await;
        if let Some(written) = written? {
            self.count(&written);
        }
        let (good, rejections) = checked?;
        self.summary.rows += rows.len() as u64;
        self.summary.rejected += rejections.len() as u64;
        for rejection in &rejections {
            let mut codes: Vec<&'static str> = rejection.problems.iter().map(|p| p.code).collect();
            codes.dedup();
            for code in codes {
                *self.summary.reasons.entry(code).or_default() += 1;
            }
        }
        let mut pending = self.start_writing(good);
        // Sends the first request now, so the store works while the caller reads the next chunk.
        if let std::task::Poll::Ready(written) = futures::poll!(pending.as_mut()) {
            self.count(&written?);
        } else {
            self.pending = Some(pending);
        }
        Ok(rejections)
    }

    /// Waits for the last chunk's recording; the summary of the whole run.
    pub async fn finish(mut self) -> Result<ImportSummary, UseCaseError> {
        if let Some(pending) = self.pending.take() {
            let written = pending.await?;
            self.count(&written);
        }
        self.summary.notices_registered = self.notices.registered;
        Ok(self.summary)
    }

    fn count(&mut self, written: &Written) {
        self.summary.imported += written.imported;
        self.summary.already_imported += written.already_imported;
    }

    /// The good rows as (dedupe key, event), and the rejections.
    async fn check_chunk(
        &mut self,
        rows: &[RawRow],
    ) -> Result<(Vec<(String, Option<ConsentEvent>)>, Vec<RowRejection>), UseCaseError> {
        let mut good = Vec::with_capacity(rows.len());
        let mut rejections = Vec::new();
        for (index, row) in rows.iter().enumerate() {
            let mut problems = Vec::new();
            let (checked, notice) = self.rows.check(&self.header, &self.business, row, &mut problems);
            let notice = match notice {
                Some(request) => Some(self.resolve_notice(request).await?),
                None => None,
            };
            match (checked, notice) {
                (Some(checked), Some(Ok(notice))) if problems.is_empty() => {
                    let key = self.dedupe_key(&checked, &notice);
                    let event = notice.reference.map(|reference| self.event(row.number, checked, reference));
                    good.push((key, event));
                }
                (checked, notice) => {
                    problems.extend(notice.and_then(Result::err).unwrap_or_default());
                    rejections.push(self.rejection(index, row, checked.as_ref(), problems));
                }
            }
        }
        Ok((good, rejections))
    }

    async fn resolve_notice(
        &mut self,
        request: NoticeRequest<'_>,
    ) -> Result<Result<ResolvedNotice, Vec<Problem>>, UseCaseError> {
        let (store, business) = (self.store, &self.business);
        match request {
            NoticeRequest::Id(id) => self.notices.by_id(store, business, id).await,
            NoticeRequest::Text(text, language) => {
                let (dry_run, now) = (self.options.dry_run, self.rows.now);
                self.notices.by_text(store, business, (text, language), dry_run, now).await
            }
        }
    }

    /// `import:` + hex SHA-256 of the row's normalized content, each part length-prefixed.
    fn dedupe_key(&mut self, row: &CheckedRow, notice: &ResolvedNotice) -> String {
        let key = &mut self.key;
        key.clear();
        let mut part = |bytes: &[u8]| {
            key.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
            key.extend_from_slice(bytes);
        };
        part(&row.phone.key().to_le_bytes());
        let mut categories: Vec<&str> = row.categories.iter().map(|c| c.as_str()).collect();
        categories.sort_unstable();
        categories.dedup();
        part(&(categories.len() as u64).to_le_bytes());
        for category in categories {
            part(category.as_bytes());
        }
        part(row.method.as_str().as_bytes());
        part(&row.collected_at.as_nanosecond().to_le_bytes());
        part(notice.key.as_bytes());
        // The evidence map is sorted by field name (serde_json's default map).
        for (name, value) in &row.evidence {
            part(name.as_bytes());
            part(value.as_str().unwrap_or_default().as_bytes());
        }
        format!("import:{}", Hash::of(key).to_hex())
    }

    fn event(&self, row_number: u64, row: CheckedRow, notice: optin_core::consent::NoticeRef) -> ConsentEvent {
        let mut evidence = row.evidence;
        evidence.insert("batch_id".into(), Value::String(self.options.batch_id.clone()));
        evidence.insert("original_method".into(), Value::String(row.method.as_str().to_owned()));
        evidence.insert("source_row".into(), Value::from(row_number));
        let opt_in = OptIn {
            categories: row.categories,
            method: Method::Import,
            notice,
            // Checked for the original method already; batch_id and original_method are ours.
            evidence: Evidence::recorded(evidence),
            collected_at: row.collected_at,
            basis: ConsentBasis::Express,
            basis_at: None,
            needs_confirmation: false,
        };
        ConsentEvent {
            id: EventId::from_uuid(Uuid::new_v4()),
            business_id: self.business.id,
            phone: row.phone,
            change: ConsentChange::OptIn(opt_in),
            recorded_at: self.rows.now,
        }
    }

    fn rejection(
        &self,
        index: usize,
        row: &RawRow,
        checked: Option<&CheckedRow>,
        problems: Vec<Problem>,
    ) -> RowRejection {
        let phone = match checked {
            Some(checked) => Some(checked.phone.e164()),
            None => row.field(self.header.phone).map(|bytes| shorten(&String::from_utf8_lossy(bytes))),
        };
        let problems = problems.into_iter().map(|p| Problem { code: p.code, detail: shorten(&p.detail) }).collect();
        RowRejection { index, row: row.number, phone, problems }
    }

    /// Records the chunk's good rows (a dry run reads which were recorded before).
    fn start_writing(&mut self, good: Vec<(String, Option<ConsentEvent>)>) -> Pending<'s> {
        let (store, business) = (self.store, self.business.clone());
        if self.options.dry_run {
            return Box::pin(async move {
                let mut seen = HashSet::with_capacity(good.len());
                let keys: Vec<String> = good.into_iter().map(|(key, _)| key).collect();
                let used =
                    if keys.is_empty() { Vec::new() } else { store.dedupe_keys_used(business.id, &keys).await? };
                let repeated =
                    keys.iter().zip(&used).filter(|(key, used)| **used || !seen.insert(key.as_str())).count();
                Ok(Written { imported: (keys.len() - repeated) as u64, already_imported: repeated as u64 })
            });
        }
        let events: Vec<(String, ConsentEvent)> =
            good.into_iter().filter_map(|(key, event)| event.map(|event| (key, event))).collect();
        Box::pin(async move {
            if events.is_empty() {
                return Ok(Written { imported: 0, already_imported: 0 });
            }
            let recorded = store.record_consent_batch_once(&business, events).await?;
            let imported = recorded.iter().filter(|r| r.is_some()).count() as u64;
            Ok(Written { imported, already_imported: recorded.len() as u64 - imported })
        })
    }
}

fn shorten(text: &str) -> String {
    match text.char_indices().nth(MAX_ECHO_CHARS) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

/// Why an import cannot start: the header. Codes: `empty_file`, `invalid_header`,
/// `missing_column`, `duplicate_column`.
pub fn empty_file() -> crate::Rejection {
    crate::Rejection::invalid("empty_file", "the file is empty: it needs a header row")
}
