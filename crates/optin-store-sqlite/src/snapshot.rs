//! The consent index saved next to the database (`<database>-index`), so that a process opening a
//! large database reads each business's contact table as it was, at disk speed, instead of
//! re-reading and re-placing every consent row (10M contacts: see the README's performance
//! section for both times).
//!
//! A snapshot is a cache, never the truth. It records the seq of the last event it reflects and
//! that event's chain hash; a process uses it only if the database holds the same event at that
//! seq (the same history), the schema is the one it was saved under, its checksum (CRC-32 of every
//! byte) matches and every table passes [`ContactTable::from_parts`]'s checks. It then catches up
//! from that seq exactly as it follows another process's commits (`follow.rs`), so whatever was
//! committed since, by any process or any version of optin, is applied. Otherwise (no file, a
//! damaged or foreign one, or one so far behind that re-reading the rows is quicker) the index is
//! loaded from the rows. Deleting the file is always safe.
//!
//! # When it is saved
//!
//! By a thread of each store ([`start_saver`]), when the index holds at least `min_contacts` and
//! at least `contacts / 100` (and `min_events`) events are not in the last snapshot this store
//! saved or loaded: right after opening, once this process's commits pause for `quiet`, at most
//! every `max_wait` while they do not, and when the store closes. The index is copied under the
//! follower's lock (the writer waits for that copy: 0.06 s for 10M contacts, measured), then
//! written to a temporary file, synced and renamed over the old one, so a reader sees a whole
//! snapshot or the previous one. The file gets the database file's permissions: it holds the same
//! phone numbers. A temporary file older than ten minutes (left by a process stopped while saving)
//! is removed when a store opens.
//!
//! # Format (little-endian)
//!
//! `OPTINIDX`, format `u32`, schema `u32` (migrations applied), seq `i64`, the event's hash (64
//! ASCII hex digits), businesses `u32`; per business its UUID (16 bytes), the table's hash seed
//! `u64`, palette count `u32` and values, overflow count `u64` and `(key, value)` pairs, slot count
//! `u64` and slots (see `table.rs`); a value is four `u64`s (`opted_in`, `opted_out`, `pending`,
//! `implied`). Last, the CRC-32 of everything before it.

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use optin_core::consent::ConsentBits;
use optin_core::ids::BusinessId;
use optin_store::StoreError;

use crate::follow::Shared;
use crate::table::TableParts;
use crate::woken::WokenThread;

const MAGIC: &[u8; 8] = b"OPTINIDX";
const FORMAT: u32 = 1;
/// Bytes of an event's hash as stored (hex).
const HASH_LEN: usize = 64;
/// Slots are read and written through a buffer of this many bytes.
const BUFFER_BYTES: usize = 1 << 20;
/// How the temporary files a snapshot is written to are named (then renamed over the snapshot).
const TEMPORARY_PREFIX: &str = ".optin-index-";
/// A temporary file older than this was left by a process that stopped while saving (a save takes
/// well under a second).
const STALE_AFTER: Duration = Duration::from_secs(600);

/// The saved index: every business's table as of event `seq`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Snapshot {
    /// The number of migrations applied to the database it was saved from.
    pub schema: u32,
    pub seq: i64,
    /// The chain hash of the event at `seq` (hex).
    pub event_hash: String,
    pub tables: Vec<(BusinessId, TableParts)>,
}

