//! End-to-end tests of optin: the real router over a real store (a SQLite file in a temporary
//! directory, or a fresh PostgreSQL database), through real HTTP on a port of its own. Every
//! behaviour runs on both backends (`on_both_backends!`).
//!
//! PostgreSQL tests need a server that lets `OPTIN_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`) create databases.

mod api;
mod cli;
mod cli_audience;
mod cli_import;
mod cli_jurisdiction;
mod cli_whatsapp;
mod helpers;
mod pages;
mod proxy;
mod server;
mod whatsapp;
