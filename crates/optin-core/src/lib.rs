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
pub mod evidence;
pub mod ids;
pub mod ledger;
pub mod notice;
pub mod phone;
pub mod secret;
mod text;

pub use jiff::Timestamp;
