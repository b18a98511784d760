//! Recipients of business-initiated messages, for the messaging limit (migration
//! `0004_messaging_limit`): one row per business and recipient with the latest time a place was
//! reserved for them.
//!
//! Reserving is one writer command: it counts, reads and writes inside the writer's
//! `BEGIN IMMEDIATE` transaction, which holds SQLite's write lock, so no other command (of this
//! process or another) can count the same places meanwhile. Which recipients fit is decided by
//! `optin_core::limit::admit_recipients`.

use std::collections::HashSet;

use jiff::{SignedDuration, Timestamp};
use optin_core::ids::BusinessId;
use optin_core::limit::admit_recipients;
use optin_core::phone::PhoneNumber;
use optin_store::StoreError;
use rusqlite::{Connection, OptionalExtension, params};

use crate::error::db_error;
use crate::rows::{phone_key, time};
use crate::writer::Batch;

/// Admits recipients in order (see `Store::reserve_recipients`) and moves each admitted one's
/// `last_at` to `at` (never back). `NotFound` for an unknown business.
pub(crate) fn reserve_recipients(
    batch: &mut Batch<'_>,
    business: BusinessId,
    phones: &[PhoneNumber],
    at: Timestamp,
    window: SignedDuration,
    limit: Option<u64>,
) -> Result<Vec<bool>, StoreError> {
    let conn = batch.conn;
    let business_id = business.to_string();
    let known: Option<i64> = conn
        .prepare_cached("SELECT 1 FROM businesses WHERE id = ?1")
        .and_then(|mut stmt| stmt.query_row(params![business_id], |row| row.get(0)).optional())
        .map_err(db_error)?;
    if known.is_none() {
        return Err(StoreError::NotFound);
    }
    let at = time(at)?;
    let since = window_start(at, window);
    let admitted = match limit {
        None => vec![true; phones.len()],
        Some(_) => {
            let reached = count_since(conn, &business_id, since)?;
            let in_window = reached_since(conn, &business_id, phones, since)?;
            admit_recipients(limit, reached, phones, |phone| in_window.contains(&phone))
        }
    };
    let mut upsert = conn
        .prepare_cached(
            "INSERT INTO recipient_reservations (business_id, phone, last_at) VALUES (?1, ?2, ?3)
             ON CONFLICT (business_id, phone) DO UPDATE SET last_at = max(last_at, excluded.last_at)",
        )
        .map_err(db_error)?;
    for (phone, _) in phones.iter().zip(&admitted).filter(|(_, admitted)| **admitted) {
        upsert.execute(params![business_id, phone_key(*phone), at]).map_err(db_error)?;
    }
    Ok(admitted)
}

/// How many recipients have a reservation after `at - window`.
pub(crate) fn recipients_in_window(
    conn: &Connection,
    business: BusinessId,
    at: Timestamp,
    window: SignedDuration,
) -> Result<u64, StoreError> {
    count_since(conn, &business.to_string(), window_start(time(at)?, window))
}

/// The start of the window ending at `at` (nanoseconds), exclusive.
fn window_start(at: i64, window: SignedDuration) -> i64 {
    at.saturating_sub(i64::try_from(window.as_nanos()).unwrap_or(i64::MAX))
}

fn count_since(conn: &Connection, business_id: &str, since: i64) -> Result<u64, StoreError> {
    let count: i64 = conn
        .prepare_cached("SELECT COUNT(*) FROM recipient_reservations WHERE business_id = ?1 AND last_at > ?2")
        .and_then(|mut stmt| stmt.query_row(params![business_id, since], |row| row.get(0)))
        .map_err(db_error)?;
    Ok(u64::try_from(count).unwrap_or_default())
}

/// Which of `phones` have a reservation after `since`.
fn reached_since(
    conn: &Connection,
    business_id: &str,
    phones: &[PhoneNumber],
    since: i64,
) -> Result<HashSet<PhoneNumber>, StoreError> {
    let mut stmt = conn
        .prepare_cached("SELECT last_at FROM recipient_reservations WHERE business_id = ?1 AND phone = ?2")
        .map_err(db_error)?;
    let mut reached = HashSet::new();
    for phone in phones {
        let last_at: Option<i64> =
            stmt.query_row(params![business_id, phone_key(*phone)], |row| row.get(0)).optional().map_err(db_error)?;
        if last_at.is_some_and(|last_at| last_at > since) {
            reached.insert(*phone);
        }
    }
    Ok(reached)
}
