//! The in-memory consent index and the tenancy cache, and how they stay exact when other
//! processes (the `optin` CLI, another server) write to the same file.
//!
//! # Exactness
//!
//! The writer thread of this process updates the index for the rows it changed after its COMMIT
//! succeeded and before it answers its callers ([`Shared::apply_own_writes`]). Commits of other
//! connections are followed by *catching up*: reading `consent_events` with `seq >` the last seq
//! applied and re-reading the consent rows of every contact they touched ([`Shared::catch_up`]).
//!
//! Every read of the index or of the cache first calls [`Shared::ensure_fresh`], which must know
//! cheaply whether anything was committed since the last catch-up. `PRAGMA data_version` answers
//! exactly, but costs about 2.7 µs per call here (it opens and closes a read transaction, which
//! takes and releases locks on the `-shm` file with system calls), more than the whole budget of a
//! lookup. Instead we read the first copy of the WAL-index header (the first 48 bytes of the
//! `-shm` file) with one `pread` (0.5 to 0.7 µs here; opened with `O_NOATIME`) and compare it with the header seen before the last
//! catch-up. That header is what SQLite itself compares to detect that its cache is stale: every
//! commit, by any connection of any process, rewrites it (its change counter, frame count and
//! checksums change) before the commit returns. So an unchanged header means that nothing was
//! committed, and a changed one (or a torn read) leads to a catch-up, whose read transaction starts
//! after the header was read and therefore sees at least the commits it announced. When the
//! `-shm` file cannot be read (not WAL mode, another VFS), every call falls back to
//! `PRAGMA data_version` under the follower's mutex.
//!
//! The header seen before the last catch-up is kept in a seqlock ([`VerifiedHeader`]), so the
//! common case (nothing committed) takes no lock and writes no shared memory: a lookup costs the
//! `pread`, a read lock and one probe of the contact table (see `table.rs`). Measured on this VM
//! with 1M contacts: about 0.95 µs per exact lookup, of which ~0.5 µs is the system call and most of
//! the rest the cache misses the system call causes. [`Shared::consent_bits_many`] checks once for
//! a whole slice.
//!
//! Catch-up and the writer's own index updates are serialized by the follower's mutex, so a
//! catch-up that read an older snapshot of a contact can never overwrite the writer's newer
//! bits. The writer never advances `last_applied_seq` (other processes' commits may interleave
//! with its own); it registers the seq range it committed, which a catch-up then skips because the
//! index already holds those contacts' bits as of that commit.

use std::collections::VecDeque;
use std::fs::File;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering, fence};
use std::sync::{Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use optin_core::business::Business;
use optin_core::consent::ConsentBits;
use optin_core::ids::BusinessId;
use optin_core::phone::PhoneNumber;
use optin_store::StoreError;
use rusqlite::Connection;

use crate::error::{corrupt, db_error};
use crate::migrate::MIGRATIONS;
use crate::rows::{self, stored_phone_key};
use crate::snapshot::{Snapshot, SnapshotFile};
use crate::table::{ContactTable, ContactTableBuilder};

pub(crate) type FoldMap<K, V> = hashbrown::HashMap<K, V, foldhash::fast::RandomState>;
type FoldSet<K> = hashbrown::HashSet<K, foldhash::fast::RandomState>;

/// The first copy of the WAL-index header: `iVersion` .. `aCksum`, 48 bytes.
type WalIndexHeader = [u8; 48];
/// `WALINDEX_MAX_VERSION`: the `iVersion` of every WAL-index SQLite 3.7.0+ writes.
const WAL_INDEX_VERSION: u32 = 3_007_000;

/// How a store learns that other connections committed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Follow {
    /// Compare the WAL-index header (one `pread`), falling back to `PRAGMA data_version`.
    WalIndexHeader,
    /// `PRAGMA data_version` on every read (the fallback; for tests).
    #[cfg_attr(not(test), allow(dead_code))]
    DataVersion,
}

/// The consent of every contact of every business, as bits over the business's category slots.
#[derive(Default)]
pub(crate) struct ConsentIndex {
    by_business: FoldMap<BusinessId, ContactTable>,
}

