//! The webhook inbox: deliveries stored as received, then claimed and processed by any server.
//!
//! Claims are leases, decided by the database: `FOR UPDATE SKIP LOCKED` lets servers claim at the
//! same time without waiting for (or taking) each other's rows, and `claimed_until` keeps a
//! claimed delivery from being claimed again until its lease ends, so a delivery whose processor
//! crashed is taken again later.

use std::collections::HashMap;
use std::time::Duration;

use jiff::Timestamp;
use optin_core::ids::BusinessId;
use optin_store::StoreError;
use optin_store::channel::{Delivery, DeliveryFilter, DeliveryId, DeliveryOutcome, DeliveryState};
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use crate::PostgresStore;
use crate::error::{corrupt, db};
use crate::rows::{get, nanos, optional_timestamp, page_limit, timestamp};

const DELIVERY_COLUMNS: &str = "id, business_id, received_at, body, state, attempts, note, processed_at";

/// Pending deliveries nobody holds (or whose lease ended before `$1`), oldest first, locked
/// (skipping rows another claim is taking right now), then leased: `attempts + 1` and held until
/// `$1 + $2`.
const CLAIM: &str = "\
UPDATE inbox SET claimed_until = $1 + $2, attempts = attempts + 1
WHERE id IN (
    SELECT id FROM inbox
    WHERE state = 'pending' AND (claimed_until IS NULL OR claimed_until < $1)
    ORDER BY id LIMIT $3
    FOR UPDATE SKIP LOCKED
)
RETURNING id, business_id, received_at, body, state, attempts, note, processed_at";

/// Every outcome in one statement: the arrays hold one element per delivery.
const FINISH: &str = "\
UPDATE inbox SET state = outcome.state, note = outcome.note, processed_at = $4, claimed_until = NULL
FROM unnest($1::bigint[], $2::text[], $3::text[]) AS outcome (id, state, note)
WHERE inbox.id = outcome.id";

impl PostgresStore {
    /// Durable once the insert returns (each statement commits on its own). `NotFound` for an
    /// unknown business (the foreign key).
    pub(crate) async fn append_delivery(
        &self,
        business: BusinessId,
        received_at: Timestamp,
        body: &[u8],
    ) -> Result<DeliveryId, StoreError> {
        let client = self.client().await?;
        let sql = "INSERT INTO inbox (business_id, received_at, body) VALUES ($1, $2, $3) RETURNING id";
        let row = client.query_one(sql, &[&business.as_uuid(), &nanos(received_at)?, &body]).await.map_err(db)?;
        get(&row, "inbox", "id")
    }

    /// One statement, so the lock, the check and the lease are atomic: two servers claiming at
    /// once get disjoint sets.
    pub(crate) async fn claim_pending_deliveries(
        &self,
        now: Timestamp,
        lease: Duration,
        limit: usize,
    ) -> Result<Vec<Delivery>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let lease = i64::try_from(lease.as_nanos()).map_err(|_| corrupt("the lease is too long to store"))?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let client = self.client().await?;
        let statement = client.prepare_cached(CLAIM).await.map_err(db)?;
        let rows = client.query(&statement, &[&nanos(now)?, &lease, &limit]).await.map_err(db)?;
        let mut claimed = rows.iter().map(delivery).collect::<Result<Vec<_>, _>>()?;
        claimed.sort_unstable_by_key(|delivery| delivery.id);
        Ok(claimed)
    }

    /// One statement (so one transaction). When a delivery appears twice, its last outcome wins.
    pub(crate) async fn finish_claimed_deliveries(
        &self,
        outcomes: &[(DeliveryId, DeliveryOutcome)],
        at: Timestamp,
    ) -> Result<(), StoreError> {
        let last: HashMap<DeliveryId, &DeliveryOutcome> = outcomes.iter().map(|(id, outcome)| (*id, outcome)).collect();
        if last.is_empty() {
            return Ok(());
        }
        let mut ids = Vec::with_capacity(last.len());
        let mut states = Vec::with_capacity(last.len());
        let mut notes = Vec::with_capacity(last.len());
        for (id, outcome) in last {
            let (state, note) = match outcome {
                DeliveryOutcome::Processed { note } => (DeliveryState::Processed, note.as_deref()),
                DeliveryOutcome::Failed { error } => (DeliveryState::Failed, Some(error.as_str())),
            };
            ids.push(id);
            states.push(state.as_str());
            notes.push(note);
        }
        let client = self.client().await?;
        client.execute(FINISH, &[&ids, &states, &notes, &nanos(at)?]).await.map_err(db)?;
        Ok(())
    }

    /// Newest first; `limit` 0 means the default page, and pages are capped.
    pub(crate) async fn load_deliveries(
        &self,
        business: BusinessId,
        filter: &DeliveryFilter,
    ) -> Result<Vec<Delivery>, StoreError> {
        let business = business.as_uuid();
        let state = filter.state.map(|state| state.as_str());
        let limit = page_limit(filter.limit);
        let mut sql = format!("SELECT {DELIVERY_COLUMNS} FROM inbox WHERE business_id = $1");
        let mut params: Vec<&(dyn ToSql + Sync)> = vec![&business];
        if let Some(state) = &state {
            params.push(state);
            sql.push_str(&format!(" AND state = ${}", params.len()));
        }
        if let Some(before) = &filter.before {
            params.push(before);
            sql.push_str(&format!(" AND id < ${}", params.len()));
        }
        params.push(&limit);
        sql.push_str(&format!(" ORDER BY id DESC LIMIT ${}", params.len()));
        let client = self.client().await?;
        client.query(&sql, &params).await.map_err(db)?.iter().map(delivery).collect()
    }

    pub(crate) async fn load_delivery(
        &self,
        business: BusinessId,
        id: DeliveryId,
    ) -> Result<Option<Delivery>, StoreError> {
        let client = self.client().await?;
        let sql = format!("SELECT {DELIVERY_COLUMNS} FROM inbox WHERE business_id = $1 AND id = $2");
        client.query_opt(&sql, &[&business.as_uuid(), &id]).await.map_err(db)?.as_ref().map(delivery).transpose()
    }

    /// Pending again with no claim (the note stays until the delivery is processed again, so
    /// that people still see why it last failed); `NotFound` unless the delivery is the business's.
    pub(crate) async fn requeue(&self, business: BusinessId, id: DeliveryId) -> Result<(), StoreError> {
        let client = self.client().await?;
        let sql = "UPDATE inbox SET state = 'pending', claimed_until = NULL, processed_at = NULL
                   WHERE business_id = $1 AND id = $2";
        let updated = client.execute(sql, &[&business.as_uuid(), &id]).await.map_err(db)?;
        if updated == 0 { Err(StoreError::NotFound) } else { Ok(()) }
    }
}

/// Columns: `DELIVERY_COLUMNS`.
fn delivery(row: &Row) -> Result<Delivery, StoreError> {
    const T: &str = "inbox";
    let attempts: i32 = get(row, T, "attempts")?;
    Ok(Delivery {
        id: get(row, T, "id")?,
        business_id: BusinessId::from_uuid(get(row, T, "business_id")?),
        received_at: timestamp(get(row, T, "received_at")?, T, "received_at")?,
        body: get(row, T, "body")?,
        state: DeliveryState::parse(get(row, T, "state")?).ok_or_else(|| corrupt("inbox.state: unknown"))?,
        attempts: u32::try_from(attempts).map_err(|_| corrupt("inbox.attempts: negative"))?,
        note: get(row, T, "note")?,
        processed_at: optional_timestamp(get(row, T, "processed_at")?, T, "processed_at")?,
    })
}
