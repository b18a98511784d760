//! The one writer thread: group commit of every write command.
//!
//! The thread owns the write connection (`synchronous=FULL`). It takes all queued commands (up to
//! [`MAX_BATCH`]), opens one `BEGIN IMMEDIATE` transaction, runs each command in its own SAVEPOINT
//! (a failing command rolls back only its savepoint and gets its own error), COMMITs once (one
//! fsync for the whole batch), applies the batch's index updates and then answers every caller.
//! If BEGIN or COMMIT fails, every command of the batch gets that error.
//!
//! `BEGIN IMMEDIATE` takes SQLite's write lock, which also serializes this writer against other
//! processes writing to the same file; everything a command reads (the chain head, the contact's
//! consent) is therefore read inside the transaction, and cached only for the rest of the batch.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, Sender};
use std::thread::JoinHandle;

use optin_core::business::CategoryName;
use optin_core::ids::BusinessId;
use optin_core::ledger::ChainHead;
use optin_store::StoreError;
use rusqlite::{Connection, OptionalExtension};
use tokio::sync::oneshot;

use crate::error::{BatchFailed, CommandPanicked, WriterGone, db_error};
use crate::follow::{FoldMap, IndexUpdate, Shared};
use crate::rows;
use crate::woken::WokenThread;

/// The most commands one transaction takes.
pub(crate) const MAX_BATCH: usize = 512;