impl ConsentIndex {
    pub(crate) fn get(&self, business: BusinessId, phone: u64) -> ConsentBits {
        self.by_business.get(&business).and_then(|contacts| contacts.get(phone)).unwrap_or_default()
    }

    /// The table of one business's contacts, if it has any.
    pub(crate) fn contacts_of(&self, business: BusinessId) -> Option<&ContactTable> {
        self.by_business.get(&business)
    }

    /// Sets a contact's bits; `None` when the contact has no consent rows.
    pub(crate) fn set(&mut self, business: BusinessId, phone: u64, bits: Option<ConsentBits>) {
        match bits {
            Some(bits) => {
                self.by_business.entry(business).or_default().insert(phone, bits);
            }
            None => {
                if let Some(contacts) = self.by_business.get_mut(&business) {
                    contacts.remove(phone);
                }
            }
        }
    }

    pub(crate) fn contacts(&self) -> usize {
        self.by_business.values().map(|contacts| contacts.len()).sum()
    }

    /// The index a snapshot describes, or why its tables are not usable.
    fn from_snapshot(snapshot: Snapshot) -> Result<ConsentIndex, &'static str> {
        let mut by_business = FoldMap::default();
        for (business, parts) in snapshot.tables {
            let table = ContactTable::from_parts(parts).map_err(|invalid| invalid.0)?;
            if by_business.insert(business, table).is_some() {
                return Err("a business has two tables");
            }
        }
        Ok(ConsentIndex { by_business })
    }
}

/// A contact whose bits this process's writer changed.
#[derive(Debug, Clone, Copy)]
pub(crate) struct IndexUpdate {
    pub business: BusinessId,
    pub phone: u64,
    pub bits: ConsentBits,
}

/// API keys and businesses as last read, valid while no tenancy change was committed.
/// Only positive answers are kept (unknown keys are not remembered).
#[derive(Default)]
pub(crate) struct TenancyCache {
    /// Bumped whenever the cache is dropped; a reader only stores what it read if the generation
    /// did not change since before its read (else its read may predate the change).
    generation: u64,
    keys: FoldMap<String, BusinessId>,
    businesses: FoldMap<BusinessId, Business>,
}

/// How many entries the tenancy cache holds at most before it starts over.
const TENANCY_CACHE_LIMIT: usize = 100_000;

impl TenancyCache {
    pub(crate) fn generation(&self) -> u64 {
        self.generation
    }

    pub(crate) fn key(&self, secret_hash: &str) -> Option<BusinessId> {
        self.keys.get(secret_hash).copied()
    }

    pub(crate) fn business(&self, id: BusinessId) -> Option<&Business> {
        self.businesses.get(&id)
    }

    pub(crate) fn remember_key(&mut self, generation: u64, secret_hash: &str, business: BusinessId) {
        if generation == self.generation {
            if self.keys.len() >= TENANCY_CACHE_LIMIT {
                self.keys.clear();
            }
            self.keys.insert(secret_hash.to_owned(), business);
        }
    }

    pub(crate) fn remember_business(&mut self, generation: u64, business: &Business) {
        if generation == self.generation {
            if self.businesses.len() >= TENANCY_CACHE_LIMIT {
                self.businesses.clear();
            }
            self.businesses.insert(business.id, business.clone());
        }
    }

    fn drop_all(&mut self) {
        self.generation += 1;
        self.keys.clear();
        self.businesses.clear();
    }
}

/// The WAL-index header the last catch-up started from, readable without a lock (a seqlock:
/// readers never write shared memory, so lookups on several threads do not contend).
/// Written only under the follower's mutex.
struct VerifiedHeader {
    /// Odd while a write is in progress.
    sequence: AtomicU64,
    words: [AtomicU64; 6],
}

impl VerifiedHeader {
    fn new(header: Option<WalIndexHeader>) -> VerifiedHeader {
        let verified = VerifiedHeader { sequence: AtomicU64::new(0), words: Default::default() };
        if let Some(header) = header {
            verified.set(&header);
        }
        verified
    }

