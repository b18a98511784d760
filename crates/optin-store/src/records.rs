//! Row-neutral records that cross the store boundary (besides the core's own types).

use jiff::Timestamp;
use optin_core::business::CategoryName;
use optin_core::consent::CategoryOutcome;
use optin_core::ids::{ApiKeyId, BusinessId, EventId, NoticeId};
use optin_core::notice::{Language, NoticeText, NoticeWarning};
use optin_core::phone::PhoneNumber;

/// A key to store: only the hash of its secret is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewApiKey {
    pub id: ApiKeyId,
    pub business_id: BusinessId,
    pub secret_hash: String,
    pub label: String,
    pub created_at: Timestamp,
}

/// A key as listed: never its secret or hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyRecord {
    pub id: ApiKeyId,
    pub business_id: BusinessId,
    pub label: String,
    pub created_at: Timestamp,
    pub revoked_at: Option<Timestamp>,
}

/// A notice to register; the store assigns the next version number of the business.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewNotice {
    pub id: NoticeId,
    pub business_id: BusinessId,
    pub language: Language,
    pub text: NoticeText,
    pub warnings: Vec<NoticeWarning>,
    pub created_at: Timestamp,
}

/// A registered notice. Immutable: a changed text is a new notice with the next version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub id: NoticeId,
    pub business_id: BusinessId,
    /// 1, 2, 3... per business, in registration order.
    pub version: u32,
    pub language: Language,
    pub text: NoticeText,
    pub text_sha256: String,
    pub warnings: Vec<NoticeWarning>,
    pub created_at: Timestamp,
}

/// What recording a consent event did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    pub event_id: EventId,
    /// The contact, as parsed from the client's input.
    pub phone: PhoneNumber,
    /// The event's index in its business's chain.
    pub chain_index: u64,
    pub outcomes: Vec<(CategoryName, CategoryOutcome)>,
}

/// A response remembered for an `Idempotency-Key`, replayed when the same key comes again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SavedResponse {
    /// A hash of the request body: the same key with another body is a conflict.
    pub request_fingerprint: String,
    pub status: u16,
    pub body: String,
    pub created_at: Timestamp,
}

/// A scanned consent form, kept by the SHA-256 of its content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredDocument {
    pub business_id: BusinessId,
    /// Lower-case hex.
    pub sha256: String,
    pub media_type: optin_core::document::MediaType,
    pub content: Vec<u8>,
    pub uploaded_at: Timestamp,
}
