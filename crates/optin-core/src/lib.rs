//! The pure domain of optin.
//!
//! Everything here is deterministic: no I/O, no async, no clock, no randomness. Times and new
//! identifiers are passed in by the shells (`optin-http`, the CLI, the stores). The rules of the
//! product live here: what a valid phone number is, what a compliant notice says, which evidence
//! each opt-in method needs, how consent events fold into the current state, how the ledger's hash
//! chain is computed and checked, and how a send is decided.

pub mod business;
pub mod consent;
pub mod decision;
pub mod document;
pub mod evidence;
pub mod form;
pub mod ids;
pub mod jurisdiction;
pub mod keywords;
pub mod ledger;
pub mod limit;
pub mod link;
pub mod notice;
pub mod phone;
pub mod secret;
pub mod sms;
pub mod template;
mod text;
pub mod whatsapp;

pub use jiff::Timestamp;

/// Times are kept at microsecond precision everywhere (PostgreSQL's precision), so that an event
/// read back from any store equals the one written.
pub fn truncate_to_microseconds(time: Timestamp) -> Timestamp {
    Timestamp::from_microsecond(time.as_microsecond()).expect("a valid timestamp stays valid when truncated")
}
