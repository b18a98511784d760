//! Bulk import of opt-ins collected elsewhere (a CSV file), shared by `optin import opt-ins` and
//! `POST /v1/imports`.
//!
//! The caller reads rows (`csv::CsvRows`: bytes in, bounded rows out) and hands them over a chunk
//! at a time ([`Importer::import_chunk`]); nothing here holds more than a chunk of checked rows.
//! An import runs in two phases:
//! 1. *Check*: each row is checked on its own (`row`: the phone, categories, original method, time
//!    and evidence, with the API's codes; its notice is looked up or checked once per import,
//!    `notices`), and rejections go back to the caller at once. The good rows' raw fields are kept
//!    for phase 2, sorted by phone number (`sorted`: runs past 64 MiB spill to a temporary file).
//! 2. *Write* ([`Importer::finish_with`]): the kept rows, in number order, are checked again and
//!    recorded a chunk at a time through `Store::record_consent_batch_once` (one transaction per
//!    chunk), the next chunk checked while the previous one is written. Number order is what makes
//!    it fast: the state, events-by-contact and dedupe B-trees are all keyed by the number, so
//!    consecutive rows share pages (see `sorted` for the measurements).
//!
//! A dry run checks every row and reads, chunk by chunk, which keys were used; it writes nothing.
//!
//! Each imported row becomes an opt-in with method `import`, its original `collected_at`, and
//! evidence `{batch_id, original_method, source_row, ...its evidence columns}`. It is recorded
//! once per *content*: its dedupe key is `import:`, the number (15 digits, so keys sort as numbers
//! do), then the SHA-256 of its normalized content (E.164 number, sorted categories, original
//! method, collection time, the notice's text hash and language, sorted evidence cells; not the
//! batch id or row number), so importing the same file again records nothing and reports those rows
//! as already imported. The ledger gets a file's events in number order; each keeps its row number.

pub mod csv;
mod header;
mod notices;
mod row;
mod sorted;

use std::collections::{BTreeMap, HashSet};
use std::future::Future;
use std::pin::Pin;

use jiff::Timestamp;
use optin_core::business::Business;
use optin_core::consent::{ConsentBasis, ConsentChange, ConsentEvent, OptIn};
use optin_core::evidence::{Evidence, Method};
use optin_core::ids::EventId;
use optin_core::ledger::{Hash, SealedEvent};
use optin_core::phone::PhoneNumber;
use rayon::prelude::*;
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

pub use self::csv::{CsvRows, NextRow, RawRow};
pub use self::header::ImportHeader;
use self::notices::{Notices, ResolvedNotice};
use self::row::{CheckedRow, NoticeRequest, RowChecker};
use self::sorted::SortedRows;
use crate::rejection::{Problem, UseCaseError};
use crate::store::{Store, StoreError};

/// Rows checked and recorded together (one transaction each). The transaction holds SQLite's write
/// lock, so other writes (an opt-out through the server) wait for it. Written in number order a
/// chunk takes ~50 ms; larger chunks gained ~4% (10,000 rows: 45,200 against 43,500 rows/s on a
/// presorted file), not worth five times the wait.
pub const CHUNK_ROWS: usize = 2_000;
/// Fewest rows a thread checks at once in a first check (a chunk splits into 8 at most).
const PARALLEL_MIN_ROWS: usize = 250;
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

/// What checking a row's own cells found.
struct RowCheck<'r> {
    checked: Option<CheckedRow>,
    notice: Option<NoticeRequest<'r>>,
    problems: Vec<Problem>,
}

