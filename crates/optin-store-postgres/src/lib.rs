//! optin's PostgreSQL storage, for several optin servers sharing one database.
//!
//! [`PostgresStore`] implements [`optin_store::Store`] over a pool of connections
//! (tokio-postgres + deadpool). Everything several processes must agree on is decided by the
//! database, never by a process's memory:
//!
//! - Each business's ledger chain is appended under a row lock on its `chain_heads` row
//!   (`SELECT ... FOR UPDATE`), so appends from any number of servers form one chain.
//! - Reads (consent bits, key authentication) go to the database every time: there is no cache
//!   that another server's write could leave stale, so a decision never allows what the ledger
//!   forbids.
//! - Webhook deliveries are claimed from the inbox with `FOR UPDATE SKIP LOCKED` and a lease, so
//!   servers processing at the same time never take the same delivery, and a crashed server's
//!   deliveries are taken again when their lease ends.
//! - Writes to a business's thread contacts take a transaction-scoped advisory lock on the
//!   business, so concurrent sightings never create one person twice nor interleave merges.
//! - Reservations under a business's messaging limit take another such lock, so the recipients
//!   counted against the limit are exact across servers.
//! - Migrations are embedded (`migrations/*.sql`), checksummed, and applied under an advisory
//!   lock by whichever server starts first.
//!
//! Times are stored as nanoseconds since the epoch, so they come back exactly as given.

mod consent;
mod consent_batch;
mod contacts;
mod error;
mod forwarded;
mod inbox;
mod migrations;
mod notices;
mod reservations;
mod rows;
mod senders;
mod signals;
mod templates;
mod tenancy;
#[cfg(feature = "testing")]
mod testing;
mod url;

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use jiff::Timestamp;
use optin_core::business::{Business, BusinessName, Category, CategoryName};
use optin_core::consent::{ConsentBits, ConsentEvent, ContactConsent};
use optin_core::ids::{ApiKeyId, BusinessId, NoticeId};
use optin_core::ledger::{ChainHead, LedgerEntry, SealedEvent};
use optin_core::phone::PhoneNumber;
use optin_store::channel::{
    Delivery, DeliveryFilter, DeliveryId, DeliveryOutcome, ForwardedMessage, NewSignal, Sender, SentMessage,
    SettingsDocument, Sighting, Signal, SignalFilter, StoredTemplate, TemplateUpdate, ThreadContact,
};
use optin_store::{ApiKeyRecord, NewApiKey, NewNotice, Notice, Recorded, SavedResponse, Store, StoreError};
use tokio_postgres::NoTls;

use crate::error::{corrupt, db, pool};
use crate::rows::{get, nanos, timestamp};

pub use crate::error::DatabaseError;
#[cfg(feature = "testing")]
pub use crate::testing::TestDatabase;
pub use crate::url::{InvalidUrl, PostgresUrl};

/// Connections per server process unless told otherwise.
pub const DEFAULT_POOL_SIZE: usize = 16;

/// How long a call waits for a connection (to be created, or to be free) before failing with
/// `Unavailable`, so that a down database fails requests instead of hanging them.
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(10);

/// The PostgreSQL store: a connection pool. Cheap to clone (clones share the pool).
#[derive(Clone)]
pub struct PostgresStore {
    pool: Pool,
    url: PostgresUrl,
}

impl fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let status = self.pool.status();
        f.debug_struct("PostgresStore")
            .field("url", &self.url)
            .field("pool_size", &status.size)
            .field("pool_max_size", &status.max_size)
            .finish()
    }
}

impl PostgresStore {
    /// Connects with [`DEFAULT_POOL_SIZE`] connections, after applying pending migrations.
    pub async fn connect(url: &str) -> Result<PostgresStore, StoreError> {
        PostgresStore::connect_with_pool_size(url, DEFAULT_POOL_SIZE).await
    }

