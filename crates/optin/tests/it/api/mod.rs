//! The JSON API, one module per concern.

mod batch;
pub(crate) use batch::decide_lines;
mod consent_terms;
mod documents;
mod flow;
mod idempotency;
mod imports;
mod input;
mod ivr;
mod limits;
mod operations;
mod sms;
mod tenancy;
mod time_rules;
mod two_servers;