    fn words(header: &WalIndexHeader) -> impl Iterator<Item = u64> + '_ {
        header.chunks_exact(8).map(|chunk| u64::from_ne_bytes(chunk.try_into().expect("8-byte chunks")))
    }

    /// True only if the last completed `set` stored exactly `header`.
    fn matches(&self, header: &WalIndexHeader) -> bool {
        let before = self.sequence.load(Ordering::Acquire);
        if before % 2 == 1 {
            return false;
        }
        let equal = self
            .words
            .iter()
            .zip(VerifiedHeader::words(header))
            .all(|(word, expected)| word.load(Ordering::Relaxed) == expected);
        fence(Ordering::Acquire);
        equal && self.sequence.load(Ordering::Relaxed) == before
    }

    fn set(&self, header: &WalIndexHeader) {
        self.sequence.fetch_add(1, Ordering::Relaxed);
        fence(Ordering::Release);
        for (word, value) in self.words.iter().zip(VerifiedHeader::words(header)) {
            word.store(value, Ordering::Relaxed);
        }
        self.sequence.fetch_add(1, Ordering::Release);
    }
}

/// State shared by the store's handles, its writer thread and its follower.
pub(crate) struct Shared {
    index: RwLock<ConsentIndex>,
    tenancy: RwLock<TenancyCache>,
    follower: Mutex<Follower>,
    /// The WAL-index header read before the last catch-up (fast mode only).
    verified: VerifiedHeader,
    /// The `-shm` file, when its header can be read (fast mode).
    wal_index: Option<File>,
    /// The highest seq the index reflects (applied by a catch-up or by this process's writer).
    latest_seq: AtomicI64,
    /// The seq of the snapshot the index was loaded from; 0 when it was loaded from the rows.
    loaded_snapshot_seq: i64,
    /// Write transactions committed by this process's writer, and the commands they held.
    pub(crate) batches: AtomicU64,
    pub(crate) commands: AtomicU64,
}

/// What the follower knows of the database, with the connection it reads through.
struct Follower {
    conn: Connection,
    /// Every event with a seq up to this one is reflected in the index.
    last_applied_seq: i64,
    tenancy_version: i64,
    /// `PRAGMA data_version` when last checked (fallback mode).
    data_version: i64,
    /// Seq ranges this process's writer committed and already applied to the index, in order.
    own: VecDeque<(i64, i64)>,
}

pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn read<T>(lock: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(PoisonError::into_inner)
}

