//! The `Store` trait: methods named for what the domain needs, not for tables.

use async_trait::async_trait;
use jiff::Timestamp;
use optin_core::business::{Business, BusinessName, Category};
use optin_core::consent::{ConsentBits, ConsentEvent, ContactConsent};
use optin_core::ids::{ApiKeyId, BusinessId, NoticeId};
use optin_core::ledger::{ChainHead, LedgerEntry};
use optin_core::phone::PhoneNumber;

use crate::records::{ApiKeyRecord, NewApiKey, NewNotice, Notice, Recorded, SavedResponse};

/// Why a store call failed. Driver errors never cross this boundary except boxed in
/// `Unavailable`, whose cause is logged and never shown to clients.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    /// A uniqueness rule was violated; `constraint` names the rule (e.g. `category_name`).
    #[error("conflict on {constraint}")]
    Conflict { constraint: &'static str },
    /// The business would exceed `MAX_CATEGORIES` or repeat a category; carries the core error.
    #[error(transparent)]
    Category(#[from] optin_core::business::CategoryError),
    /// Stored data that does not parse back into domain types.
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("the database is unavailable")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// Everything optin persists. Implementations must be safe to share between tasks and, for
/// PostgreSQL, between processes: every write is one transaction, and reads after a write
/// returned (in any process) see it.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Checks that the database answers (for `/readyz`).
    async fn ping(&self) -> Result<(), StoreError>;

    // --- operator -------------------------------------------------------------------------

    async fn operator_token_hash(&self) -> Result<Option<String>, StoreError>;
    /// Replaces the operator token's hash.
    async fn set_operator_token_hash(&self, hash: &str, at: Timestamp) -> Result<(), StoreError>;

    // --- tenancy --------------------------------------------------------------------------

    /// Creates a business with its categories (slots in the given order) and its first key.
    /// `Conflict { constraint: "business_id" }` if the id exists.
    async fn create_business(&self, business: &Business, first_key: &NewApiKey) -> Result<(), StoreError>;
    async fn business(&self, id: BusinessId) -> Result<Option<Business>, StoreError>;
    /// All businesses, oldest first.
    async fn list_businesses(&self) -> Result<Vec<Business>, StoreError>;
    /// Appends categories after the existing ones (checked with `check_new_categories` inside the
    /// transaction) and returns the updated business. `NotFound` for an unknown business.
    async fn add_categories(&self, id: BusinessId, categories: &[Category]) -> Result<Business, StoreError>;
    /// Replaces the extra brand names a notice may use. `NotFound` for an unknown business.
    async fn set_brand_names(&self, id: BusinessId, names: &[BusinessName]) -> Result<Business, StoreError>;
    /// `NotFound` if the business does not exist.
    async fn create_api_key(&self, key: &NewApiKey) -> Result<(), StoreError>;
    /// Marks a key revoked. `NotFound` if the key is not this business's or already revoked.
    async fn revoke_api_key(&self, business: BusinessId, key: ApiKeyId, at: Timestamp) -> Result<(), StoreError>;
    async fn list_api_keys(&self, business: BusinessId) -> Result<Vec<ApiKeyRecord>, StoreError>;
    /// The business owning a non-revoked key with this secret hash. A revoked key must stop
    /// authenticating as soon as `revoke_api_key` returned, in every process.
    async fn authenticate(&self, secret_hash: &str) -> Result<Option<BusinessId>, StoreError>;

    // --- notices --------------------------------------------------------------------------

    /// Registers a notice with the business's next version number and returns it.
    async fn register_notice(&self, notice: &NewNotice) -> Result<Notice, StoreError>;
    /// A notice of this business (another business's notice is `None`).
    async fn notice(&self, business: BusinessId, id: NoticeId) -> Result<Option<Notice>, StoreError>;
    async fn list_notices(&self, business: BusinessId) -> Result<Vec<Notice>, StoreError>;

    // --- consent ledger -------------------------------------------------------------------

    /// In one transaction: reads the contact's current consent, folds the event with
    /// `optin_core::consent::apply`, appends it to the business's chain after the current head
    /// (`LedgerEntry::chain`), writes the changed states and the new head. Once this returns,
    /// every later `consent_bits`/`contact_consent` call, in any process, sees the change.
    async fn record_consent(&self, business: &Business, event: &ConsentEvent) -> Result<Recorded, StoreError>;
    /// The hot path of decisions: the contact's consent as bits over the business's slots.
    /// Unknown contacts give empty bits.
    async fn consent_bits(&self, business: &Business, phone: PhoneNumber) -> Result<ConsentBits, StoreError>;
    /// The contact's current consent per category (empty for an unknown contact).
    async fn contact_consent(&self, business: BusinessId, phone: PhoneNumber) -> Result<ContactConsent, StoreError>;
    /// The contact's events, oldest first.
    async fn contact_events(&self, business: BusinessId, phone: PhoneNumber) -> Result<Vec<LedgerEntry>, StoreError>;
    /// Up to `limit` entries of the business's chain with index > `after_index`, in order.
    async fn ledger_page(
        &self,
        business: BusinessId,
        after_index: u64,
        limit: usize,
    ) -> Result<Vec<LedgerEntry>, StoreError>;
    /// The head the store recorded for the business's chain (`None` before the first event).
    async fn chain_head(&self, business: BusinessId) -> Result<Option<ChainHead>, StoreError>;

    // --- idempotency ----------------------------------------------------------------------

    async fn saved_response(&self, business: BusinessId, key: &str) -> Result<Option<SavedResponse>, StoreError>;
    /// Saves a response for a key; if one is already saved, keeps the first.
    async fn save_response(&self, business: BusinessId, key: &str, response: &SavedResponse) -> Result<(), StoreError>;
}
