//! Messages the send proxy forwarded (migration `0003_forwarded`), kept by platform message id so
//! that status webhooks can be attributed to their template and category.

use jiff::Timestamp;
use optin_core::business::CategoryName;
use optin_core::ids::BusinessId;
use optin_core::phone::PhoneNumber;
use optin_core::template::{TemplateLanguage, TemplateName};
use optin_store::StoreError;
use optin_store::channel::ForwardedMessage;
use rusqlite::{Connection, OptionalExtension, params};

use crate::error::{corrupt, db_error};
use crate::rows::{self, category_name, stored_phone, time, timestamp};
use crate::writer::Batch;

/// Inserts the message, or replaces the one with the same id. `NotFound` for an unknown business
/// (the foreign key).
pub(crate) fn record_forwarded_message(batch: &mut Batch<'_>, message: &ForwardedMessage) -> Result<(), StoreError> {
    let (template_name, template_language) = match &message.template {
        Some((name, language)) => (Some(name.as_str()), Some(language.as_str())),
        None => (None, None),
    };
    let sent_at = time(message.sent_at)?;
    batch
        .conn
        .prepare_cached(
            "INSERT INTO forwarded_messages (business_id, message_id, phone, phone_number_id, template_name,
                                             template_language, category, sent_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
             ON CONFLICT (business_id, message_id) DO UPDATE SET
                 phone = excluded.phone, phone_number_id = excluded.phone_number_id,
                 template_name = excluded.template_name, template_language = excluded.template_language,
                 category = excluded.category, sent_at = excluded.sent_at",
        )
        .and_then(|mut stmt| {
            stmt.execute(params![
                message.business_id.to_string(),
                message.message_id,
                rows::phone_key(message.phone),
                message.phone_number_id,
                template_name,
                template_language,
                message.category.as_ref().map(CategoryName::as_str),
                sent_at
            ])
        })
        .map_err(db_error)?;
    Ok(())
}

/// For frequency caps: the times of the messages of `category` forwarded to each number in
/// `(since, until]`, by number (in the order given), then time: nothing when the business sent
/// none of the category in the period (one probe of `forwarded_messages_by_category`), else one
/// probe of `forwarded_messages_by_recipient` per number.
pub(crate) fn recent_sends(
    conn: &Connection,
    business: BusinessId,
    category: &CategoryName,
    phones: &[PhoneNumber],
    (since, until): (Timestamp, Timestamp),
) -> Result<Vec<(PhoneNumber, Timestamp)>, StoreError> {
    let (business, since, until) = (business.to_string(), time(since)?, time(until)?);
    let any_sent: bool = conn
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM forwarded_messages
                            WHERE business_id = ?1 AND category = ?2 AND sent_at > ?3 AND sent_at <= ?4)",
        )
        .and_then(|mut stmt| stmt.query_row(params![business, category.as_str(), since, until], |row| row.get(0)))
        .map_err(db_error)?;
    if !any_sent || phones.is_empty() {
        return Ok(Vec::new());
    }
    let mut stmt = conn
        .prepare_cached(
            "SELECT sent_at FROM forwarded_messages
             WHERE business_id = ?1 AND category = ?2 AND phone = ?3 AND sent_at > ?4 AND sent_at <= ?5
             ORDER BY sent_at",
        )
        .map_err(db_error)?;
    let mut sends = Vec::new();
    for phone in phones {
        let key = rows::phone_key(*phone);
        let times = stmt
            .query_map(params![business, category.as_str(), key, since, until], |row| row.get::<_, i64>(0))
            .and_then(|rows| rows.collect::<rusqlite::Result<Vec<i64>>>())
            .map_err(db_error)?;
        for sent_at in times {
            sends.push((*phone, timestamp(sent_at, "forwarded_messages.sent_at")?));
        }
    }
    Ok(sends)
}

pub(crate) fn forwarded_message(
    conn: &Connection,
    business: BusinessId,
    message_id: &str,
) -> Result<Option<ForwardedMessage>, StoreError> {
    let row = conn
        .prepare_cached(
            "SELECT phone, phone_number_id, template_name, template_language, category, sent_at
             FROM forwarded_messages WHERE business_id = ?1 AND message_id = ?2",
        )
        .and_then(|mut stmt| {
            stmt.query_row(params![business.to_string(), message_id], |row| {
                Ok(ForwardedRow {
                    phone: row.get(0)?,
                    phone_number_id: row.get(1)?,
                    template_name: row.get(2)?,
                    template_language: row.get(3)?,
                    category: row.get(4)?,
                    sent_at: row.get(5)?,
                })
            })
            .optional()
        })
        .map_err(db_error)?;
    row.map(|row| row.parse(business, message_id)).transpose()
}

struct ForwardedRow {
    phone: i64,
    phone_number_id: String,
    template_name: Option<String>,
    template_language: Option<String>,
    category: Option<String>,
    sent_at: i64,
}

impl ForwardedRow {
    fn parse(self, business_id: BusinessId, message_id: &str) -> Result<ForwardedMessage, StoreError> {
        let template = match (self.template_name, self.template_language) {
            (Some(name), Some(language)) => Some((
                TemplateName::parse(&name).map_err(|_| corrupt("forwarded_messages.template_name is invalid"))?,
                TemplateLanguage::parse(&language)
                    .map_err(|_| corrupt("forwarded_messages.template_language is invalid"))?,
            )),
            _ => None,
        };
        Ok(ForwardedMessage {
            business_id,
            message_id: message_id.to_owned(),
            phone: stored_phone(self.phone, "forwarded_messages.phone")?,
            phone_number_id: self.phone_number_id,
            template,
            category: self.category.as_deref().map(category_name).transpose()?,
            sent_at: timestamp(self.sent_at, "forwarded_messages.sent_at")?,
        })
    }
}
