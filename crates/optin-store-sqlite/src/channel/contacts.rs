//! People seen writing in threads (by phone, by business-scoped user id, or both), and the
//! messages optin sent them.
//!
//! A contact is one `thread_contacts` row. Sightings find it by phone, else by user id; a sighting
//! carrying both links them (the pair it names is the current one), and when the phone's row and
//! the user id's row are two rows, they are merged into the phone's row (keeping the later of
//! each time) and the other is deleted. Every step reads inside the writer's transaction, so the
//! decisions are made on the current rows.

use optin_core::business::CategoryName;
use optin_core::ids::{BusinessId, NoticeId};
use optin_core::phone::PhoneNumber;
use optin_store::StoreError;
use optin_store::channel::{OutboundPurpose, SentMessage, Sighting, ThreadContact};
use rusqlite::{Connection, OptionalExtension, params};

use crate::error::{corrupt, db_error};
use crate::rows::{self, category_name, id, optional_timestamp, stored_phone, time, timestamp};
use crate::writer::Batch;

const CONTACT_COLUMNS: &str = "id, phone, user_id, last_inbound_at, last_asked_at";

/// A `thread_contacts` row.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ContactRow {
    id: i64,
    phone: Option<i64>,
    user_id: Option<String>,
    last_inbound_at: Option<i64>,
    last_asked_at: Option<i64>,
}

impl ContactRow {
    /// Reads the columns of [`CONTACT_COLUMNS`], in order.
    fn read(row: &rusqlite::Row<'_>) -> rusqlite::Result<ContactRow> {
        Ok(ContactRow {
            id: row.get(0)?,
            phone: row.get(1)?,
            user_id: row.get(2)?,
            last_inbound_at: row.get(3)?,
            last_asked_at: row.get(4)?,
        })
    }
}

impl TryFrom<ContactRow> for ThreadContact {
    type Error = StoreError;
    fn try_from(row: ContactRow) -> Result<ThreadContact, StoreError> {
        let phone = row.phone.map(|key| stored_phone(key, "thread_contacts.phone")).transpose()?;
        Ok(ThreadContact {
            phone,
            user_id: row.user_id,
            last_inbound_at: optional_timestamp(row.last_inbound_at, "thread_contacts.last_inbound_at")?,
            last_asked_at: optional_timestamp(row.last_asked_at, "thread_contacts.last_asked_at")?,
        })
    }
}

fn by_phone(conn: &Connection, business: &str, phone: i64) -> Result<Option<ContactRow>, StoreError> {
    conn.prepare_cached(&format!("SELECT {CONTACT_COLUMNS} FROM thread_contacts WHERE business_id = ?1 AND phone = ?2"))
        .and_then(|mut stmt| stmt.query_row(params![business, phone], ContactRow::read).optional())
        .map_err(db_error)
}

fn by_user_id(conn: &Connection, business: &str, user_id: &str) -> Result<Option<ContactRow>, StoreError> {
    conn.prepare_cached(&format!(
        "SELECT {CONTACT_COLUMNS} FROM thread_contacts WHERE business_id = ?1 AND user_id = ?2"
    ))
    .and_then(|mut stmt| stmt.query_row(params![business, user_id], ContactRow::read).optional())
    .map_err(db_error)
}

fn insert(conn: &Connection, business: &str, contact: &ContactRow) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO thread_contacts (business_id, phone, user_id, last_inbound_at, last_asked_at)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )
    .and_then(|mut stmt| {
        stmt.execute(params![business, contact.phone, contact.user_id, contact.last_inbound_at, contact.last_asked_at])
    })
    .map_err(db_error)?;
    Ok(())
}

fn update(conn: &Connection, contact: &ContactRow) -> Result<(), StoreError> {
    conn.prepare_cached(
        "UPDATE thread_contacts SET phone = ?2, user_id = ?3, last_inbound_at = ?4, last_asked_at = ?5 WHERE id = ?1",
    )
    .and_then(|mut stmt| {
        stmt.execute(params![
            contact.id,
            contact.phone,
            contact.user_id,
            contact.last_inbound_at,
            contact.last_asked_at
        ])
    })
    .map_err(db_error)?;
    Ok(())
}

fn delete(conn: &Connection, id: i64) -> Result<(), StoreError> {
    conn.prepare_cached("DELETE FROM thread_contacts WHERE id = ?1")
        .and_then(|mut stmt| stmt.execute([id]))
        .map_err(db_error)?;
    Ok(())
}

/// Creates or updates the contact of each sighting, in order. A sighting with neither a phone
/// nor a user id names nobody and is skipped. `NotFound` for an unknown business.
pub(crate) fn record_sightings(
    batch: &mut Batch<'_>,
    business: BusinessId,
    sightings: &[Sighting],
) -> Result<(), StoreError> {
    let conn = batch.conn;
    let business = business.to_string();
    for sighting in sightings {
        let at = time(sighting.at)?;
        let phone = sighting.phone.map(rows::phone_key);
        let user_id = sighting.user_id.as_deref();
        let phone_row = phone.map(|phone| by_phone(conn, &business, phone)).transpose()?.flatten();
        let user_row = user_id.map(|user_id| by_user_id(conn, &business, user_id)).transpose()?.flatten();
        match (phone_row, user_row) {
            (None, None) if phone.is_none() && user_id.is_none() => {}
            (None, None) => {
                let contact = ContactRow {
                    id: 0,
                    phone,
                    user_id: user_id.map(str::to_owned),
                    last_inbound_at: Some(at),
                    last_asked_at: None,
                };
                insert(conn, &business, &contact)?;
            }
            (Some(mut contact), other) | (other @ None, Some(mut contact)) => {
                if let Some(other) = other.filter(|other| other.id != contact.id) {
                    // Two rows are one person: keep the phone's row, with the later of each time.
                    delete(conn, other.id)?;
                    contact.last_inbound_at = contact.last_inbound_at.max(other.last_inbound_at);
                    contact.last_asked_at = contact.last_asked_at.max(other.last_asked_at);
                }
                contact.phone = phone.or(contact.phone);
                contact.user_id = user_id.map(str::to_owned).or(contact.user_id);
                contact.last_inbound_at = contact.last_inbound_at.max(Some(at));
                update(conn, &contact)?;
            }
        }
    }
    Ok(())
}

