//! The consent ledger: appending events to a business's chain, and reading consent back.

use std::collections::HashMap;

use optin_core::business::Business;
use optin_core::consent::{CategoryConsent, ConsentBits, ConsentEvent, ContactConsent, apply};
use optin_core::ids::BusinessId;
use optin_core::ledger::{ChainHead, LedgerEntry};
use optin_core::phone::PhoneNumber;
use optin_store::{Recorded, StoreError};
use tokio_postgres::Statement;
use uuid::Uuid;

use crate::PostgresStore;
use crate::error::db;
use crate::rows::{self, nanos, optional_nanos, phone_key};

/// A statement parameter.
type Param<'a> = &'a (dyn tokio_postgres::types::ToSql + Sync);

const LOCK_HEAD: &str = "SELECT last_index, last_hash FROM chain_heads WHERE business_id = $1 FOR UPDATE";

const CONTACT_STATE: &str = "\
SELECT category, status, since, event_id, method, notice_id, last_opt_out_at, basis, basis_at
FROM consent_state WHERE business_id = $1 AND phone = $2";

const INSERT_EVENT: &str = "\
INSERT INTO consent_events
    (business_id, chain_index, event_id, phone, recorded_at, content, content_hash, prev_hash, hash)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";

/// Writes every changed category of the contact in one statement (arrays, one element each).
const UPSERT_STATES: &str = "\
INSERT INTO consent_state
    (business_id, phone, category, status, since, event_id, method, notice_id, last_opt_out_at, basis, basis_at)
SELECT $1::uuid, $2::bigint, *
FROM unnest($3::text[], $4::text[], $5::bigint[], $6::uuid[], $7::text[], $8::uuid[], $9::bigint[], $10::text[],
            $11::bigint[])
ON CONFLICT (business_id, phone, category) DO UPDATE SET
    status = excluded.status, since = excluded.since, event_id = excluded.event_id, method = excluded.method,
    notice_id = excluded.notice_id, last_opt_out_at = excluded.last_opt_out_at, basis = excluded.basis,
    basis_at = excluded.basis_at";

/// Takes a dedupe key for an event; no row when the business already used the key (an unknown
/// business fails on the foreign key: `NotFound`).
const TAKE_KEY: &str = "\
INSERT INTO consent_dedupe (business_id, key, event_id, recorded_at) VALUES ($1, $2, $3, $4)
ON CONFLICT (business_id, key) DO NOTHING";

const UPDATE_HEAD: &str = "UPDATE chain_heads SET last_index = $2, last_hash = $3 WHERE business_id = $1";

const CONTACT_BITS: &str = "SELECT category, status, basis FROM consent_state WHERE business_id = $1 AND phone = $2";

const CONTACTS_BITS: &str =
    "SELECT phone, category, status, basis FROM consent_state WHERE business_id = $1 AND phone = ANY($2::bigint[])";

const ENTRY_COLUMNS: &str = "chain_index, event_id, phone, content, content_hash, prev_hash, hash";

impl PostgresStore {
    /// Records the event (see `append_consent_event_once`).
    pub(crate) async fn append_consent_event(
        &self,
        business: &Business,
        event: &ConsentEvent,
    ) -> Result<Recorded, StoreError> {
        let recorded = self.append_consent_event_once(business, None, event).await?;
        Ok(recorded.expect("an append without a dedupe key always records"))
    }

