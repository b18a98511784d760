//! `SqliteStore`: the `Store` implementation.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
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
use rusqlite::config::DbConfig;
use rusqlite::{Connection, OpenFlags};

use crate::channel::{contacts, forwarded, inbox, reservations, senders, signals, templates};
use crate::checkpoint::{self, BACKSTOP_PAGES};
use crate::commands;
use crate::error::db_error;
use crate::follow::{Follow, Shared, lock};
use crate::migrate::{self, MIGRATIONS};
use crate::reads;
use crate::snapshot::{self, SavePolicy, SnapshotFile};
use crate::writer::Writer;

/// How many reader connections a store keeps.
const READERS: usize = 4;
/// How much of the database file each connection maps into memory.
const MMAP_SIZE: i64 = 1 << 30;
/// Page cache sizes (negative: KiB). Pages of the database file come through the memory map, so
/// the caches mostly hold pages still in the WAL and dirty pages. Measured: a larger writer cache
/// costs more than it saves (SQLite scans its hash table at the end of every write transaction;
/// at 64 MiB that was 13% of the writer's CPU per opt-in).
const WRITER_CACHE_KIB: i64 = -8_192;
const READER_CACHE_KIB: i64 = -16_384;
/// The size the WAL file is truncated to when it is reset (bytes).
const WAL_SIZE_LIMIT_BYTES: i64 = 64 << 20;
/// How long a connection waits for another process's lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_millis(5_000);

/// optin's embedded store: one SQLite file in WAL mode, written by one group-committing writer
/// thread, read through a few reader connections, with an exact in-memory consent index.
///
/// Several processes may open the same file (a server and the `optin` CLI): writes are serialized
/// by SQLite's write lock, and each store follows the others' commits before answering reads.
///
/// A store holds seven connections (the writer's, the checkpointer's, the follower's and four
/// readers') and three threads (`optin-sqlite-writer`, `optin-sqlite-checkpoint`,
/// `optin-sqlite-snapshot`); dropping it lets the writer finish the commands already sent, then
/// joins the threads (the snapshot thread saves the index first if enough changed).
pub struct SqliteStore {
    // Field order matters on drop: the writer thread finishes its commands first.
    writer: Writer,
    shared: Arc<Shared>,
    readers: Arc<Readers>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore").finish_non_exhaustive()
    }
}

/// Applies the migrations the database at `path` lacks (creating the file if needed) and returns
/// the names of those it applied, in order. For `optin migrate`; [`SqliteStore::open`] does the same.
pub fn migrate(path: &Path) -> Result<Vec<String>, StoreError> {
    let conn = open_connection(path, Role::Writer)?;
    migrate::run(&conn, MIGRATIONS)
}

/// What a connection is for, which decides its settings.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    Writer,
    Reader,
    Checkpointer,
}

fn open_connection(path: &Path, role: Role) -> Result<Connection, StoreError> {
    // NO_MUTEX: each connection is used by one thread at a time (the writer's, or behind a Mutex).
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(db_error)?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(db_error)?;
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0)).map_err(db_error)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(crate::error::corrupt(format_args!("the database refused WAL mode (journal_mode is {mode})")));
    }
    conn.pragma_update(None, "foreign_keys", "ON").map_err(db_error)?;
    // Query plans must not depend on bound values. Without this guarantee, SQLite marks the
    // parameters of `column = ?` terms as able to change the plan, and `sqlite3_clear_bindings`
    // (which rusqlite's statement cache calls when a statement is returned) then expires the
    // statement: every `prepare_cached` statement was parsed and planned again on each use.
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true).map_err(db_error)?;
    // Pages of the database file are read through a memory map (no system call per page);
    // pages still in the WAL are read with pread.
    conn.pragma_update(None, "mmap_size", MMAP_SIZE).map_err(db_error)?;
    match role {
        Role::Writer => {
            // Consent changes must survive a power loss: one fsync per batch.
            conn.pragma_update(None, "synchronous", "FULL").map_err(db_error)?;
            conn.pragma_update(None, "cache_size", WRITER_CACHE_KIB).map_err(db_error)?;
            // Savepoints' journals stay in memory (they spill to a temporary file otherwise).
            conn.pragma_update(None, "temp_store", "MEMORY").map_err(db_error)?;
            // Checkpoints run on their own thread; this is only the backstop.
            conn.pragma_update(None, "wal_autocheckpoint", BACKSTOP_PAGES).map_err(db_error)?;
            // After a burst, the WAL file shrinks back to this size once it is reset.
            conn.pragma_update(None, "journal_size_limit", WAL_SIZE_LIMIT_BYTES).map_err(db_error)?;
        }
        Role::Reader => {
            conn.pragma_update(None, "cache_size", READER_CACHE_KIB).map_err(db_error)?;
        }
        Role::Checkpointer => {
            conn.pragma_update(None, "synchronous", "FULL").map_err(db_error)?;
            conn.pragma_update(None, "cache_size", READER_CACHE_KIB).map_err(db_error)?;
        }
    }
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}

