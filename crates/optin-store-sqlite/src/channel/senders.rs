//! Senders (a business's WhatsApp numbers) and settings documents.

use optin_core::ids::BusinessId;
use optin_core::whatsapp::Provider;
use optin_store::StoreError;
use optin_store::channel::{Sender, SettingsDocument};
use rusqlite::{Connection, OptionalExtension, params};

use crate::error::{corrupt, db_error};
use crate::rows::{id, time, timestamp};
use crate::writer::Batch;

/// `Conflict { constraint: "phone_number_id" }` when any business has the number already (the
/// primary key), `NotFound` for an unknown business (the foreign key).
pub(crate) fn add_sender(batch: &mut Batch<'_>, sender: &Sender) -> Result<(), StoreError> {
    let created_at = time(sender.created_at)?;
    batch
        .conn
        .prepare_cached(
            "INSERT INTO senders (phone_number_id, business_id, display_phone_number, waba_id, provider, base_url,
                                  api_version, credential, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )
        .and_then(|mut stmt| {
            stmt.execute(params![
                sender.phone_number_id,
                sender.business_id.to_string(),
                sender.display_phone_number,
                sender.waba_id,
                sender.provider.as_str(),
                sender.base_url,
                sender.api_version,
                sender.credential,
                created_at
            ])
        })
        .map_err(db_error)?;
    Ok(())
}

/// The business's senders, oldest first.
pub(crate) fn senders(conn: &Connection, business: BusinessId) -> Result<Vec<Sender>, StoreError> {
    let rows: Vec<SenderRow> = conn
        .prepare_cached(
            "SELECT phone_number_id, business_id, display_phone_number, waba_id, provider, base_url, api_version,
                    credential, created_at
             FROM senders WHERE business_id = ?1 ORDER BY created_at, rowid",
        )
        .and_then(|mut stmt| stmt.query_map([business.to_string()], SenderRow::read)?.collect())
        .map_err(db_error)?;
    rows.into_iter().map(Sender::try_from).collect()
}

struct SenderRow {
    phone_number_id: String,
    business_id: String,
    display_phone_number: String,
    waba_id: String,
    provider: String,
    base_url: String,
    api_version: String,
    credential: String,
    created_at: i64,
}

impl SenderRow {
    fn read(row: &rusqlite::Row<'_>) -> rusqlite::Result<SenderRow> {
        Ok(SenderRow {
            phone_number_id: row.get(0)?,
            business_id: row.get(1)?,
            display_phone_number: row.get(2)?,
            waba_id: row.get(3)?,
            provider: row.get(4)?,
            base_url: row.get(5)?,
            api_version: row.get(6)?,
            credential: row.get(7)?,
            created_at: row.get(8)?,
        })
    }
}

impl TryFrom<SenderRow> for Sender {
    type Error = StoreError;
    fn try_from(row: SenderRow) -> Result<Sender, StoreError> {
        Ok(Sender {
            business_id: id(&row.business_id, "senders.business_id")?,
            phone_number_id: row.phone_number_id,
            display_phone_number: row.display_phone_number,
            waba_id: row.waba_id,
            provider: Provider::parse(&row.provider).ok_or_else(|| corrupt("senders.provider is unknown"))?,
            base_url: row.base_url,
            api_version: row.api_version,
            credential: row.credential,
            created_at: timestamp(row.created_at, "senders.created_at")?,
        })
    }
}

/// Creates or replaces the document; `NotFound` for an unknown business (the foreign key).
pub(crate) fn put_settings_document(batch: &mut Batch<'_>, document: &SettingsDocument) -> Result<(), StoreError> {
    let updated_at = time(document.updated_at)?;
    batch
        .conn
        .prepare_cached(
            "INSERT INTO settings_documents (business_id, name, content, updated_at) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (business_id, name) DO UPDATE SET content = excluded.content, updated_at = excluded.updated_at",
        )
        .and_then(|mut stmt| {
            stmt.execute(params![document.business_id.to_string(), document.name, document.content, updated_at])
        })
        .map_err(db_error)?;
    Ok(())
}

pub(crate) fn settings_document(
    conn: &Connection,
    business: BusinessId,
    name: &str,
) -> Result<Option<SettingsDocument>, StoreError> {
    let found: Option<(String, i64)> = conn
        .prepare_cached("SELECT content, updated_at FROM settings_documents WHERE business_id = ?1 AND name = ?2")
        .and_then(|mut stmt| {
            stmt.query_row(params![business.to_string(), name], |row| Ok((row.get(0)?, row.get(1)?))).optional()
        })
        .map_err(db_error)?;
    let Some((content, updated_at)) = found else { return Ok(None) };
    Ok(Some(SettingsDocument {
        business_id: business,
        name: name.to_owned(),
        content,
        updated_at: timestamp(updated_at, "settings_documents.updated_at")?,
    }))
}

/// Inserts the document unless the business has it; whether it was new. `NotFound` for an
/// unknown business (the foreign key).
pub(crate) fn put_document(batch: &mut Batch<'_>, document: &optin_store::StoredDocument) -> Result<bool, StoreError> {
    let uploaded_at = time(document.uploaded_at)?;
    let size = i64::try_from(document.content.len()).map_err(|_| corrupt("a document is too large"))?;
    let inserted = batch
        .conn
        .prepare_cached(
            "INSERT INTO documents (business_id, sha256, media_type, size, content, uploaded_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (business_id, sha256) DO NOTHING",
        )
        .and_then(|mut stmt| {
            stmt.execute(params![
                document.business_id.to_string(),
                document.sha256,
                document.media_type.as_str(),
                size,
                document.content,
                uploaded_at
            ])
        })
        .map_err(db_error)?;
    Ok(inserted == 1)
}

pub(crate) fn document(
    conn: &Connection,
    business: BusinessId,
    sha256: &str,
) -> Result<Option<optin_store::StoredDocument>, StoreError> {
    let found: Option<(String, Vec<u8>, i64)> = conn
        .prepare_cached("SELECT media_type, content, uploaded_at FROM documents WHERE business_id = ?1 AND sha256 = ?2")
        .and_then(|mut stmt| {
            stmt.query_row(params![business.to_string(), sha256], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
                .optional()
        })
        .map_err(db_error)?;
    let Some((media_type, content, uploaded_at)) = found else { return Ok(None) };
    Ok(Some(optin_store::StoredDocument {
        business_id: business,
        sha256: sha256.to_owned(),
        media_type: optin_core::document::MediaType::parse(&media_type)
            .ok_or_else(|| corrupt("documents.media_type is unknown"))?,
        content,
        uploaded_at: timestamp(uploaded_at, "documents.uploaded_at")?,
    }))
}
