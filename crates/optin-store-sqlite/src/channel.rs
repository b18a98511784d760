//! The WhatsApp channel's tables (migration `0002_whatsapp`): one module per capability, each with
//! its write commands (run by the writer thread, inside their savepoint), its queries (on a
//! reader, or on the writer inside its transaction) and its rows.
//!
//! - `senders`: business phone numbers (globally unique `phone_number_id`) and settings documents.
//! - `inbox`: webhook deliveries as received, claimed by workers under a lease, then finished.
//! - `contacts`: people seen in threads (by phone, user id or both) and the messages optin sent.
//! - `templates`: the template registry and the platform's out-of-order changes to it.
//! - `signals`: quality signals, deduplicated per business, filtered for people and reports.
//! - `forwarded`: the business's own messages the send proxy forwarded (migration `0003_forwarded`).
//! - `reservations`: recipients of business-initiated messages, for the messaging limit
//!   (migration `0004_messaging_limit`).
//!
//! The one channel write that touches the ledger, `record_consent_once`, lives with
//! `record_consent` in `commands`.

pub(crate) mod contacts;
pub(crate) mod forwarded;
pub(crate) mod inbox;
pub(crate) mod reservations;
pub(crate) mod senders;
pub(crate) mod signals;
pub(crate) mod templates;
