//! Write commands. Each runs on the writer thread, inside its own savepoint of a batch transaction.

use jiff::Timestamp;
use optin_core::business::{Business, BusinessName, Category, CategoryError, CategoryName, check_category_list};
use optin_core::consent::{ConsentBits, ConsentEvent, ContactConsent, apply};
use optin_core::ids::{ApiKeyId, BusinessId};
use optin_core::ledger::{ChainHead, LedgerEntry, SealedEvent};
use optin_store::{NewApiKey, NewNotice, Notice, Recorded, SavedResponse, StoreError};
use rusqlite::{CachedStatement, Connection, params};
use uuid::Uuid;

use crate::error::db_error;
use crate::follow::IndexUpdate;
use crate::reads;
use crate::rows::{self, optional_time, time};
use crate::writer::Batch;

pub(crate) fn set_operator_token_hash(batch: &mut Batch<'_>, hash: &str, at: Timestamp) -> Result<(), StoreError> {
    let at = time(at)?;
    batch
        .conn
        .prepare_cached(
            "INSERT INTO operator (id, token_hash, updated_at) VALUES (1, ?1, ?2)
             ON CONFLICT (id) DO UPDATE SET token_hash = excluded.token_hash, updated_at = excluded.updated_at",
        )
        .and_then(|mut stmt| stmt.execute(params![hash, at]))
        .map_err(db_error)?;
    Ok(())
}

pub(crate) fn create_business(
    batch: &mut Batch<'_>,
    business: &Business,
    first_key: &NewApiKey,
) -> Result<(), StoreError> {
    check_category_list(&business.categories)?;
    let id = business.id.to_string();
    let created_at = time(business.created_at)?;
    batch
        .conn
        .prepare_cached("INSERT INTO businesses (id, name, created_at) VALUES (?1, ?2, ?3)")
        .and_then(|mut stmt| stmt.execute(params![id, business.name.as_str(), created_at]))
        .map_err(db_error)?;
    insert_categories(batch, business.id, 0, &business.categories)?;
    insert_brand_names(batch, business.id, &business.brand_names)?;
    create_api_key(batch, first_key)
}

pub(crate) fn add_categories(batch: &mut Batch<'_>, id: BusinessId, new: &[Category]) -> Result<Business, StoreError> {
    let mut business = reads::business(batch.conn, id)?.ok_or(StoreError::NotFound)?;
    business.check_new_categories(new)?;
    insert_categories(batch, id, business.categories.len(), new)?;
    batch.forget_categories(id);
    business.categories.extend_from_slice(new);
    Ok(business)
}

fn insert_categories(
    batch: &Batch<'_>,
    id: BusinessId,
    first_slot: usize,
    categories: &[Category],
) -> Result<(), StoreError> {
    let mut stmt = batch
        .conn
        .prepare_cached("INSERT INTO categories (business_id, slot, name, template_category) VALUES (?1, ?2, ?3, ?4)")
        .map_err(db_error)?;
    let id = id.to_string();
    for (offset, category) in categories.iter().enumerate() {
        let slot = i64::try_from(first_slot + offset).map_err(|_| CategoryError::TooMany)?;
        stmt.execute(params![id, slot, category.name.as_str(), category.template_category.as_str()])
            .map_err(db_error)?;
    }
    Ok(())
}

pub(crate) fn set_brand_names(
    batch: &mut Batch<'_>,
    id: BusinessId,
    names: &[BusinessName],
) -> Result<Business, StoreError> {
    let mut business = reads::business(batch.conn, id)?.ok_or(StoreError::NotFound)?;
    batch
        .conn
        .prepare_cached("DELETE FROM brand_names WHERE business_id = ?1")
        .and_then(|mut stmt| stmt.execute([id.to_string()]))
        .map_err(db_error)?;
    insert_brand_names(batch, id, names)?;
    business.brand_names = names.to_vec();
    Ok(business)
}

fn insert_brand_names(batch: &Batch<'_>, id: BusinessId, names: &[BusinessName]) -> Result<(), StoreError> {
    let mut stmt = batch
        .conn
        .prepare_cached("INSERT INTO brand_names (business_id, position, name) VALUES (?1, ?2, ?3)")
        .map_err(db_error)?;
    let id = id.to_string();
    for (position, name) in (0_i64..).zip(names) {
        stmt.execute(params![id, position, name.as_str()]).map_err(db_error)?;
    }
    Ok(())
}

