//! Rows back into domain types, through the core's own constructors: a row that does not parse
//! is `StoreError::Corrupt`, naming the table and column but never the value.

use jiff::Timestamp;
use optin_core::business::{Business, BusinessName, Category, CategoryName, TemplateCategory};
use optin_core::consent::{CategoryConsent, ConsentBasis, ConsentStatus, ContactConsent};
use optin_core::evidence::Method;
use optin_core::ids::{ApiKeyId, BusinessId, EventId, NoticeId};
use optin_core::ledger::{ChainHead, Hash, LedgerEntry};
use optin_core::notice::{Language, NoticeText, NoticeWarning};
use optin_core::phone::PhoneNumber;
use optin_store::{ApiKeyRecord, Notice, StoreError};
use tokio_postgres::Row;
use tokio_postgres::types::FromSql;
use uuid::Uuid;

use crate::error::corrupt;

/// Reads a column, turning a type mismatch into `Corrupt`.
pub(crate) fn get<'a, T: FromSql<'a>>(row: &'a Row, table: &str, column: &str) -> Result<T, StoreError> {
    row.try_get(column).map_err(|e| corrupt(format_args!("{table}.{column}: {e}")))
}

/// A time as stored: nanoseconds since the Unix epoch. An `i64` holds 1677-09-21 to 2262-04-11.
pub(crate) fn nanos(time: Timestamp) -> Result<i64, StoreError> {
    i64::try_from(time.as_nanosecond())
        .map_err(|_| corrupt(format_args!("the time {time} cannot be stored (the store keeps 1677 to 2262)")))
}

pub(crate) fn optional_nanos(time: Option<Timestamp>) -> Result<Option<i64>, StoreError> {
    time.map(nanos).transpose()
}

pub(crate) fn timestamp(nanos: i64, table: &str, column: &str) -> Result<Timestamp, StoreError> {
    Timestamp::from_nanosecond(i128::from(nanos)).map_err(|_| corrupt(format_args!("{table}.{column}: bad time")))
}

pub(crate) fn optional_timestamp(
    nanos: Option<i64>,
    table: &str,
    column: &str,
) -> Result<Option<Timestamp>, StoreError> {
    nanos.map(|n| timestamp(n, table, column)).transpose()
}

/// The rows a listing returns: `limit` 0 asks for the default page, and pages are capped.
pub(crate) fn page_limit(limit: usize) -> i64 {
    const DEFAULT_PAGE: usize = 100;
    const MAX_PAGE: usize = 1_000;
    let rows = if limit == 0 { DEFAULT_PAGE } else { limit.min(MAX_PAGE) };
    i64::try_from(rows).expect("pages are small")
}

/// A phone number read back from its stored key.
pub(crate) fn phone(key: i64, table: &str, column: &str) -> Result<PhoneNumber, StoreError> {
    u64::try_from(key)
        .ok()
        .and_then(PhoneNumber::from_key)
        .ok_or_else(|| corrupt(format_args!("{table}.{column}: not a phone number")))
}

pub(crate) fn optional_phone(key: Option<i64>, table: &str, column: &str) -> Result<Option<PhoneNumber>, StoreError> {
    key.map(|key| phone(key, table, column)).transpose()
}

/// A phone key as stored (E.164 digits fit an `i64`).
pub(crate) fn phone_key(phone: PhoneNumber) -> i64 {
    i64::try_from(phone.key()).expect("E.164 numbers have at most 15 digits")
}

pub(crate) fn parse_status(text: &str) -> Result<ConsentStatus, StoreError> {
    ConsentStatus::parse(text).ok_or_else(|| corrupt("consent_state.status: unknown status"))
}

fn parse_basis(text: Option<&str>) -> Result<Option<ConsentBasis>, StoreError> {
    text.map(|text| ConsentBasis::parse(text).ok_or_else(|| corrupt("consent_state.basis: unknown basis"))).transpose()
}

/// Columns `status` and `basis` of a `consent_state` row.
pub(crate) fn status_and_basis(row: &Row) -> Result<(ConsentStatus, Option<ConsentBasis>), StoreError> {
    const T: &str = "consent_state";
    Ok((parse_status(get(row, T, "status")?)?, parse_basis(get(row, T, "basis")?)?))
}

