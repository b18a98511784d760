//! optin's embedded storage: SQLite through rusqlite.
//!
//! - One SQLite file in WAL mode, shared safely with other processes (the `optin` CLI).
//! - Writes go through one writer thread that commits queued commands together (group commit,
//!   one fsync per batch with `synchronous=FULL`), each command in its own savepoint.
//! - WAL checkpoints run on their own thread, off the commit path.
//! - Reads use a few reader connections with cached prepared statements.
//! - `consent_bits`, the hot path of decisions, answers from an in-memory index kept exact across
//!   processes (see the `follow` module for how), saved next to the database so that reopening a
//!   large one is quick (the `snapshot` module).
//! - Migrations are numbered SQL files embedded in the binary (`migrations/`), checked by SHA-256.

mod channel;
mod checkpoint;
mod commands;
mod error;
mod follow;
mod migrate;
mod reads;
mod rows;
mod snapshot;
mod store;
mod table;
mod woken;
mod writer;

pub use store::{SqliteStore, migrate};
