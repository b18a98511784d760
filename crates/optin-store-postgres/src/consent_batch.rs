//! Many consent events of one business in one transaction (a bulk import's chunk), each once per
//! dedupe key.
//!
//! The same steps as a single append (`consent.rs`), a statement per step instead of per event:
//! take the keys (one `INSERT ... ON CONFLICT DO NOTHING RETURNING key`), lock the chain head,
//! read the states of every contact concerned (`phone = ANY`), fold the events in order in memory
//! (a contact named twice sees its first event), then insert the events, upsert the last state of
//! each (contact, category) and move the head, all with column arrays (`unnest`). The head stays
//! locked until the commit, as for single appends, so the chain stays one chain.

use std::collections::{BTreeMap, HashMap, HashSet};

use optin_core::business::{Business, CategoryName};
use optin_core::consent::{CategoryConsent, ContactConsent, apply};
use optin_core::ledger::{LedgerEntry, SealedEvent};
use optin_store::{Recorded, StoreError};
use tokio_postgres::Row;
use uuid::Uuid;

use crate::PostgresStore;
use crate::consent::ChangedStates;
use crate::error::db;
use crate::rows::{self, nanos, phone_key};

const TAKE_KEYS: &str = "\
INSERT INTO consent_dedupe (business_id, key, event_id, recorded_at)
SELECT $1::uuid, * FROM unnest($2::text[], $3::uuid[], $4::bigint[])
ON CONFLICT (business_id, key) DO NOTHING
RETURNING key";

const LOCK_HEAD: &str = "SELECT last_index, last_hash FROM chain_heads WHERE business_id = $1 FOR UPDATE";

const CONTACTS_STATE: &str = "\
SELECT phone, category, status, since, event_id, method, notice_id, last_opt_out_at, basis, basis_at
FROM consent_state WHERE business_id = $1 AND phone = ANY($2::bigint[]) ORDER BY phone";

const INSERT_EVENTS: &str = "\
INSERT INTO consent_events
    (business_id, chain_index, event_id, phone, recorded_at, content, content_hash, prev_hash, hash)
SELECT $1::uuid, * FROM unnest($2::bigint[], $3::uuid[], $4::bigint[], $5::bigint[], $6::text[], $7::text[],
                               $8::text[], $9::text[])";

const UPSERT_STATES: &str = "\
INSERT INTO consent_state
    (business_id, phone, category, status, since, event_id, method, notice_id, last_opt_out_at, basis, basis_at)
SELECT $1::uuid, *
FROM unnest($2::bigint[], $3::text[], $4::text[], $5::bigint[], $6::uuid[], $7::text[], $8::uuid[], $9::bigint[],
            $10::text[], $11::bigint[])
ON CONFLICT (business_id, phone, category) DO UPDATE SET
    status = excluded.status, since = excluded.since, event_id = excluded.event_id, method = excluded.method,
    notice_id = excluded.notice_id, last_opt_out_at = excluded.last_opt_out_at, basis = excluded.basis,
    basis_at = excluded.basis_at";

const UPDATE_HEAD: &str = "UPDATE chain_heads SET last_index = $2, last_hash = $3 WHERE business_id = $1";

impl PostgresStore {
    #[tracing::instrument(level = "debug", skip_all, fields(business = %business.id, events = events.len()))]
    pub(crate) async fn append_consent_events_once(
        &self,
        business: &Business,
        events: &[(String, SealedEvent)],
    ) -> Result<Vec<Option<Recorded>>, StoreError> {
        if events.iter().any(|(_, sealed)| sealed.event().business_id != business.id) {
            return Err(StoreError::Conflict { constraint: "event_business" });
        }
        let business_id = business.id.as_uuid();
        let mut client = self.client().await?;
        let transaction = client.transaction().await.map_err(db)?;
        let taken = take_keys(&transaction, business_id, events).await?;
        if taken.is_empty() {
            transaction.commit().await.map_err(db)?;
            return Ok(vec![None; events.len()]);
        }
        let head = transaction.query_opt(LOCK_HEAD, &[&business_id]).await.map_err(db)?;
        let mut head = rows::chain_head(&head.ok_or(StoreError::NotFound)?)?;
        let phones: Vec<i64> = taken.iter().map(|&i| phone_key(events[i].1.event().phone)).collect();
        let state_rows = transaction.query(CONTACTS_STATE, &[&business_id, &phones]).await.map_err(db)?;
        let mut consents = contacts_consent(&state_rows)?;
        let mut recorded: Vec<Option<Recorded>> = vec![None; events.len()];
        let mut entries = EventColumns::default();
        let mut states: BTreeMap<(i64, CategoryName), CategoryConsent> = BTreeMap::new();
        for &i in &taken {
            let sealed = &events[i].1;
            let event = sealed.event();
            let phone = phone_key(event.phone);
            let consent = consents.entry(phone).or_default();
            let folded = apply(consent, event);
            let entry = LedgerEntry::chain_sealed(sealed, head);
            head = Some(entry.head());
            for (category, state) in &folded.changed {
                states.insert((phone, category.clone()), state.clone());
            }
            consent.extend(folded.changed);
            entries.push(&entry, phone, nanos(event.recorded_at)?);
            recorded[i] = Some(Recorded {
                event_id: event.id,
                phone: event.phone,
                chain_index: entry.index,
                outcomes: folded.outcomes,
            });
        }
        entries.insert(&transaction, business_id).await?;
        StateColumns::new(&states)?.upsert(&transaction, business_id).await?;
        let head = head.expect("at least one event was chained");
        let index = i64::try_from(head.index).expect("chain indexes fit in i64");
        transaction.execute(UPDATE_HEAD, &[&business_id, &index, &head.hash.to_hex()]).await.map_err(db)?;
        transaction.commit().await.map_err(db)?;
        Ok(recorded)
    }

