//! The `optin` binary's library: configuration, wiring of store and router, serving, and the CLI.
//!
//! Kept in a library so that the end-to-end tests and the benchmarks build the service exactly
//! as `optin serve` does.

pub mod cli;
pub mod database;
pub mod operator;
pub mod server;
pub mod telemetry;
pub mod upstream;
