//! Queries, on any connection (a reader's, or the writer's inside its transaction).

use std::sync::LazyLock;

use optin_core::business::{Business, CategoryName};
use optin_core::consent::ContactConsent;
use optin_core::ids::{BusinessId, NoticeId};
use optin_core::ledger::{ChainHead, LedgerEntry};
use optin_core::phone::PhoneNumber;
use optin_store::{ApiKeyRecord, Notice, SavedResponse, StoreError};
use rusqlite::{Connection, OptionalExtension, Statement};

use crate::error::db_error;
use crate::follow::FoldMap;
use crate::rows::{
    self, ApiKeyRow, BusinessRow, ENTRY_COLUMNS, EntryRow, NOTICE_COLUMNS, NoticeRow, STATE_COLUMNS, SavedResponseRow,
    StateRow,
};

pub(crate) fn ping(conn: &Connection) -> Result<(), StoreError> {
    conn.prepare_cached("SELECT 1").and_then(|mut stmt| stmt.query_row([], |_| Ok(()))).map_err(db_error)
}

pub(crate) fn operator_token_hash(conn: &Connection) -> Result<Option<String>, StoreError> {
    conn.prepare_cached("SELECT token_hash FROM operator WHERE id = 1")
        .and_then(|mut stmt| stmt.query_row([], |row| row.get(0)).optional())
        .map_err(db_error)
}

pub(crate) fn business_exists(conn: &Connection, id: BusinessId) -> Result<bool, StoreError> {
    conn.prepare_cached("SELECT 1 FROM businesses WHERE id = ?1")
        .and_then(|mut stmt| stmt.exists([id.to_string()]))
        .map_err(db_error)
}

/// The business's category names in slot order; `None` for an unknown business.
pub(crate) fn category_names(conn: &Connection, id: BusinessId) -> Result<Option<Vec<CategoryName>>, StoreError> {
    let names: Vec<String> = conn
        .prepare_cached("SELECT name FROM categories WHERE business_id = ?1 ORDER BY slot")
        .and_then(|mut stmt| stmt.query_map([id.to_string()], |row| row.get(0))?.collect())
        .map_err(db_error)?;
    if names.is_empty() && !business_exists(conn, id)? {
        return Ok(None);
    }
    names.iter().map(|name| rows::category_name(name)).collect::<Result<_, _>>().map(Some)
}

pub(crate) fn business(conn: &Connection, id: BusinessId) -> Result<Option<Business>, StoreError> {
    let id_text = id.to_string();
    let found: Option<(String, i64)> = conn
        .prepare_cached("SELECT name, created_at FROM businesses WHERE id = ?1")
        .and_then(|mut stmt| stmt.query_row([&id_text], |row| Ok((row.get(0)?, row.get(1)?))).optional())
        .map_err(db_error)?;
    let Some((name, created_at)) = found else { return Ok(None) };
    let categories = conn
        .prepare_cached("SELECT name, template_category FROM categories WHERE business_id = ?1 ORDER BY slot")
        .and_then(|mut stmt| stmt.query_map([&id_text], |row| Ok((row.get(0)?, row.get(1)?)))?.collect())
        .map_err(db_error)?;
    let brand_names = conn
        .prepare_cached("SELECT name FROM brand_names WHERE business_id = ?1 ORDER BY position")
        .and_then(|mut stmt| stmt.query_map([&id_text], |row| row.get(0))?.collect())
        .map_err(db_error)?;
    BusinessRow { id: id_text, name, created_at, categories, brand_names }.try_into().map(Some)
}