fn write<T>(lock: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    /// Loads the index from `conn`'s database (which must be migrated and in WAL mode), from
    /// `snapshot` when it can, and keeps `conn` to follow later commits.
    pub(crate) fn load(conn: Connection, follow: Follow, snapshot: &SnapshotFile) -> Result<Shared, StoreError> {
        let wal_index = match follow {
            Follow::WalIndexHeader => open_wal_index(&conn),
            Follow::DataVersion => None,
        };
        let header = wal_index.as_ref().and_then(read_header);
        let data_version = data_version(&conn)?;
        let mut follower =
            Follower { conn, last_applied_seq: 0, tenancy_version: 0, data_version, own: VecDeque::new() };
        let loaded = match read_snapshot(snapshot) {
            Some(saved) => follower.read_txn(|conn| resume_from_snapshot(conn, saved))?,
            None => None,
        };
        let (index, loaded_snapshot_seq) = match loaded {
            Some((index, seq)) => (index, seq),
            None => (follower.read_txn(load_index)?, 0),
        };
        let wal_index = wal_index.filter(|_| header.is_some());
        let (index, last_applied_seq, tenancy_version) = index;
        follower.last_applied_seq = last_applied_seq;
        follower.tenancy_version = tenancy_version;
        tracing::info!(
            contacts = index.contacts(),
            last_seq = last_applied_seq,
            from_snapshot = loaded_snapshot_seq > 0,
            wal_index_header = wal_index.is_some(),
            "loaded the consent index"
        );
        Ok(Shared {
            index: RwLock::new(index),
            tenancy: RwLock::new(TenancyCache::default()),
            follower: Mutex::new(follower),
            verified: VerifiedHeader::new(header),
            wal_index,
            latest_seq: AtomicI64::new(last_applied_seq),
            loaded_snapshot_seq,
            batches: AtomicU64::new(0),
            commands: AtomicU64::new(0),
        })
    }

    /// The seq of the snapshot the index was loaded from; 0 when it was loaded from the rows.
    pub(crate) fn loaded_snapshot_seq(&self) -> i64 {
        self.loaded_snapshot_seq
    }

    /// The number of contacts in the index and the highest seq it reflects.
    pub(crate) fn size_and_latest_seq(&self) -> (usize, i64) {
        (read(&self.index).contacts(), self.latest_seq.load(Ordering::Acquire))
    }

    /// A copy of the index as of every commit so far, to be saved; `None` before the first event.
    /// The copy is taken under the follower's lock, so it reflects every event up to its seq
    /// (and perhaps some of this writer's later ones, which a process loading it re-reads).
    pub(crate) fn snapshot(&self) -> Result<Option<Snapshot>, StoreError> {
        self.ensure_fresh()?;
        let follower = lock(&self.follower);
        let seq = follower.last_applied_seq;
        let Some(event_hash) = event_hash(&follower.conn, seq)? else { return Ok(None) };
        let tables = read(&self.index).by_business.iter().map(|(business, table)| (*business, table.parts())).collect();
        Ok(Some(Snapshot { schema: schema_version(), seq, event_hash, tables }))
    }

    /// Makes sure the index and the tenancy cache reflect every commit that completed before
    /// this call, in any process.
    pub(crate) fn ensure_fresh(&self) -> Result<(), StoreError> {
        let Some(header) = self.wal_index.as_ref().and_then(read_header) else {
            return self.ensure_fresh_slow();
        };
        if self.verified.matches(&header) {
            return Ok(());
        }
        let mut follower = lock(&self.follower);
        // Another caller may have caught up past this header while we waited.
        if self.verified.matches(&header) {
            return Ok(());
        }
        self.catch_up(&mut follower)?;
        self.verified.set(&header);
        Ok(())
    }

    /// The fallback when the WAL-index header cannot be read: `PRAGMA data_version`, which
    /// changes when another connection (of any process) committed.
    fn ensure_fresh_slow(&self) -> Result<(), StoreError> {
        let mut follower = lock(&self.follower);
        let version = data_version(&follower.conn)?;
        if version != follower.data_version {
            self.catch_up(&mut follower)?;
            follower.data_version = version;
        }
        Ok(())
    }

    /// Whether commits are detected through the WAL-index header (else `PRAGMA data_version`).
    #[cfg(test)]
    pub(crate) fn follows_wal_index(&self) -> bool {
        self.wal_index.is_some()
    }

    pub(crate) fn consent_bits(&self, business: BusinessId, phone: u64) -> ConsentBits {
        read(&self.index).get(business, phone)
    }

    pub(crate) fn consent_bits_many(&self, business: BusinessId, phones: &[PhoneNumber]) -> Vec<ConsentBits> {
        let index = read(&self.index);
        // The business's table is found once, not once per number.
        let Some(contacts) = index.contacts_of(business) else { return vec![ConsentBits::default(); phones.len()] };
        contacts.get_each(phones.iter().map(PhoneNumber::key))
    }

    pub(crate) fn tenancy(&self) -> RwLockReadGuard<'_, TenancyCache> {
        read(&self.tenancy)
    }

    pub(crate) fn tenancy_mut(&self) -> RwLockWriteGuard<'_, TenancyCache> {
        write(&self.tenancy)
    }

    /// Called by the writer after its COMMIT succeeded, before it answers its callers.
    pub(crate) fn apply_own_writes(&self, updates: &[IndexUpdate], seqs: Option<(i64, i64)>) {
        let mut follower = lock(&self.follower);
        {
            let mut index = write(&self.index);
            for update in updates {
                index.set(update.business, update.phone, Some(update.bits));
            }
        }
        if let Some((first, last)) = seqs {
            self.latest_seq.fetch_max(last, Ordering::AcqRel);
            if last > follower.last_applied_seq {
                follower.own.push_back((first, last));
            }
        }
    }

    /// Applies the commits made since the last catch-up to the index and the tenancy cache.
    fn catch_up(&self, follower: &mut Follower) -> Result<(), StoreError> {
        let since = follower.last_applied_seq;
        let mut own = std::mem::take(&mut follower.own);
        let caught = follower.read_txn(|conn| read_changes(conn, since, &mut own));
        follower.own = own;
        let changes = caught?;
        if !changes.contacts.is_empty() {
            let mut index = write(&self.index);
            for (business, phone, bits) in &changes.contacts {
                index.set(*business, *phone, *bits);
            }
        }
        if changes.tenancy_version != follower.tenancy_version {
            self.tenancy_mut().drop_all();
            follower.tenancy_version = changes.tenancy_version;
        }
        if changes.last_seq > since {
            tracing::debug!(
                events = changes.last_seq - since,
                contacts_reread = changes.contacts.len(),
                "caught up with committed consent events"
            );
        }
        follower.last_applied_seq = changes.last_seq;
        self.latest_seq.fetch_max(changes.last_seq, Ordering::AcqRel);
        Ok(())
    }
}

