//! Notices: immutable texts, numbered per business.

use optin_core::ids::{BusinessId, NoticeId};
use optin_store::{NewNotice, Notice, StoreError};

use crate::PostgresStore;
use crate::error::{corrupt, db};
use crate::rows::{self, nanos};
use crate::tenancy::lock_business;

const NOTICE_COLUMNS: &str = "id, business_id, version, language, text, text_sha256, warnings, created_at";

impl PostgresStore {
    /// Takes the next version while the business row is locked, so concurrent registrations
    /// (from any server) get 1, 2, 3... without gaps or conflicts. `NotFound` for an unknown
    /// business.
    pub(crate) async fn insert_notice(&self, notice: &NewNotice) -> Result<Notice, StoreError> {
        let mut client = self.client().await?;
        let transaction = client.transaction().await.map_err(db)?;
        lock_business(&transaction, notice.business_id).await?;
        let text_sha256 = notice.text.sha256_hex();
        let warnings = serde_json::to_value(&notice.warnings).map_err(corrupt)?;
        let sql = "INSERT INTO notices (id, business_id, version, language, text, text_sha256, warnings, created_at)
                   SELECT $1::uuid, $2, coalesce(max(version), 0) + 1, $3::text, $4::text, $5::text, $6::jsonb,
                          $7::bigint
                   FROM notices WHERE business_id = $2
                   RETURNING version";
        let params: [&(dyn tokio_postgres::types::ToSql + Sync); 7] = [
            &notice.id.as_uuid(),
            &notice.business_id.as_uuid(),
            &notice.language.as_str(),
            &notice.text.as_str(),
            &text_sha256,
            &warnings,
            &nanos(notice.created_at)?,
        ];
        let row = transaction.query_one(sql, &params).await.map_err(db)?;
        let version: i32 = rows::get(&row, "notices", "version")?;
        transaction.commit().await.map_err(db)?;
        Ok(Notice {
            id: notice.id,
            business_id: notice.business_id,
            version: u32::try_from(version).map_err(|_| corrupt("notices.version: negative"))?,
            language: notice.language.clone(),
            text: notice.text.clone(),
            text_sha256,
            warnings: notice.warnings.clone(),
            created_at: notice.created_at,
        })
    }

    pub(crate) async fn load_notice(&self, business: BusinessId, id: NoticeId) -> Result<Option<Notice>, StoreError> {
        let client = self.client().await?;
        let sql = format!("SELECT {NOTICE_COLUMNS} FROM notices WHERE id = $1 AND business_id = $2");
        let row = client.query_opt(&sql, &[&id.as_uuid(), &business.as_uuid()]).await.map_err(db)?;
        row.as_ref().map(rows::notice).transpose()
    }

    pub(crate) async fn load_notices(&self, business: BusinessId) -> Result<Vec<Notice>, StoreError> {
        let client = self.client().await?;
        let sql = format!("SELECT {NOTICE_COLUMNS} FROM notices WHERE business_id = $1 ORDER BY version");
        client.query(&sql, &[&business.as_uuid()]).await.map_err(db)?.iter().map(rows::notice).collect()
    }
}