    /// One transaction: lock the chain head (serializing the business's appends across
    /// processes), read the contact's consent, fold the event, then write the event, the changed
    /// states and the new head together, and commit.
    ///
    /// The head stays locked from the `SELECT ... FOR UPDATE` to the end of the `COMMIT`, which
    /// bounds how fast one business's chain grows, so statements that do not wait for each
    /// other's answers are pipelined: tokio-postgres sends a request when its future is first
    /// polled, and `biased` polls them in the order written. The contact's state is read right
    /// behind the lock (the server runs it once the lock is granted, with a snapshot that sees
    /// the previous holder's commit), and the three writes go together. The lock is held for
    /// about two round trips plus the commit's flush.
    ///
    /// With a `dedupe_key`, the transaction first takes the key (`INSERT ... ON CONFLICT DO
    /// NOTHING`): when the business already used it, nothing is recorded and the answer is `None`.
    /// The key is taken before the chain head is locked, so a concurrent append with the same key
    /// waits on the key (without holding the chain) and then finds it used, and an append that
    /// rolls back leaves the key free.
    #[tracing::instrument(level = "debug", skip_all, fields(business = %business.id, phone = %event.phone.redacted()))]
    pub(crate) async fn append_consent_event_once(
        &self,
        business: &Business,
        dedupe_key: Option<&str>,
        event: &ConsentEvent,
    ) -> Result<Option<Recorded>, StoreError> {
        if event.business_id != business.id {
            return Err(StoreError::Conflict { constraint: "event_business" });
        }
        let key = ContactKey { business_id: business.id.as_uuid(), phone: phone_key(event.phone) };
        let recorded_at = nanos(event.recorded_at)?;
        let mut client = self.client().await?;
        let statements = AppendStatements::prepare(&client).await?;
        let transaction = client.transaction().await.map_err(db)?;
        if let Some(dedupe_key) = dedupe_key {
            let params: [Param; 4] = [&key.business_id, &dedupe_key, &event.id.as_uuid(), &recorded_at];
            if transaction.execute(&statements.take_key, &params).await.map_err(db)? == 0 {
                return Ok(None);
            }
        }
        let (head_params, contact_params): ([Param; 1], [Param; 2]) =
            ([&key.business_id], [&key.business_id, &key.phone]);
        let (head, state_rows) = tokio::try_join!(
            biased;
            transaction.query_opt(&statements.lock_head, &head_params),
            transaction.query(&statements.contact_state, &contact_params),
        )
        .map_err(db)?;
        let head = rows::chain_head(&head.ok_or(StoreError::NotFound)?)?;
        let folded = apply(&rows::contact_consent(&state_rows)?, event);
        let entry = LedgerEntry::chain(event, head);
        let changed = ChangedStates::new(&folded.changed)?;
        write_entry(&transaction, &statements, &key, recorded_at, &entry, &changed).await?;
        transaction.commit().await.map_err(db)?;
        Ok(Some(Recorded {
            event_id: event.id,
            phone: event.phone,
            chain_index: entry.index,
            outcomes: folded.outcomes,
        }))
    }

    /// The hot path of decisions: one indexed read of the contact's rows, with a statement
    /// prepared once per connection. Rows of categories the given business does not know (added
    /// since it was loaded) are left out.
    pub(crate) async fn load_consent_bits(
        &self,
        business: &Business,
        phone: PhoneNumber,
    ) -> Result<ConsentBits, StoreError> {
        let client = self.client().await?;
        let statement = client.prepare_cached(CONTACT_BITS).await.map_err(db)?;
        let rows = client.query(&statement, &[&business.id.as_uuid(), &phone_key(phone)]).await.map_err(db)?;
        let mut bits = ConsentBits::default();
        for row in &rows {
            let category: &str = rows::get(row, "consent_state", "category")?;
            let (status, basis) = rows::status_and_basis(row)?;
            if let Some(slot) = business.category_slot(category) {
                bits.set(slot.bit(), status, basis);
            }
        }
        Ok(bits)
    }