/// A write command as the writer thread sees it.
pub(crate) trait Job: Send {
    /// Runs the command inside its savepoint; false when it failed (and must be rolled back).
    fn run(&mut self, batch: &mut Batch<'_>) -> bool;
    /// Answers the caller once the batch's fate is known (`Some` when BEGIN or COMMIT failed).
    fn answer(self: Box<Self>, batch_failed: Option<&BatchFailed>);
}

struct Command<T, F> {
    op: Option<F>,
    result: Option<Result<T, StoreError>>,
    reply: oneshot::Sender<Result<T, StoreError>>,
}

impl<T, F> Job for Command<T, F>
where
    T: Send,
    F: FnOnce(&mut Batch<'_>) -> Result<T, StoreError> + Send,
{
    fn run(&mut self, batch: &mut Batch<'_>) -> bool {
        let Some(op) = self.op.take() else { return false };
        let result = catch_unwind(AssertUnwindSafe(|| op(batch)))
            .unwrap_or_else(|_| Err(StoreError::Unavailable(Box::new(CommandPanicked))));
        let succeeded = result.is_ok();
        self.result = Some(result);
        succeeded
    }

    fn answer(self: Box<Self>, batch_failed: Option<&BatchFailed>) {
        let result = match (self.result, batch_failed) {
            (Some(Err(error)), _) => Err(error),
            (_, Some(failed)) => Err(StoreError::Unavailable(Box::new(failed.clone()))),
            (Some(Ok(value)), None) => Ok(value),
            (None, None) => Err(StoreError::Unavailable(Box::new(WriterGone))),
        };
        // The caller may have stopped waiting; the write stands either way.
        let _ = self.reply.send(result);
    }
}

/// The handle callers use to send commands to the writer thread.
pub(crate) struct Writer {
    sender: Option<Sender<Box<dyn Job>>>,
    thread: Option<JoinHandle<()>>,
}

impl Writer {
    pub(crate) fn start(
        conn: Connection,
        shared: Arc<Shared>,
        checkpointer: WokenThread,
        saver: WokenThread,
    ) -> Result<Writer, StoreError> {
        let (sender, receiver) = std::sync::mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("optin-sqlite-writer".to_owned())
            .spawn(move || run(&conn, &receiver, &shared, &checkpointer, &saver))
            .map_err(|e| StoreError::Unavailable(Box::new(e)))?;
        Ok(Writer { sender: Some(sender), thread: Some(thread) })
    }

    /// Runs `op` in the next batch and returns its result once the batch committed.
    pub(crate) async fn write<T, F>(&self, op: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Batch<'_>) -> Result<T, StoreError> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let command = Box::new(Command { op: Some(op), result: None, reply });
        let sender = self.sender.as_ref().ok_or_else(|| StoreError::Unavailable(Box::new(WriterGone)))?;
        sender.send(command).map_err(|_| StoreError::Unavailable(Box::new(WriterGone)))?;
        answer.await.map_err(|_| StoreError::Unavailable(Box::new(WriterGone)))?
    }
}

impl Drop for Writer {
    /// Lets the thread finish the commands already sent, then waits for it (so that the file is
    /// closed when the store is dropped).
    fn drop(&mut self) {
        drop(self.sender.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn run(
    conn: &Connection,
    receiver: &Receiver<Box<dyn Job>>,
    shared: &Shared,
    checkpointer: &WokenThread,
    saver: &WokenThread,
) {
    let mut jobs: Vec<Box<dyn Job>> = Vec::with_capacity(MAX_BATCH);
    while let Ok(first) = receiver.recv() {
        jobs.push(first);
        while jobs.len() < MAX_BATCH {
            match receiver.try_recv() {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
        if run_batch(conn, &mut jobs, shared) {
            checkpointer.committed();
            saver.committed();
        }
    }
    tracing::debug!("the SQLite writer thread stops");
}

/// Runs and answers one batch; true when it committed.
#[tracing::instrument(skip_all, fields(commands = jobs.len()))]
fn run_batch(conn: &Connection, jobs: &mut Vec<Box<dyn Job>>, shared: &Shared) -> bool {
    let mut batch = Batch::new(conn);
    let outcome = run_in_transaction(&mut batch, jobs);
    let failed = match outcome {
        Ok(()) => {
            let seqs = batch.own_seqs.iter().min().zip(batch.own_seqs.iter().max()).map(|(a, b)| (*a, *b));
            shared.apply_own_writes(&batch.index_updates, seqs);
            shared.batches.fetch_add(1, Ordering::Relaxed);
            shared.commands.fetch_add(jobs.len() as u64, Ordering::Relaxed);
            None
        }
        Err(error) => {
            if !conn.is_autocommit() {
                let _ = conn.execute_batch("ROLLBACK");
            }
            tracing::error!(error = %error, "a write batch failed");
            Some(BatchFailed(Arc::new(error)))
        }
    };
    let committed = failed.is_none();
    for job in jobs.drain(..) {
        job.answer(failed.as_ref());
    }
    committed
}

fn run_in_transaction(batch: &mut Batch<'_>, jobs: &mut [Box<dyn Job>]) -> rusqlite::Result<()> {
    let conn = batch.conn;
    conn.prepare_cached("BEGIN IMMEDIATE")?.execute([])?;
    let mut failures = 0;
    for job in jobs.iter_mut() {
        conn.prepare_cached("SAVEPOINT command")?.execute([])?;
        let mark = batch.mark();
        if !job.run(batch) {
            failures += 1;
            conn.prepare_cached("ROLLBACK TO command")?.execute([])?;
            batch.reset_to(mark);
        }
        conn.prepare_cached("RELEASE command")?.execute([])?;
    }
    batch.write_chain_heads()?;
    conn.prepare_cached("COMMIT")?.execute([])?;
    if failures > 0 {
        tracing::debug!(failures, "some commands of the batch failed and were rolled back");
    }
    Ok(())
}

/// One write transaction, as commands see it.
pub(crate) struct Batch<'c> {
    pub(crate) conn: &'c Connection,
    /// Chain heads read or written in this transaction (valid only inside it).
    heads: FoldMap<BusinessId, Option<ChainHead>>,
    /// Heads moved by this batch's commands, in order; the last one of each business is written
    /// just before COMMIT.
    moved_heads: Vec<(BusinessId, ChainHead)>,
    /// Category names in slot order, read in this transaction.
    categories: FoldMap<BusinessId, Vec<CategoryName>>,
    index_updates: Vec<IndexUpdate>,
    own_seqs: Vec<i64>,
}

/// How far a batch's effects went before a command started, to undo the command's on rollback.
#[derive(Clone, Copy)]
struct Mark {
    index_updates: usize,
    own_seqs: usize,
    moved_heads: usize,
}

impl<'c> Batch<'c> {
    pub(crate) fn new(conn: &'c Connection) -> Batch<'c> {
        Batch {
            conn,
            heads: FoldMap::default(),
            moved_heads: Vec::new(),
            categories: FoldMap::default(),
            index_updates: Vec::new(),
            own_seqs: Vec::new(),
        }
    }

    fn mark(&self) -> Mark {
        Mark {
            index_updates: self.index_updates.len(),
            own_seqs: self.own_seqs.len(),
            moved_heads: self.moved_heads.len(),
        }
    }

    fn reset_to(&mut self, mark: Mark) {
        self.index_updates.truncate(mark.index_updates);
        self.own_seqs.truncate(mark.own_seqs);
        self.moved_heads.truncate(mark.moved_heads);
        // The rolled-back command may have moved a head or added categories.
        self.heads.clear();
        self.categories.clear();
    }

    /// The business's chain head, read inside this transaction.
    pub(crate) fn chain_head(&mut self, business: BusinessId) -> Result<Option<ChainHead>, StoreError> {
        if let Some(head) = self.heads.get(&business) {
            return Ok(*head);
        }
        // Moved earlier in this batch (after a rollback cleared the cache): not in the table yet.
        if let Some((_, head)) = self.moved_heads.iter().rev().find(|(b, _)| *b == business) {
            self.heads.insert(business, Some(*head));
            return Ok(Some(*head));
        }
        let stored: Option<(i64, String)> = self
            .conn
            .prepare_cached("SELECT last_index, last_hash FROM chain_heads WHERE business_id = ?1")
            .and_then(|mut stmt| {
                stmt.query_row([business.to_string()], |row| Ok((row.get(0)?, row.get(1)?))).optional()
            })
            .map_err(db_error)?;
        let head = stored.map(|(index, hash)| rows::chain_head(index, &hash)).transpose()?;
        self.heads.insert(business, head);
        Ok(head)
    }

    /// Moves the business's chain head; it is written to `chain_heads` before the batch commits.
    pub(crate) fn set_chain_head(&mut self, business: BusinessId, head: ChainHead) {
        self.heads.insert(business, Some(head));
        self.moved_heads.push((business, head));
    }

    /// Writes the heads this batch moved (once per business rather than once per event).
    fn write_chain_heads(&mut self) -> rusqlite::Result<()> {
        let mut stmt = self.conn.prepare_cached(
            "INSERT INTO chain_heads (business_id, last_index, last_hash) VALUES (?1, ?2, ?3)
             ON CONFLICT (business_id) DO UPDATE SET last_index = excluded.last_index, last_hash = excluded.last_hash",
        )?;
        let mut written: Vec<BusinessId> = Vec::new();
        for (business, head) in self.moved_heads.iter().rev() {
            if !written.contains(business) {
                stmt.execute((business.to_string(), rows::index_to_sql(head.index), head.hash.to_hex()))?;
                written.push(*business);
            }
        }
        self.moved_heads.clear();
        Ok(())
    }

    /// The business's category names in slot order; `NotFound` for an unknown business.
    pub(crate) fn category_names(&mut self, business: BusinessId) -> Result<&[CategoryName], StoreError> {
        if !self.categories.contains_key(&business) {
            let names = crate::reads::category_names(self.conn, business)?.ok_or(StoreError::NotFound)?;
            self.categories.insert(business, names);
        }
        Ok(self.categories.get(&business).map(Vec::as_slice).unwrap_or_default())
    }

    /// Forgets the categories read for a business (after adding some).
    pub(crate) fn forget_categories(&mut self, business: BusinessId) {
        self.categories.remove(&business);
    }

    /// Records that a contact's bits changed in this batch, with the seq of the event that did it.
    pub(crate) fn changed_contact(&mut self, update: IndexUpdate, seq: i64) {
        self.index_updates.push(update);
        self.own_seqs.push(seq);
    }
}
