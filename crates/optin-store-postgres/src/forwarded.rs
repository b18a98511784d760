//! Messages the send proxy forwarded (migration `0003_forwarded`), by platform message id, so
//! that status webhooks can be attributed to their template and category.

use jiff::Timestamp;
use optin_core::business::CategoryName;
use optin_core::ids::BusinessId;
use optin_core::phone::PhoneNumber;
use optin_core::template::{TemplateLanguage, TemplateName};
use optin_store::StoreError;
use optin_store::channel::ForwardedMessage;
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use crate::PostgresStore;
use crate::error::{corrupt, db};
use crate::rows::{get, nanos, phone, phone_key, timestamp};

const COLUMNS: &str =
    "business_id, message_id, phone, phone_number_id, template_name, template_language, category, sent_at";

impl PostgresStore {
    /// The message, replacing one with the same id. `NotFound` for an unknown business.
    pub(crate) async fn insert_forwarded_message(&self, message: &ForwardedMessage) -> Result<(), StoreError> {
        let (template_name, template_language) = match &message.template {
            Some((name, language)) => (Some(name.as_str()), Some(language.as_str())),
            None => (None, None),
        };
        let sql = format!(
            "INSERT INTO forwarded_messages ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
             ON CONFLICT (business_id, message_id) DO UPDATE SET
                 phone = excluded.phone, phone_number_id = excluded.phone_number_id,
                 template_name = excluded.template_name, template_language = excluded.template_language,
                 category = excluded.category, sent_at = excluded.sent_at"
        );
        let (business, phone, sent_at) =
            (message.business_id.as_uuid(), phone_key(message.phone), nanos(message.sent_at)?);
        let category = message.category.as_ref().map(CategoryName::as_str);
        let params: [&(dyn ToSql + Sync); 8] = [
            &business,
            &message.message_id,
            &phone,
            &message.phone_number_id,
            &template_name,
            &template_language,
            &category,
            &sent_at,
        ];
        let client = self.client().await?;
        client.execute(&sql, &params).await.map_err(db)?;
        Ok(())
    }

    /// For frequency caps: the times of the messages of `category` forwarded to each number in
    /// `(since, until]`, by number, then time (the index `forwarded_messages_by_recipient`).
    pub(crate) async fn load_recent_sends(
        &self,
        business: BusinessId,
        category: &CategoryName,
        phones: &[PhoneNumber],
        since: Timestamp,
        until: Timestamp,
    ) -> Result<Vec<(PhoneNumber, Timestamp)>, StoreError> {
        if phones.is_empty() {
            return Ok(Vec::new());
        }
        const T: &str = "forwarded_messages";
        let keys: Vec<i64> = phones.iter().map(|p| phone_key(*p)).collect();
        let client = self.client().await?;
        let statement = client
            .prepare_cached(
                "SELECT phone, sent_at FROM forwarded_messages
                 WHERE business_id = $1 AND category = $2 AND phone = ANY($3::bigint[])
                   AND sent_at > $4 AND sent_at <= $5
                 ORDER BY phone, sent_at",
            )
            .await
            .map_err(db)?;
        let params: [&(dyn ToSql + Sync); 5] =
            [&business.as_uuid(), &category.as_str(), &keys, &nanos(since)?, &nanos(until)?];
        let rows = client.query(&statement, &params).await.map_err(db)?;
        rows.iter()
            .map(|row| {
                Ok((phone(get(row, T, "phone")?, T, "phone")?, timestamp(get(row, T, "sent_at")?, T, "sent_at")?))
            })
            .collect()
    }

    pub(crate) async fn load_forwarded_message(
        &self,
        business: BusinessId,
        message_id: &str,
    ) -> Result<Option<ForwardedMessage>, StoreError> {
        let client = self.client().await?;
        let sql = format!("SELECT {COLUMNS} FROM forwarded_messages WHERE business_id = $1 AND message_id = $2");
        let row = client.query_opt(&sql, &[&business.as_uuid(), &message_id]).await.map_err(db)?;
        row.as_ref().map(forwarded_message).transpose()
    }
}

/// Columns: `COLUMNS`.
fn forwarded_message(row: &Row) -> Result<ForwardedMessage, StoreError> {
    const T: &str = "forwarded_messages";
    let invalid = |column: &str, error: &dyn std::fmt::Display| corrupt(format_args!("{T}.{column}: {error}"));
    let name: Option<&str> = get(row, T, "template_name")?;
    let language: Option<&str> = get(row, T, "template_language")?;
    let template = match (name, language) {
        (Some(name), Some(language)) => Some((
            TemplateName::parse(name).map_err(|e| invalid("template_name", &e))?,
            TemplateLanguage::parse(language).map_err(|e| invalid("template_language", &e))?,
        )),
        _ => None,
    };
    let category: Option<&str> = get(row, T, "category")?;
    Ok(ForwardedMessage {
        business_id: BusinessId::from_uuid(get(row, T, "business_id")?),
        message_id: get(row, T, "message_id")?,
        phone: phone(get(row, T, "phone")?, T, "phone")?,
        phone_number_id: get(row, T, "phone_number_id")?,
        template,
        category: category.map(CategoryName::parse).transpose().map_err(|e| invalid("category", &e))?,
        sent_at: timestamp(get(row, T, "sent_at")?, T, "sent_at")?,
    })
}