    /// `load_consent_bits` for many contacts: one statement (`phone = ANY($2)`) on the primary
    /// key, outside any transaction, answered in the order given.
    pub(crate) async fn load_consent_bits_many(
        &self,
        business: &Business,
        phones: &[PhoneNumber],
    ) -> Result<Vec<ConsentBits>, StoreError> {
        if phones.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<i64> = phones.iter().map(|phone| phone_key(*phone)).collect();
        let client = self.client().await?;
        let statement = client.prepare_cached(CONTACTS_BITS).await.map_err(db)?;
        let rows = client.query(&statement, &[&business.id.as_uuid(), &keys]).await.map_err(db)?;
        let mut found: HashMap<i64, ConsentBits> = HashMap::with_capacity(rows.len());
        for row in &rows {
            let phone: i64 = rows::get(row, "consent_state", "phone")?;
            let category: &str = rows::get(row, "consent_state", "category")?;
            let (status, basis) = rows::status_and_basis(row)?;
            if let Some(slot) = business.category_slot(category) {
                found.entry(phone).or_default().set(slot.bit(), status, basis);
            }
        }
        Ok(keys.iter().map(|key| found.get(key).copied().unwrap_or_default()).collect())
    }

    pub(crate) async fn load_contact_consent(
        &self,
        business: BusinessId,
        phone: PhoneNumber,
    ) -> Result<ContactConsent, StoreError> {
        let client = self.client().await?;
        let statement = client.prepare_cached(CONTACT_STATE).await.map_err(db)?;
        let rows = client.query(&statement, &[&business.as_uuid(), &phone_key(phone)]).await.map_err(db)?;
        rows::contact_consent(&rows)
    }

    pub(crate) async fn load_contact_events(
        &self,
        business: BusinessId,
        phone: PhoneNumber,
    ) -> Result<Vec<LedgerEntry>, StoreError> {
        let client = self.client().await?;
        let sql = format!(
            "SELECT {ENTRY_COLUMNS} FROM consent_events WHERE business_id = $1 AND phone = $2 ORDER BY chain_index"
        );
        let rows = client.query(&sql, &[&business.as_uuid(), &phone_key(phone)]).await.map_err(db)?;
        rows.iter().map(rows::ledger_entry).collect()
    }

    pub(crate) async fn load_ledger_page(
        &self,
        business: BusinessId,
        after_index: u64,
        limit: usize,
    ) -> Result<Vec<LedgerEntry>, StoreError> {
        let client = self.client().await?;
        let sql = format!(
            "SELECT {ENTRY_COLUMNS} FROM consent_events WHERE business_id = $1 AND chain_index > $2
             ORDER BY chain_index LIMIT $3"
        );
        let after = i64::try_from(after_index).unwrap_or(i64::MAX);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = client.query(&sql, &[&business.as_uuid(), &after, &limit]).await.map_err(db)?;
        rows.iter().map(rows::ledger_entry).collect()
    }

    pub(crate) async fn load_chain_head(&self, business: BusinessId) -> Result<Option<ChainHead>, StoreError> {
        let client = self.client().await?;
        let sql = "SELECT last_index, last_hash FROM chain_heads WHERE business_id = $1";
        let row = client.query_opt(sql, &[&business.as_uuid()]).await.map_err(db)?;
        Ok(row.as_ref().map(rows::chain_head).transpose()?.flatten())
    }
}

/// Where a contact's rows are: the business and the phone key.
struct ContactKey {
    business_id: Uuid,
    phone: i64,
}

/// The statements of an append, prepared once per connection (then taken from its cache).
struct AppendStatements {
    lock_head: Statement,
    contact_state: Statement,
    insert_event: Statement,
    upsert_states: Statement,
    update_head: Statement,
    take_key: Statement,
}

impl AppendStatements {
    async fn prepare(client: &deadpool_postgres::Object) -> Result<AppendStatements, StoreError> {
        let (lock_head, contact_state, insert_event, upsert_states, update_head, take_key) = tokio::try_join!(
            client.prepare_cached(LOCK_HEAD),
            client.prepare_cached(CONTACT_STATE),
            client.prepare_cached(INSERT_EVENT),
            client.prepare_cached(UPSERT_STATES),
            client.prepare_cached(UPDATE_HEAD),
            client.prepare_cached(TAKE_KEY),
        )
        .map_err(db)?;
        Ok(AppendStatements { lock_head, contact_state, insert_event, upsert_states, update_head, take_key })
    }
}