    /// Connects with at most `pool_size` connections, after applying pending migrations.
    pub async fn connect_with_pool_size(url: &str, pool_size: usize) -> Result<PostgresStore, StoreError> {
        let url = PostgresUrl::parse(url)?;
        migrations::run(&url).await?;
        let mut config = url.config().clone();
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECTION_TIMEOUT);
        }
        if config.get_application_name().is_none() {
            config.application_name("optin");
        }
        let manager = Manager::from_config(config, NoTls, ManagerConfig { recycling_method: RecyclingMethod::Fast });
        let pool = Pool::builder(manager)
            .max_size(pool_size.max(1))
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(CONNECTION_TIMEOUT))
            .create_timeout(Some(CONNECTION_TIMEOUT))
            .recycle_timeout(Some(CONNECTION_TIMEOUT))
            .build()
            .map_err(|e| StoreError::Unavailable(Box::new(e)))?;
        tracing::debug!(%url, pool_size, "connected to PostgreSQL");
        Ok(PostgresStore { pool, url })
    }

    /// Only applies the pending migrations (for `optin migrate`); returns the names of those it
    /// applied, oldest first (empty when the database was up to date).
    pub async fn migrate(url: &str) -> Result<Vec<String>, StoreError> {
        migrations::run(&PostgresUrl::parse(url)?).await
    }

    /// The database this store uses (its `Display` hides the password).
    pub fn url(&self) -> &PostgresUrl {
        &self.url
    }

    async fn client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        self.pool.get().await.map_err(pool)
    }
}

/// Same as [`PostgresStore::migrate`].
pub async fn migrate(url: &str) -> Result<Vec<String>, StoreError> {
    PostgresStore::migrate(url).await
}

#[async_trait]
impl Store for PostgresStore {
    async fn ping(&self) -> Result<(), StoreError> {
        let client = self.client().await?;
        client.simple_query("SELECT 1").await.map_err(db)?;
        Ok(())
    }

    async fn operator_token_hash(&self) -> Result<Option<String>, StoreError> {
        let client = self.client().await?;
        let row = client.query_opt("SELECT token_hash FROM operator", &[]).await.map_err(db)?;
        row.map(|row| get(&row, "operator", "token_hash")).transpose()
    }

    async fn set_operator_token_hash(&self, hash: &str, at: Timestamp) -> Result<(), StoreError> {
        let client = self.client().await?;
        let sql = "INSERT INTO operator (id, token_hash, updated_at) VALUES (true, $1, $2)
                   ON CONFLICT (id) DO UPDATE SET token_hash = excluded.token_hash, updated_at = excluded.updated_at";
        client.execute(sql, &[&hash, &nanos(at)?]).await.map_err(db)?;
        Ok(())
    }

    async fn create_business(&self, business: &Business, first_key: &NewApiKey) -> Result<(), StoreError> {
        self.insert_business(business, first_key).await
    }

    async fn business(&self, id: BusinessId) -> Result<Option<Business>, StoreError> {
        self.load_business(id).await
    }

    async fn list_businesses(&self) -> Result<Vec<Business>, StoreError> {
        self.load_businesses().await
    }

    async fn add_categories(&self, id: BusinessId, categories: &[Category]) -> Result<Business, StoreError> {
        self.append_categories(id, categories).await
    }

    async fn set_brand_names(&self, id: BusinessId, names: &[BusinessName]) -> Result<Business, StoreError> {
        self.replace_brand_names(id, names).await
    }

    async fn create_api_key(&self, key: &NewApiKey) -> Result<(), StoreError> {
        self.insert_api_key(key).await
    }

    async fn revoke_api_key(&self, business: BusinessId, key: ApiKeyId, at: Timestamp) -> Result<(), StoreError> {
        self.mark_api_key_revoked(business, key, at).await
    }

    async fn list_api_keys(&self, business: BusinessId) -> Result<Vec<ApiKeyRecord>, StoreError> {
        self.load_api_keys(business).await
    }

    async fn authenticate(&self, secret_hash: &str) -> Result<Option<BusinessId>, StoreError> {
        self.business_of_key(secret_hash).await
    }

    async fn register_notice(&self, notice: &NewNotice) -> Result<Notice, StoreError> {
        self.insert_notice(notice).await
    }

    async fn notice(&self, business: BusinessId, id: NoticeId) -> Result<Option<Notice>, StoreError> {
        self.load_notice(business, id).await
    }

    async fn list_notices(&self, business: BusinessId) -> Result<Vec<Notice>, StoreError> {
        self.load_notices(business).await
    }

    async fn record_consent(&self, business: &Business, event: &ConsentEvent) -> Result<Recorded, StoreError> {
        self.append_consent_event(business, event).await
    }

    async fn consent_bits(&self, business: &Business, phone: PhoneNumber) -> Result<ConsentBits, StoreError> {
        self.load_consent_bits(business, phone).await
    }