impl SqliteStore {
    /// Opens (creating if missing) the database at `path`: WAL mode, `busy_timeout=5000`,
    /// `foreign_keys=ON`; applies the embedded migrations; loads the consent index (from its
    /// snapshot when it fits); starts the writer thread. `Corrupt` when an applied migration was
    /// changed or the data is unreadable.
    #[tracing::instrument(skip_all)]
    pub fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        SqliteStore::open_with(path, Follow::WalIndexHeader, SavePolicy::DEFAULT)
    }

    pub(crate) fn open_with(path: &Path, follow: Follow, saving: SavePolicy) -> Result<SqliteStore, StoreError> {
        let writer_conn = open_connection(path, Role::Writer)?;
        let applied = migrate::run(&writer_conn, MIGRATIONS)?;
        if !applied.is_empty() {
            tracing::info!(?applied, "migrated the database");
        }
        let snapshot = SnapshotFile::next_to(path);
        let shared = Arc::new(Shared::load(open_connection(path, Role::Reader)?, follow, &snapshot)?);
        let readers =
            (0..READERS).map(|_| open_connection(path, Role::Reader).map(Mutex::new)).collect::<Result<Vec<_>, _>>()?;
        let checkpointer = checkpoint::start(open_connection(path, Role::Checkpointer)?)?;
        let saver = snapshot::start_saver(Arc::clone(&shared), snapshot, saving)?;
        let writer = Writer::start(writer_conn, Arc::clone(&shared), checkpointer, saver)?;
        Ok(SqliteStore { writer, shared, readers: Arc::new(Readers { conns: readers, next: AtomicUsize::new(0) }) })
    }

    /// `consent_bits` without the async wrapper: exact, and cheap enough to call from async code.
    pub fn consent_bits_now(&self, business: BusinessId, phone: PhoneNumber) -> Result<ConsentBits, StoreError> {
        self.shared.ensure_fresh()?;
        Ok(self.shared.consent_bits(business, phone.key()))
    }

    /// The consent bits of many contacts of one business, exact as of the start of the call: one
    /// freshness check for the whole slice (for audience filtering), then lookups only.
    pub fn consent_bits_many(
        &self,
        business: BusinessId,
        phones: &[PhoneNumber],
    ) -> Result<Vec<ConsentBits>, StoreError> {
        self.shared.ensure_fresh()?;
        Ok(self.shared.consent_bits_many(business, phones))
    }

    /// Records many events in one transaction (for benchmarks and tests that need large ledgers):
    /// each event goes through the same steps as `record_consent`. Fails as a whole.
    #[doc(hidden)]
    pub async fn bulk_record_for_benchmarks(&self, events: Vec<ConsentEvent>) -> Result<usize, StoreError> {
        self.writer
            .write(move |batch| {
                for event in &events {
                    commands::record_consent(batch, event)?;
                }
                Ok(events.len())
            })
            .await
    }

    /// Copies the whole WAL back into the database file and truncates it, waiting for it (for
    /// benchmarks: a bulk load leaves a WAL of up to 256 MiB, whose background checkpoint would
    /// otherwise run during the measurement that follows).
    #[doc(hidden)]
    pub async fn checkpoint_for_benchmarks(&self) -> Result<(), StoreError> {
        self.read(|conn| {
            conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())).map_err(crate::error::db_error)
        })
        .await
    }

    /// How many write transactions this store's writer committed, and how many commands they
    /// held (their ratio is the average group-commit size).
    #[doc(hidden)]
    pub fn writer_stats(&self) -> (u64, u64) {
        (self.shared.batches.load(Ordering::Relaxed), self.shared.commands.load(Ordering::Relaxed))
    }

    /// Runs a quick read on a free reader connection, on this thread; when every reader is busy,
    /// waits for one on a blocking thread instead.
    async fn read_quick<T, F>(&self, read: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        if let Some(conn) = self.readers.try_acquire() {
            return read(&conn);
        }
        self.read(read).await
    }

    /// Runs a read that may take a while on a blocking thread.
    async fn read<T, F>(&self, read: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let readers = Arc::clone(&self.readers);
        tokio::task::spawn_blocking(move || read(&readers.acquire()))
            .await
            .map_err(|e| StoreError::Unavailable(Box::new(e)))?
    }
}

/// The reader connections.
struct Readers {
    conns: Vec<Mutex<Connection>>,
    /// Where blocked readers queue next, round robin.
    next: AtomicUsize,
}