/// All businesses, oldest first.
pub(crate) fn list_businesses(conn: &Connection) -> Result<Vec<Business>, StoreError> {
    let mut rows: Vec<BusinessRow> = conn
        .prepare_cached("SELECT id, name, created_at FROM businesses ORDER BY created_at, rowid")
        .and_then(|mut stmt| {
            stmt.query_map([], |row| {
                Ok(BusinessRow {
                    id: row.get(0)?,
                    name: row.get(1)?,
                    created_at: row.get(2)?,
                    categories: Vec::new(),
                    brand_names: Vec::new(),
                })
            })?
            .collect()
        })
        .map_err(db_error)?;
    let mut positions: FoldMap<String, usize> = FoldMap::default();
    for (position, row) in rows.iter().enumerate() {
        positions.insert(row.id.clone(), position);
    }
    let categories: Vec<(String, String, String)> = conn
        .prepare_cached("SELECT business_id, name, template_category FROM categories ORDER BY business_id, slot")
        .and_then(|mut stmt| stmt.query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?.collect())
        .map_err(db_error)?;
    for (business_id, name, template) in categories {
        if let Some(position) = positions.get(&business_id) {
            rows[*position].categories.push((name, template));
        }
    }
    let brand_names: Vec<(String, String)> = conn
        .prepare_cached("SELECT business_id, name FROM brand_names ORDER BY business_id, position")
        .and_then(|mut stmt| stmt.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?.collect())
        .map_err(db_error)?;
    for (business_id, name) in brand_names {
        if let Some(position) = positions.get(&business_id) {
            rows[*position].brand_names.push(name);
        }
    }
    rows.into_iter().map(Business::try_from).collect()
}

pub(crate) fn api_keys(conn: &Connection, business: BusinessId) -> Result<Vec<ApiKeyRecord>, StoreError> {
    let rows: Vec<ApiKeyRow> = conn
        .prepare_cached(
            "SELECT id, business_id, label, created_at, revoked_at FROM api_keys
             WHERE business_id = ?1 ORDER BY created_at, rowid",
        )
        .and_then(|mut stmt| {
            stmt.query_map([business.to_string()], |row| {
                Ok(ApiKeyRow {
                    id: row.get(0)?,
                    business_id: row.get(1)?,
                    label: row.get(2)?,
                    created_at: row.get(3)?,
                    revoked_at: row.get(4)?,
                })
            })?
            .collect()
        })
        .map_err(db_error)?;
    rows.into_iter().map(ApiKeyRecord::try_from).collect()
}

/// The business owning a non-revoked key with this secret hash.
pub(crate) fn authenticate(conn: &Connection, secret_hash: &str) -> Result<Option<BusinessId>, StoreError> {
    let found: Option<String> = conn
        .prepare_cached("SELECT business_id FROM api_keys WHERE secret_hash = ?1 AND revoked_at IS NULL")
        .and_then(|mut stmt| stmt.query_row([secret_hash], |row| row.get(0)).optional())
        .map_err(db_error)?;
    found.map(|id| rows::id(&id, "api_keys.business_id")).transpose()
}

pub(crate) fn notice(conn: &Connection, business: BusinessId, id: NoticeId) -> Result<Option<Notice>, StoreError> {
    let row = conn
        .prepare_cached(&format!("SELECT {NOTICE_COLUMNS} FROM notices WHERE id = ?1 AND business_id = ?2"))
        .and_then(|mut stmt| stmt.query_row([id.to_string(), business.to_string()], NoticeRow::read).optional())
        .map_err(db_error)?;
    row.map(Notice::try_from).transpose()
}

pub(crate) fn list_notices(conn: &Connection, business: BusinessId) -> Result<Vec<Notice>, StoreError> {
    let rows: Vec<NoticeRow> = conn
        .prepare_cached(&format!("SELECT {NOTICE_COLUMNS} FROM notices WHERE business_id = ?1 ORDER BY version"))
        .and_then(|mut stmt| stmt.query_map([business.to_string()], NoticeRow::read)?.collect())
        .map_err(db_error)?;
    rows.into_iter().map(Notice::try_from).collect()
}

pub(crate) fn contact_consent(
    conn: &Connection,
    business: BusinessId,
    phone: PhoneNumber,
) -> Result<ContactConsent, StoreError> {
    let mut statement = conn.prepare_cached(&CONTACT_CONSENT_SQL).map_err(db_error)?;
    contact_consent_with(&mut statement, &business.to_string(), phone)
}

