//! The webhook inbox: deliveries as received, claimed by workers under a lease, then finished.
//!
//! `insert_delivery` is on the webhook's hot path: one INSERT, sent to the writer like every write,
//! so that concurrent requests share a commit (and its fsync).

use std::time::Duration;

use jiff::Timestamp;
use optin_core::ids::BusinessId;
use optin_store::StoreError;
use optin_store::channel::{Delivery, DeliveryFilter, DeliveryId, DeliveryOutcome, DeliveryState};
use rusqlite::{Connection, OptionalExtension, params};

use crate::error::{corrupt, db_error};
use crate::rows::{id, optional_timestamp, time, timestamp};
use crate::writer::Batch;

const DELIVERY_COLUMNS: &str = "id, business_id, received_at, body, state, attempts, note, processed_at";

/// Appends a pending delivery; `NotFound` for an unknown business (the foreign key).
pub(crate) fn insert_delivery(
    batch: &mut Batch<'_>,
    business: BusinessId,
    received_at: Timestamp,
    body: &[u8],
) -> Result<DeliveryId, StoreError> {
    let received_at = time(received_at)?;
    batch
        .conn
        .prepare_cached("INSERT INTO inbox (business_id, received_at, body) VALUES (?1, ?2, ?3)")
        .and_then(|mut stmt| stmt.execute(params![business.to_string(), received_at, body]))
        .map_err(db_error)?;
    Ok(batch.conn.last_insert_rowid())
}

/// Takes up to `limit` pending deliveries nobody holds (or whose lease expired), oldest first:
/// each is held until `now + lease` and counts one more attempt.
pub(crate) fn claim_deliveries(
    batch: &mut Batch<'_>,
    now: Timestamp,
    lease: Duration,
    limit: usize,
) -> Result<Vec<Delivery>, StoreError> {
    let now = time(now)?;
    let lease = i64::try_from(lease.as_nanos()).unwrap_or(i64::MAX);
    let claimed_until = now.saturating_add(lease);
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let mut rows: Vec<DeliveryRow> = batch
        .conn
        .prepare_cached(&format!(
            "UPDATE inbox SET claimed_until = ?1, attempts = attempts + 1
             WHERE id IN (
                 SELECT id FROM inbox
                 WHERE state = 'pending' AND (claimed_until IS NULL OR claimed_until < ?2)
                 ORDER BY id LIMIT ?3
             )
             RETURNING {DELIVERY_COLUMNS}"
        ))
        .and_then(|mut stmt| stmt.query_map(params![claimed_until, now, limit], DeliveryRow::read)?.collect())
        .map_err(db_error)?;
    // RETURNING gives rows in no particular order.
    rows.sort_unstable_by_key(|row| row.id);
    rows.into_iter().map(Delivery::try_from).collect()
}

/// Records each outcome and releases the claim. Unknown ids are skipped.
pub(crate) fn finish_deliveries(
    batch: &mut Batch<'_>,
    outcomes: &[(DeliveryId, DeliveryOutcome)],
    at: Timestamp,
) -> Result<(), StoreError> {
    let at = time(at)?;
    let mut stmt = batch
        .conn
        .prepare_cached("UPDATE inbox SET state = ?2, note = ?3, processed_at = ?4, claimed_until = NULL WHERE id = ?1")
        .map_err(db_error)?;
    for (id, outcome) in outcomes {
        let (state, note) = match outcome {
            DeliveryOutcome::Processed { note } => (DeliveryState::Processed, note.as_deref()),
            DeliveryOutcome::Failed { error } => (DeliveryState::Failed, Some(error.as_str())),
        };
        stmt.execute(params![id, state.as_str(), note, at]).map_err(db_error)?;
    }
    Ok(())
}

/// Makes the business's delivery pending again, unclaimed (its note stays until it is processed
/// again, so that people still see why it last failed). `NotFound` if it is not the business's.
pub(crate) fn requeue_delivery(batch: &mut Batch<'_>, business: BusinessId, id: DeliveryId) -> Result<(), StoreError> {
    let requeued = batch
        .conn
        .prepare_cached(
            "UPDATE inbox SET state = 'pending', claimed_until = NULL, processed_at = NULL
             WHERE id = ?1 AND business_id = ?2",
        )
        .and_then(|mut stmt| stmt.execute(params![id, business.to_string()]))
        .map_err(db_error)?;
    if requeued == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

/// The business's deliveries, newest first. A `limit` of 0 means 100; at most 1,000.
pub(crate) fn list_deliveries(
    conn: &Connection,
    business: BusinessId,
    filter: &DeliveryFilter,
) -> Result<Vec<Delivery>, StoreError> {
    let limit = match filter.limit {
        0 => 100,
        limit => limit.min(1_000),
    };
    let rows: Vec<DeliveryRow> = conn
        .prepare_cached(&format!(
            "SELECT {DELIVERY_COLUMNS} FROM inbox
             WHERE business_id = ?1 AND id < ?2 AND (?3 IS NULL OR state = ?3)
             ORDER BY id DESC LIMIT ?4"
        ))
        .and_then(|mut stmt| {
            let before = filter.before.unwrap_or(i64::MAX);
            let state = filter.state.map(|state| state.as_str());
            stmt.query_map(params![business.to_string(), before, state, limit as i64], DeliveryRow::read)?.collect()
        })
        .map_err(db_error)?;
    rows.into_iter().map(Delivery::try_from).collect()
}

pub(crate) fn delivery(
    conn: &Connection,
    business: BusinessId,
    id: DeliveryId,
) -> Result<Option<Delivery>, StoreError> {
    let row = conn
        .prepare_cached(&format!("SELECT {DELIVERY_COLUMNS} FROM inbox WHERE id = ?1 AND business_id = ?2"))
        .and_then(|mut stmt| stmt.query_row(params![id, business.to_string()], DeliveryRow::read).optional())
        .map_err(db_error)?;
    row.map(Delivery::try_from).transpose()
}

struct DeliveryRow {
    id: i64,
    business_id: String,
    received_at: i64,
    body: Vec<u8>,
    state: String,
    attempts: i64,
    note: Option<String>,
    processed_at: Option<i64>,
}

impl DeliveryRow {
    /// Reads the columns of [`DELIVERY_COLUMNS`], in order.
    fn read(row: &rusqlite::Row<'_>) -> rusqlite::Result<DeliveryRow> {
        Ok(DeliveryRow {
            id: row.get(0)?,
            business_id: row.get(1)?,
            received_at: row.get(2)?,
            body: row.get(3)?,
            state: row.get(4)?,
            attempts: row.get(5)?,
            note: row.get(6)?,
            processed_at: row.get(7)?,
        })
    }
}

impl TryFrom<DeliveryRow> for Delivery {
    type Error = StoreError;
    fn try_from(row: DeliveryRow) -> Result<Delivery, StoreError> {
        Ok(Delivery {
            id: row.id,
            business_id: id(&row.business_id, "inbox.business_id")?,
            received_at: timestamp(row.received_at, "inbox.received_at")?,
            body: row.body,
            state: DeliveryState::parse(&row.state).ok_or_else(|| corrupt("inbox.state is unknown"))?,
            attempts: u32::try_from(row.attempts).map_err(|_| corrupt("inbox.attempts is out of range"))?,
            note: row.note,
            processed_at: optional_timestamp(row.processed_at, "inbox.processed_at")?,
        })
    }
}