impl Readers {
    fn try_acquire(&self) -> Option<MutexGuard<'_, Connection>> {
        self.conns.iter().find_map(|conn| match conn.try_lock() {
            Ok(guard) => Some(guard),
            Err(std::sync::TryLockError::Poisoned(poisoned)) => Some(poisoned.into_inner()),
            Err(std::sync::TryLockError::WouldBlock) => None,
        })
    }

    fn acquire(&self) -> MutexGuard<'_, Connection> {
        self.try_acquire().unwrap_or_else(|| {
            let next = self.next.fetch_add(1, Ordering::Relaxed);
            lock(&self.conns[next % self.conns.len()])
        })
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn ping(&self) -> Result<(), StoreError> {
        self.read_quick(reads::ping).await
    }

    async fn operator_token_hash(&self) -> Result<Option<String>, StoreError> {
        self.read_quick(reads::operator_token_hash).await
    }

    #[tracing::instrument(skip_all)]
    async fn set_operator_token_hash(&self, hash: &str, at: Timestamp) -> Result<(), StoreError> {
        let hash = hash.to_owned();
        self.writer.write(move |batch| commands::set_operator_token_hash(batch, &hash, at)).await
    }

    #[tracing::instrument(skip_all, fields(business = %business.id))]
    async fn create_business(&self, business: &Business, first_key: &NewApiKey) -> Result<(), StoreError> {
        let (business, first_key) = (business.clone(), first_key.clone());
        self.writer.write(move |batch| commands::create_business(batch, &business, &first_key)).await
    }

    async fn business(&self, id: BusinessId) -> Result<Option<Business>, StoreError> {
        self.shared.ensure_fresh()?;
        let generation = {
            let cache = self.shared.tenancy();
            if let Some(business) = cache.business(id) {
                return Ok(Some(business.clone()));
            }
            cache.generation()
        };
        let business = self.read_quick(move |conn| reads::business(conn, id)).await?;
        if let Some(business) = &business {
            self.shared.tenancy_mut().remember_business(generation, business);
        }
        Ok(business)
    }

    async fn list_businesses(&self) -> Result<Vec<Business>, StoreError> {
        self.read(reads::list_businesses).await
    }

    #[tracing::instrument(skip_all, fields(business = %id))]
    async fn add_categories(&self, id: BusinessId, categories: &[Category]) -> Result<Business, StoreError> {
        let categories = categories.to_vec();
        self.writer.write(move |batch| commands::add_categories(batch, id, &categories)).await
    }

    #[tracing::instrument(skip_all, fields(business = %id))]
    async fn set_brand_names(&self, id: BusinessId, names: &[BusinessName]) -> Result<Business, StoreError> {
        let names = names.to_vec();
        self.writer.write(move |batch| commands::set_brand_names(batch, id, &names)).await
    }

    #[tracing::instrument(skip_all, fields(business = %key.business_id, key = %key.id))]
    async fn create_api_key(&self, key: &NewApiKey) -> Result<(), StoreError> {
        let key = key.clone();
        self.writer.write(move |batch| commands::create_api_key(batch, &key)).await
    }

    #[tracing::instrument(skip_all, fields(business = %business, key = %key))]
    async fn revoke_api_key(&self, business: BusinessId, key: ApiKeyId, at: Timestamp) -> Result<(), StoreError> {
        self.writer.write(move |batch| commands::revoke_api_key(batch, business, key, at)).await
    }

    async fn list_api_keys(&self, business: BusinessId) -> Result<Vec<ApiKeyRecord>, StoreError> {
        self.read(move |conn| reads::api_keys(conn, business)).await
    }

    async fn authenticate(&self, secret_hash: &str) -> Result<Option<BusinessId>, StoreError> {
        self.shared.ensure_fresh()?;
        let generation = {
            let cache = self.shared.tenancy();
            if let Some(business) = cache.key(secret_hash) {
                return Ok(Some(business));
            }
            cache.generation()
        };
        let hash = secret_hash.to_owned();
        let (hash, business) = self
            .read_quick(move |conn| {
                let business = reads::authenticate(conn, &hash)?;
                Ok((hash, business))
            })
            .await?;
        if let Some(business) = business {
            self.shared.tenancy_mut().remember_key(generation, &hash, business);
        }
        Ok(business)
    }

    #[tracing::instrument(skip_all, fields(business = %notice.business_id))]
    async fn register_notice(&self, notice: &NewNotice) -> Result<Notice, StoreError> {
        let notice = notice.clone();
        self.writer.write(move |batch| commands::register_notice(batch, &notice)).await
    }

    async fn notice(&self, business: BusinessId, id: NoticeId) -> Result<Option<Notice>, StoreError> {
        self.read_quick(move |conn| reads::notice(conn, business, id)).await
    }

    async fn list_notices(&self, business: BusinessId) -> Result<Vec<Notice>, StoreError> {
        self.read(move |conn| reads::list_notices(conn, business)).await
    }

    #[tracing::instrument(skip_all, fields(business = %business.id, phone = %event.phone.redacted(), kind = event.kind()))]
    async fn record_consent(&self, business: &Business, event: &ConsentEvent) -> Result<Recorded, StoreError> {
        if event.business_id != business.id {
            return Err(StoreError::Conflict { constraint: "event_business_id" });
        }
        let event = event.clone();
        self.writer.write(move |batch| commands::record_consent(batch, &event)).await
    }

    async fn consent_bits(&self, business: &Business, phone: PhoneNumber) -> Result<ConsentBits, StoreError> {
        self.consent_bits_now(business.id, phone)
    }

    async fn consent_bits_many(
        &self,
        business: &Business,
        phones: &[PhoneNumber],
    ) -> Result<Vec<ConsentBits>, StoreError> {
        SqliteStore::consent_bits_many(self, business.id, phones)
    }

    async fn contact_consent(&self, business: BusinessId, phone: PhoneNumber) -> Result<ContactConsent, StoreError> {
        self.read_quick(move |conn| reads::contact_consent(conn, business, phone)).await
    }

    async fn contact_events(&self, business: BusinessId, phone: PhoneNumber) -> Result<Vec<LedgerEntry>, StoreError> {
        self.read(move |conn| reads::contact_events(conn, business, phone)).await
    }

    async fn ledger_page(
        &self,
        business: BusinessId,
        after_index: u64,
        limit: usize,
    ) -> Result<Vec<LedgerEntry>, StoreError> {
        self.read(move |conn| reads::ledger_page(conn, business, after_index, limit)).await
    }

    async fn chain_head(&self, business: BusinessId) -> Result<Option<ChainHead>, StoreError> {
        self.read_quick(move |conn| reads::chain_head(conn, business)).await
    }

    async fn saved_response(&self, business: BusinessId, key: &str) -> Result<Option<SavedResponse>, StoreError> {
        let key = key.to_owned();
        self.read_quick(move |conn| reads::saved_response(conn, business, &key)).await
    }

    #[tracing::instrument(skip_all, fields(business = %business))]
    async fn save_response(&self, business: BusinessId, key: &str, response: &SavedResponse) -> Result<(), StoreError> {
        let (key, response) = (key.to_owned(), response.clone());
        self.writer.write(move |batch| commands::save_response(batch, business, &key, &response)).await
    }

    // --- WhatsApp channel (see the `channel` module) ----------------------------------------

    #[tracing::instrument(skip_all, fields(business = %sender.business_id))]
    async fn add_sender(&self, sender: &Sender) -> Result<(), StoreError> {
        let sender = sender.clone();
        self.writer.write(move |batch| senders::add_sender(batch, &sender)).await
    }

    async fn senders(&self, business: BusinessId) -> Result<Vec<Sender>, StoreError> {
        self.read_quick(move |conn| senders::senders(conn, business)).await
    }

    async fn settings_document(
        &self,
        business: BusinessId,
        name: &str,
    ) -> Result<Option<SettingsDocument>, StoreError> {
        let name = name.to_owned();
        self.read_quick(move |conn| senders::settings_document(conn, business, &name)).await
    }

    #[tracing::instrument(skip_all, fields(business = %document.business_id, name = document.name))]
    async fn put_settings_document(&self, document: &SettingsDocument) -> Result<(), StoreError> {
        let document = document.clone();
        self.writer.write(move |batch| senders::put_settings_document(batch, &document)).await
    }

    async fn put_document(&self, document: &optin_store::StoredDocument) -> Result<bool, StoreError> {
        let document = document.clone();
        self.writer.write(move |batch| senders::put_document(batch, &document)).await
    }

    async fn document(
        &self,
        business: BusinessId,
        sha256: &str,
    ) -> Result<Option<optin_store::StoredDocument>, StoreError> {
        let sha256 = sha256.to_owned();
        self.read(move |conn| senders::document(conn, business, &sha256)).await
    }

    async fn insert_delivery(
        &self,
        business: BusinessId,
        received_at: Timestamp,
        body: &[u8],
    ) -> Result<DeliveryId, StoreError> {
        let body = body.to_vec();
        self.writer.write(move |batch| inbox::insert_delivery(batch, business, received_at, &body)).await
    }

    #[tracing::instrument(skip_all)]
    async fn claim_deliveries(
        &self,
        now: Timestamp,
        lease: Duration,
        limit: usize,
    ) -> Result<Vec<Delivery>, StoreError> {
        self.writer.write(move |batch| inbox::claim_deliveries(batch, now, lease, limit)).await
    }

    #[tracing::instrument(skip_all, fields(deliveries = outcomes.len()))]
    async fn finish_deliveries(
        &self,
        outcomes: &[(DeliveryId, DeliveryOutcome)],
        at: Timestamp,
    ) -> Result<(), StoreError> {
        let outcomes = outcomes.to_vec();
        self.writer.write(move |batch| inbox::finish_deliveries(batch, &outcomes, at)).await
    }

    async fn list_deliveries(
        &self,
        business: BusinessId,
        filter: &DeliveryFilter,
    ) -> Result<Vec<Delivery>, StoreError> {
        let filter = filter.clone();
        self.read(move |conn| inbox::list_deliveries(conn, business, &filter)).await
    }

    async fn delivery(&self, business: BusinessId, id: DeliveryId) -> Result<Option<Delivery>, StoreError> {
        self.read_quick(move |conn| inbox::delivery(conn, business, id)).await
    }

    #[tracing::instrument(skip_all, fields(business = %business, delivery = id))]
    async fn requeue_delivery(&self, business: BusinessId, id: DeliveryId) -> Result<(), StoreError> {
        self.writer.write(move |batch| inbox::requeue_delivery(batch, business, id)).await
    }

    #[tracing::instrument(skip_all, fields(business = %business, sightings = sightings.len()))]
    async fn record_sightings(&self, business: BusinessId, sightings: &[Sighting]) -> Result<(), StoreError> {
        let sightings = sightings.to_vec();
        self.writer.write(move |batch| contacts::record_sightings(batch, business, &sightings)).await
    }

    async fn thread_contact(
        &self,
        business: BusinessId,
        phone: Option<PhoneNumber>,
        user_id: Option<&str>,
    ) -> Result<Option<ThreadContact>, StoreError> {
        let user_id = user_id.map(str::to_owned);
        self.read_quick(move |conn| contacts::thread_contact(conn, business, phone, user_id.as_deref())).await
    }

    #[tracing::instrument(skip_all, fields(business = %business.id, phone = %event.phone.redacted(), kind = event.kind()))]
    async fn record_consent_once(
        &self,
        business: &Business,
        dedupe_key: &str,
        event: &ConsentEvent,
    ) -> Result<Option<Recorded>, StoreError> {
        if event.business_id != business.id {
            return Err(StoreError::Conflict { constraint: "event_business_id" });
        }
        let (dedupe_key, sealed) = (dedupe_key.to_owned(), SealedEvent::new(event.clone()));
        self.writer
            .write(move |batch| {
                let mut statements = commands::ConsentStatements::prepare(batch.conn)?;
                let mut dedupe = commands::DedupeStatement::prepare(batch.conn)?;
                commands::record_consent_once(batch, (&mut statements, &mut dedupe), &dedupe_key, &sealed)
            })
            .await
    }

    #[tracing::instrument(skip_all, fields(business = %business.id, events = events.len()))]
    async fn record_consent_batch_once(
        &self,
        business: &Business,
        events: Vec<(String, SealedEvent)>,
    ) -> Result<Vec<Option<Recorded>>, StoreError> {
        if events.iter().any(|(_, sealed)| sealed.event().business_id != business.id) {
            return Err(StoreError::Conflict { constraint: "event_business_id" });
        }
        self.writer
            .write(move |batch| {
                let mut statements = commands::ConsentStatements::prepare(batch.conn)?;
                let mut dedupe = commands::DedupeStatement::prepare(batch.conn)?;
                events
                    .iter()
                    .map(|(dedupe_key, sealed)| {
                        commands::record_consent_once(batch, (&mut statements, &mut dedupe), dedupe_key, sealed)
                    })
                    .collect()
            })
            .await
    }

    async fn dedupe_keys_used(&self, business: BusinessId, keys: &[String]) -> Result<Vec<bool>, StoreError> {
        let keys = keys.to_vec();
        self.read(move |conn| reads::dedupe_keys_used(conn, business, &keys)).await
    }

    #[tracing::instrument(skip_all, fields(business = %business, templates = templates.len()))]
    async fn put_templates(&self, business: BusinessId, templates: &[StoredTemplate]) -> Result<(), StoreError> {
        let templates = templates.to_vec();
        self.writer.write(move |batch| templates::put_templates(batch, business, &templates)).await
    }

    async fn template(
        &self,
        business: BusinessId,
        name: &str,
        language: &str,
    ) -> Result<Option<StoredTemplate>, StoreError> {
        let (name, language) = (name.to_owned(), language.to_owned());
        self.read_quick(move |conn| templates::template(conn, business, &name, &language)).await
    }

    async fn list_templates(&self, business: BusinessId) -> Result<Vec<StoredTemplate>, StoreError> {
        self.read(move |conn| templates::list_templates(conn, business)).await
    }

    #[tracing::instrument(skip_all, fields(business = %business, updates = updates.len()))]
    async fn apply_template_updates(
        &self,
        business: BusinessId,
        updates: &[TemplateUpdate],
    ) -> Result<usize, StoreError> {
        let updates = updates.to_vec();
        self.writer.write(move |batch| templates::apply_template_updates(batch, business, &updates)).await
    }

    #[tracing::instrument(skip_all, fields(business = %business, signals = signals.len()))]
    async fn record_signals(
        &self,
        business: BusinessId,
        signals: &[NewSignal],
        received_at: Timestamp,
    ) -> Result<usize, StoreError> {
        let signals = signals.to_vec();
        self.writer.write(move |batch| signals::record_signals(batch, business, &signals, received_at)).await
    }

    async fn signals(&self, business: BusinessId, filter: &SignalFilter) -> Result<Vec<Signal>, StoreError> {
        let filter = filter.clone();
        self.read(move |conn| signals::signals(conn, business, &filter)).await
    }

    #[tracing::instrument(skip_all, fields(business = %message.business_id, purpose = message.purpose.as_str()))]
    async fn record_sent_message(&self, message: &SentMessage) -> Result<(), StoreError> {
        let message = message.clone();
        self.writer.write(move |batch| contacts::record_sent_message(batch, &message)).await
    }

    async fn sent_message(&self, business: BusinessId, message_id: &str) -> Result<Option<SentMessage>, StoreError> {
        let message_id = message_id.to_owned();
        self.read_quick(move |conn| contacts::sent_message(conn, business, &message_id)).await
    }

    #[tracing::instrument(skip_all, fields(business = %message.business_id))]
    async fn record_forwarded_message(&self, message: &ForwardedMessage) -> Result<(), StoreError> {
        let message = message.clone();
        self.writer.write(move |batch| forwarded::record_forwarded_message(batch, &message)).await
    }

    async fn recent_sends(
        &self,
        business: BusinessId,
        category: &CategoryName,
        phones: &[PhoneNumber],
        since: Timestamp,
        until: Timestamp,
    ) -> Result<Vec<(PhoneNumber, Timestamp)>, StoreError> {
        let (category, phones) = (category.clone(), phones.to_vec());
        self.read_quick(move |conn| forwarded::recent_sends(conn, business, &category, &phones, (since, until))).await
    }

    async fn forwarded_message(
        &self,
        business: BusinessId,
        message_id: &str,
    ) -> Result<Option<ForwardedMessage>, StoreError> {
        let message_id = message_id.to_owned();
        self.read_quick(move |conn| forwarded::forwarded_message(conn, business, &message_id)).await
    }

    #[tracing::instrument(skip_all, fields(business = %business, phones = phones.len()))]
    async fn reserve_recipients(
        &self,
        business: BusinessId,
        phones: &[PhoneNumber],
        at: Timestamp,
        window: jiff::SignedDuration,
        limit: Option<u64>,
    ) -> Result<Vec<bool>, StoreError> {
        let phones = phones.to_vec();
        self.writer
            .write(move |batch| reservations::reserve_recipients(batch, business, &phones, at, window, limit))
            .await
    }

    async fn recipients_in_window(
        &self,
        business: BusinessId,
        at: Timestamp,
        window: jiff::SignedDuration,
    ) -> Result<u64, StoreError> {
        self.read_quick(move |conn| reservations::recipients_in_window(conn, business, at, window)).await
    }
}

