//! The storage contract of optin, and the use cases built on it.
//!
//! [`Store`] is driver-neutral: `optin-store-sqlite` and `optin-store-postgres` implement it, and
//! both run the same contract suite (`testing` feature). The use-case modules ([`intake`],
//! [`gate`], [`audience`], [`ledger`], [`tenancy`]) combine core rules with store calls once, so
//! the HTTP API and the CLI share them instead of repeating them.

pub mod audience;
pub mod capacity;
pub mod channel;
pub mod documents;
pub mod forms;
pub mod gate;
pub mod import;
pub mod intake;
pub mod jurisdiction;
pub mod ledger;
pub mod preferences;
mod records;
mod rejection;
pub mod sms;
mod store;
pub mod tenancy;
#[cfg(feature = "testing")]
pub mod testing;
pub mod whatsapp;

pub use records::{ApiKeyRecord, NewApiKey, NewNotice, Notice, Recorded, SavedResponse, StoredDocument};
pub use rejection::{Problem, Rejection, RejectionKind, UseCaseError};
pub use store::{Store, StoreError};