/// A row that passed its check: where it is in the chunk, what it says, its notice.
struct GoodRow {
    index: usize,
    row: CheckedRow,
    notice: ResolvedNotice,
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
    /// Checks rows (and remembers the category cells it has seen).
    rows: RowChecker,
    notices: Notices,
    summary: ImportSummary,
    /// The previous chunk's store call, running while the next chunk is checked.
    pending: Option<Pending<'s>>,
    /// The good rows, waiting to be written in number order (not used by a dry run).
    sorted: SortedRows,
    event_ids: EventIds,
    /// A dry run's rows so far, by [`content_digest`] of their dedupe key (16 bytes a row).
    dry_run_seen: HashSet<u128>,
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
            sorted: SortedRows::new(),
            event_ids: EventIds::default(),
            dry_run_seen: HashSet::new(),
            key: Vec::with_capacity(512),
        }
    }

    pub fn header(&self) -> &ImportHeader {
        &self.header
    }

    /// Checks a chunk of rows; the rejected ones, in order. The good rows are kept (sorted by
    /// number, spilled to a temporary file past a bound) and written by [`Importer::finish_with`]; a
    /// dry run looks up which were recorded before, chunk by chunk.
    pub async fn import_chunk(&mut self, rows: &[RawRow]) -> Result<Vec<RowRejection>, UseCaseError> {
        let rejections = if self.options.dry_run {
            self.check_and_write(rows, None).await?
        } else {
            let (good, rejections) = self.check_chunk(rows, None).await?;
            for good in good {
                self.sorted.push(good.row.phone.key(), &rows[good.index]).map_err(scratch_failed)?;
            }
            rejections
        };
        self.summary.rows += rows.len() as u64;
        self.summary.rejected += rejections.len() as u64;
        for rejection in &rejections {
            let mut codes: Vec<&'static str> = rejection.problems.iter().map(|p| p.code).collect();
            codes.dedup();
            for code in codes {
                *self.summary.reasons.entry(code).or_default() += 1;
            }
        }
        Ok(rejections)
    }

    /// Records the good rows in number order, chunk by chunk (`written` is told how many rows
    /// are done after each); the summary of the whole run.
    pub async fn finish_with(mut self, mut written: impl FnMut(u64)) -> Result<ImportSummary, UseCaseError> {
        let sorted = std::mem::replace(&mut self.sorted, SortedRows::new());
        if !sorted.is_empty() {
            let mut reader = sorted.into_reader().map_err(scratch_failed)?;
            let (mut rows, mut phones) = (vec![RawRow::default(); CHUNK_ROWS], Vec::with_capacity(CHUNK_ROWS));
            let mut done = 0;
            loop {
                let count = reader.next_chunk(&mut rows, &mut phones).map_err(scratch_failed)?;
                if count == 0 {
                    break;
                }
                // The rows passed this same check when read (their numbers are kept from it); the
                // notices they use are cached.
                let phones: Vec<Option<Result<PhoneNumber, Problem>>> =
                    phones.iter().map(|key| PhoneNumber::from_key(*key).map(Ok)).collect();
                if let Some(rejection) = self.check_and_write(&rows[..count], Some(&phones)).await?.first() {
                    let detail = format!("row {} failed its check a second time", rejection.row);
                    return Err(StoreError::Corrupt(detail).into());
                }
                done += count as u64;
                written(done);
            }
        }
        if let Some(pending) = self.pending.take() {
            let written = pending.await?;
            self.count(&written);
        }
        self.summary.notices_registered = self.notices.registered;
        Ok(self.summary)
    }

    /// [`Importer::finish_with`] without progress.
    pub async fn finish(self) -> Result<ImportSummary, UseCaseError> {
        self.finish_with(|_| {}).await
    }

    /// Checks a chunk and starts recording its good rows (a dry run: looking them up) while the
    /// previous chunk's recording is awaited. The rejected rows, in order.
    async fn check_and_write(
        &mut self,
        rows: &[RawRow],
        parsed_phones: Option<&[Option<Result<PhoneNumber, Problem>>]>,
    ) -> Result<Vec<RowRejection>, UseCaseError> {
        let previous = self.pending.take();
        let wait = async move {
            match previous {
                Some(pending) => pending.await.map(Some),
                None => Ok(None),
            }
        };
        let (written, prepared) = futures::future::join(wait, self.prepare_chunk(rows, parsed_phones)).await;
        if let Some(written) = written? {
            self.count(&written);
        }
        let (good, rejections) = prepared?;
        let mut pending = self.start_writing(good);
        // Sends the first request now, so the store works while the caller reads the next chunk.
        if let std::task::Poll::Ready(written) = futures::poll!(pending.as_mut()) {
            self.count(&written?);
        } else {
            self.pending = Some(pending);
        }
        Ok(rejections)
    }

    /// Checks a chunk and makes its good rows' dedupe keys and events (all of it while the store
    /// writes the previous chunk). The rejections, in order.
    async fn prepare_chunk(
        &mut self,
        rows: &[RawRow],
        parsed_phones: Option<&[Option<Result<PhoneNumber, Problem>>]>,
    ) -> Result<(Vec<(String, Option<SealedEvent>)>, Vec<RowRejection>), UseCaseError> {
        let (good, rejections) = self.check_chunk(rows, parsed_phones).await?;
        let keys: Vec<String> = good.iter().map(|good| self.dedupe_key(&good.row, &good.notice)).collect();
        // Rows an earlier import recorded are not sealed: a rerun spent most of its time making
        // events the store then dropped. (The store still checks every key it is given.)
        let used = if self.options.dry_run || keys.is_empty() {
            vec![false; keys.len()]
        } else {
            self.store.dedupe_keys_used(self.business.id, &keys).await?
        };
        let good = good
            .into_iter()
            .zip(keys)
            .zip(used)
            .map(|((good, key), used)| {
                // A dry run only looks up the keys.
                let reference = good.notice.reference.filter(|_| !self.options.dry_run && !used);
                let event = reference
                    .map(|reference| SealedEvent::new(self.event(rows[good.index].number, good.row, reference)));
                (key, event)
            })
            .collect();
        Ok((good, rejections))
    }

    fn count(&mut self, written: &Written) {
        self.summary.imported += written.imported;
        self.summary.already_imported += written.already_imported;
    }

    /// The good rows (checked, with their notice), and the rejections.
    /// `parsed_phones`: the rows' phone cells parsed beforehand, one per row.
    async fn check_chunk(
        &mut self,
        rows: &[RawRow],
        parsed_phones: Option<&[Option<Result<PhoneNumber, Problem>>]>,
    ) -> Result<(Vec<GoodRow>, Vec<RowRejection>), UseCaseError> {
        let mut good = Vec::with_capacity(rows.len());
        let mut rejections = Vec::new();
        let checks = self.check_rows(rows, parsed_phones);
        for (index, (row, RowCheck { checked, notice, mut problems })) in rows.iter().zip(checks).enumerate() {
            let notice = match notice {
                Some(request) => Some(self.resolve_notice(request).await?),
                None => None,
            };
            match (checked, notice) {
                (Some(checked), Some(Ok(notice))) if problems.is_empty() => {
                    good.push(GoodRow { index, row: checked, notice });
                }
                (checked, notice) => {
                    problems.extend(notice.and_then(Result::err).unwrap_or_default());
                    rejections.push(self.rejection(index, row, checked.as_ref(), problems));
                }
            }
        }
        Ok((good, rejections))
    }

    /// Each row's own cells checked (its notice only named). A first check runs on rayon's
    /// threads (one per core): parsing numbers with libphonenumber is most of it, and those
    /// threads live as long as the process, so each keeps its regexes' caches warm (each thread
    /// has its own clone of every regex: `vendor/regex-cache`). A recheck (numbers kept from the
    /// first) runs on this thread, beside the store's writer, which is then the slower side.
    fn check_rows<'r>(
        &mut self,
        rows: &'r [RawRow],
        parsed_phones: Option<&[Option<Result<PhoneNumber, Problem>>]>,
    ) -> Vec<RowCheck<'r>> {
        let (header, business) = (&self.header, &self.business);
        let check = |checker: &mut RowChecker, row: &'r RawRow, phone: Option<Result<PhoneNumber, Problem>>| {
            let mut problems = Vec::new();
            let (checked, notice) = checker.check(header, business, (row, phone), &mut problems);
            RowCheck { checked, notice, problems }
        };
        match parsed_phones {
            Some(phones) => {
                let checker = &mut self.rows;
                rows.iter().zip(phones).map(|(row, phone)| check(checker, row, phone.clone())).collect()
            }
            None => {
                let seed = &self.rows;
                rows.par_iter()
                    .with_min_len(PARALLEL_MIN_ROWS)
                    .map_init(|| seed.clone(), |checker, row| check(checker, row, None))
                    .collect()
            }
        }
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

    /// `import:{number, 15 digits}:{hex SHA-256 of the row's normalized content}` (each part of
    /// the content length-prefixed). The number first keeps keys in the order rows are written.
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
        format!("import:{:015}:{}", row.phone.key(), Hash::of(key).to_hex())
    }

    fn event(&mut self, row_number: u64, row: CheckedRow, notice: optin_core::consent::NoticeRef) -> ConsentEvent {
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
            id: EventId::from_uuid(self.event_ids.next_id()),
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
    fn start_writing(&mut self, good: Vec<(String, Option<SealedEvent>)>) -> Pending<'s> {
        let (store, business) = (self.store, self.business.clone());
        if self.options.dry_run {
            let keys: Vec<String> = good.into_iter().map(|(key, _)| key).collect();
            // A row whose content came earlier in the file would be `already_imported` too.
            let earlier: Vec<bool> = keys.iter().map(|key| !self.dry_run_seen.insert(content_digest(key))).collect();
            return Box::pin(async move {
                let used =
                    if keys.is_empty() { Vec::new() } else { store.dedupe_keys_used(business.id, &keys).await? };
                let repeated = used.iter().zip(&earlier).filter(|(used, earlier)| **used || **earlier).count();
                Ok(Written { imported: (keys.len() - repeated) as u64, already_imported: repeated as u64 })
            });
        }
        // Outside a dry run, a row without an event is one whose key was found used.
        let rows = good.len() as u64;
        let events: Vec<(String, SealedEvent)> =
            good.into_iter().filter_map(|(key, event)| event.map(|event| (key, event))).collect();
        Box::pin(async move {
            let imported = if events.is_empty() {
                0
            } else {
                let recorded = store.record_consent_batch_once(&business, events).await?;
                recorded.iter().filter(|r| r.is_some()).count() as u64
            };
            Ok(Written { imported, already_imported: rows - imported })
        })
    }
}