impl Follower {
    /// Runs `read` in one read transaction, for a consistent snapshot.
    fn read_txn<T>(&mut self, read: impl FnOnce(&Connection) -> Result<T, StoreError>) -> Result<T, StoreError> {
        self.conn.prepare_cached("BEGIN").and_then(|mut s| s.execute([])).map_err(db_error)?;
        let result = read(&self.conn);
        let end = self.conn.prepare_cached("COMMIT").and_then(|mut s| s.execute([]));
        if end.is_err() && !self.conn.is_autocommit() {
            let _ = self.conn.execute_batch("ROLLBACK");
        }
        let value = result?;
        end.map_err(db_error)?;
        Ok(value)
    }
}

struct Changes {
    /// Contacts touched by other connections, with their bits now.
    contacts: Vec<(BusinessId, u64, Option<ConsentBits>)>,
    last_seq: i64,
    tenancy_version: i64,
}

fn read_changes(conn: &Connection, since: i64, own: &mut VecDeque<(i64, i64)>) -> Result<Changes, StoreError> {
    let mut touched: FoldSet<(BusinessId, u64)> = FoldSet::default();
    let since = skip_own(since, own);
    let mut last_seq = since;
    {
        let mut stmt = conn
            .prepare_cached("SELECT seq, business_id, phone FROM consent_events WHERE seq > ?1 ORDER BY seq")
            .map_err(db_error)?;
        let mut rows = stmt.query([since]).map_err(db_error)?;
        let mut business = BusinessIdReader::default();
        while let Some(row) = rows.next().map_err(db_error)? {
            let seq: i64 = row.get(0).map_err(db_error)?;
            last_seq = seq;
            while own.front().is_some_and(|(_, last)| *last < seq) {
                own.pop_front();
            }
            if own.front().is_some_and(|(first, _)| *first <= seq) {
                continue; // committed by this process's writer, which already updated the index
            }
            let business = business.read(row, 1)?;
            let phone = stored_phone_key(row.get(2).map_err(db_error)?, "consent_events.phone")?;
            touched.insert((business, phone));
        }
    }
    own.retain(|(_, last)| *last > last_seq);
    let mut contacts = Vec::with_capacity(touched.len());
    for (business, phone) in touched {
        contacts.push((business, phone, contact_bits(conn, business, phone)?));
    }
    Ok(Changes { contacts, last_seq, tenancy_version: tenancy_version(conn)? })
}

/// `since`, moved past the seqs this process's writer committed right after it, whose contacts
/// the index already holds: read and skipped one by one, they made the first lookup after a bulk
/// load in this process scan the whole table (10M events: ~12 s). Seqs are never reused, so a
/// range starting at `since + 1` leaves no other process's event out; after a gap, reading
/// resumes at `since` as before.
fn skip_own(mut since: i64, own: &mut VecDeque<(i64, i64)>) -> i64 {
    while let Some(&(first, last)) = own.front() {
        if first > since + 1 {
            break;
        }
        since = since.max(last);
        own.pop_front();
    }
    since
}

/// A contact's bits as stored, `None` without consent rows.
pub(crate) fn contact_bits(
    conn: &Connection,
    business: BusinessId,
    phone: u64,
) -> Result<Option<ConsentBits>, StoreError> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT c.slot, s.status, s.basis FROM consent_state AS s
             JOIN categories AS c ON c.business_id = s.business_id AND c.name = s.category
             WHERE s.business_id = ?1 AND s.phone = ?2",
        )
        .map_err(db_error)?;
    let mut rows = stmt.query((business.to_string(), rows::key_to_sql(phone))).map_err(db_error)?;
    let mut bits = None;
    while let Some(row) = rows.next().map_err(db_error)? {
        set_bit(bits.get_or_insert_with(ConsentBits::default), row, 0, 1)?;
    }
    Ok(bits)
}