/// [`contact_consent`] through a statement prepared from [`CONTACT_CONSENT_SQL`] (the writer
/// keeps one for a whole import chunk).
pub(crate) fn contact_consent_with(
    statement: &mut Statement<'_>,
    business: &str,
    phone: PhoneNumber,
) -> Result<ContactConsent, StoreError> {
    let rows: Vec<StateRow> = statement
        .query_map((business, rows::phone_key(phone)), StateRow::read)
        .and_then(|rows| rows.collect())
        .map_err(db_error)?;
    rows.into_iter().map(StateRow::parse).collect()
}

/// A contact's state rows. Built once: the writer reads them for every event.
pub(crate) static CONTACT_CONSENT_SQL: LazyLock<String> =
    LazyLock::new(|| format!("SELECT {STATE_COLUMNS} FROM consent_state WHERE business_id = ?1 AND phone = ?2"));

pub(crate) fn contact_events(
    conn: &Connection,
    business: BusinessId,
    phone: PhoneNumber,
) -> Result<Vec<LedgerEntry>, StoreError> {
    let rows: Vec<EntryRow> = conn
        .prepare_cached(&format!(
            "SELECT {ENTRY_COLUMNS} FROM consent_events WHERE business_id = ?1 AND phone = ?2 ORDER BY chain_index"
        ))
        .and_then(|mut stmt| stmt.query_map((business.to_string(), rows::phone_key(phone)), EntryRow::read)?.collect())
        .map_err(db_error)?;
    rows.into_iter().map(LedgerEntry::try_from).collect()
}

pub(crate) fn ledger_page(
    conn: &Connection,
    business: BusinessId,
    after_index: u64,
    limit: usize,
) -> Result<Vec<LedgerEntry>, StoreError> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows: Vec<EntryRow> = conn
        .prepare_cached(&format!(
            "SELECT {ENTRY_COLUMNS} FROM consent_events
             WHERE business_id = ?1 AND chain_index > ?2 ORDER BY chain_index LIMIT ?3"
        ))
        .and_then(|mut stmt| {
            stmt.query_map((business.to_string(), rows::index_to_sql(after_index), limit), EntryRow::read)?.collect()
        })
        .map_err(db_error)?;
    rows.into_iter().map(LedgerEntry::try_from).collect()
}

pub(crate) fn chain_head(conn: &Connection, business: BusinessId) -> Result<Option<ChainHead>, StoreError> {
    let stored: Option<(i64, String)> = conn
        .prepare_cached("SELECT last_index, last_hash FROM chain_heads WHERE business_id = ?1")
        .and_then(|mut stmt| stmt.query_row([business.to_string()], |row| Ok((row.get(0)?, row.get(1)?))).optional())
        .map_err(db_error)?;
    stored.map(|(index, hash)| rows::chain_head(index, &hash)).transpose()
}

pub(crate) fn saved_response(
    conn: &Connection,
    business: BusinessId,
    key: &str,
) -> Result<Option<SavedResponse>, StoreError> {
    let row = conn
        .prepare_cached(
            "SELECT fingerprint, status, body, created_at FROM saved_responses WHERE business_id = ?1 AND key = ?2",
        )
        .and_then(|mut stmt| {
            stmt.query_row((business.to_string(), key), |row| {
                Ok(SavedResponseRow {
                    fingerprint: row.get(0)?,
                    status: row.get(1)?,
                    body: row.get(2)?,
                    created_at: row.get(3)?,
                })
            })
            .optional()
        })
        .map_err(db_error)?;
    row.map(SavedResponse::try_from).transpose()
}

/// Which of `keys` the business used as consent dedupe keys, in order.
pub(crate) fn dedupe_keys_used(
    conn: &Connection,
    business: BusinessId,
    keys: &[String],
) -> Result<Vec<bool>, StoreError> {
    let business = business.to_string();
    let mut stmt = conn
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM consent_dedupe WHERE business_id = ?1 AND key = ?2)")
        .map_err(db_error)?;
    keys.iter().map(|key| stmt.query_row((&business, key), |row| row.get(0)).map_err(db_error)).collect()
}