/// Why a snapshot file could not be read back.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SnapshotError {
    #[error(transparent)]
    Io(#[from] io::Error),
    #[error("{0}")]
    Damaged(&'static str),
}

/// Where a database's snapshot lives.
#[derive(Debug, Clone)]
pub(crate) struct SnapshotFile {
    path: PathBuf,
    database: PathBuf,
}

impl SnapshotFile {
    pub(crate) fn next_to(database: &Path) -> SnapshotFile {
        let mut path = database.as_os_str().to_owned();
        path.push("-index");
        SnapshotFile { path: PathBuf::from(path), database: database.to_owned() }
    }

    #[cfg(test)]
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The snapshot, `None` when there is no file.
    pub(crate) fn read(&self) -> Result<Option<Snapshot>, SnapshotError> {
        let file = match File::open(&self.path) {
            Ok(file) => file,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(error) => return Err(error.into()),
        };
        let length = file.metadata()?.len();
        let mut source = Source {
            inner: BufReader::with_capacity(BUFFER_BYTES, file),
            crc: crc32fast::Hasher::new(),
            remaining: length,
        };
        let snapshot = read_snapshot(&mut source)?;
        let computed = source.crc.clone().finalize();
        let mut stored = [0; 4];
        source.take(&mut stored)?;
        if u32::from_le_bytes(stored) != computed {
            return Err(SnapshotError::Damaged("the checksum does not match"));
        }
        if source.remaining != 0 {
            return Err(SnapshotError::Damaged("bytes follow the checksum"));
        }
        Ok(Some(snapshot))
    }

    fn directory(&self) -> &Path {
        self.path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."))
    }

    /// Removes the temporary files of saves that never finished (a process killed while saving).
    pub(crate) fn remove_stale_temporaries(&self) -> io::Result<()> {
        for entry in std::fs::read_dir(self.directory())? {
            let entry = entry?;
            let temporary = entry.file_name().to_str().is_some_and(|name| name.starts_with(TEMPORARY_PREFIX));
            let age = entry.metadata()?.modified()?.elapsed().unwrap_or_default();
            if temporary && age > STALE_AFTER {
                std::fs::remove_file(entry.path())?;
            }
        }
        Ok(())
    }

    /// Replaces the file with `snapshot`, whole or not at all.
    pub(crate) fn write(&self, snapshot: &Snapshot) -> io::Result<()> {
        let mut temporary = tempfile::Builder::new().prefix(TEMPORARY_PREFIX).tempfile_in(self.directory())?;
        let mut sink = Sink {
            inner: BufWriter::with_capacity(BUFFER_BYTES, temporary.as_file_mut()),
            crc: crc32fast::Hasher::new(),
        };
        write_snapshot(&mut sink, snapshot)?;
        let checksum = sink.crc.clone().finalize();
        sink.inner.write_all(&checksum.to_le_bytes())?;
        sink.inner.flush()?;
        drop(sink);
        temporary.as_file().sync_all()?;
        if let Ok(metadata) = std::fs::metadata(&self.database) {
            temporary.as_file().set_permissions(metadata.permissions())?;
        }
        temporary.persist(&self.path).map_err(|error| error.error)?;
        Ok(())
    }
}

fn write_snapshot<W: Write>(sink: &mut Sink<W>, snapshot: &Snapshot) -> io::Result<()> {
    let hash = snapshot.event_hash.as_bytes();
    if hash.len() != HASH_LEN {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "an event hash is 64 hex digits"));
    }
    sink.put(MAGIC)?;
    sink.put(&FORMAT.to_le_bytes())?;
    sink.put(&snapshot.schema.to_le_bytes())?;
    sink.put(&snapshot.seq.to_le_bytes())?;
    sink.put(hash)?;
    sink.put(&count_u32(snapshot.tables.len())?.to_le_bytes())?;
    for (business, table) in &snapshot.tables {
        sink.put(business.as_uuid().as_bytes())?;
        sink.put(&table.seed.to_le_bytes())?;
        sink.put(&count_u32(table.palette.len())?.to_le_bytes())?;
        for bits in &table.palette {
            sink.words(&bits_words(bits))?;
        }
        sink.put(&(table.overflow.len() as u64).to_le_bytes())?;
        for (key, bits) in &table.overflow {
            sink.words(&[*key])?;
            sink.words(&bits_words(bits))?;
        }
        sink.put(&(table.slots.len() as u64).to_le_bytes())?;
        sink.words(&table.slots)?;
    }
    Ok(())
}