/// The contact with this phone number, or else the one with this user id.
pub(crate) fn thread_contact(
    conn: &Connection,
    business: BusinessId,
    phone: Option<PhoneNumber>,
    user_id: Option<&str>,
) -> Result<Option<ThreadContact>, StoreError> {
    let business = business.to_string();
    let mut found = match phone {
        Some(phone) => by_phone(conn, &business, rows::phone_key(phone))?,
        None => None,
    };
    if let (None, Some(user_id)) = (&found, user_id) {
        found = by_user_id(conn, &business, user_id)?;
    }
    found.map(ThreadContact::try_from).transpose()
}

/// Remembers the message (replacing one with the same id) and, for an opt-in question, moves the
/// contact's `last_asked_at` forward, creating the contact if needed. `NotFound` for an unknown
/// business.
pub(crate) fn record_sent_message(batch: &mut Batch<'_>, message: &SentMessage) -> Result<(), StoreError> {
    let conn = batch.conn;
    let business = message.business_id.to_string();
    let phone = rows::phone_key(message.phone);
    let sent_at = time(message.sent_at)?;
    let categories: Vec<&str> = message.categories.iter().map(CategoryName::as_str).collect();
    let categories = serde_json::to_string(&categories).expect("a list of strings always serializes");
    conn.prepare_cached(
        "INSERT INTO sent_messages
             (business_id, message_id, phone, phone_number_id, purpose, categories, notice_id, sent_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
         ON CONFLICT (business_id, message_id) DO UPDATE SET
             phone = excluded.phone, phone_number_id = excluded.phone_number_id, purpose = excluded.purpose,
             categories = excluded.categories, notice_id = excluded.notice_id, sent_at = excluded.sent_at",
    )
    .and_then(|mut stmt| {
        stmt.execute(params![
            business,
            message.message_id,
            phone,
            message.phone_number_id,
            message.purpose.as_str(),
            categories,
            message.notice_id.map(|notice| notice.to_string()),
            sent_at
        ])
    })
    .map_err(db_error)?;
    if message.purpose == OutboundPurpose::OptInQuestion {
        match by_phone(conn, &business, phone)? {
            Some(mut contact) => {
                contact.last_asked_at = contact.last_asked_at.max(Some(sent_at));
                update(conn, &contact)?;
            }
            None => {
                let contact = ContactRow {
                    id: 0,
                    phone: Some(phone),
                    user_id: None,
                    last_inbound_at: None,
                    last_asked_at: Some(sent_at),
                };
                insert(conn, &business, &contact)?;
            }
        }
    }
    Ok(())
}

pub(crate) fn sent_message(
    conn: &Connection,
    business: BusinessId,
    message_id: &str,
) -> Result<Option<SentMessage>, StoreError> {
    let row = conn
        .prepare_cached(
            "SELECT phone, phone_number_id, purpose, categories, notice_id, sent_at
             FROM sent_messages WHERE business_id = ?1 AND message_id = ?2",
        )
        .and_then(|mut stmt| {
            stmt.query_row(params![business.to_string(), message_id], |row| {
                Ok(SentMessageRow {
                    phone: row.get(0)?,
                    phone_number_id: row.get(1)?,
                    purpose: row.get(2)?,
                    categories: row.get(3)?,
                    notice_id: row.get(4)?,
                    sent_at: row.get(5)?,
                })
            })
            .optional()
        })
        .map_err(db_error)?;
    row.map(|row| row.parse(business, message_id)).transpose()
}

struct SentMessageRow {
    phone: i64,
    phone_number_id: String,
    purpose: String,
    categories: String,
    notice_id: Option<String>,
    sent_at: i64,
}

impl SentMessageRow {
    fn parse(self, business_id: BusinessId, message_id: &str) -> Result<SentMessage, StoreError> {
        let names: Vec<String> = serde_json::from_str(&self.categories)
            .map_err(|_| corrupt("sent_messages.categories is not a list of names"))?;
        Ok(SentMessage {
            business_id,
            message_id: message_id.to_owned(),
            phone: stored_phone(self.phone, "sent_messages.phone")?,
            phone_number_id: self.phone_number_id,
            purpose: OutboundPurpose::parse(&self.purpose)
                .ok_or_else(|| corrupt("sent_messages.purpose is unknown"))?,
            categories: names.iter().map(|name| category_name(name)).collect::<Result<_, _>>()?,
            notice_id: self.notice_id.map(|notice| id::<NoticeId>(&notice, "sent_messages.notice_id")).transpose()?,
            sent_at: timestamp(self.sent_at, "sent_messages.sent_at")?,
        })
    }
}
