//! Senders (a business's WhatsApp numbers) and per-business settings documents.

use optin_core::ids::BusinessId;
use optin_core::whatsapp::Provider;
use optin_store::StoreError;
use optin_store::channel::{Sender, SettingsDocument};
use tokio_postgres::Row;

use crate::PostgresStore;
use crate::error::{corrupt, db};
use crate::rows::{get, nanos, timestamp};

const SENDER_COLUMNS: &str = "phone_number_id, business_id, display_phone_number, waba_id, provider, base_url, api_version, credential, \
     created_at";

impl PostgresStore {
    /// `Conflict { constraint: "phone_number_id" }` when any business has the number (the
    /// primary key says so), `NotFound` for an unknown business (the foreign key).
    pub(crate) async fn insert_sender(&self, sender: &Sender) -> Result<(), StoreError> {
        let client = self.client().await?;
        let sql = format!("INSERT INTO senders ({SENDER_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)");
        let params: [&(dyn tokio_postgres::types::ToSql + Sync); 9] = [
            &sender.phone_number_id,
            &sender.business_id.as_uuid(),
            &sender.display_phone_number,
            &sender.waba_id,
            &sender.provider.as_str(),
            &sender.base_url,
            &sender.api_version,
            &sender.credential,
            &nanos(sender.created_at)?,
        ];
        client.execute(&sql, &params).await.map_err(db)?;
        Ok(())
    }

    pub(crate) async fn load_senders(&self, business: BusinessId) -> Result<Vec<Sender>, StoreError> {
        let client = self.client().await?;
        let sql = format!("SELECT {SENDER_COLUMNS} FROM senders WHERE business_id = $1 ORDER BY created_at, seq");
        client.query(&sql, &[&business.as_uuid()]).await.map_err(db)?.iter().map(sender).collect()
    }

    pub(crate) async fn load_settings_document(
        &self,
        business: BusinessId,
        name: &str,
    ) -> Result<Option<SettingsDocument>, StoreError> {
        const T: &str = "settings_documents";
        let client = self.client().await?;
        let sql = "SELECT content, updated_at FROM settings_documents WHERE business_id = $1 AND name = $2";
        let Some(row) = client.query_opt(sql, &[&business.as_uuid(), &name]).await.map_err(db)? else {
            return Ok(None);
        };
        Ok(Some(SettingsDocument {
            business_id: business,
            name: name.to_owned(),
            content: get(&row, T, "content")?,
            updated_at: timestamp(get(&row, T, "updated_at")?, T, "updated_at")?,
        }))
    }

    /// Creates or replaces the document; `NotFound` for an unknown business (the foreign key).
    pub(crate) async fn upsert_settings_document(&self, document: &SettingsDocument) -> Result<(), StoreError> {
        let client = self.client().await?;
        let sql = "INSERT INTO settings_documents (business_id, name, content, updated_at) VALUES ($1, $2, $3, $4)
                   ON CONFLICT (business_id, name) DO UPDATE
                   SET content = excluded.content, updated_at = excluded.updated_at";
        let params: [&(dyn tokio_postgres::types::ToSql + Sync); 4] =
            [&document.business_id.as_uuid(), &document.name, &document.content, &nanos(document.updated_at)?];
        client.execute(sql, &params).await.map_err(db)?;
        Ok(())
    }
}

impl PostgresStore {
    /// Inserts the document unless the business has it; whether it was new.
    pub(crate) async fn insert_document(&self, document: &optin_store::StoredDocument) -> Result<bool, StoreError> {
        let client = self.client().await?;
        let size = i64::try_from(document.content.len()).map_err(|_| corrupt("a document is too large"))?;
        let sql = "INSERT INTO documents (business_id, sha256, media_type, size, content, uploaded_at)
                   VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (business_id, sha256) DO NOTHING";
        let params: [&(dyn tokio_postgres::types::ToSql + Sync); 6] = [
            &document.business_id.as_uuid(),
            &document.sha256,
            &document.media_type.as_str(),
            &size,
            &document.content,
            &nanos(document.uploaded_at)?,
        ];
        Ok(client.execute(sql, &params).await.map_err(db)? == 1)
    }

    pub(crate) async fn load_document(
        &self,
        business: BusinessId,
        sha256: &str,
    ) -> Result<Option<optin_store::StoredDocument>, StoreError> {
        const T: &str = "documents";
        let client = self.client().await?;
        let sql = "SELECT media_type, content, uploaded_at FROM documents WHERE business_id = $1 AND sha256 = $2";
        let Some(row) = client.query_opt(sql, &[&business.as_uuid(), &sha256]).await.map_err(db)? else {
            return Ok(None);
        };
        let media_type: &str = get(&row, T, "media_type")?;
        Ok(Some(optin_store::StoredDocument {
            business_id: business,
            sha256: sha256.to_owned(),
            media_type: optin_core::document::MediaType::parse(media_type)
                .ok_or_else(|| corrupt("documents.media_type: unknown"))?,
            content: get(&row, T, "content")?,
            uploaded_at: timestamp(get(&row, T, "uploaded_at")?, T, "uploaded_at")?,
        }))
    }
}

/// Columns: `SENDER_COLUMNS`.
fn sender(row: &Row) -> Result<Sender, StoreError> {
    const T: &str = "senders";
    Ok(Sender {
        business_id: BusinessId::from_uuid(get(row, T, "business_id")?),
        phone_number_id: get(row, T, "phone_number_id")?,
        display_phone_number: get(row, T, "display_phone_number")?,
        waba_id: get(row, T, "waba_id")?,
        provider: Provider::parse(get(row, T, "provider")?).ok_or_else(|| corrupt("senders.provider: unknown"))?,
        base_url: get(row, T, "base_url")?,
        api_version: get(row, T, "api_version")?,
        credential: get(row, T, "credential")?,
        created_at: timestamp(get(row, T, "created_at")?, T, "created_at")?,
    })
}