    async fn consent_bits_many(
        &self,
        business: &Business,
        phones: &[PhoneNumber],
    ) -> Result<Vec<ConsentBits>, StoreError> {
        self.load_consent_bits_many(business, phones).await
    }

    async fn contact_consent(&self, business: BusinessId, phone: PhoneNumber) -> Result<ContactConsent, StoreError> {
        self.load_contact_consent(business, phone).await
    }

    async fn contact_events(&self, business: BusinessId, phone: PhoneNumber) -> Result<Vec<LedgerEntry>, StoreError> {
        self.load_contact_events(business, phone).await
    }

    async fn ledger_page(
        &self,
        business: BusinessId,
        after_index: u64,
        limit: usize,
    ) -> Result<Vec<LedgerEntry>, StoreError> {
        self.load_ledger_page(business, after_index, limit).await
    }

    async fn chain_head(&self, business: BusinessId) -> Result<Option<ChainHead>, StoreError> {
        self.load_chain_head(business).await
    }

    async fn saved_response(&self, business: BusinessId, key: &str) -> Result<Option<SavedResponse>, StoreError> {
        const T: &str = "saved_responses";
        let client = self.client().await?;
        let sql = "SELECT request_fingerprint, status, body, created_at FROM saved_responses
                   WHERE business_id = $1 AND key = $2";
        let Some(row) = client.query_opt(sql, &[&business.as_uuid(), &key]).await.map_err(db)? else {
            return Ok(None);
        };
        let status: i32 = get(&row, T, "status")?;
        Ok(Some(SavedResponse {
            request_fingerprint: get(&row, T, "request_fingerprint")?,
            status: u16::try_from(status).map_err(|_| corrupt("saved_responses.status: out of range"))?,
            body: get(&row, T, "body")?,
            created_at: timestamp(get(&row, T, "created_at")?, T, "created_at")?,
        }))
    }

    async fn save_response(&self, business: BusinessId, key: &str, response: &SavedResponse) -> Result<(), StoreError> {
        let client = self.client().await?;
        let sql = "INSERT INTO saved_responses (business_id, key, request_fingerprint, status, body, created_at)
                   VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (business_id, key) DO NOTHING";
        let status = i32::from(response.status);
        let params: [&(dyn tokio_postgres::types::ToSql + Sync); 6] = [
            &business.as_uuid(),
            &key,
            &response.request_fingerprint,
            &status,
            &response.body,
            &nanos(response.created_at)?,
        ];
        client.execute(sql, &params).await.map_err(db)?;
        Ok(())
    }

    async fn add_sender(&self, sender: &Sender) -> Result<(), StoreError> {
        self.insert_sender(sender).await
    }

    async fn senders(&self, business: BusinessId) -> Result<Vec<Sender>, StoreError> {
        self.load_senders(business).await
    }

    async fn settings_document(
        &self,
        business: BusinessId,
        name: &str,
    ) -> Result<Option<SettingsDocument>, StoreError> {
        self.load_settings_document(business, name).await
    }

    async fn put_settings_document(&self, document: &SettingsDocument) -> Result<(), StoreError> {
        self.upsert_settings_document(document).await
    }

    async fn put_document(&self, document: &optin_store::StoredDocument) -> Result<bool, StoreError> {
        self.insert_document(document).await
    }

    async fn document(
        &self,
        business: BusinessId,
        sha256: &str,
    ) -> Result<Option<optin_store::StoredDocument>, StoreError> {
        self.load_document(business, sha256).await
    }

    async fn insert_delivery(
        &self,
        business: BusinessId,
        received_at: Timestamp,
        body: &[u8],
    ) -> Result<DeliveryId, StoreError> {
        self.append_delivery(business, received_at, body).await
    }

    async fn claim_deliveries(
        &self,
        now: Timestamp,
        lease: Duration,
        limit: usize,
    ) -> Result<Vec<Delivery>, StoreError> {
        self.claim_pending_deliveries(now, lease, limit).await
    }

    async fn finish_deliveries(
        &self,
        outcomes: &[(DeliveryId, DeliveryOutcome)],
        at: Timestamp,
    ) -> Result<(), StoreError> {
        self.finish_claimed_deliveries(outcomes, at).await
    }