#[cfg(test)]
mod tests {
    use optin_core::consent::ConsentBits;
    use optin_store::ledger::verify_ledger;
    use optin_store::tenancy::{CategoryInput, create_business, issue_key};

    use super::*;

    fn categories() -> Vec<CategoryInput> {
        vec![CategoryInput { name: "offers".into(), template_category: "marketing".into() }]
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn stores_follow_the_wal_index_header_by_default() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("optin.db")).unwrap();
        assert!(store.shared.follows_wal_index());
    }

    /// The fallback (`PRAGMA data_version` on every read) is exact too.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_data_version_fallback_sees_other_stores_writes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("optin.db");
        let server = SqliteStore::open_with(&path, Follow::DataVersion, SavePolicy::DEFAULT).unwrap();
        let cli = SqliteStore::open_with(&path, Follow::DataVersion, SavePolicy::DEFAULT).unwrap();
        assert!(!server.shared.follows_wal_index());
        let (business, key) = create_business(&server, "Acme Shoes", &categories(), Timestamp::now()).await.unwrap();
        let second = issue_key(business.id, "ci", Timestamp::now());
        server.create_api_key(&second.record).await.unwrap();
        assert_eq!(cli.authenticate(&second.record.secret_hash).await.unwrap(), Some(business.id));
        server.revoke_api_key(business.id, second.record.id, Timestamp::now()).await.unwrap();
        assert_eq!(cli.authenticate(&second.record.secret_hash).await.unwrap(), None);
        assert_eq!(cli.authenticate(&key.record.secret_hash).await.unwrap(), Some(business.id));

        let phone = PhoneNumber::from_e164("+14155552671").unwrap();
        let offers = business.all_category_names();
        for (n, store) in [&server, &cli, &server, &cli].into_iter().enumerate() {
            let other = if std::ptr::eq(store, &server) { &cli } else { &server };
            let out = n % 2 == 1;
            let event = consent_event(&business, phone, offers.clone(), out);
            store.record_consent(&business, &event).await.unwrap();
            let expected = if out {
                ConsentBits { opted_in: 0, opted_out: 1, ..ConsentBits::default() }
            } else {
                ConsentBits { opted_in: 1, opted_out: 0, ..ConsentBits::default() }
            };
            assert_eq!(other.consent_bits(&business, phone).await.unwrap(), expected);
            assert_eq!(store.consent_bits(&business, phone).await.unwrap(), expected);
        }
        let report = verify_ledger(&cli, business.id).await.unwrap();
        assert!(report.is_intact() && report.verified_events == 4, "{report:?}");
    }

    /// A cached statement is planned once, whatever values are bound to it (SQLite would
    /// otherwise re-prepare it on every use: see `open_connection`).
    #[test]
    fn cached_statements_are_not_prepared_again_for_new_values() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("optin.db");
        drop(SqliteStore::open(&path).unwrap());
        let conn = open_connection(&path, Role::Reader).unwrap();
        let sql = "SELECT c.slot, s.status FROM consent_state AS s
                   JOIN categories AS c ON c.business_id = s.business_id AND c.name = s.category
                   WHERE s.business_id = ?1 AND s.phone = ?2";
        for phone in 10_000_000..10_000_020_i64 {
            let mut stmt = conn.prepare_cached(sql).unwrap();
            stmt.query_map(("b", phone), |_| Ok(())).unwrap().for_each(drop);
        }
        let stmt = conn.prepare_cached(sql).unwrap();
        assert_eq!(stmt.get_status(rusqlite::StatementStatus::Run), 20);
        assert_eq!(stmt.get_status(rusqlite::StatementStatus::RePrepare), 0);
    }

    /// Saves whatever the index holds, 20 ms after writes pause.
    const SAVE_SOON: SavePolicy = SavePolicy {
        min_contacts: 1,
        min_events: 1,
        quiet: Duration::from_millis(20),
        max_wait: Duration::from_millis(200),
    };
    const NEVER_SAVE: SavePolicy = SavePolicy { min_contacts: usize::MAX, ..SAVE_SOON };

    fn open_saving(path: &Path, saving: SavePolicy) -> SqliteStore {
        SqliteStore::open_with(path, Follow::WalIndexHeader, saving).unwrap()
    }

    fn phone(n: u64) -> PhoneNumber {
        PhoneNumber::from_e164(&format!("+1415555{n:04}")).unwrap()
    }

    async fn record(store: &SqliteStore, business: &Business, n: u64, out: bool) {
        let event = consent_event(business, phone(n), business.all_category_names(), out);
        store.record_consent(business, &event).await.unwrap();
    }

    /// The bits a store answers for numbers 0 to 299.
    async fn answers(store: &SqliteStore, business: &Business) -> Vec<ConsentBits> {
        let phones: Vec<PhoneNumber> = (0..300).map(phone).collect();
        store.consent_bits_many(business.id, &phones).unwrap()
    }

    /// A business with contacts 0 to 39 opted in, every third then opted out.
    async fn saved_business(path: &Path, saving: SavePolicy) -> Business {
        let store = open_saving(path, saving);
        let (business, _) = create_business(&store, "Acme Shoes", &categories(), Timestamp::now()).await.unwrap();
        for n in 0..40 {
            record(&store, &business, n, false).await;
            if n % 3 == 0 {
                record(&store, &business, n, true).await;
            }
        }
        business
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_reopened_store_resumes_from_the_saved_index_and_the_events_after_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("optin.db");
        let business = saved_business(&path, SAVE_SOON).await;
        let file = SnapshotFile::next_to(&path);
        let saved = file.read().unwrap().expect("the store saved its index when it closed");
        assert_eq!(saved.seq, 54, "40 opt-ins and 14 opt-outs");

        // Another process writes after the snapshot (without saving one).
        let other = open_saving(&path, NEVER_SAVE);
        assert_eq!(other.shared.loaded_snapshot_seq(), 54);
        for n in [1, 2] {
            record(&other, &business, n, true).await;
        }
        record(&other, &business, 0, false).await;
        for n in 100..105 {
            record(&other, &business, n, false).await;
        }
        drop(other);
        assert_eq!(file.read().unwrap().map(|s| s.seq), Some(54), "the snapshot was not replaced");

        let resumed = open_saving(&path, NEVER_SAVE);
        assert_eq!(resumed.shared.loaded_snapshot_seq(), 54);
        let resumed_answers = answers(&resumed, &business).await;
        std::fs::remove_file(file.path()).unwrap();
        let from_rows = open_saving(&path, NEVER_SAVE);
        assert_eq!(from_rows.shared.loaded_snapshot_seq(), 0);
        assert_eq!(resumed_answers, answers(&from_rows, &business).await);
        let opted_in = ConsentBits { opted_in: 1, ..ConsentBits::default() };
        let opted_out = ConsentBits { opted_out: 1, ..ConsentBits::default() };
        assert_eq!(resumed_answers[0], opted_in, "opted out before the snapshot, in again after it");
        assert_eq!(resumed_answers[1], opted_out, "opted out after the snapshot");
        assert_eq!(resumed_answers[3], opted_out, "opted out before the snapshot");
        assert_eq!(resumed_answers[4], opted_in);
        assert_eq!(resumed_answers[100], opted_in, "a contact added after the snapshot");
        assert_eq!(resumed_answers[200], ConsentBits::default(), "an unknown number");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_snapshot_that_does_not_fit_the_database_is_not_used() {
        let dir = tempfile::tempdir().unwrap();
        let (path, other_path) = (dir.path().join("optin.db"), dir.path().join("other.db"));
        let business = saved_business(&path, SAVE_SOON).await;
        saved_business(&other_path, SAVE_SOON).await;
        let (file, other_file) = (SnapshotFile::next_to(&path), SnapshotFile::next_to(&other_path));
        let genuine_bytes = std::fs::read(file.path()).unwrap();
        let genuine = file.read().unwrap().unwrap();
        let expected = answers(&open_saving(&path, NEVER_SAVE), &business).await;

        // This database's own snapshot is used: the refusals below are not for want of one.
        let store = open_saving(&path, NEVER_SAVE);
        assert_eq!(store.shared.loaded_snapshot_seq(), 54);
        drop(store);

        // Each of these is refused, and the index comes from the rows.
        let mut damaged = genuine_bytes.clone();
        let middle = damaged.len() / 2;
        damaged[middle] ^= 1;
        let mut other_schema = genuine.clone();
        other_schema.schema += 1;
        let refused: [(&str, &dyn Fn()); 3] = [
            ("another database's", &|| std::fs::copy(other_file.path(), file.path()).map(drop).unwrap()),
            ("a damaged", &|| std::fs::write(file.path(), &damaged).unwrap()),
            ("another schema's", &|| file.write(&other_schema).unwrap()),
        ];
        for (what, place) in refused {
            place();
            let store = open_saving(&path, NEVER_SAVE);
            assert_eq!(store.shared.loaded_snapshot_seq(), 0, "{what} snapshot was used");
            assert_eq!(answers(&store, &business).await, expected, "{what} snapshot");
        }
        // The history check is what keeps out another database's tables: given this database's
        // last hash, they are used (and wrong).
        let mut foreign = other_file.read().unwrap().unwrap();
        foreign.event_hash = genuine.event_hash;
        file.write(&foreign).unwrap();
        let fooled = open_saving(&path, NEVER_SAVE);
        assert_eq!(fooled.shared.loaded_snapshot_seq(), 54);
        assert_ne!(answers(&fooled, &business).await, expected);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_snapshot_too_far_behind_is_not_used() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("optin.db");
        let business = saved_business(&path, SAVE_SOON).await;
        let other = open_saving(&path, NEVER_SAVE);
        assert_eq!(other.shared.loaded_snapshot_seq(), 54);
        // More events than a catch-up from the snapshot may take (10,000 with this few contacts).
        let events: Vec<ConsentEvent> = (0..10_001)
            .map(|n| consent_event(&business, phone(n % 300), business.all_category_names(), n % 2 == 1))
            .collect();
        other.bulk_record_for_benchmarks(events).await.unwrap();
        drop(other);
        let reopened = open_saving(&path, NEVER_SAVE);
        assert_eq!(reopened.shared.loaded_snapshot_seq(), 0, "loaded from the rows");
        let answers = answers(&reopened, &business).await;
        // Each number is as its last event left it: opted out when that event's n is odd.
        let opted_out = ConsentBits { opted_out: 1, ..ConsentBits::default() };
        let opted_in = ConsentBits { opted_in: 1, ..ConsentBits::default() };
        for (k, bits) in answers.iter().enumerate() {
            let last = (0..10_001).rev().find(|n| n % 300 == k as u64).unwrap();
            assert_eq!(*bits, if last % 2 == 1 { opted_out } else { opted_in }, "number {k}");
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_open_store_saves_its_index_once_writes_pause() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("optin.db");
        let file = SnapshotFile::next_to(&path);
        let store = open_saving(&path, SAVE_SOON);
        let (business, _) = create_business(&store, "Acme Shoes", &categories(), Timestamp::now()).await.unwrap();
        for round in 1..=2 {
            for n in 0..10 {
                record(&store, &business, n, round == 2).await;
            }
            let started = std::time::Instant::now();
            while file.read().ok().flatten().map(|s| s.seq) != Some(round * 10) {
                assert!(started.elapsed() < Duration::from_secs(10), "no snapshot of round {round}");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
        assert_eq!(
            answers(&store, &business).await[..10],
            [ConsentBits { opted_out: 1, ..ConsentBits::default() }; 10]
        );
    }

    fn consent_event(
        business: &Business,
        phone: PhoneNumber,
        categories: Vec<optin_core::business::CategoryName>,
        out: bool,
    ) -> ConsentEvent {
        use optin_core::consent::{ConsentChange, NoticeRef, OptIn, OptOut, OptOutSource};
        use optin_core::evidence::{Evidence, Method};
        use optin_core::ids::EventId;
        let now = Timestamp::now();
        let change = if out {
            ConsentChange::OptOut(OptOut {
                categories,
                all_categories: true,
                source: OptOutSource::Keyword,
                recorded_by: "test".into(),
                evidence: Evidence::default(),
                requested_at: None,
            })
        } else {
            ConsentChange::OptIn(OptIn {
                categories,
                method: Method::Api,
                notice: NoticeRef {
                    id: NoticeId::from_uuid(uuid::Uuid::new_v4()),
                    version: 1,
                    language: "en".into(),
                    text_sha256: String::new(),
                },
                evidence: Evidence::default(),
                collected_at: now,
                basis: Default::default(),
                basis_at: None,
                needs_confirmation: false,
            })
        };
        ConsentEvent {
            id: EventId::from_uuid(uuid::Uuid::new_v4()),
            business_id: business.id,
            phone,
            change,
            recorded_at: now,
        }
    }
}