fn read_snapshot<R: Read>(source: &mut Source<R>) -> Result<Snapshot, SnapshotError> {
    let mut magic = [0; 8];
    source.take(&mut magic)?;
    if &magic != MAGIC {
        return Err(SnapshotError::Damaged("not an optin index snapshot"));
    }
    if source.u32()? != FORMAT {
        return Err(SnapshotError::Damaged("written in another format"));
    }
    let schema = source.u32()?;
    let seq = source.i64()?;
    let mut hash = [0; HASH_LEN];
    source.take(&mut hash)?;
    let event_hash = String::from_utf8(hash.to_vec())
        .ok()
        .filter(|hash| hash.bytes().all(|byte| byte.is_ascii_hexdigit()))
        .ok_or(SnapshotError::Damaged("the event hash is not hex"))?;
    let businesses = source.u32()? as usize;
    let mut tables = Vec::new();
    for _ in 0..businesses {
        let mut uuid = [0; 16];
        source.take(&mut uuid)?;
        let business = BusinessId::from_uuid(uuid::Uuid::from_bytes(uuid));
        let seed = source.u64()?;
        let palette_len = source.u32()?;
        let palette_len = source.count(palette_len.into(), 32)?;
        let palette = (0..palette_len).map(|_| source.bits()).collect::<Result<Vec<_>, _>>()?;
        let overflow_len = source.u64()?;
        let overflow_len = source.count(overflow_len, 40)?;
        let overflow = (0..overflow_len)
            .map(|_| Ok((source.u64()?, source.bits()?)))
            .collect::<Result<Vec<_>, SnapshotError>>()?;
        let slots_len = source.u64()?;
        let slots_len = source.count(slots_len, 8)?;
        let slots = source.words(slots_len)?;
        tables.push((business, TableParts { seed, palette, overflow, slots }));
    }
    Ok(Snapshot { schema, seq, event_hash, tables })
}

fn count_u32(count: usize) -> io::Result<u32> {
    u32::try_from(count).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "too many entries for the format"))
}

fn bits_words(bits: &ConsentBits) -> [u64; 4] {
    [bits.opted_in, bits.opted_out, bits.pending, bits.implied]
}

/// Writes bytes and keeps their CRC.
struct Sink<W> {
    inner: W,
    crc: crc32fast::Hasher,
}

impl<W: Write> Sink<W> {
    fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.crc.update(bytes);
        self.inner.write_all(bytes)
    }

    fn words(&mut self, words: &[u64]) -> io::Result<()> {
        let mut buffer = Vec::with_capacity(BUFFER_BYTES.min(words.len() * 8));
        for chunk in words.chunks(BUFFER_BYTES / 8) {
            buffer.clear();
            buffer.extend(chunk.iter().flat_map(|word| word.to_le_bytes()));
            self.put(&buffer)?;
        }
        Ok(())
    }
}

/// Reads bytes, keeps their CRC and refuses to read past the file's end (so that a damaged count
/// cannot make it allocate more than the file holds).
struct Source<R> {
    inner: R,
    crc: crc32fast::Hasher,
    remaining: u64,
}

impl<R: Read> Source<R> {
    fn take(&mut self, buffer: &mut [u8]) -> Result<(), SnapshotError> {
        if buffer.len() as u64 > self.remaining {
            return Err(SnapshotError::Damaged("the file ends too early"));
        }
        self.inner.read_exact(buffer)?;
        self.crc.update(buffer);
        self.remaining -= buffer.len() as u64;
        Ok(())
    }

    fn u32(&mut self) -> Result<u32, SnapshotError> {
        let mut bytes = [0; 4];
        self.take(&mut bytes)?;
        Ok(u32::from_le_bytes(bytes))
    }

    fn u64(&mut self) -> Result<u64, SnapshotError> {
        let mut bytes = [0; 8];
        self.take(&mut bytes)?;
        Ok(u64::from_le_bytes(bytes))
    }

    fn i64(&mut self) -> Result<i64, SnapshotError> {
        Ok(self.u64()? as i64)
    }

    fn bits(&mut self) -> Result<ConsentBits, SnapshotError> {
        Ok(ConsentBits { opted_in: self.u64()?, opted_out: self.u64()?, pending: self.u64()?, implied: self.u64()? })
    }

    /// `count` entries of `size` bytes, if the file still holds that many.
    fn count(&self, count: u64, size: u64) -> Result<usize, SnapshotError> {
        count
            .checked_mul(size)
            .filter(|bytes| *bytes <= self.remaining)
            .and_then(|_| usize::try_from(count).ok())
            .ok_or(SnapshotError::Damaged("a count exceeds what the file holds"))
    }