    async fn list_deliveries(
        &self,
        business: BusinessId,
        filter: &DeliveryFilter,
    ) -> Result<Vec<Delivery>, StoreError> {
        self.load_deliveries(business, filter).await
    }

    async fn delivery(&self, business: BusinessId, id: DeliveryId) -> Result<Option<Delivery>, StoreError> {
        self.load_delivery(business, id).await
    }

    async fn requeue_delivery(&self, business: BusinessId, id: DeliveryId) -> Result<(), StoreError> {
        self.requeue(business, id).await
    }

    async fn record_sightings(&self, business: BusinessId, sightings: &[Sighting]) -> Result<(), StoreError> {
        self.apply_sightings(business, sightings).await
    }

    async fn thread_contact(
        &self,
        business: BusinessId,
        phone: Option<PhoneNumber>,
        user_id: Option<&str>,
    ) -> Result<Option<ThreadContact>, StoreError> {
        self.load_thread_contact(business, phone, user_id).await
    }

    async fn record_consent_once(
        &self,
        business: &Business,
        dedupe_key: &str,
        event: &ConsentEvent,
    ) -> Result<Option<Recorded>, StoreError> {
        self.append_consent_event_once(business, Some(dedupe_key), event).await
    }

    async fn record_consent_batch_once(
        &self,
        business: &Business,
        events: Vec<(String, SealedEvent)>,
    ) -> Result<Vec<Option<Recorded>>, StoreError> {
        self.append_consent_events_once(business, &events).await
    }

    async fn dedupe_keys_used(&self, business: BusinessId, keys: &[String]) -> Result<Vec<bool>, StoreError> {
        self.load_dedupe_keys_used(business, keys).await
    }

    async fn put_templates(&self, business: BusinessId, templates: &[StoredTemplate]) -> Result<(), StoreError> {
        self.upsert_templates(business, templates).await
    }

    async fn template(
        &self,
        business: BusinessId,
        name: &str,
        language: &str,
    ) -> Result<Option<StoredTemplate>, StoreError> {
        self.load_template(business, name, language).await
    }

    async fn list_templates(&self, business: BusinessId) -> Result<Vec<StoredTemplate>, StoreError> {
        self.load_templates(business).await
    }

    async fn apply_template_updates(
        &self,
        business: BusinessId,
        updates: &[TemplateUpdate],
    ) -> Result<usize, StoreError> {
        self.apply_changes(business, updates).await
    }

    async fn record_signals(
        &self,
        business: BusinessId,
        signals: &[NewSignal],
        received_at: Timestamp,
    ) -> Result<usize, StoreError> {
        self.insert_signals(business, signals, received_at).await
    }

    async fn signals(&self, business: BusinessId, filter: &SignalFilter) -> Result<Vec<Signal>, StoreError> {
        self.load_signals(business, filter).await
    }

    async fn record_sent_message(&self, message: &SentMessage) -> Result<(), StoreError> {
        self.insert_sent_message(message).await
    }

    async fn sent_message(&self, business: BusinessId, message_id: &str) -> Result<Option<SentMessage>, StoreError> {
        self.load_sent_message(business, message_id).await
    }

    async fn record_forwarded_message(&self, message: &ForwardedMessage) -> Result<(), StoreError> {
        self.insert_forwarded_message(message).await
    }

    async fn recent_sends(
        &self,
        business: BusinessId,
        category: &CategoryName,
        phones: &[PhoneNumber],
        since: Timestamp,
        until: Timestamp,
    ) -> Result<Vec<(PhoneNumber, Timestamp)>, StoreError> {
        self.load_recent_sends(business, category, phones, since, until).await
    }

    async fn forwarded_message(
        &self,
        business: BusinessId,
        message_id: &str,
    ) -> Result<Option<ForwardedMessage>, StoreError> {
        self.load_forwarded_message(business, message_id).await
    }

    async fn reserve_recipients(
        &self,
        business: BusinessId,
        phones: &[PhoneNumber],
        at: Timestamp,
        window: jiff::SignedDuration,
        limit: Option<u64>,
    ) -> Result<Vec<bool>, StoreError> {
        self.reserve(business, phones, at, window, limit).await
    }

    async fn recipients_in_window(
        &self,
        business: BusinessId,
        at: Timestamp,
        window: jiff::SignedDuration,
    ) -> Result<u64, StoreError> {
        self.count_reserved(business, at, window).await
    }
}