/// Columns: id, name, created_at, slots, category_names, template_categories, brand_names
/// (see `BUSINESS_SELECT`).
pub(crate) fn business(row: &Row) -> Result<Business, StoreError> {
    const T: &str = "businesses";
    let id = BusinessId::from_uuid(get(row, T, "id")?);
    let name = BusinessName::parse(get(row, T, "name")?).map_err(|e| corrupt(format_args!("{T}.name: {e}")))?;
    let slots: Vec<i16> = get(row, "categories", "slots")?;
    let names: Vec<&str> = get(row, "categories", "category_names")?;
    let template_categories: Vec<&str> = get(row, "categories", "template_categories")?;
    // Slots are bit positions: a gap would shift every later category onto another bit.
    let contiguous = slots.iter().enumerate().all(|(i, slot)| usize::try_from(*slot).is_ok_and(|s| s == i));
    if !contiguous || slots.len() != names.len() || names.len() != template_categories.len() {
        return Err(corrupt(format_args!("categories of business {id}: slots are not 0, 1, 2...")));
    }
    let categories = names
        .iter()
        .zip(template_categories)
        .map(|(name, template)| {
            Ok(Category {
                name: CategoryName::parse(name).map_err(|e| corrupt(format_args!("categories.name: {e}")))?,
                template_category: TemplateCategory::parse(template)
                    .ok_or_else(|| corrupt("categories.template_category: unknown"))?,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    let brand_names = get::<Vec<&str>>(row, "brand_names", "brand_names")?
        .into_iter()
        .map(|name| BusinessName::parse(name).map_err(|e| corrupt(format_args!("brand_names.name: {e}"))))
        .collect::<Result<Vec<_>, StoreError>>()?;
    let created_at = timestamp(get(row, T, "created_at")?, T, "created_at")?;
    Ok(Business { id, name, brand_names, categories, created_at })
}

/// Selects businesses as `business` reads them; append `WHERE`/`ORDER BY` on `b`.
pub(crate) const BUSINESS_SELECT: &str = "\
SELECT b.id, b.name, b.created_at,
       ARRAY(SELECT c.slot FROM categories c WHERE c.business_id = b.id ORDER BY c.slot) AS slots,
       ARRAY(SELECT c.name FROM categories c WHERE c.business_id = b.id ORDER BY c.slot) AS category_names,
       ARRAY(SELECT c.template_category FROM categories c WHERE c.business_id = b.id ORDER BY c.slot)
           AS template_categories,
       ARRAY(SELECT n.name FROM brand_names n WHERE n.business_id = b.id ORDER BY n.position) AS brand_names
FROM businesses b";

/// Columns: id, business_id, label, created_at, revoked_at.
pub(crate) fn api_key(row: &Row) -> Result<ApiKeyRecord, StoreError> {
    const T: &str = "api_keys";
    Ok(ApiKeyRecord {
        id: ApiKeyId::from_uuid(get(row, T, "id")?),
        business_id: BusinessId::from_uuid(get(row, T, "business_id")?),
        label: get(row, T, "label")?,
        created_at: timestamp(get(row, T, "created_at")?, T, "created_at")?,
        revoked_at: optional_timestamp(get(row, T, "revoked_at")?, T, "revoked_at")?,
    })
}

/// Columns: id, business_id, version, language, text, text_sha256, warnings, created_at.
pub(crate) fn notice(row: &Row) -> Result<Notice, StoreError> {
    const T: &str = "notices";
    let version: i32 = get(row, T, "version")?;
    let warnings: serde_json::Value = get(row, T, "warnings")?;
    Ok(Notice {
        id: NoticeId::from_uuid(get(row, T, "id")?),
        business_id: BusinessId::from_uuid(get(row, T, "business_id")?),
        version: u32::try_from(version).map_err(|_| corrupt("notices.version: negative"))?,
        language: Language::parse(get(row, T, "language")?).map_err(|e| corrupt(format_args!("{T}.language: {e}")))?,
        text: NoticeText::parse(get(row, T, "text")?).map_err(|e| corrupt(format_args!("{T}.text: {e}")))?,
        text_sha256: get(row, T, "text_sha256")?,
        warnings: serde_json::from_value::<Vec<NoticeWarning>>(warnings)
            .map_err(|e| corrupt(format_args!("{T}.warnings: {e}")))?,
        created_at: timestamp(get(row, T, "created_at")?, T, "created_at")?,
    })
}

fn hash(row: &Row, column: &str) -> Result<Hash, StoreError> {
    Hash::from_hex(get(row, "consent_events", column)?)
        .ok_or_else(|| corrupt(format_args!("consent_events.{column}: not a SHA-256 hex digest")))
}

/// Columns: chain_index, event_id, phone, content, content_hash, prev_hash, hash.
///
/// Only the types are checked here: whether the entry is consistent (content against hash,
/// phone and event id against content) is for the chain verifier to report, not to hide.
pub(crate) fn ledger_entry(row: &Row) -> Result<LedgerEntry, StoreError> {
    const T: &str = "consent_events";
    let index: i64 = get(row, T, "chain_index")?;
    let phone: i64 = get(row, T, "phone")?;
    Ok(LedgerEntry {
        index: u64::try_from(index).map_err(|_| corrupt("consent_events.chain_index: negative"))?,
        event_id: EventId::from_uuid(get(row, T, "event_id")?),
        phone_key: u64::try_from(phone).map_err(|_| corrupt("consent_events.phone: negative"))?,
        content: get(row, T, "content")?,
        content_hash: hash(row, "content_hash")?,
        prev_hash: hash(row, "prev_hash")?,
        hash: hash(row, "hash")?,
    })
}

/// Columns: last_index, last_hash. `None` before the business's first event.
pub(crate) fn chain_head(row: &Row) -> Result<Option<ChainHead>, StoreError> {
    const T: &str = "chain_heads";
    let index: i64 = get(row, T, "last_index")?;
    let hash: Option<&str> = get(row, T, "last_hash")?;
    match (index, hash) {
        (0, None) => Ok(None),
        (index, Some(hash)) if index > 0 => Ok(Some(ChainHead {
            index: index as u64,
            hash: Hash::from_hex(hash).ok_or_else(|| corrupt("chain_heads.last_hash: not a SHA-256 hex digest"))?,
        })),
        _ => Err(corrupt("chain_heads: index and hash disagree")),
    }
}

/// Columns: category, status, since, event_id, method, notice_id, last_opt_out_at, basis, basis_at.
pub(crate) fn contact_consent(rows: &[Row]) -> Result<ContactConsent, StoreError> {
    const T: &str = "consent_state";
    let mut consent = ContactConsent::new();
    for row in rows {
        let category =
            CategoryName::parse(get(row, T, "category")?).map_err(|e| corrupt(format_args!("{T}.category: {e}")))?;
        let method = get::<Option<&str>>(row, T, "method")?
            .map(|m| Method::parse(m).ok_or_else(|| corrupt("consent_state.method: unknown method")))
            .transpose()?;
        let state = CategoryConsent {
            status: parse_status(get(row, T, "status")?)?,
            since: timestamp(get(row, T, "since")?, T, "since")?,
            event_id: EventId::from_uuid(get(row, T, "event_id")?),
            method,
            notice_id: get::<Option<Uuid>>(row, T, "notice_id")?.map(NoticeId::from_uuid),
            last_opt_out_at: optional_timestamp(get(row, T, "last_opt_out_at")?, T, "last_opt_out_at")?,
            basis: match (
                parse_basis(get(row, T, "basis")?)?,
                optional_timestamp(get(row, T, "basis_at")?, T, "basis_at")?,
            ) {
                (Some(basis), Some(at)) => Some((basis, at)),
                (None, None) => None,
                _ => return Err(corrupt("consent_state.basis and basis_at are not both set")),
            },
        };
        consent.insert(category, state);
    }
    Ok(consent)
}

#[cfg(test)]
mod tests {
    use jiff::Timestamp;

    use super::{nanos, timestamp};

    #[test]
    fn times_round_trip_to_the_nanosecond() {
        for text in ["2026-11-25T10:11:12.123456789Z", "1970-01-01T00:00:00Z", "1969-12-31T23:59:59.999999999Z"] {
            let time: Timestamp = text.parse().unwrap();
            assert_eq!(timestamp(nanos(time).unwrap(), "t", "c").unwrap(), time);
        }
        assert!(nanos("1500-01-01T00:00:00Z".parse().unwrap()).is_err());
    }
}
