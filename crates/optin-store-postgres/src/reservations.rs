//! Recipients of business-initiated messages, for the messaging limit (migration
//! `0004_messaging_limit`): one row per business and recipient with the latest time a place was
//! reserved for them.
//!
//! Reserving takes a transaction-scoped advisory lock on the business first, so servers
//! reserving at the same time count one after the other: each sees every place the previous one
//! took (under READ COMMITTED every statement after the lock sees what committed before it), and
//! the limit is never exceeded. Which recipients fit is decided by
//! `optin_core::limit::admit_recipients`. Four statements whatever the number of phones.

use std::collections::HashSet;

use jiff::{SignedDuration, Timestamp};
use optin_core::ids::BusinessId;
use optin_core::limit::admit_recipients;
use optin_core::phone::PhoneNumber;
use optin_store::StoreError;
use tokio_postgres::types::ToSql;

use crate::PostgresStore;
use crate::error::db;
use crate::rows::{get, nanos, phone_key};

/// Serializes reservations of one business ("optr" in ASCII; two-key advisory locks are a key
/// space apart from the migrations' one-key lock, and this first key from the contacts' lock).
const LOCK_RESERVATIONS: &str = "SELECT pg_advisory_xact_lock(1869640818, hashtext($1::uuid::text))";

const T: &str = "recipient_reservations";

const COUNT_SINCE: &str =
    "SELECT count(*) AS reached FROM recipient_reservations WHERE business_id = $1 AND last_at > $2";

const REACHED_SINCE: &str = "\
SELECT phone FROM recipient_reservations WHERE business_id = $1 AND phone = ANY($2) AND last_at > $3";

/// `$2` holds each phone once: one statement cannot update a row twice.
const UPSERT: &str = "\
INSERT INTO recipient_reservations (business_id, phone, last_at) SELECT $1, unnest($2::bigint[]), $3
ON CONFLICT (business_id, phone)
DO UPDATE SET last_at = greatest(recipient_reservations.last_at, excluded.last_at)";

impl PostgresStore {
    /// One transaction under the business's reservations lock. `NotFound` for an unknown business.
    pub(crate) async fn reserve(
        &self,
        business: BusinessId,
        phones: &[PhoneNumber],
        at: Timestamp,
        window: SignedDuration,
        limit: Option<u64>,
    ) -> Result<Vec<bool>, StoreError> {
        let business = business.as_uuid();
        let at = nanos(at)?;
        let since = window_start(at, window);
        let mut client = self.client().await?;
        let transaction = client.transaction().await.map_err(db)?;
        transaction.execute(LOCK_RESERVATIONS, &[&business]).await.map_err(db)?;
        let known = transaction.query_opt("SELECT 1 FROM businesses WHERE id = $1", &[&business]).await.map_err(db)?;
        if known.is_none() {
            return Err(StoreError::NotFound);
        }
        let admitted = match limit {
            None => vec![true; phones.len()],
            Some(_) => {
                let row = transaction.query_one(COUNT_SINCE, &[&business, &since]).await.map_err(db)?;
                let count: i64 = get(&row, T, "reached")?;
                let keys: Vec<i64> = phones.iter().map(|phone| phone_key(*phone)).collect();
                let params: [&(dyn ToSql + Sync); 3] = [&business, &keys, &since];
                let rows = transaction.query(REACHED_SINCE, &params).await.map_err(db)?;
                let reached = rows.iter().map(|row| get(row, T, "phone")).collect::<Result<HashSet<i64>, _>>()?;
                let count = u64::try_from(count).unwrap_or_default();
                admit_recipients(limit, count, phones, |phone| reached.contains(&phone_key(phone)))
            }
        };
        let mut to_write: Vec<i64> =
            phones.iter().zip(&admitted).filter(|(_, a)| **a).map(|(p, _)| phone_key(*p)).collect();
        to_write.sort_unstable();
        to_write.dedup();
        if !to_write.is_empty() {
            let params: [&(dyn ToSql + Sync); 3] = [&business, &to_write, &at];
            transaction.execute(UPSERT, &params).await.map_err(db)?;
        }
        transaction.commit().await.map_err(db)?;
        Ok(admitted)
    }

    pub(crate) async fn count_reserved(
        &self,
        business: BusinessId,
        at: Timestamp,
        window: SignedDuration,
    ) -> Result<u64, StoreError> {
        let since = window_start(nanos(at)?, window);
        let client = self.client().await?;
        let row = client.query_one(COUNT_SINCE, &[&business.as_uuid(), &since]).await.map_err(db)?;
        let count: i64 = get(&row, T, "reached")?;
        Ok(u64::try_from(count).unwrap_or_default())
    }
}

/// The start of the window ending at `at` (nanoseconds), exclusive.
fn window_start(at: i64, window: SignedDuration) -> i64 {
    at.saturating_sub(i64::try_from(window.as_nanos()).unwrap_or(i64::MAX))
}
