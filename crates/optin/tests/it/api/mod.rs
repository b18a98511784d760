//! The JSON API, one module per concern.

mod batch;
mod flow;
mod idempotency;
mod input;
mod limits;
mod operations;
mod tenancy;
mod time_rules;
mod two_servers;