    pub(crate) async fn load_dedupe_keys_used(
        &self,
        business: optin_core::ids::BusinessId,
        keys: &[String],
    ) -> Result<Vec<bool>, StoreError> {
        let client = self.client().await?;
        let sql = "SELECT key FROM consent_dedupe WHERE business_id = $1 AND key = ANY($2::text[])";
        let rows = client.query(sql, &[&business.as_uuid(), &keys]).await.map_err(db)?;
        let used: HashSet<&str> =
            rows.iter().map(|row| rows::get(row, "consent_dedupe", "key")).collect::<Result<_, _>>()?;
        Ok(keys.iter().map(|key| used.contains(key.as_str())).collect())
    }
}

/// Takes the keys still free, in one statement; the positions (in `events`) of the events whose
/// key was taken, in order. A key repeated within `events` counts for its first event only.
async fn take_keys(
    transaction: &deadpool_postgres::Transaction<'_>,
    business_id: Uuid,
    events: &[(String, SealedEvent)],
) -> Result<Vec<usize>, StoreError> {
    let mut seen: HashSet<&str> = HashSet::with_capacity(events.len());
    let firsts: Vec<usize> = (0..events.len()).filter(|&i| seen.insert(events[i].0.as_str())).collect();
    let keys: Vec<&str> = firsts.iter().map(|&i| events[i].0.as_str()).collect();
    let event = |i: usize| events[i].1.event();
    let event_ids: Vec<Uuid> = firsts.iter().map(|&i| event(i).id.as_uuid()).collect();
    let recorded_at: Vec<i64> = firsts.iter().map(|&i| nanos(event(i).recorded_at)).collect::<Result<_, _>>()?;
    let rows = transaction.query(TAKE_KEYS, &[&business_id, &keys, &event_ids, &recorded_at]).await.map_err(db)?;
    let taken: HashSet<&str> =
        rows.iter().map(|row| rows::get(row, "consent_dedupe", "key")).collect::<Result<_, _>>()?;
    Ok(firsts.into_iter().filter(|&i| taken.contains(events[i].0.as_str())).collect())
}

/// The rows of `CONTACTS_STATE` (ordered by phone) as each contact's consent.
fn contacts_consent(state_rows: &[Row]) -> Result<HashMap<i64, ContactConsent>, StoreError> {
    let mut consents = HashMap::new();
    let mut start = 0;
    while start < state_rows.len() {
        let phone: i64 = rows::get(&state_rows[start], "consent_state", "phone")?;
        let mut end = start + 1;
        while end < state_rows.len() && rows::get::<i64>(&state_rows[end], "consent_state", "phone")? == phone {
            end += 1;
        }
        consents.insert(phone, rows::contact_consent(&state_rows[start..end])?);
        start = end;
    }
    Ok(consents)
}

/// The chained events as column arrays for `INSERT_EVENTS`.
#[derive(Default)]
struct EventColumns {
    indexes: Vec<i64>,
    event_ids: Vec<Uuid>,
    phones: Vec<i64>,
    recorded_at: Vec<i64>,
    contents: Vec<String>,
    content_hashes: Vec<String>,
    prev_hashes: Vec<String>,
    hashes: Vec<String>,
}

impl EventColumns {
    fn push(&mut self, entry: &LedgerEntry, phone: i64, recorded_at: i64) {
        self.indexes.push(i64::try_from(entry.index).expect("chain indexes fit in i64"));
        self.event_ids.push(entry.event_id.as_uuid());
        self.phones.push(phone);
        self.recorded_at.push(recorded_at);
        self.contents.push(entry.content.clone());
        self.content_hashes.push(entry.content_hash.to_hex());
        self.prev_hashes.push(entry.prev_hash.to_hex());
        self.hashes.push(entry.hash.to_hex());
    }

    async fn insert(
        &self,
        transaction: &deadpool_postgres::Transaction<'_>,
        business_id: Uuid,
    ) -> Result<(), StoreError> {
        transaction
            .execute(
                INSERT_EVENTS,
                &[
                    &business_id,
                    &self.indexes,
                    &self.event_ids,
                    &self.phones,
                    &self.recorded_at,
                    &self.contents,
                    &self.content_hashes,
                    &self.prev_hashes,
                    &self.hashes,
                ],
            )
            .await
            .map_err(db)?;
        Ok(())
    }
}

/// The last state of each changed (contact, category) as column arrays for `UPSERT_STATES`.
#[derive(Default)]
struct StateColumns<'a> {
    phones: Vec<i64>,
    states: ChangedStates<'a>,
}

impl<'a> StateColumns<'a> {
    fn new(states: &'a BTreeMap<(i64, CategoryName), CategoryConsent>) -> Result<Self, StoreError> {
        let mut columns = StateColumns::default();
        for ((phone, category), state) in states {
            columns.phones.push(*phone);
            columns.states.push(category, state)?;
        }
        Ok(columns)
    }

    async fn upsert(
        &self,
        transaction: &deadpool_postgres::Transaction<'_>,
        business_id: Uuid,
    ) -> Result<(), StoreError> {
        if self.phones.is_empty() {
            return Ok(());
        }
        transaction
            .execute(
                UPSERT_STATES,
                &[
                    &business_id,
                    &self.phones,
                    &self.states.categories,
                    &self.states.statuses,
                    &self.states.since,
                    &self.states.event_ids,
                    &self.states.methods,
                    &self.states.notice_ids,
                    &self.states.last_opt_out_at,
                    &self.states.bases,
                    &self.states.basis_at,
                ],
            )
            .await
            .map_err(db)?;
        Ok(())
    }
}
