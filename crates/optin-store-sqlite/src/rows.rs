//! Rows as SQLite returns them, and their conversion back into domain types. Every value is
//! re-parsed with the core's own parsers: a row that does not parse is `StoreError::Corrupt`.

use std::str::FromStr;

use jiff::Timestamp;
use optin_core::business::{Business, BusinessName, Category, CategoryName, TemplateCategory};
use optin_core::consent::{CategoryConsent, ConsentBasis, ConsentStatus};
use optin_core::evidence::Method;
use optin_core::ids::{BusinessId, EventId, NoticeId};
use optin_core::ledger::{ChainHead, Hash, LedgerEntry};
use optin_core::notice::{Language, NoticeText, NoticeWarning};
use optin_core::phone::PhoneNumber;
use optin_store::{ApiKeyRecord, Notice, SavedResponse, StoreError};

use crate::error::corrupt;

// --- values ---------------------------------------------------------------------------------

/// A time as stored: nanoseconds since the Unix epoch, exact for 1677-09-21 to 2262-04-11.
/// Times outside that range are refused (`Conflict { constraint: "time_range" }`).
pub(crate) fn time(at: Timestamp) -> Result<i64, StoreError> {
    i64::try_from(at.as_nanosecond()).map_err(|_| StoreError::Conflict { constraint: "time_range" })
}

pub(crate) fn optional_time(at: Option<Timestamp>) -> Result<Option<i64>, StoreError> {
    at.map(time).transpose()
}

pub(crate) fn timestamp(nanos: i64, column: &str) -> Result<Timestamp, StoreError> {
    Timestamp::from_nanosecond(i128::from(nanos)).map_err(|_| corrupt(format_args!("{column} is not a valid time")))
}

pub(crate) fn optional_timestamp(nanos: Option<i64>, column: &str) -> Result<Option<Timestamp>, StoreError> {
    nanos.map(|n| timestamp(n, column)).transpose()
}

pub(crate) fn id<T: FromStr>(text: &str, column: &str) -> Result<T, StoreError> {
    text.parse().map_err(|_| corrupt(format_args!("{column} is not a UUID")))
}

/// A phone number's key as SQLite stores it. E.164 has at most 15 digits, so it fits an `i64`.
pub(crate) fn phone_key(phone: PhoneNumber) -> i64 {
    key_to_sql(phone.key())
}

pub(crate) fn key_to_sql(key: u64) -> i64 {
    i64::try_from(key).expect("phone keys have at most 15 digits")
}

pub(crate) fn stored_phone_key(stored: i64, column: &str) -> Result<u64, StoreError> {
    u64::try_from(stored)
        .ok()
        .filter(|key| PhoneNumber::from_key(*key).is_some())
        .ok_or_else(|| corrupt(format_args!("{column} is not a phone number")))
}

/// A phone number as stored (`phone_key`), parsed back.
pub(crate) fn stored_phone(stored: i64, column: &str) -> Result<PhoneNumber, StoreError> {
    u64::try_from(stored)
        .ok()
        .and_then(PhoneNumber::from_key)
        .ok_or_else(|| corrupt(format_args!("{column} is not a phone number")))
}

pub(crate) fn index_to_sql(index: u64) -> i64 {
    i64::try_from(index).unwrap_or(i64::MAX)
}

pub(crate) fn stored_index(stored: i64, column: &str) -> Result<u64, StoreError> {
    u64::try_from(stored).map_err(|_| corrupt(format_args!("{column} is negative")))
}

pub(crate) fn hash(hex: &str, column: &str) -> Result<Hash, StoreError> {
    Hash::from_hex(hex).ok_or_else(|| corrupt(format_args!("{column} is not a SHA-256 in hex")))
}

pub(crate) fn category_name(text: &str) -> Result<CategoryName, StoreError> {
    CategoryName::parse(text).map_err(|_| corrupt("a category name is invalid"))
}

pub(crate) fn status(text: &str) -> Result<ConsentStatus, StoreError> {
    ConsentStatus::parse(text).ok_or_else(|| corrupt("consent_state.status is unknown"))
}

pub(crate) fn basis(text: Option<&str>) -> Result<Option<ConsentBasis>, StoreError> {
    text.map(|text| ConsentBasis::parse(text).ok_or_else(|| corrupt("consent_state.basis is unknown"))).transpose()
}

