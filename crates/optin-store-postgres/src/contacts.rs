//! Contacts seen in WhatsApp threads, and the messages optin sent them.
//!
//! A contact is known by phone number, by business-scoped user id, or both, and each identity
//! belongs to one contact of the business (unique partial indexes). Writes to a business's
//! contacts take a transaction-scoped advisory lock on the business first, so that servers
//! processing webhooks at the same time apply their sightings one after the other: two of them
//! cannot both create the same contact, and a merge never interleaves with another write (row
//! locks alone, taken in whatever order sightings come, could deadlock).

use deadpool_postgres::GenericClient;
use optin_core::business::CategoryName;
use optin_core::ids::{BusinessId, NoticeId};
use optin_core::phone::PhoneNumber;
use optin_store::StoreError;
use optin_store::channel::{OutboundPurpose, SentMessage, Sighting, ThreadContact};
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;
use uuid::Uuid;

use crate::PostgresStore;
use crate::error::{corrupt, db};
use crate::rows::{get, nanos, optional_phone, optional_timestamp, phone, phone_key, timestamp};

/// Serializes writes to one business's contacts (two-key advisory locks are a key space apart
/// from the migrations' one-key lock). "optc" in ASCII.
const LOCK_CONTACTS: &str = "SELECT pg_advisory_xact_lock(1869640803, hashtext($1::uuid::text))";

/// The contacts a sighting names, by phone or by user id (a null parameter matches nothing).
const FIND_FOR_UPDATE: &str = "\
SELECT id, phone, user_id, last_inbound_at, last_asked_at FROM thread_contacts
WHERE business_id = $1 AND (phone = $2 OR user_id = $3)
ORDER BY id FOR UPDATE";

const INSERT_CONTACT: &str = "\
INSERT INTO thread_contacts (business_id, phone, user_id, last_inbound_at) VALUES ($1, $2, $3, $4)";

/// Sets the identities the sighting gives (linking the one the contact lacked) and moves
/// `last_inbound_at` forward (`greatest` skips nulls), never back.
const UPDATE_CONTACT: &str = "\
UPDATE thread_contacts SET phone = coalesce($2, phone), user_id = coalesce($3, user_id),
    last_inbound_at = greatest(last_inbound_at, $4)
WHERE id = $1";

/// Folds the user-id contact (already deleted) into the phone contact: the later of each time.
const MERGE_INTO: &str = "\
UPDATE thread_contacts SET user_id = $2, last_inbound_at = greatest(last_inbound_at, $3, $4),
    last_asked_at = greatest(last_asked_at, $5)
WHERE id = $1";

const ASKED: &str = "\
INSERT INTO thread_contacts (business_id, phone, last_asked_at) VALUES ($1, $2, $3)
ON CONFLICT (business_id, phone) WHERE phone IS NOT NULL
DO UPDATE SET last_asked_at = greatest(thread_contacts.last_asked_at, excluded.last_asked_at)";

const SENT_COLUMNS: &str = "business_id, message_id, phone, phone_number_id, purpose, categories, notice_id, sent_at";

impl PostgresStore {
    /// One transaction under the business's contacts lock; the sightings apply in order.
    pub(crate) async fn apply_sightings(&self, business: BusinessId, sightings: &[Sighting]) -> Result<(), StoreError> {
        if sightings.is_empty() {
            return Ok(());
        }
        let business = business.as_uuid();
        let mut client = self.client().await?;
        let transaction = client.transaction().await.map_err(db)?;
        transaction.execute(LOCK_CONTACTS, &[&business]).await.map_err(db)?;
        for sighting in sightings {
            apply_sighting(&transaction, &business, sighting).await?;
        }
        transaction.commit().await.map_err(db)
    }

    /// The contact with the phone number if there is one, else the one with the user id.
    pub(crate) async fn load_thread_contact(
        &self,
        business: BusinessId,
        phone: Option<PhoneNumber>,
        user_id: Option<&str>,
    ) -> Result<Option<ThreadContact>, StoreError> {
        if phone.is_none() && user_id.is_none() {
            return Ok(None);
        }
        let client = self.client().await?;
        let sql = "SELECT phone, user_id, last_inbound_at, last_asked_at FROM thread_contacts
                   WHERE business_id = $1 AND (phone = $2 OR user_id = $3)
                   ORDER BY CASE WHEN phone = $2 THEN 0 ELSE 1 END LIMIT 1";
        let params: [&(dyn ToSql + Sync); 3] = [&business.as_uuid(), &phone.map(phone_key), &user_id];
        client.query_opt(sql, &params).await.map_err(db)?.as_ref().map(thread_contact).transpose()
    }