/// Sets the bit of the slot in column `slot` to the status in column `status` (and the basis in
/// the column after it).
fn set_bit(bits: &mut ConsentBits, row: &rusqlite::Row<'_>, slot: usize, status: usize) -> Result<(), StoreError> {
    let slot: i64 = row.get(slot).map_err(db_error)?;
    let slot =
        u32::try_from(slot).ok().filter(|s| *s < 64).ok_or_else(|| corrupt("categories.slot is out of range"))?;
    set_status(bits, 1 << slot, row, status)
}

/// Sets `bit` to the status in column `status` (and the basis in the column after it).
fn set_status(bits: &mut ConsentBits, bit: u64, row: &rusqlite::Row<'_>, status: usize) -> Result<(), StoreError> {
    let basis = rows::basis(row.get_ref(status + 1).map_err(db_error)?.as_str_or_null().map_err(corrupt)?)?;
    let status = rows::status(row.get_ref(status).map_err(db_error)?.as_str().map_err(corrupt)?)?;
    bits.set(bit, status, basis);
    Ok(())
}

fn tenancy_version(conn: &Connection) -> Result<i64, StoreError> {
    conn.prepare_cached("SELECT version FROM tenancy_version WHERE id = 1")
        .and_then(|mut stmt| stmt.query_row([], |row| row.get(0)))
        .map_err(db_error)
}

fn data_version(conn: &Connection) -> Result<i64, StoreError> {
    conn.prepare_cached("PRAGMA data_version")
        .and_then(|mut stmt| stmt.query_row([], |row| row.get(0)))
        .map_err(db_error)
}

/// A loaded index, the last seq it reflects and the tenancy version read with it.
type LoadedIndex = (ConsentIndex, i64, i64);

/// An index read from a snapshot file, not yet matched to the database.
struct SavedIndex {
    schema: u32,
    seq: i64,
    event_hash: String,
    index: ConsentIndex,
}

/// The index saved in `file`, if it reads back whole and valid (else why not is logged).
fn read_snapshot(file: &SnapshotFile) -> Option<SavedIndex> {
    let started = std::time::Instant::now();
    let snapshot = match file.read() {
        Ok(snapshot) => snapshot?,
        Err(error) => {
            tracing::warn!(%error, "the consent index snapshot is unreadable; loading the index from the rows");
            return None;
        }
    };
    let (schema, seq, event_hash) = (snapshot.schema, snapshot.seq, snapshot.event_hash.clone());
    match ConsentIndex::from_snapshot(snapshot) {
        Ok(index) => {
            tracing::debug!(seconds = started.elapsed().as_secs_f64(), seq, "read the consent index snapshot");
            Some(SavedIndex { schema, seq, event_hash, index })
        }
        Err(reason) => {
            tracing::warn!(reason, "the consent index snapshot is damaged; loading the index from the rows");
            None
        }
    }
}

/// The index as of now from `saved` and the events committed after it, with the last seq and the
/// tenancy version, and the snapshot's seq; `None` (logged) when `saved` does not fit this
/// database or is so far behind that loading the rows is quicker.
fn resume_from_snapshot(conn: &Connection, saved: SavedIndex) -> Result<Option<(LoadedIndex, i64)>, StoreError> {
    let SavedIndex { schema, seq, event_hash: saved_hash, mut index } = saved;
    let refuse = |reason: &str| {
        tracing::info!(reason, seq, "the consent index snapshot was not used; loading the index from the rows");
        Ok(None)
    };
    if schema != schema_version() {
        return refuse("it was saved under another schema");
    }
    if event_hash(conn, seq)?.as_deref() != Some(saved_hash.as_str()) {
        return refuse("the database does not hold its last event (another database, or restored from a backup)");
    }
    let last_seq: i64 =
        conn.query_row("SELECT COALESCE(MAX(seq), 0) FROM consent_events", [], |row| row.get(0)).map_err(db_error)?;
    if last_seq - seq > MAX_EVENTS_TO_CATCH_UP.max(index.contacts() as i64 / CATCH_UP_SHARE) {
        return refuse("too many events were committed after it");
    }
    let changes = read_changes(conn, seq, &mut VecDeque::new())?;
    for (business, phone, bits) in &changes.contacts {
        index.set(*business, *phone, *bits);
    }
    Ok(Some(((index, changes.last_seq, changes.tenancy_version), seq)))
}