// --- rows -----------------------------------------------------------------------------------

/// `businesses` with its `categories` (slot order) and `brand_names` (position order).
pub(crate) struct BusinessRow {
    pub id: String,
    pub name: String,
    pub created_at: i64,
    /// (name, template category)
    pub categories: Vec<(String, String)>,
    pub brand_names: Vec<String>,
}

impl TryFrom<BusinessRow> for Business {
    type Error = StoreError;
    fn try_from(row: BusinessRow) -> Result<Business, StoreError> {
        let categories = row
            .categories
            .iter()
            .map(|(name, template)| {
                Ok(Category {
                    name: category_name(name)?,
                    template_category: TemplateCategory::parse(template)
                        .ok_or_else(|| corrupt("categories.template_category is unknown"))?,
                })
            })
            .collect::<Result<_, StoreError>>()?;
        let brand_names = row
            .brand_names
            .iter()
            .map(|name| BusinessName::parse(name).map_err(|_| corrupt("brand_names.name is invalid")))
            .collect::<Result<_, _>>()?;
        Ok(Business {
            id: id(&row.id, "businesses.id")?,
            name: BusinessName::parse(&row.name).map_err(|_| corrupt("businesses.name is invalid"))?,
            brand_names,
            categories,
            created_at: timestamp(row.created_at, "businesses.created_at")?,
        })
    }
}

pub(crate) struct ApiKeyRow {
    pub id: String,
    pub business_id: String,
    pub label: String,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
}

impl TryFrom<ApiKeyRow> for ApiKeyRecord {
    type Error = StoreError;
    fn try_from(row: ApiKeyRow) -> Result<ApiKeyRecord, StoreError> {
        Ok(ApiKeyRecord {
            id: id(&row.id, "api_keys.id")?,
            business_id: id(&row.business_id, "api_keys.business_id")?,
            label: row.label,
            created_at: timestamp(row.created_at, "api_keys.created_at")?,
            revoked_at: optional_timestamp(row.revoked_at, "api_keys.revoked_at")?,
        })
    }
}

pub(crate) const NOTICE_COLUMNS: &str = "id, business_id, version, language, text, text_sha256, warnings, created_at";

pub(crate) struct NoticeRow {
    pub id: String,
    pub business_id: String,
    pub version: i64,
    pub language: String,
    pub text: String,
    pub text_sha256: String,
    pub warnings: String,
    pub created_at: i64,
}

impl NoticeRow {
    /// Reads the columns of [`NOTICE_COLUMNS`], in order.
    pub(crate) fn read(row: &rusqlite::Row<'_>) -> rusqlite::Result<NoticeRow> {
        Ok(NoticeRow {
            id: row.get(0)?,
            business_id: row.get(1)?,
            version: row.get(2)?,
            language: row.get(3)?,
            text: row.get(4)?,
            text_sha256: row.get(5)?,
            warnings: row.get(6)?,
            created_at: row.get(7)?,
        })
    }
}

impl TryFrom<NoticeRow> for Notice {
    type Error = StoreError;
    fn try_from(row: NoticeRow) -> Result<Notice, StoreError> {
        let warnings: Vec<NoticeWarning> =
            serde_json::from_str(&row.warnings).map_err(|_| corrupt("notices.warnings is not a list of warnings"))?;
        Ok(Notice {
            id: id(&row.id, "notices.id")?,
            business_id: id(&row.business_id, "notices.business_id")?,
            version: u32::try_from(row.version).map_err(|_| corrupt("notices.version is out of range"))?,
            language: Language::parse(&row.language).map_err(|_| corrupt("notices.language is invalid"))?,
            text: NoticeText::parse(&row.text).map_err(|_| corrupt("notices.text is invalid"))?,
            text_sha256: row.text_sha256,
            warnings,
            created_at: timestamp(row.created_at, "notices.created_at")?,
        })
    }
}

pub(crate) const STATE_COLUMNS: &str =
    "category, status, since, event_id, method, notice_id, last_opt_out_at, basis, basis_at";

pub(crate) struct StateRow {
    pub category: String,
    pub status: String,
    pub since: i64,
    pub event_id: String,
    pub method: Option<String>,
    pub notice_id: Option<String>,
    pub last_opt_out_at: Option<i64>,
    pub basis: Option<String>,
    pub basis_at: Option<i64>,
}