    fn words(&mut self, count: usize) -> Result<Vec<u64>, SnapshotError> {
        let mut words = Vec::with_capacity(count);
        let mut buffer = vec![0; BUFFER_BYTES.min(count * 8)];
        while words.len() < count {
            let bytes = &mut buffer[..(count - words.len()).min(BUFFER_BYTES / 8) * 8];
            self.take(bytes)?;
            words.extend(bytes.chunks_exact(8).map(|chunk| u64::from_le_bytes(chunk.try_into().expect("8 bytes"))));
        }
        Ok(words)
    }
}

/// When a store saves its index (see the module's documentation).
#[derive(Debug, Clone, Copy)]
pub(crate) struct SavePolicy {
    pub min_contacts: usize,
    pub min_events: i64,
    pub quiet: Duration,
    pub max_wait: Duration,
}

impl SavePolicy {
    /// Below 100,000 contacts the index loads from the rows in well under 0.1 s.
    pub(crate) const DEFAULT: SavePolicy = SavePolicy {
        min_contacts: 100_000,
        min_events: 1_000,
        quiet: Duration::from_millis(200),
        max_wait: Duration::from_secs(60),
    };

    fn worth_saving(&self, contacts: usize, unsaved_events: i64) -> bool {
        contacts >= self.min_contacts && unsaved_events >= self.min_events.max(contacts as i64 / 100)
    }
}

/// Starts the thread that saves the index (the writer tells it about each commit); when the
/// store closes, it saves a last time if it is worth it.
pub(crate) fn start_saver(
    shared: std::sync::Arc<Shared>,
    file: SnapshotFile,
    policy: SavePolicy,
) -> Result<WokenThread, StoreError> {
    WokenThread::start("optin-sqlite-snapshot", move |signals| run(&shared, &file, policy, signals))
}

fn run(shared: &Shared, file: &SnapshotFile, policy: SavePolicy, signals: &Receiver<()>) {
    if let Err(error) = file.remove_stale_temporaries() {
        tracing::warn!(%error, "could not remove a consent index snapshot's stale temporary file");
    }
    let mut saved_seq = shared.loaded_snapshot_seq();
    save_if_worth_it(shared, file, policy, &mut saved_seq);
    let mut open = true;
    while open && signals.recv().is_ok() {
        let first = Instant::now();
        loop {
            match signals.recv_timeout(policy.quiet) {
                Ok(()) if first.elapsed() < policy.max_wait => {}
                Ok(()) | Err(RecvTimeoutError::Timeout) => break,
                Err(RecvTimeoutError::Disconnected) => {
                    open = false;
                    break;
                }
            }
        }
        save_if_worth_it(shared, file, policy, &mut saved_seq);
    }
    save_if_worth_it(shared, file, policy, &mut saved_seq);
}

