//! The one place where SQLite errors become `StoreError`s.

use std::fmt;
use std::sync::Arc;

use optin_store::StoreError;
use rusqlite::ErrorCode;
use rusqlite::ffi;

/// Unique rules by the message SQLite reports for them (`UNIQUE constraint failed: <columns>`),
/// and the name the store gives them in `StoreError::Conflict`.
const UNIQUE_RULES: &[(&str, &str)] = &[
    ("businesses.id", "business_id"),
    ("categories.business_id, categories.name", "category_name"),
    ("categories.business_id, categories.slot", "category_slot"),
    ("brand_names.business_id, brand_names.position", "brand_name_position"),
    ("api_keys.id", "api_key_id"),
    ("api_keys.secret_hash", "api_key_secret_hash"),
    ("notices.id", "notice_id"),
    ("notices.business_id, notices.version", "notice_version"),
    ("consent_events.business_id, consent_events.chain_index", "chain_index"),
    ("consent_state.business_id, consent_state.phone, consent_state.category", "consent_state"),
    ("chain_heads.business_id", "chain_head"),
    ("saved_responses.business_id, saved_responses.key", "idempotency_key"),
    ("schema_migrations.version", "schema_migration"),
    ("senders.phone_number_id", "phone_number_id"),
    ("settings_documents.business_id, settings_documents.name", "settings_document"),
    ("thread_contacts.business_id, thread_contacts.phone", "thread_contact_phone"),
    ("thread_contacts.business_id, thread_contacts.user_id", "thread_contact_user_id"),
    ("consent_dedupe.business_id, consent_dedupe.key", "consent_dedupe_key"),
    ("templates.business_id, templates.name, templates.language", "template"),
    ("signals.business_id, signals.dedupe_key", "signal_dedupe_key"),
    ("sent_messages.business_id, sent_messages.message_id", "sent_message_id"),
];

/// Maps a driver error: unique violations are conflicts, foreign-key violations name something
/// that does not exist, values of the wrong type are corrupt rows, anything else is unavailability.
pub(crate) fn db_error(error: rusqlite::Error) -> StoreError {
    if let rusqlite::Error::SqliteFailure(failure, message) = &error
        && failure.code == ErrorCode::ConstraintViolation
    {
        match failure.extended_code {
            ffi::SQLITE_CONSTRAINT_UNIQUE | ffi::SQLITE_CONSTRAINT_PRIMARYKEY => {
                return StoreError::Conflict { constraint: unique_rule(message.as_deref()) };
            }
            ffi::SQLITE_CONSTRAINT_FOREIGNKEY => return StoreError::NotFound,
            _ => {}
        }
    }
    match error {
        rusqlite::Error::FromSqlConversionFailure(..)
        | rusqlite::Error::IntegralValueOutOfRange(..)
        | rusqlite::Error::InvalidColumnType(..) => StoreError::Corrupt(error.to_string()),
        other => StoreError::Unavailable(Box::new(other)),
    }
}

fn unique_rule(message: Option<&str>) -> &'static str {
    let columns = message.and_then(|m| m.strip_prefix("UNIQUE constraint failed: ")).unwrap_or_default();
    UNIQUE_RULES.iter().find(|(rule, _)| *rule == columns).map_or("unique", |(_, name)| name)
}

/// Stored data that does not parse back into a domain type.
pub(crate) fn corrupt(what: impl fmt::Display) -> StoreError {
    StoreError::Corrupt(what.to_string())
}

/// Why every command of a batch failed (BEGIN or COMMIT failed): one driver error, shared by all
/// the callers of the batch.
#[derive(Debug, Clone)]
pub(crate) struct BatchFailed(pub(crate) Arc<rusqlite::Error>);

impl fmt::Display for BatchFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the write transaction failed: {}", self.0)
    }
}

impl std::error::Error for BatchFailed {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(self.0.as_ref())
    }
}

/// The writer thread is gone (the store is shutting down, or the thread panicked).
#[derive(Debug)]
pub(crate) struct WriterGone;

impl fmt::Display for WriterGone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the SQLite writer thread has stopped")
    }
}

impl std::error::Error for WriterGone {}

/// A command panicked inside the writer thread (a bug); it was rolled back.
#[derive(Debug)]
pub(crate) struct CommandPanicked;

impl fmt::Display for CommandPanicked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a write command panicked and was rolled back")
    }
}

impl std::error::Error for CommandPanicked {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_violations_name_their_rule() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE businesses (id TEXT PRIMARY KEY); INSERT INTO businesses VALUES ('a');")
            .unwrap();
        let error = conn.execute("INSERT INTO businesses VALUES ('a')", []).unwrap_err();
        assert!(matches!(db_error(error), StoreError::Conflict { constraint: "business_id" }));
    }

    #[test]
    fn other_errors_are_unavailability() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        let error = conn.execute("INSERT INTO nowhere VALUES (1)", []).unwrap_err();
        assert!(matches!(db_error(error), StoreError::Unavailable(_)));
    }
}