    /// The message (replacing one with the same id), and for an opt-in question the contact's
    /// `last_asked_at`, moved forward (creating the contact by phone if needed), in one
    /// transaction. `NotFound` for an unknown business.
    pub(crate) async fn insert_sent_message(&self, message: &SentMessage) -> Result<(), StoreError> {
        let business = message.business_id.as_uuid();
        let (phone, sent_at) = (phone_key(message.phone), nanos(message.sent_at)?);
        let categories: Vec<&str> = message.categories.iter().map(CategoryName::as_str).collect();
        let notice_id = message.notice_id.map(|id| id.as_uuid());
        let mut client = self.client().await?;
        let transaction = client.transaction().await.map_err(db)?;
        let sql = format!(
            "INSERT INTO sent_messages ({SENT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
             ON CONFLICT (business_id, message_id) DO UPDATE SET
                 phone = excluded.phone, phone_number_id = excluded.phone_number_id, purpose = excluded.purpose,
                 categories = excluded.categories, notice_id = excluded.notice_id, sent_at = excluded.sent_at"
        );
        let params: [&(dyn ToSql + Sync); 8] = [
            &business,
            &message.message_id,
            &phone,
            &message.phone_number_id,
            &message.purpose.as_str(),
            &categories,
            &notice_id,
            &sent_at,
        ];
        transaction.execute(&sql, &params).await.map_err(db)?;
        if message.purpose == OutboundPurpose::OptInQuestion {
            transaction.execute(LOCK_CONTACTS, &[&business]).await.map_err(db)?;
            transaction.execute(ASKED, &[&business, &phone, &sent_at]).await.map_err(db)?;
        }
        transaction.commit().await.map_err(db)
    }

    pub(crate) async fn load_sent_message(
        &self,
        business: BusinessId,
        message_id: &str,
    ) -> Result<Option<SentMessage>, StoreError> {
        let client = self.client().await?;
        let sql = format!("SELECT {SENT_COLUMNS} FROM sent_messages WHERE business_id = $1 AND message_id = $2");
        let row = client.query_opt(&sql, &[&business.as_uuid(), &message_id]).await.map_err(db)?;
        row.as_ref().map(sent_message).transpose()
    }
}

/// A contact row as locked for a sighting.
struct Found {
    id: i64,
    phone: Option<i64>,
    user_id: Option<String>,
    last_inbound_at: Option<i64>,
    last_asked_at: Option<i64>,
}

/// Creates the contact, or updates the one found by phone or user id with the identities the
/// sighting gives; when the phone and the user id name two contacts, they are one person: the
/// user-id contact is folded into the phone contact and deleted.
async fn apply_sighting(client: &impl GenericClient, business: &Uuid, sighting: &Sighting) -> Result<(), StoreError> {
    let phone = sighting.phone.map(phone_key);
    let user_id = sighting.user_id.as_deref();
    if phone.is_none() && user_id.is_none() {
        return Ok(());
    }
    let at = nanos(sighting.at)?;
    let rows = client.query(FIND_FOR_UPDATE, &[business, &phone, &user_id]).await.map_err(db)?;
    let found = rows.iter().map(found).collect::<Result<Vec<_>, _>>()?;
    let by_phone = found.iter().find(|contact| phone.is_some() && contact.phone == phone);
    let by_user_id = found.iter().find(|contact| user_id.is_some() && contact.user_id.as_deref() == user_id);
    match (by_phone, by_user_id) {
        (None, None) => {
            client.execute(INSERT_CONTACT, &[business, &phone, &user_id, &at]).await.map_err(db)?;
        }
        (Some(phone_contact), Some(user_contact)) if phone_contact.id != user_contact.id => {
            client.execute("DELETE FROM thread_contacts WHERE id = $1", &[&user_contact.id]).await.map_err(db)?;
            let params: [&(dyn ToSql + Sync); 5] =
                [&phone_contact.id, &user_id, &at, &user_contact.last_inbound_at, &user_contact.last_asked_at];
            client.execute(MERGE_INTO, &params).await.map_err(db)?;
        }
        (Some(contact), _) | (None, Some(contact)) => {
            client.execute(UPDATE_CONTACT, &[&contact.id, &phone, &user_id, &at]).await.map_err(db)?;
        }
    }
    Ok(())
}

fn found(row: &Row) -> Result<Found, StoreError> {
    const T: &str = "thread_contacts";
    Ok(Found {
        id: get(row, T, "id")?,
        phone: get(row, T, "phone")?,
        user_id: get(row, T, "user_id")?,
        last_inbound_at: get(row, T, "last_inbound_at")?,
        last_asked_at: get(row, T, "last_asked_at")?,
    })
}

/// Columns: phone, user_id, last_inbound_at, last_asked_at.
fn thread_contact(row: &Row) -> Result<ThreadContact, StoreError> {
    const T: &str = "thread_contacts";
    Ok(ThreadContact {
        phone: optional_phone(get(row, T, "phone")?, T, "phone")?,
        user_id: get(row, T, "user_id")?,
        last_inbound_at: optional_timestamp(get(row, T, "last_inbound_at")?, T, "last_inbound_at")?,
        last_asked_at: optional_timestamp(get(row, T, "last_asked_at")?, T, "last_asked_at")?,
    })
}

/// Columns: `SENT_COLUMNS`.
fn sent_message(row: &Row) -> Result<SentMessage, StoreError> {
    const T: &str = "sent_messages";
    let categories = get::<Vec<&str>>(row, T, "categories")?
        .into_iter()
        .map(|name| CategoryName::parse(name).map_err(|e| corrupt(format_args!("{T}.categories: {e}"))))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(SentMessage {
        business_id: BusinessId::from_uuid(get(row, T, "business_id")?),
        message_id: get(row, T, "message_id")?,
        phone: phone(get(row, T, "phone")?, T, "phone")?,
        phone_number_id: get(row, T, "phone_number_id")?,
        purpose: OutboundPurpose::parse(get(row, T, "purpose")?)
            .ok_or_else(|| corrupt("sent_messages.purpose: unknown"))?,
        categories,
        notice_id: get::<Option<Uuid>>(row, T, "notice_id")?.map(NoticeId::from_uuid),
        sent_at: timestamp(get(row, T, "sent_at")?, T, "sent_at")?,
    })
}