fn save_if_worth_it(shared: &Shared, file: &SnapshotFile, policy: SavePolicy, saved_seq: &mut i64) {
    let (contacts, latest_seq) = shared.size_and_latest_seq();
    if !policy.worth_saving(contacts, latest_seq - *saved_seq) {
        return;
    }
    let started = Instant::now();
    let mut copied = Duration::ZERO;
    let saved = shared.snapshot().and_then(|snapshot| match snapshot {
        Some(snapshot) => {
            copied = started.elapsed();
            file.write(&snapshot).map_err(|e| StoreError::Unavailable(Box::new(e)))?;
            Ok(Some(snapshot.seq))
        }
        None => Ok(None),
    });
    match saved {
        Ok(Some(seq)) => {
            *saved_seq = seq;
            tracing::info!(
                contacts,
                seq,
                copy_seconds = copied.as_secs_f64(),
                seconds = started.elapsed().as_secs_f64(),
                "saved the consent index"
            );
        }
        Ok(None) => {}
        Err(error) => {
            // Not saving only makes the next open slower; try again after the next commits.
            *saved_seq = latest_seq;
            tracing::warn!(%error, "could not save the consent index");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot() -> Snapshot {
        let bits = ConsentBits { opted_in: 1, opted_out: 2, pending: 4, implied: 8 };
        let mut slots = vec![0; 16];
        slots[3] = 10_000_001;
        slots[9] = 10_000_002 | 1 << 50;
        Snapshot {
            schema: 7,
            seq: 42,
            event_hash: "ab".repeat(32),
            tables: vec![(
                BusinessId::from_uuid(uuid::Uuid::from_u128(7)),
                TableParts { seed: 99, palette: vec![bits, ConsentBits::default()], overflow: vec![(5, bits)], slots },
            )],
        }
    }

    #[test]
    fn a_snapshot_reads_back_as_written() {
        let directory = tempfile::tempdir().unwrap();
        let file = SnapshotFile::next_to(&directory.path().join("optin.db"));
        assert!(file.read().unwrap().is_none(), "no file yet");
        file.write(&snapshot()).unwrap();
        assert_eq!(file.path(), directory.path().join("optin.db-index"));
        assert_eq!(file.read().unwrap(), Some(snapshot()));
    }

    #[test]
    fn every_damaged_byte_and_every_truncation_is_refused() {
        let directory = tempfile::tempdir().unwrap();
        let file = SnapshotFile::next_to(&directory.path().join("optin.db"));
        file.write(&snapshot()).unwrap();
        let bytes = std::fs::read(file.path()).unwrap();
        for position in 0..bytes.len() {
            let mut damaged = bytes.clone();
            damaged[position] ^= 0x10;
            std::fs::write(file.path(), &damaged).unwrap();
            assert!(file.read().is_err(), "a flipped bit at byte {position} was not noticed");
        }
        for length in 0..bytes.len() {
            std::fs::write(file.path(), &bytes[..length]).unwrap();
            assert!(file.read().is_err(), "a file cut at {length} bytes was read");
        }
        let mut longer = bytes;
        longer.push(0);
        std::fs::write(file.path(), &longer).unwrap();
        assert!(file.read().is_err(), "a byte after the checksum was accepted");
    }

    #[test]
    fn a_huge_count_is_refused_before_anything_is_allocated() {
        let directory = tempfile::tempdir().unwrap();
        let file = SnapshotFile::next_to(&directory.path().join("optin.db"));
        file.write(&snapshot()).unwrap();
        let mut bytes = std::fs::read(file.path()).unwrap();
        // The slot count of the one table: after the header (96 bytes), the UUID, the seed, the
        // palette (4 + 2 x 32) and the overflow map (8 + 40).
        let at = 8 + 4 + 4 + 8 + 64 + 4 + 16 + 8 + 4 + 64 + 8 + 40;
        assert_eq!(u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap()), 16);
        bytes[at..at + 8].copy_from_slice(&(u64::MAX / 8).to_le_bytes());
        std::fs::write(file.path(), &bytes).unwrap();
        assert!(matches!(file.read(), Err(SnapshotError::Damaged("a count exceeds what the file holds"))));
    }

    #[test]
    fn only_stale_temporary_files_are_removed() {
        let directory = tempfile::tempdir().unwrap();
        let file = SnapshotFile::next_to(&directory.path().join("optin.db"));
        file.write(&snapshot()).unwrap();
        let long_ago = std::time::SystemTime::now() - STALE_AFTER * 2;
        let place = |name: &str, modified: std::time::SystemTime| {
            let path = directory.path().join(name);
            File::create(&path).unwrap().set_modified(modified).unwrap();
            path
        };
        let stale = place(".optin-index-abc123", long_ago);
        let being_written = place(".optin-index-def456", std::time::SystemTime::now());
        let not_ours = place("notes.txt", long_ago);
        file.remove_stale_temporaries().unwrap();
        assert!(!stale.exists());
        assert!(being_written.exists() && not_ours.exists() && file.path().exists());
    }

    #[test]
    fn saving_waits_for_enough_contacts_and_enough_new_events() {
        let policy = SavePolicy { min_contacts: 1_000, min_events: 10, ..SavePolicy::DEFAULT };
        assert!(!policy.worth_saving(999, 1_000_000), "too few contacts");
        assert!(!policy.worth_saving(1_000, 9), "too few events");
        assert!(policy.worth_saving(1_000, 10));
        assert!(!policy.worth_saving(10_000_000, 99_999), "less than 1% of the contacts changed");
        assert!(policy.worth_saving(10_000_000, 100_000));
    }
}
