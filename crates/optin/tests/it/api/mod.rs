//! The JSON API, one module per concern.

mod flow;
mod idempotency;
mod input;
mod operations;
mod tenancy;
mod two_servers;