/// 128 bits of a dedupe key's content hash (its last 32 hex digits).
fn content_digest(key: &str) -> u128 {
    key.get(key.len().saturating_sub(32)..).and_then(|hex| u128::from_str_radix(hex, 16).ok()).unwrap_or_default()
}

/// Random (version 4) UUIDs for events, drawn from the OS a few thousand at a time: one
/// `getrandom` call per UUID was a visible share of an import's checking.
#[derive(Default)]
struct EventIds {
    random: Vec<u8>,
}

impl EventIds {
    const BATCH: usize = 4096;

    fn next_id(&mut self) -> Uuid {
        if self.random.len() < 16 {
            self.random.resize(16 * Self::BATCH, 0);
            if getrandom::fill(&mut self.random).is_err() {
                self.random.clear();
                return Uuid::new_v4();
            }
        }
        let bytes: [u8; 16] = self.random[self.random.len() - 16..].try_into().expect("16 bytes");
        self.random.truncate(self.random.len() - 16);
        uuid::Builder::from_random_bytes(bytes).into_uuid()
    }
}

/// The sort's temporary file failed (no space left in `TMPDIR`, say).
#[derive(Debug, thiserror::Error)]
#[error("the import's temporary file (in TMPDIR) failed")]
struct ScratchFailed(#[source] std::io::Error);

fn scratch_failed(error: std::io::Error) -> UseCaseError {
    StoreError::Unavailable(Box::new(ScratchFailed(error))).into()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_ids_are_distinct_random_uuids_across_refills() {
        let mut ids = EventIds::default();
        let drawn: HashSet<Uuid> = (0..EventIds::BATCH * 2 + 3).map(|_| ids.next_id()).collect();
        assert_eq!(drawn.len(), EventIds::BATCH * 2 + 3);
        assert!(drawn.iter().all(|id| id.get_version() == Some(uuid::Version::Random)));
    }
}