/// Events after a snapshot that are always caught up with rather than loading every row; beyond
/// that, only up to `contacts / CATCH_UP_SHARE`. Measured with the file in the page cache: a
/// catch-up costs ~6 µs an event (each touched contact is read with its own query; 100k events
/// after a 10M-contact snapshot: 0.6 s), loading the rows ~0.4 µs a contact (10M: 4.0 s, and 28 s
/// when the file is not cached). So loading the rows is quicker past about one event for 15
/// contacts, with a warm cache. A store saves before 1% of its contacts changed, so a snapshot
/// kept up to date is always within reach.
const MAX_EVENTS_TO_CATCH_UP: i64 = 10_000;
const CATCH_UP_SHARE: i64 = 16;

/// The chain hash of the event at `seq`, if there is one.
fn event_hash(conn: &Connection, seq: i64) -> Result<Option<String>, StoreError> {
    use rusqlite::OptionalExtension;
    conn.prepare_cached("SELECT hash FROM consent_events WHERE seq = ?1")
        .and_then(|mut stmt| stmt.query_row([seq], |row| row.get(0)).optional())
        .map_err(db_error)
}

/// The schema a snapshot is saved under: the number of migrations this build applies.
fn schema_version() -> u32 {
    MIGRATIONS.len() as u32
}

/// Reads the whole index, the last seq and the tenancy version in one snapshot. Categories are read
/// first and matched to slots here: joining them per state row in SQL was most of the load's time.
fn load_index(conn: &Connection) -> Result<LoadedIndex, StoreError> {
    let last_seq: i64 =
        conn.query_row("SELECT COALESCE(MAX(seq), 0) FROM consent_events", [], |row| row.get(0)).map_err(db_error)?;
    let slots = category_slots(conn)?;
    let mut stmt = conn
        .prepare("SELECT business_id, phone, category, status, basis FROM consent_state ORDER BY business_id, phone")
        .map_err(db_error)?;
    let mut rows = stmt.query([]).map_err(db_error)?;
    let mut business = BusinessIdReader::default();
    let mut loader = IndexLoader::default();
    while let Some(row) = rows.next().map_err(db_error)? {
        let business = business.read(row, 0)?;
        let phone = stored_phone_key(row.get(1).map_err(db_error)?, "consent_state.phone")?;
        let category = row.get_ref(2).map_err(db_error)?.as_str().map_err(corrupt)?;
        let slot = slots
            .get(&business)
            .and_then(|names| names.iter().position(|name| name.as_deref() == Some(category)))
            .ok_or_else(|| corrupt("consent_state names a category its business does not have"))?;
        set_status(loader.bits_of(business, phone), 1 << slot, row, 3)?;
    }
    let index = loader.finish();
    Ok((index, last_seq, tenancy_version(conn)?))
}

/// The index as read in order of business and phone: each contact's rows are consecutive, and
/// each business's table is built at its final size once its contacts are counted.
#[derive(Default)]
struct IndexLoader {
    index: ConsentIndex,
    business: Option<(BusinessId, ContactTableBuilder)>,
    contact: Option<(u64, ConsentBits)>,
}

impl IndexLoader {
    /// The bits of the contact being read, started if `(business, phone)` is a new one.
    fn bits_of(&mut self, business: BusinessId, phone: u64) -> &mut ConsentBits {
        let same_business = self.business.as_ref().is_some_and(|(id, _)| *id == business);
        let same_contact = same_business && self.contact.is_some_and(|(p, _)| p == phone);
        if !same_contact {
            self.end_contact();
            if !same_business {
                self.end_business();
                self.business = Some((business, ContactTableBuilder::default()));
            }
            self.contact = Some((phone, ConsentBits::default()));
        }
        &mut self.contact.as_mut().expect("a contact was started").1
    }

    fn end_contact(&mut self) {
        if let (Some((phone, bits)), Some((_, builder))) = (self.contact.take(), &mut self.business) {
            builder.push(phone, bits);
        }
    }