impl StateRow {
    /// Reads the columns of [`STATE_COLUMNS`], in order.
    pub(crate) fn read(row: &rusqlite::Row<'_>) -> rusqlite::Result<StateRow> {
        Ok(StateRow {
            category: row.get(0)?,
            status: row.get(1)?,
            since: row.get(2)?,
            event_id: row.get(3)?,
            method: row.get(4)?,
            notice_id: row.get(5)?,
            last_opt_out_at: row.get(6)?,
            basis: row.get(7)?,
            basis_at: row.get(8)?,
        })
    }

    pub(crate) fn parse(self) -> Result<(CategoryName, CategoryConsent), StoreError> {
        let method = match self.method.as_deref() {
            Some(text) => Some(Method::parse(text).ok_or_else(|| corrupt("consent_state.method is unknown"))?),
            None => None,
        };
        let notice_id = match self.notice_id.as_deref() {
            Some(text) => Some(id::<NoticeId>(text, "consent_state.notice_id")?),
            None => None,
        };
        let consent = CategoryConsent {
            status: status(&self.status)?,
            since: timestamp(self.since, "consent_state.since")?,
            event_id: id::<EventId>(&self.event_id, "consent_state.event_id")?,
            method,
            notice_id,
            last_opt_out_at: optional_timestamp(self.last_opt_out_at, "consent_state.last_opt_out_at")?,
            basis: match (basis(self.basis.as_deref())?, self.basis_at) {
                (Some(basis), Some(at)) => Some((basis, timestamp(at, "consent_state.basis_at")?)),
                (None, None) => None,
                _ => return Err(corrupt("consent_state.basis and basis_at are not both set")),
            },
        };
        Ok((category_name(&self.category)?, consent))
    }
}

pub(crate) const ENTRY_COLUMNS: &str = "chain_index, event_id, phone, content, content_hash, prev_hash, hash";

pub(crate) struct EntryRow {
    pub chain_index: i64,
    pub event_id: String,
    pub phone: i64,
    pub content: String,
    pub content_hash: String,
    pub prev_hash: String,
    pub hash: String,
}

impl EntryRow {
    /// Reads the columns of [`ENTRY_COLUMNS`], in order.
    pub(crate) fn read(row: &rusqlite::Row<'_>) -> rusqlite::Result<EntryRow> {
        Ok(EntryRow {
            chain_index: row.get(0)?,
            event_id: row.get(1)?,
            phone: row.get(2)?,
            content: row.get(3)?,
            content_hash: row.get(4)?,
            prev_hash: row.get(5)?,
            hash: row.get(6)?,
        })
    }
}

impl TryFrom<EntryRow> for LedgerEntry {
    type Error = StoreError;
    fn try_from(row: EntryRow) -> Result<LedgerEntry, StoreError> {
        Ok(LedgerEntry {
            index: stored_index(row.chain_index, "consent_events.chain_index")?,
            event_id: id(&row.event_id, "consent_events.event_id")?,
            phone_key: stored_phone_key(row.phone, "consent_events.phone")?,
            content: row.content,
            content_hash: hash(&row.content_hash, "consent_events.content_hash")?,
            prev_hash: hash(&row.prev_hash, "consent_events.prev_hash")?,
            hash: hash(&row.hash, "consent_events.hash")?,
        })
    }
}

pub(crate) fn chain_head(last_index: i64, last_hash: &str) -> Result<ChainHead, StoreError> {
    Ok(ChainHead {
        index: stored_index(last_index, "chain_heads.last_index")?,
        hash: hash(last_hash, "chain_heads.last_hash")?,
    })
}

pub(crate) struct SavedResponseRow {
    pub fingerprint: String,
    pub status: i64,
    pub body: String,
    pub created_at: i64,
}

impl TryFrom<SavedResponseRow> for SavedResponse {
    type Error = StoreError;
    fn try_from(row: SavedResponseRow) -> Result<SavedResponse, StoreError> {
        Ok(SavedResponse {
            request_fingerprint: row.fingerprint,
            status: u16::try_from(row.status).map_err(|_| corrupt("saved_responses.status is out of range"))?,
            body: row.body,
            created_at: timestamp(row.created_at, "saved_responses.created_at")?,
        })
    }
}

/// The business ids as stored, for keys of maps built from query results.
pub(crate) fn business_id(text: &str) -> Result<BusinessId, StoreError> {
    id(text, "business_id")
}
