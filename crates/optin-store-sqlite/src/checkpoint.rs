//! WAL checkpoints on their own thread, off the writer's commit path.
//!
//! A checkpoint copies committed pages from the WAL back into the database file and fsyncs it.
//! SQLite's default runs one inline after the commit that grows the WAL past 1000 pages, so the
//! writer and every caller of that batch wait for it. Here the writer only signals this thread
//! after each commit; the thread waits a little (to copy many commits at once), then runs a
//! PASSIVE checkpoint, which never blocks the writer or readers. The writer keeps SQLite's
//! automatic checkpoint with a high threshold ([`BACKSTOP_PAGES`]) as a backstop: under a
//! sustained load the WAL is only reset when a checkpoint has copied all of it, which the inline
//! one guarantees now and then.
//!
//! Measured (64 concurrent opt-ins, `synchronous=FULL`, 100k contacts, this 2-core VM): SQLite's
//! default (inline, 1000 pages) 3.8k/s; background + backstop at 8192 pages 4.7k/s, 32768 pages
//! 5.4k/s, 65536 pages 6.3k/s, 131072 pages 6.9k/s. The writer's CPU per opt-in was the same
//! (~99 µs) in all; what the backstop saves is the database-file fsync an inline checkpoint adds to
//! a commit, which happens on every commit while the WAL stays above the threshold.

use std::sync::mpsc::Receiver;
use std::time::Duration;

use optin_store::StoreError;
use rusqlite::Connection;

use crate::woken::WokenThread;

/// How long the checkpointer lets commits accumulate before copying them.
const COALESCE: Duration = Duration::from_millis(100);
/// WAL size (pages) at which the writer checkpoints inline anyway: 256 MiB with 4 KiB pages, so
/// under a sustained load the WAL file may grow to about that (`journal_size_limit` shrinks it
/// back once it is reset).
pub(crate) const BACKSTOP_PAGES: i64 = 65_536;

/// Starts the checkpoint thread on its own connection.
pub(crate) fn start(conn: Connection) -> Result<WokenThread, StoreError> {
    WokenThread::start("optin-sqlite-checkpoint", move |signals| run(&conn, signals))
}

fn run(conn: &Connection, signals: &Receiver<()>) {
    while signals.recv().is_ok() {
        std::thread::sleep(COALESCE);
        while signals.try_recv().is_ok() {}
        let result: rusqlite::Result<(i64, i64, i64)> =
            conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)));
        match result {
            Ok((_, wal_pages, copied)) => tracing::trace!(wal_pages, copied, "checkpointed the WAL"),
            Err(error) => tracing::warn!(%error, "a WAL checkpoint failed"),
        }
    }
    // Leave as little WAL as possible behind when the store closes.
    let _ = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
}
