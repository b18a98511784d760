//! The `Store` trait: methods named for what the domain needs, not for tables.

use async_trait::async_trait;
use jiff::Timestamp;
use optin_core::business::{Business, BusinessName, Category, CategoryName};
use optin_core::consent::{ConsentBits, ConsentEvent, ContactConsent};
use optin_core::ids::{ApiKeyId, BusinessId, NoticeId};
use optin_core::ledger::{ChainHead, LedgerEntry, SealedEvent};
use optin_core::phone::PhoneNumber;

use crate::channel::{
    Delivery, DeliveryFilter, DeliveryId, DeliveryOutcome, ForwardedMessage, NewSignal, Sender, SentMessage,
    SettingsDocument, Sighting, Signal, SignalFilter, StoredTemplate, TemplateUpdate, ThreadContact,
};
use crate::records::{ApiKeyRecord, NewApiKey, NewNotice, Notice, Recorded, SavedResponse, StoredDocument};

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
    /// `consent_bits` of many contacts at once, in the order given (a number given twice is
    /// answered twice): for audience filtering, one call per chunk. Each call is one read that
    /// sees every write that returned before it; nothing is held open between calls.
    async fn consent_bits_many(
        &self,
        business: &Business,
        phones: &[PhoneNumber],
    ) -> Result<Vec<ConsentBits>, StoreError>;
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

    // --- WhatsApp channel -----------------------------------------------------------------

    /// Registers a sender. `Conflict { constraint: "phone_number_id" }` if any business already
    /// has this `phone_number_id`; `NotFound` for an unknown business.
    async fn add_sender(&self, sender: &Sender) -> Result<(), StoreError>;
    /// The business's senders, oldest first.
    async fn senders(&self, business: BusinessId) -> Result<Vec<Sender>, StoreError>;
    /// A settings document of the business, by name.
    async fn settings_document(&self, business: BusinessId, name: &str)
    -> Result<Option<SettingsDocument>, StoreError>;
    /// Creates or replaces a settings document. `NotFound` for an unknown business.
    async fn put_settings_document(&self, document: &SettingsDocument) -> Result<(), StoreError>;

    /// Keeps a scanned consent form under its SHA-256, once: `false` when the business already
    /// had it (nothing is written). `NotFound` for an unknown business.
    async fn put_document(&self, document: &StoredDocument) -> Result<bool, StoreError>;
    async fn document(&self, business: BusinessId, sha256: &str) -> Result<Option<StoredDocument>, StoreError>;

    /// Appends a webhook delivery, as received, to the inbox (state `pending`). Durable once this
    /// returns: the webhook endpoint answers 200 only after it.
    async fn insert_delivery(
        &self,
        business: BusinessId,
        received_at: Timestamp,
        body: &[u8],
    ) -> Result<DeliveryId, StoreError>;
    /// Claims up to `limit` pending deliveries of any business, oldest first, that nobody holds
    /// (or whose claim expired): each gets `attempts + 1` and is held until `now + lease`, so that
    /// another process does not take it meanwhile, and is taken again after a crash.
    async fn claim_deliveries(
        &self,
        now: Timestamp,
        lease: std::time::Duration,
        limit: usize,
    ) -> Result<Vec<Delivery>, StoreError>;
    /// Records how processing ended (and releases the claims), in one transaction.
    async fn finish_deliveries(
        &self,
        outcomes: &[(DeliveryId, DeliveryOutcome)],
        at: Timestamp,
    ) -> Result<(), StoreError>;
    /// The business's deliveries, newest first.
    async fn list_deliveries(&self, business: BusinessId, filter: &DeliveryFilter)
    -> Result<Vec<Delivery>, StoreError>;
    async fn delivery(&self, business: BusinessId, id: DeliveryId) -> Result<Option<Delivery>, StoreError>;
    /// Queues a delivery again (state `pending`, claim released). `NotFound` if not the business's.
    async fn requeue_delivery(&self, business: BusinessId, id: DeliveryId) -> Result<(), StoreError>;

    /// Records people seen writing in threads, in one transaction: each sighting creates or
    /// updates the contact found by phone or by user id (linking the two when both are given,
    /// merging two contacts when they turn out to be one), and moves `last_inbound_at` forward
    /// (never back).
    async fn record_sightings(&self, business: BusinessId, sightings: &[Sighting]) -> Result<(), StoreError>;
    /// The contact with this phone number, or else with this user id.
    async fn thread_contact(
        &self,
        business: BusinessId,
        phone: Option<PhoneNumber>,
        user_id: Option<&str>,
    ) -> Result<Option<ThreadContact>, StoreError>;

    /// Like `record_consent`, once per `dedupe_key` and business: if the key was already used,
    /// records nothing and returns `None` (webhooks are delivered at least once).
    async fn record_consent_once(
        &self,
        business: &Business,
        dedupe_key: &str,
        event: &ConsentEvent,
    ) -> Result<Option<Recorded>, StoreError>;

    /// `record_consent_once` for many events of one business, in order, in one transaction (a
    /// bulk import's chunk): each event is recorded unless its key was used before (by an earlier
    /// call or earlier in `events`), and its answer is `None` then. All or nothing: on an error
    /// nothing of the call is recorded. The chain stays one chain (events get consecutive indexes
    /// unless another writer interleaves between calls).
    async fn record_consent_batch_once(
        &self,
        business: &Business,
        events: Vec<(String, SealedEvent)>,
    ) -> Result<Vec<Option<Recorded>>, StoreError>;

    /// Which of `keys` the business already used for `record_consent_once` (read only: a dry run
    /// of an import), in the order given.
    async fn dedupe_keys_used(&self, business: BusinessId, keys: &[String]) -> Result<Vec<bool>, StoreError>;

    /// Creates or replaces templates by (name, language), in one transaction.
    async fn put_templates(&self, business: BusinessId, templates: &[StoredTemplate]) -> Result<(), StoreError>;
    async fn template(
        &self,
        business: BusinessId,
        name: &str,
        language: &str,
    ) -> Result<Option<StoredTemplate>, StoreError>;
    /// The business's templates by name, then language.
    async fn list_templates(&self, business: BusinessId) -> Result<Vec<StoredTemplate>, StoreError>;
    /// Applies platform changes to known templates (unknown ones are left alone), in order, in
    /// one transaction; a change older than the template's `updated_at` is ignored (webhooks
    /// arrive out of order). Returns how many changes were applied.
    async fn apply_template_updates(
        &self,
        business: BusinessId,
        updates: &[TemplateUpdate],
    ) -> Result<usize, StoreError>;

    /// Stores signals, in one transaction; a signal whose `dedupe_key` the business already has
    /// is skipped. Returns how many were new.
    async fn record_signals(
        &self,
        business: BusinessId,
        signals: &[NewSignal],
        received_at: Timestamp,
    ) -> Result<usize, StoreError>;
    /// The business's signals matching the filter, oldest first (by id).
    async fn signals(&self, business: BusinessId, filter: &SignalFilter) -> Result<Vec<Signal>, StoreError>;

    /// Remembers a message optin sent in a thread. For an opt-in question it also sets the
    /// contact's `last_asked_at` (creating the contact if needed).
    async fn record_sent_message(&self, message: &SentMessage) -> Result<(), StoreError>;
    async fn sent_message(&self, business: BusinessId, message_id: &str) -> Result<Option<SentMessage>, StoreError>;

    /// Remembers a message the send proxy forwarded (replacing one with the same id).
    /// `NotFound` for an unknown business.
    async fn record_forwarded_message(&self, message: &ForwardedMessage) -> Result<(), StoreError>;
    /// When the proxy forwarded messages of `category` to each of `phones` in `(since, until]`:
    /// the frequency caps' count, sorted by number, then time.
    async fn recent_sends(
        &self,
        business: BusinessId,
        category: &CategoryName,
        phones: &[PhoneNumber],
        since: Timestamp,
        until: Timestamp,
    ) -> Result<Vec<(PhoneNumber, Timestamp)>, StoreError>;
    /// A message the proxy forwarded for this business, by platform message id.
    async fn forwarded_message(
        &self,
        business: BusinessId,
        message_id: &str,
    ) -> Result<Option<ForwardedMessage>, StoreError>;

    // --- messaging limit --------------------------------------------------------------------

    /// Reserves places under a messaging limit for the recipients of business-initiated
    /// messages, in order, in one transaction that is exact with concurrent callers in any
    /// process: the recipients reached are those with a reservation after `at - window`; the
    /// answers are `optin_core::limit::admit_recipients(limit, …)` (`None`: unlimited, everyone
    /// admitted and recorded), and every admitted phone's reservation moves to `at` (never back).
    /// A refused phone writes nothing. `window` is positive. `NotFound` for an unknown business.
    async fn reserve_recipients(
        &self,
        business: BusinessId,
        phones: &[PhoneNumber],
        at: Timestamp,
        window: jiff::SignedDuration,
        limit: Option<u64>,
    ) -> Result<Vec<bool>, StoreError>;
    /// How many recipients have a reservation after `at - window`.
    async fn recipients_in_window(
        &self,
        business: BusinessId,
        at: Timestamp,
        window: jiff::SignedDuration,
    ) -> Result<u64, StoreError>;
}