/// Writes the event, the changed states and the new head, pipelined. The first failure aborts
/// the transaction and the statements behind it fail as "aborted"; `biased` polls in the order
/// sent, so the error returned is the first statement's (a duplicate event id is a `Conflict`).
async fn write_entry(
    transaction: &deadpool_postgres::Transaction<'_>,
    statements: &AppendStatements,
    key: &ContactKey,
    recorded_at: i64,
    entry: &LedgerEntry,
    changed: &ChangedStates<'_>,
) -> Result<(), StoreError> {
    let index = i64::try_from(entry.index).expect("chain indexes fit in i64");
    let (content_hash, prev_hash, hash) = (entry.content_hash.to_hex(), entry.prev_hash.to_hex(), entry.hash.to_hex());
    let event_id = entry.event_id.as_uuid();
    let event_params: [Param; 9] = [
        &key.business_id,
        &index,
        &event_id,
        &key.phone,
        &recorded_at,
        &entry.content,
        &content_hash,
        &prev_hash,
        &hash,
    ];
    let state_params = changed.params(&key.business_id, &key.phone);
    let head_params: [Param; 3] = [&key.business_id, &index, &hash];
    let write_states = async {
        if changed.categories.is_empty() {
            return Ok(0);
        }
        transaction.execute(&statements.upsert_states, &state_params).await
    };
    tokio::try_join!(
        biased;
        transaction.execute(&statements.insert_event, &event_params),
        write_states,
        transaction.execute(&statements.update_head, &head_params),
    )
    .map_err(db)?;
    Ok(())
}

/// The folded states as column arrays for `UPSERT_STATES` (the batch write adds a phone column).
#[derive(Default)]
pub(crate) struct ChangedStates<'a> {
    pub(crate) categories: Vec<&'a str>,
    pub(crate) statuses: Vec<&'static str>,
    pub(crate) since: Vec<i64>,
    pub(crate) event_ids: Vec<Uuid>,
    pub(crate) methods: Vec<Option<&'static str>>,
    pub(crate) notice_ids: Vec<Option<Uuid>>,
    pub(crate) last_opt_out_at: Vec<Option<i64>>,
    pub(crate) bases: Vec<Option<&'static str>>,
    pub(crate) basis_at: Vec<Option<i64>>,
}

impl<'a> ChangedStates<'a> {
    fn new(changed: &'a [(optin_core::business::CategoryName, CategoryConsent)]) -> Result<Self, StoreError> {
        let mut states = ChangedStates::default();
        for (category, state) in changed {
            states.push(category, state)?;
        }
        Ok(states)
    }

    pub(crate) fn push(
        &mut self,
        category: &'a optin_core::business::CategoryName,
        state: &CategoryConsent,
    ) -> Result<(), StoreError> {
        self.categories.push(category.as_str());
        self.statuses.push(state.status.as_str());
        self.since.push(nanos(state.since)?);
        self.event_ids.push(state.event_id.as_uuid());
        self.methods.push(state.method.map(|m| m.as_str()));
        self.notice_ids.push(state.notice_id.map(|n| n.as_uuid()));
        self.last_opt_out_at.push(optional_nanos(state.last_opt_out_at)?);
        self.bases.push(state.basis.map(|(basis, _)| basis.as_str()));
        self.basis_at.push(optional_nanos(state.basis.map(|(_, at)| at))?);
        Ok(())
    }

    fn params<'p>(&'p self, business_id: &'p Uuid, phone: &'p i64) -> [Param<'p>; 11] {
        [
            business_id,
            phone,
            &self.categories,
            &self.statuses,
            &self.since,
            &self.event_ids,
            &self.methods,
            &self.notice_ids,
            &self.last_opt_out_at,
            &self.bases,
            &self.basis_at,
        ]
    }
}