    fn end_business(&mut self) {
        if let Some((business, builder)) = self.business.take() {
            self.index.by_business.insert(business, builder.finish());
        }
    }

    fn finish(mut self) -> ConsentIndex {
        self.end_contact();
        self.end_business();
        self.index
    }
}

/// Each business's category names by slot.
fn category_slots(conn: &Connection) -> Result<FoldMap<BusinessId, Vec<Option<String>>>, StoreError> {
    let mut stmt = conn.prepare("SELECT business_id, slot, name FROM categories").map_err(db_error)?;
    let mut rows = stmt.query([]).map_err(db_error)?;
    let mut slots: FoldMap<BusinessId, Vec<Option<String>>> = FoldMap::default();
    while let Some(row) = rows.next().map_err(db_error)? {
        let business = rows::business_id(row.get_ref(0).map_err(db_error)?.as_str().map_err(corrupt)?)?;
        let slot: i64 = row.get(1).map_err(db_error)?;
        let slot =
            usize::try_from(slot).ok().filter(|s| *s < 64).ok_or_else(|| corrupt("categories.slot is out of range"))?;
        let names = slots.entry(business).or_default();
        if names.len() <= slot {
            names.resize(slot + 1, None);
        }
        names[slot] = Some(row.get(2).map_err(db_error)?);
    }
    Ok(slots)
}

/// Parses business ids from consecutive rows, reusing the last one while the text repeats.
#[derive(Default)]
struct BusinessIdReader {
    last: Option<(String, BusinessId)>,
}

impl BusinessIdReader {
    fn read(&mut self, row: &rusqlite::Row<'_>, column: usize) -> Result<BusinessId, StoreError> {
        let text = row.get_ref(column).map_err(db_error)?.as_str().map_err(corrupt)?;
        if let Some((last_text, id)) = &self.last
            && last_text == text
        {
            return Ok(*id);
        }
        let id = rows::business_id(text)?;
        self.last = Some((text.to_owned(), id));
        Ok(id)
    }
}

/// Opens the `-shm` file next to the database SQLite opened, if its header is a WAL-index's.
fn open_wal_index(conn: &Connection) -> Option<File> {
    let path = conn.path().filter(|p| !p.is_empty())?;
    let file = open_without_atime(&format!("{path}-shm"))?;
    let header = read_header(&file)?;
    let version = u32::from_ne_bytes(header[0..4].try_into().ok()?);
    let initialized = header[12] == 1;
    (version == WAL_INDEX_VERSION && initialized).then_some(file)
}

/// Opens read-only, asking Linux not to update the access time on every read (a measurable part
/// of the `pread`'s cost); without the permission for that, opens normally.
fn open_without_atime(path: &str) -> Option<File> {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::fs::OpenOptionsExt;
        const O_NOATIME: i32 = 0o1_000_000;
        if let Ok(file) = std::fs::OpenOptions::new().read(true).custom_flags(O_NOATIME).open(path) {
            return Some(file);
        }
    }
    File::open(path).ok()
}

#[cfg(unix)]
fn read_header(file: &File) -> Option<WalIndexHeader> {
    use std::os::unix::fs::FileExt;
    let mut header = [0; 48];
    file.read_exact_at(&mut header, 0).ok()?;
    Some(header)
}

#[cfg(not(unix))]
fn read_header(_file: &File) -> Option<WalIndexHeader> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_own_seqs_right_after_the_last_applied_one_are_skipped() {
        // Contiguous own ranges are skipped, and the ones overlapping what was applied.
        let mut own = VecDeque::from([(5, 8), (9, 20), (15, 30)]);
        assert_eq!(skip_own(4, &mut own), 30);
        assert!(own.is_empty());
        // A gap (seqs 5 to 6 are another process's): nothing is skipped, the range is kept.
        let mut own = VecDeque::from([(7, 9)]);
        assert_eq!(skip_own(4, &mut own), 4);
        assert_eq!(own, VecDeque::from([(7, 9)]));
        // Skipping stops at the first gap.
        let mut own = VecDeque::from([(1, 3), (6, 9)]);
        assert_eq!(skip_own(0, &mut own), 3);
        assert_eq!(own, VecDeque::from([(6, 9)]));
    }
}