pub(crate) fn create_api_key(batch: &mut Batch<'_>, key: &NewApiKey) -> Result<(), StoreError> {
    if !reads::business_exists(batch.conn, key.business_id)? {
        return Err(StoreError::NotFound);
    }
    let created_at = time(key.created_at)?;
    batch
        .conn
        .prepare_cached(
            "INSERT INTO api_keys (id, business_id, secret_hash, label, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        )
        .and_then(|mut stmt| {
            stmt.execute(params![
                key.id.to_string(),
                key.business_id.to_string(),
                key.secret_hash,
                key.label,
                created_at
            ])
        })
        .map_err(db_error)?;
    Ok(())
}

pub(crate) fn revoke_api_key(
    batch: &mut Batch<'_>,
    business: BusinessId,
    key: ApiKeyId,
    at: Timestamp,
) -> Result<(), StoreError> {
    let at = time(at)?;
    let revoked = batch
        .conn
        .prepare_cached("UPDATE api_keys SET revoked_at = ?1 WHERE id = ?2 AND business_id = ?3 AND revoked_at IS NULL")
        .and_then(|mut stmt| stmt.execute(params![at, key.to_string(), business.to_string()]))
        .map_err(db_error)?;
    if revoked == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

pub(crate) fn register_notice(batch: &mut Batch<'_>, notice: &NewNotice) -> Result<Notice, StoreError> {
    if !reads::business_exists(batch.conn, notice.business_id)? {
        return Err(StoreError::NotFound);
    }
    let business_id = notice.business_id.to_string();
    let version: i64 = batch
        .conn
        .prepare_cached("SELECT COALESCE(MAX(version), 0) + 1 FROM notices WHERE business_id = ?1")
        .and_then(|mut stmt| stmt.query_row([&business_id], |row| row.get(0)))
        .map_err(db_error)?;
    let text_sha256 = notice.text.sha256_hex();
    let created_at = time(notice.created_at)?;
    let warnings = serde_json::to_string(&notice.warnings).expect("notice warnings always serialize");
    batch
        .conn
        .prepare_cached(
            "INSERT INTO notices (id, business_id, version, language, text, text_sha256, warnings, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )
        .and_then(|mut stmt| {
            stmt.execute(params![
                notice.id.to_string(),
                business_id,
                version,
                notice.language.as_str(),
                notice.text.as_str(),
                text_sha256,
                warnings,
                created_at
            ])
        })
        .map_err(db_error)?;
    Ok(Notice {
        id: notice.id,
        business_id: notice.business_id,
        version: u32::try_from(version).map_err(|_| crate::error::corrupt("notices.version is out of range"))?,
        language: notice.language.clone(),
        text: notice.text.clone(),
        text_sha256,
        warnings: notice.warnings.clone(),
        created_at: notice.created_at,
    })
}

/// The statements recording an event runs. `record_consent_batch_once` prepares them (and
/// [`DedupeStatement`]) once for a whole chunk: taking each from rusqlite's statement cache four
/// times a row (hashing its SQL, then putting it back) was about a twentieth of the writer's time
/// in an import.
pub(crate) struct ConsentStatements<'c> {
    state: CachedStatement<'c>,
    event: CachedStatement<'c>,
    upsert: CachedStatement<'c>,
}

impl<'c> ConsentStatements<'c> {
    pub(crate) fn prepare(conn: &'c Connection) -> Result<ConsentStatements<'c>, StoreError> {
        let prepare = |sql: &str| conn.prepare_cached(sql).map_err(db_error);
        Ok(ConsentStatements {
            state: prepare(&reads::CONTACT_CONSENT_SQL)?,
            event: prepare(
                "INSERT INTO consent_events
                     (business_id, chain_index, event_id, phone, recorded_at, content, content_hash, prev_hash, hash)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )?,
            upsert: prepare(
                "INSERT INTO consent_state
                     (business_id, phone, category, status, since, event_id, method, notice_id, last_opt_out_at,
                      basis, basis_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
                 ON CONFLICT (business_id, phone, category) DO UPDATE SET
                     status = excluded.status, since = excluded.since, event_id = excluded.event_id,
                     method = excluded.method, notice_id = excluded.notice_id,
                     last_opt_out_at = excluded.last_opt_out_at, basis = excluded.basis, basis_at = excluded.basis_at",
            )?,
        })
    }
}

/// Reads the contact's consent, folds the event, appends it to the chain after the head read in
/// this transaction, writes the changed states and moves the head (written once per batch, before
/// COMMIT: see `Batch::set_chain_head`).
pub(crate) fn record_consent(batch: &mut Batch<'_>, event: &ConsentEvent) -> Result<Recorded, StoreError> {
    let mut statements = ConsentStatements::prepare(batch.conn)?;
    record_chained(batch, &mut statements, event, |head| LedgerEntry::chain(event, head))
}

fn record_chained(
    batch: &mut Batch<'_>,
    statements: &mut ConsentStatements<'_>,
    event: &ConsentEvent,
    chain: impl FnOnce(Option<ChainHead>) -> LedgerEntry,
) -> Result<Recorded, StoreError> {
    let (conn, business) = (batch.conn, event.business_id);
    let head = batch.chain_head(business)?;
    let names = batch.category_names(business)?;
    if let Some(unknown) = event.categories().iter().find(|c| !names.contains(c)) {
        return Err(CategoryError::Unknown(unknown.to_string()).into());
    }
    let mut buffer = Uuid::encode_buffer();
    let business_text: &str = business.as_uuid().hyphenated().encode_lower(&mut buffer);
    let phone = rows::phone_key(event.phone);
    let mut consent = reads::contact_consent_with(&mut statements.state, business_text, event.phone)?;
    let folded = apply(&consent, event);
    let entry = chain(head);
    let recorded_at = time(event.recorded_at)?;

    statements
        .event
        .execute(params![
            business_text,
            rows::index_to_sql(entry.index),
            entry.event_id.to_string(),
            phone,
            recorded_at,
            entry.content,
            entry.content_hash.to_hex(),
            entry.prev_hash.to_hex(),
            entry.hash.to_hex()
        ])
        .map_err(db_error)?;
    let seq = conn.last_insert_rowid();

    for (category, state) in &folded.changed {
        let (since, last_opt_out_at) = (time(state.since)?, optional_time(state.last_opt_out_at)?);
        let basis_at = optional_time(state.basis.map(|(_, at)| at))?;
        statements
            .upsert
            .execute(params![
                business_text,
                phone,
                category.as_str(),
                state.status.as_str(),
                since,
                state.event_id.to_string(),
                state.method.map(|m| m.as_str()),
                state.notice_id.map(|n| n.to_string()),
                last_opt_out_at,
                state.basis.map(|(basis, _)| basis.as_str()),
                basis_at
            ])
            .map_err(db_error)?;
    }
    consent.extend(folded.changed);
    let bits = bits_over(names, &consent);
    batch.set_chain_head(business, entry.head());
    batch.changed_contact(IndexUpdate { business, phone: event.phone.key(), bits }, seq);
    Ok(Recorded { event_id: event.id, phone: event.phone, chain_index: entry.index, outcomes: folded.outcomes })
}

/// Inserts a dedupe key unless it is there (for [`record_consent_once`]; a single opt-in without a
/// key does not prepare it).
pub(crate) struct DedupeStatement<'c>(CachedStatement<'c>);

impl<'c> DedupeStatement<'c> {
    pub(crate) fn prepare(conn: &'c Connection) -> Result<DedupeStatement<'c>, StoreError> {
        conn.prepare_cached(
            "INSERT INTO consent_dedupe (business_id, key) VALUES (?1, ?2) ON CONFLICT (business_id, key) DO NOTHING",
        )
        .map(DedupeStatement)
        .map_err(db_error)
    }
}

/// `record_consent` once per (business, `dedupe_key`), for an event sealed before it reached the
/// writer: the key is inserted in the same savepoint as the event, so a failed event leaves no key
/// behind and a used key records nothing (`None`).
pub(crate) fn record_consent_once(
    batch: &mut Batch<'_>,
    (statements, dedupe): (&mut ConsentStatements<'_>, &mut DedupeStatement<'_>),
    dedupe_key: &str,
    sealed: &SealedEvent,
) -> Result<Option<Recorded>, StoreError> {
    let event = sealed.event();
    let inserted = dedupe.0.execute(params![event.business_id.to_string(), dedupe_key]).map_err(db_error)?;
    if inserted == 0 {
        return Ok(None);
    }
    record_chained(batch, statements, event, |head| LedgerEntry::chain_sealed(sealed, head)).map(Some)
}

/// The contact's consent as bits over the business's slots (`names` in slot order).
fn bits_over(names: &[CategoryName], consent: &ContactConsent) -> ConsentBits {
    let mut bits = ConsentBits::default();
    for (category, state) in consent {
        if let Some(slot) = names.iter().position(|name| name == category) {
            bits.set(1 << slot, state.status, state.basis.map(|(basis, _)| basis));
        }
    }
    bits
}

pub(crate) fn save_response(
    batch: &mut Batch<'_>,
    business: BusinessId,
    key: &str,
    response: &SavedResponse,
) -> Result<(), StoreError> {
    let created_at = time(response.created_at)?;
    batch
        .conn
        .prepare_cached(
            "INSERT INTO saved_responses (business_id, key, fingerprint, status, body, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (business_id, key) DO NOTHING",
        )
        .and_then(|mut stmt| {
            stmt.execute(params![
                business.to_string(),
                key,
                response.request_fingerprint,
                response.status,
                response.body,
                created_at
            ])
        })
        .map_err(db_error)?;
    Ok(())
}
